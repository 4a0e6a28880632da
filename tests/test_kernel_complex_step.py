"""The complex-step kernels (kernels/complex_step.py): against their naive NumPy twin (reference.py), against
backpropagation on the real network size, at the ReLU kinks, in the fused loop's form, and on 1 and 2 threads."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from gradsel_cli.core import network
from gradsel_cli.kernels import backward, complex_step, forward
from helpers import random_params, step_blocks

ACTS = list(network.ACTIVATION_CODES)
SMOOTH = ["sigmoid", "tanh", "mish"]
LOSSES = list(network.LOSS_CODES)
NAMES = ("W1", "b1", "W2", "b2", "gamma", "beta")
TWIN_RTOL = {np.float64: 1e-12, np.float32: 1e-4}  # kernel vs twin: the same complex arithmetic in another order
ANALYTIC_RTOL = 1e-13  # complex step vs backpropagation, float64: the same to rounding
H_STEP = 1e-20
SHAPES = [(6, 3, 10, 1), (9, 4, 4, 3), (14, 5, 10, 4), (20, 3, 4, 2)]  # n_in, H, K, B
# With batch norm, a batch of one or two distinct samples normalises every unit to fixed values (0, or
# +-1 up to BN_EPS): its gradient through W1 is all cancellation, so those batches have three or more.
SHAPES_BN = [(9, 4, 4, 3), (14, 5, 10, 4), (20, 3, 4, 4), (6, 5, 10, 3)]


def problem(n_in, H, K, B, seed, batch_norm=False, dtype=np.float64, dropout=True):
    """Weights [W1, b1, W2, b2] (+ [gamma, beta]), x (B, n_in) with MNIST-like exact zeros, y, a mask;
    with B >= 3 (with batch norm B >= 4), sample 2 repeats sample 0 (label and mask row too), as a batch drawn
    with replacement may."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(size=(B, n_in)) * (gen.uniform(size=(B, n_in)) < 0.5)
    y = gen.integers(0, K, B)
    mask = np.where(gen.uniform(size=(B, H)) < 0.25, 0.0, 1 / 0.75) if dropout else np.ones((B, H))
    repeats = B >= 4 if batch_norm else B >= 3
    if repeats:
        x[2], y[2], mask[2] = x[0], y[0], mask[0]
    w = [gen.normal(0, 0.5, (n_in, H)), gen.normal(0, 0.5, H), gen.normal(0, 0.5, (H, K)), gen.normal(0, 0.5, K)]
    if batch_norm:
        w += [gen.normal(1.0, 0.2, H), gen.normal(0.0, 0.2, H)]
    return [a.astype(dtype) for a in w], x.astype(dtype), y, mask.astype(dtype)


def kernel(w, x, y, act, mask, loss, eps, h=H_STEP):
    """The complex-step kernel of the weights' kind: with batch norm when w holds gamma, beta."""
    act_code, loss_code = network.ACTIVATION_CODES[act], network.LOSS_CODES[loss]
    if len(w) == 6:
        return complex_step._complex_step_bn(x, y, *w, act_code, mask, h, loss_code, eps)
    eps = w[0].dtype.type(eps)
    return step_blocks(complex_step._complex_step_fused, x, y, *w, act_code, mask, loss_code, eps, [h])[0]


def block_errors(got, want):
    """||got - want|| / ||want|| per block. Under batch norm b1 does not move the loss: both gradients of
    b1 are rounding noise about 0, so that block is measured against the whole gradient's norm."""
    got = [np.asarray(a, np.float64) for a in got]
    want = [np.asarray(a, np.float64) for a in want]
    whole = np.sqrt(sum(np.sum(b * b) for b in want))
    errors = {}
    for name, a, b in zip(NAMES, got, want):
        assert a.shape == b.shape, name
        scale = whole if (name == "b1" and len(want) == 6) else np.linalg.norm(b)
        diff = np.linalg.norm(a - b)
        errors[name] = float(diff / scale) if scale > 0 else (0.0 if diff == 0 else np.inf)
    return errors


