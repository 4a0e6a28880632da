"""The sparse analytic gradient and the deduplicated numeric one give bitwise what the old kernels gave
(tests/old_kernels.py), on real MNIST batches and on random problems with exact zeros: in float64 and
float32, with the exact and the textbook finite-difference arithmetic, with and without a loss epsilon."""

import numpy as np
import pytest

import old_kernels as old
from gradsel_cli import kernels
from gradsel_cli.numerics import network

ACTS = list(network.ACTIVATIONS)
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]


def real_batches(mnist_raw, sizes=((1, 20), (8, 50), (32, 100)), dtype=np.float64):
    """(x, y, params, mask) for real batches drawn with replacement from the first 40 training images."""
    xtr, ytr, _, _ = mnist_raw
    gen = np.random.default_rng(15)
    for B, H in sizes:
        rows = gen.integers(0, 40, size=B)
        x = (np.ascontiguousarray(xtr[rows], dtype=np.float64) / 255.0).astype(dtype)
        y = ytr[rows].astype(np.int64)
        params = network.init_params(H, seed=B, std=0.1, dtype=dtype)
        mask = (gen.uniform(size=(B, H)) < 0.8).astype(dtype)
        yield x, y, params, mask


def old_flat(params, gW1, gb1, gW2, gb2):
    return np.concatenate([gW1.ravel(), gb1, gW2.ravel(), gb2])


def same_bits(a, b):
    return np.asarray(a).tobytes() == np.asarray(b).tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("loss,eps", [(kernels.CROSS_ENTROPY, 0.0), (kernels.CROSS_ENTROPY, 1e-7), (kernels.MSE, 0.0)],
                         ids=["cross-entropy", "cross-entropy-eps", "mse"])
@pytest.mark.parametrize("act", range(len(ACTS)))
def test_sparse_analytic_is_bitwise_the_old_one(mnist_raw, act, loss, eps, dtype):
    for x, y, p, mask in real_batches(mnist_raw, dtype=dtype):
        args = (x, y, p.W1, p.b1, p.W2, p.b2, act, mask, loss, dtype(eps))
        value, flat = kernels._analytic(*args, None, None)
        old_value, *g = old.old_analytic(*args)
        assert flat.dtype == dtype
        assert same_bits(value, old_value)
        assert same_bits(flat, old_flat(p, *g))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sparse_forward_is_bitwise_the_old_one(mnist_raw, dtype):
    for x, y, p, mask in real_batches(mnist_raw, dtype=dtype):
        a1, pre, z1, a2, _, _ = kernels._forward(x, p.W1, p.b1, p.W2, p.b2, 0, mask, None, None)
        assert same_bits(pre, a1)
        for new, was in zip((a1, z1, a2), old.old_forward(x, p.W1, p.b1, p.W2, p.b2, 0, mask)):
            assert same_bits(new, was)


def test_sparse_analytic_with_signed_zeros_and_odd_row_lengths(make_problem):
    """Pixels of -0.0 are skipped like +0.0 (as before); rows of 0 to 7 lit pixels take every
    branch of the four-at-a-time sum."""
    for lit in range(8):
        params, x, y = make_problem(hidden=5, batch=3, n_in=9, seed=lit, zeros=0.0)
        x[:, lit:] = 0.0
        x[1, ::2] = -0.0
        mask = np.ones((3, 5))
        value, flat = kernels._analytic(x, y, params.W1, params.b1, params.W2, params.b2, 0, mask, 0, 0.0, None,
                                        None)
        old_value, *g = old.old_analytic(x, y, params.W1, params.b1, params.W2, params.b2, 0, mask, 0, 0.0)
        assert same_bits(value, old_value) and same_bits(flat, old_flat(params, *g))


def test_all_zero_images_give_only_bias_gradients(make_problem):
    params, x, y = make_problem(hidden=4, batch=2, n_in=6)
    x[...] = 0.0
    grad = network.analytic_gradient(params, x, y)
    assert np.all(grad.W1 == 0.0) and np.any(grad.b1 != 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("arith", ["exact", "textbook"])
@pytest.mark.parametrize("scheme", ["central", "forward"])
@pytest.mark.parametrize("loss,eps", [(kernels.CROSS_ENTROPY, 0.0), (kernels.CROSS_ENTROPY, 1e-7), (kernels.MSE, 0.0)],
                         ids=["cross-entropy", "cross-entropy-eps", "mse"])
@pytest.mark.parametrize("act", range(len(ACTS)))
def test_deduplicated_numeric_is_bitwise_the_old_one(mnist_raw, act, loss, eps, scheme, arith, dtype):
    """Batches drawn with replacement (repeated samples) and repeated pixel values: bitwise as before.
    The textbook arithmetic sums every sample's loss, each copy of a repeat as its own term."""
    sizes = ((1, 20), (8, 50), (32, 30)) if loss == kernels.CROSS_ENTROPY else ((8, 10),)
    step = 1e-3 if dtype == np.float32 else 1e-4
    for x, y, p, mask in real_batches(mnist_raw, sizes, dtype):
        mask[:, ::3] = 1.0  # leave some units whole so that repeats with equal mask rows occur
        if x.shape[0] > 1:
            x[-1], y[-1], mask[-1] = x[0], y[0], mask[0]  # certainly one repeat
        args = (x, y, p.W1, p.b1, p.W2, p.b2, act, mask, dtype(step), scheme == "central", loss,
                arith == "textbook", dtype(eps))
        for new, was in zip(kernels._numeric(*args), old.old_numeric(*args)):
            assert new.dtype == dtype
            assert same_bits(new, was)


def test_distinct_finds_repeats_and_values():
    x = np.array([[0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0], [0.25, 0.0, 0.0, 0.0], [0.0, 0.5, 0.5, 1.0]])
    y = np.array([3, 3, 1, 4])
    mask = np.ones((4, 2))
    idx, val, ptr = kernels._nonzero(x)
    first, uval, uptr, which = kernels._distinct(idx, val, ptr, y, mask)
    assert list(first) == [0, 0, 2, 3]                       # sample 3 has another label
    assert list(uval[uptr[0]:uptr[1]]) == [0.5, 1.0]         # pixels 0.5, 0.5, 1.0 and the bias's 1
    assert uptr[2] == uptr[1]                                # a repeat keeps no values of its own
    assert list(uval[uptr[2]:uptr[3]]) == [0.25, 1.0]
    for b in range(4):
        lo = uptr[first[b]]
        for t in range(ptr[b], ptr[b + 1]):
            assert uval[lo + which[t]] == val[t]
