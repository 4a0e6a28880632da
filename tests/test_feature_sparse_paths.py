"""The sparse analytic gradient and the deduplicated numeric one give bitwise what the old kernels gave (their
fingerprints in data/sparse_reference.json, made by sparse_reference.py), on real MNIST batches and on random
problems with exact zeros: in float64 and float32, with the exact and the textbook finite-difference arithmetic,
with and without a loss epsilon."""

import json

import numpy as np
import pytest

import sparse_reference as sr
from gradsel_cli.core import network
from gradsel_cli.kernels import backward, differences, forward, lit
from helpers import numeric_blocks


@pytest.fixture(scope="module")
def stored():
    return json.loads(sr.STORE.read_text())


def test_every_stored_fingerprint_is_checked(mnist_raw, stored):
    names = [
        n
        for cases in (
            sr.analytic_cases(mnist_raw),
            sr.forward_cases(mnist_raw),
            sr.numeric_cases(mnist_raw),
            sr.signed_zero_cases(),
        )
        for n, _ in cases
    ]
    assert len(names) == len(set(names)) and set(names) == set(stored)


def test_sparse_analytic_is_bitwise_the_old_one(mnist_raw, stored):
    for name, args in sr.analytic_cases(mnist_raw):
        value, flat = backward._analytic(*args, None, None)
        assert flat.dtype == args[0].dtype
        assert sr.digest(value, flat) == stored[name], name


def test_sparse_forward_is_bitwise_the_old_one(mnist_raw, stored):
    for name, args in sr.forward_cases(mnist_raw):
        a1, pre, z1, a2, _, _ = forward._forward(*args, None, None)
        assert sr.digest(pre) == sr.digest(a1)
        assert sr.digest(a1, z1, a2) == stored[name], name


def test_sparse_analytic_with_signed_zeros_and_odd_row_lengths(stored):
    """Pixels of -0.0 are skipped like +0.0 (as before); rows of 0 to 7 lit pixels take every
    branch of the four-at-a-time sum."""
    for name, args in sr.signed_zero_cases():
        value, flat = backward._analytic(*args, None, None)
        assert sr.digest(value, flat) == stored[name], name


@pytest.mark.parametrize("dtype", sr.DTYPES)
def test_deduplicated_numeric_is_bitwise_the_old_one(mnist_raw, stored, dtype):
    """Batches drawn with replacement (repeated samples) and repeated pixel values: bitwise as before (the cases
    of the cumulant series: as when it came, sparse_reference.py). The textbook arithmetic sums every sample's
    loss, each copy of a repeat as its own term."""
    for name, args in sr.numeric_cases(mnist_raw):
        if f"/{dtype}/" in name:
            grads = numeric_blocks(*args)
            assert all(g.dtype == sr.DTYPES[dtype] for g in grads)
            assert sr.digest(*grads) == stored[name], name


def test_all_zero_images_give_only_bias_gradients(make_problem):
    params, x, y = make_problem(hidden=4, batch=2, n_in=6)
    x[...] = 0.0
    grad = network.analytic_gradient(params, x, y)
    assert np.all(grad.W1 == 0.0) and np.any(grad.b1 != 0.0)


def test_distinct_finds_repeats_and_values():
    x = np.array([[0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0], [0.25, 0.0, 0.0, 0.0], [0.0, 0.5, 0.5, 1.0]])
    y = np.array([3, 3, 1, 4])
    mask = np.ones((4, 2))
    idx, val, ptr = lit._nonzero(x)
    first, uval, uptr, which = differences._distinct(idx, val, ptr, y, mask)
    assert list(first) == [0, 0, 2, 3]  # sample 3 has another label
    assert list(uval[uptr[0] : uptr[1]]) == [0.5, 1.0]  # pixels 0.5, 0.5, 1.0 and the bias's 1
    assert uptr[2] == uptr[1]  # a repeat keeps no values of its own
    assert list(uval[uptr[2] : uptr[3]]) == [0.25, 1.0]
    for b in range(4):
        lo = uptr[first[b]]
        for t in range(ptr[b], ptr[b + 1]):
            assert uval[lo + which[t]] == val[t]