def split(flat, n_in, H, K, batch_norm):
    """A flat gradient (the layout of Params) as its blocks."""
    sizes = [n_in * H, H, H * K, K] + ([H, H] if batch_norm else [])
    shapes = [(n_in, H), (H,), (H, K), (K,), (H,), (H,)]
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return [p.reshape(s) for p, s in zip(parts, shapes)]


# --- the kernel against its naive twin -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("eps", [0.0, 1e-7])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_kernel_is_the_naive_complex_step(act, loss, eps, batch_norm, dtype):
    shapes = SHAPES_BN if batch_norm else SHAPES
    n_in, H, K, B = shapes[(ACTS.index(act) + LOSSES.index(loss)) % len(shapes)]
    w, x, y, mask = problem(n_in, H, K, B, seed=ACTS.index(act), batch_norm=batch_norm, dtype=dtype)
    got = kernel(w, x, y, act, mask, loss, dtype(eps))
    assert all(g.dtype == dtype for g in got) and len(got) == len(w)
    want = ref.complex_step_gradient(w, x, y, act, mask, loss, eps, H_STEP)
    errors = block_errors(got, want)
    assert max(errors.values()) <= TWIN_RTOL[dtype], errors


# --- the kernel against backpropagation, on the real network size ----------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", SMOOTH)
def test_complex_step_is_backpropagation_on_mnist(mnist_batch, act, loss, batch_norm):
    x, y = mnist_batch  # 8 real images (784 pixels, about 1 in 5 lit, values in [0, 1])
    p = random_params(50, std=0.1, seed=7)
    w = [p.W1, p.b1, p.W2, p.b2]
    gen = np.random.default_rng(8)
    gamma, beta = (gen.normal(1.0, 0.2, 50), gen.normal(0.0, 0.2, 50)) if batch_norm else (None, None)
    mask = np.ones((8, 50))
    codes = network.ACTIVATION_CODES[act], mask, network.LOSS_CODES[loss], 0.0
    _, flat = backward._analytic(x, y, *w, *codes, gamma, beta)
    want = split(flat, 784, 50, 10, batch_norm)
    got = kernel(w + ([gamma, beta] if batch_norm else []), x, y, act, mask, loss, 0.0)
    errors = block_errors(got, want)
    print(act, loss, "bn" if batch_norm else "", {k: f"{v:.1e}" for k, v in errors.items()})
    assert max(errors.values()) <= ANALYTIC_RTOL, errors
    dark = ~x.any(axis=0)  # pixels dark in every image: their rows of W1 are exactly 0
    assert dark.any() and np.all(got[0][dark] == 0.0)


@pytest.mark.parametrize("h", [1e-8, 1e-20, 1e-150])
def test_the_step_size_does_not_matter(h):
    # No differencing: any h small enough for h^2 to vanish gives the gradient (a finite difference at
    # h = 1e-150 would give 0, and at 1e-8 half its digits).
    w, x, y, mask = problem(14, 5, 10, 4, seed=3)
    got = kernel(w, x, y, "tanh", mask, "cross-entropy", 0.0, h)
    _, flat = backward._analytic(x, y, *w, network.ACTIVATION_CODES["tanh"], mask, 0, 0.0, None, None)
    errors = block_errors(got, split(flat, 14, 5, 10, False))
    assert max(errors.values()) <= 1e-13, errors


@settings(max_examples=25, deadline=None)
@given(
    n_in=st.integers(1, 12),
    H=st.integers(1, 4),
    K=st.integers(2, 10),
    B=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    act=st.sampled_from(ACTS),
    loss=st.sampled_from(LOSSES),
)
def test_complex_step_is_backpropagation_for_any_shape(n_in, H, K, B, seed, act, loss):
    w, x, y, mask = problem(n_in, H, K, B, seed)  # no pre-activation is exactly 0: no kink is met
    got = np.concatenate([g.ravel() for g in kernel(w, x, y, act, mask, loss, 0.0)])
    codes = network.ACTIVATION_CODES[act], mask, network.LOSS_CODES[loss], 0.0
    _, want = backward._analytic(x, y, *w, *codes, None, None)
    assert np.linalg.norm(got - want) <= 1e-12 * np.linalg.norm(want)


