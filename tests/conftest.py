"""Shared fixtures: the shipped MNIST (loaded once per session), real few-shot batches, small random problems."""

import os

# The thread-count tests compare 1 and 2 Numba threads. Numba starts as many threads as cores, so a
# one-core machine gets a second thread (oversubscribed; still correct) before Numba is imported.
if (os.cpu_count() or 1) < 2:
    os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import numpy as np
import pytest
from click.testing import CliRunner

from gradsel_cli import data
from helpers import random_params


@pytest.fixture(scope="session")
def mnist_raw():
    """(x_train uint8 (60000, 784), y_train, x_test uint8 (10000, 784), y_test) of the shipped copy."""
    return data.load_mnist_raw()


@pytest.fixture(scope="session")
def few_shot_set(mnist_raw):
    """The default few-shot training set: the first 2 images of each class, x float64 (20, 784)."""
    return data.few_shot(mnist_raw[0], mnist_raw[1], shots=2)


@pytest.fixture(scope="session")
def mnist_batch(few_shot_set):
    """A real mini-batch of 8 few-shot images with mixed labels: x (8, 784), y (8,)."""
    x, y = few_shot_set
    idx = np.random.default_rng(1).choice(len(y), size=8, replace=False)
    return np.ascontiguousarray(x[idx]), y[idx]


@pytest.fixture
def make_problem():
    """make(hidden, batch, n_in, seed, std, zeros) -> (params, x (batch, n_in) in [0, 1], y (batch,)).

    A share `zeros` of the pixels is exactly 0, as in MNIST, so the kernels' sparse paths run.
    """

    def make(hidden=3, batch=2, n_in=12, seed=0, std=0.5, zeros=0.5):
        gen = np.random.default_rng(seed + 1000)
        x = gen.uniform(0.0, 1.0, (batch, n_in))
        x[gen.uniform(size=x.shape) < zeros] = 0.0
        y = gen.integers(0, 10, batch)
        return random_params(hidden, n_in, std=std, seed=seed), x, y

    return make


@pytest.fixture
def runner(monkeypatch):
    """A CliRunner that ignores any GRADSEL_DATA_DIR of the environment (the shipped copy is used)."""
    monkeypatch.delenv("GRADSEL_DATA_DIR", raising=False)
    return CliRunner()
