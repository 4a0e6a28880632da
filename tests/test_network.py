"""The Params object as a person uses it (unpacking into the four blocks, a readable repr), and the
checks of the fused loop's wrapper."""

import re

import numpy as np
import pytest

from gradsel_cli.numerics import network
from helpers import config_settings


def test_params_unpack_into_views_of_the_flat_vector():
    params = network.init_params(hidden=50, seed=0)
    W1, b1, W2, b2 = params
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((784, 50), (50,), (50, 10), (10,))
    assert all(np.shares_memory(block, params.flat) for block in (W1, b1, W2, b2))
    W1[0, 0] = 7.0
    assert params.flat[0] == 7.0
    assert [a.tobytes() for a in params] == [a.tobytes() for a in params.blocks().values()]


def test_batch_norm_params_unpack_into_the_same_four_blocks():
    params = network.init_params(hidden=3, batch_norm=True)
    W1, b1, W2, b2 = params
    assert W1.shape == (784, 3) and b2.shape == (10,)
    assert list(params.blocks()) == ["W1", "b1", "W2", "b2", "gamma", "beta"]


def test_params_repr_names_shapes_hidden_units_and_batch_norm():
    text = repr(network.init_params(hidden=50, seed=0))
    assert text.startswith("Params(784→50→10")
    assert "50 hidden units" in text and "no batch norm" in text and "39,760 values" in text
    assert "W1 (784, 50)" in text and "b2 (10,)" in text
    assert len(text) < 200  # not a dump of 39,760 numbers
    bn = repr(network.init_params(hidden=3, batch_norm=True))
    assert "batch norm" in bn and "no batch norm" not in bn and "gamma (3,)" in bn


@pytest.mark.parametrize("changes,message", [
    (dict(batches=np.array([[0, 20]])), "indices into the 20 training images"),
    (dict(batches=np.array([[-1, 0]])), "indices into the 20 training images"),
    (dict(batches=np.array([0, 1])), "(T, B) indices"),
    (dict(losses=np.empty(1)), "losses must be a contiguous float64 vector of at least 2 entries"),
    (dict(sources=np.zeros(2)), "sources must be a contiguous int8 vector"),
])
def test_sgd_iterations_checks_what_would_reach_the_kernel_unchecked(few_shot_set, changes, message):
    x, y = few_shot_set
    params = network.init_params(3, seed=0)
    before = params.flat.copy()
    args = dict(batches=np.array([[0, 1], [2, 3]]), losses=None, sources=None)
    args.update(changes)
    with pytest.raises(ValueError, match=re.escape(message)):
        network.sgd_iterations(params, x, y, args["batches"], 0, config_settings(method="select"),
                               losses=args["losses"], sources=args["sources"])
    assert np.array_equal(params.flat, before)


def test_sgd_iterations_makes_its_outputs_when_not_given(few_shot_set):
    x, y = few_shot_set
    done, diverged = network.sgd_iterations(network.init_params(3, seed=0), x, y, np.array([[0, 1], [2, 3]]), 0,
                                            config_settings(method="alternate", lr=0.1))
    assert (done, diverged) == (2, False)