# --- the kinks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("act, slope", [("relu", 0.0), ("leaky-relu", ref.LEAKY_SLOPE)])
def test_at_an_exact_kink_the_slope_is_that_of_the_left_side(act, slope):
    w, x, y, mask = problem(8, 4, 10, 3, seed=5, dropout=False)
    j = 1
    w[0][:, j] = 0.0  # a1[:, j] = 0 exactly in every sample
    w[1][j] = 0.0
    gW1, gb1, gW2, gb2 = kernel(w, x, y, act, mask, "cross-entropy", 0.0)
    _, _, a2 = ref.forward(w, x, act)
    dz1 = (ref.softmax(a2) - np.eye(10)[y]) / len(y) @ w[2][j]  # d loss / d z1[:, j]
    assert np.all(gW2[j] == 0.0)  # z1[:, j] = 0
    if slope == 0.0:
        assert np.all(gW1[:, j] == 0.0) and gb1[j] == 0.0
    else:
        assert np.allclose(gW1[:, j], x.T @ (slope * dz1), rtol=1e-12, atol=0)
        assert np.isclose(gb1[j], np.sum(slope * dz1), rtol=1e-12, atol=0)
    _, flat = backward._analytic(x, y, *w, network.ACTIVATION_CODES[act], mask, 0, 0.0, None, None)
    assert max(block_errors([gW1, gb1, gW2, gb2], split(flat, 8, 4, 10, False)).values()) <= 1e-13


# --- the fused loop's step, and threads ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss, eps", [("cross-entropy", 0.0), ("cross-entropy", 1e-7), ("mse", 0.0)])
def test_the_step_returns_the_loss_at_its_weights(mnist_batch, dtype, loss, eps):
    x, y = mnist_batch
    x = x.astype(dtype)
    H = 6
    p = random_params(H, std=0.1, seed=2)
    W1, b1, W2, b2 = (a.astype(dtype) for a in (p.W1, p.b1, p.W2, p.b2))
    ones = np.ones((8, H), dtype)
    act, code = network.ACTIVATION_CODES["sigmoid"], network.LOSS_CODES[loss]
    blocks, value = step_blocks(
        complex_step._complex_step_fused, x, y, W1, b1, W2, b2, act, ones, code, dtype(eps), [H_STEP]
    )
    assert all(b.dtype == dtype for b in blocks) and isinstance(value, float | np.floating)
    assert value == np.float64(forward._loss(x, y, W1, b1, W2, b2, act, ones, code, dtype(eps), None, None))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_bitwise_the_same_on_one_and_two_threads(mnist_batch, batch_norm):
    x, y = mnist_batch
    p = random_params(7, std=0.1, seed=4)
    w = [p.W1, p.b1, p.W2, p.b2] + ([np.full(7, 1.1), np.full(7, 0.1)] if batch_norm else [])
    mask = np.where(np.random.default_rng(0).uniform(size=(8, 7)) < 0.2, 0.0, 1.25)
    before = numba.get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            numba.set_num_threads(n)
            runs.append(kernel(w, x, y, "mish", mask, "cross-entropy", 1e-7))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("act", ACTS)
def test_saturated_units_dark_images_and_huge_logits(act):
    # Pre-activations of +-tens (the sigmoid and softplus take exp of their Re <= 0 side, tanh its limit
    # beyond |x| = 20), logits in the hundreds, and an image with no lit pixel.
    w, x, y, mask = problem(10, 4, 10, 4, seed=9)
    x[1] = 0.0
    w[0] *= 60.0
    w[2] *= 150.0
    got = kernel(w, x, y, act, mask, "cross-entropy", 1e-7)
    assert all(np.isfinite(g).all() for g in got)
    errors = block_errors(got, ref.complex_step_gradient(w, x, y, act, mask, "cross-entropy", 1e-7, H_STEP))
    assert max(errors.values()) <= TWIN_RTOL[np.float64], errors
