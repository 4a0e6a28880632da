"""The @njit kernels called directly: the loss, backprop and finite differences against the NumPy twins in
reference.py; the kernels' own exp and small-argument exp/log1p against exact references, in ulps.

The reference is Python's ``decimal`` at 40 significant digits, rounded once to
float64: the correctly rounded result, the same on every CPU. (NumPy's and the
C library's exp and log1p are not: NumPy picks SIMD code by CPU, and on an
AVX-512 machine its log1p is 1 ulp from elsewhere.)
"""

from decimal import Context, Decimal

import numba
import numpy as np
import pytest

import reference as ref
from gradsel_cli.core import network
from gradsel_cli.kernels import backward, forward, precision
from helpers import numeric_blocks

MAX_ULP = 1.0  # the true bound: within 1 ulp of the correctly rounded result (measured: never more)
EXACT = Context(prec=40, Emin=-(10**6), Emax=10**6)
WIDE = Context(prec=2000)  # enough digits to hold 1 + x exactly for any double x used here


def exact_exp(x: np.ndarray) -> np.ndarray:
    """exp(x) correctly rounded to float64 (an argument is a double, so Decimal(x) is exact)."""
    return np.array([float(EXACT.exp(Decimal(float(v)))) for v in x])


def exact_log1p(x: np.ndarray) -> np.ndarray:
    """log(1 + x) correctly rounded: 1 + x is formed exactly, then its log to 40 digits."""
    return np.array([float(EXACT.ln(WIDE.add(1, Decimal(float(v))))) for v in x])


@numba.njit
def _apply(fn_code, x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        if fn_code == 0:
            out[i] = precision._exp(x[i])
        elif fn_code == 1:
            out[i] = precision._exp_small(x[i])
        else:
            out[i] = precision._log1p_small(x[i])
    return out


def ulps(got, want):
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_the_reference_is_correctly_rounded():
    assert exact_exp(np.array([0.0, 1.0, -745.0]))[0] == 1.0
    assert exact_exp(np.array([1.0]))[0] == 2.718281828459045  # e rounded to nearest
    assert exact_exp(np.array([-745.0]))[0] == 5e-324  # the smallest subnormal
    assert exact_log1p(np.array([1e-300]))[0] == 1e-300 and exact_log1p(np.array([1.0]))[0] == 0.6931471805599453


@pytest.mark.parametrize("lo, hi", [(-1e-6, 1e-6), (-1, 1), (-40, 40), (-700, 700), (-745, -700), (700, 709.7)])
def test_exp_within_one_ulp(lo, hi):
    x = np.random.default_rng(0).uniform(lo, hi, 20000)
    assert ulps(_apply(0, x), exact_exp(x)).max() <= MAX_ULP


def test_exp_edge_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 710.0, -746.0, -1e-300])
    got = _apply(0, x)
    assert got[0] == 1.0 and got[1] == 1.0 and got[7] == 1.0
    assert got[2] == np.inf and got[5] == np.inf
    assert got[3] == 0.0 and got[6] == 0.0
    assert np.isnan(got[4])


def test_exp_subnormal_results_are_rounded_like_the_exact_result():
    x = np.linspace(-744.0, -708.5, 2001)
    want = exact_exp(x)
    assert np.array_equal(_apply(0, x) == 0, want == 0)
    assert np.allclose(_apply(0, x), want, rtol=1e-12, atol=np.finfo(float).tiny * 2**-50)


def test_small_exp_and_log1p_within_one_ulp_on_their_domain():
    # The kernel takes the small paths only for |x| <= SMALL (exp) and |u| <= 2 * SMALL (log1p).
    x = np.random.default_rng(1).uniform(-2 * precision.SMALL, 2 * precision.SMALL, 20000)
    assert ulps(_apply(1, x), exact_exp(x)).max() <= MAX_ULP
    x = x[x != 0]
    assert ulps(_apply(2, x), exact_log1p(x)).max() <= MAX_ULP


# --- the float32 variants: float32 arguments take them, in float32 arithmetic ---


def ulps32(got, want64):
    """Error in float32 ulps of the float32 rounding of the correctly rounded float64 result."""
    want = want64.astype(np.float32)
    return np.abs(got.astype(np.float64) - want.astype(np.float64)) / np.spacing(np.abs(want)).astype(np.float64)


@pytest.mark.parametrize("lo, hi", [(-1e-6, 1e-6), (-1, 1), (-40, 40), (-87, 88.7), (-103, -87)])
def test_float32_exp_within_one_ulp(lo, hi):
    x = np.random.default_rng(2).uniform(lo, hi, 20000).astype(np.float32)
    got = _apply(0, x)
    assert got.dtype == np.float32
    assert ulps32(got, exact_exp(x.astype(np.float64))).max() <= MAX_ULP


def test_float32_exp_edge_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 89.0, -104.0, -1e-30], dtype=np.float32)
    got = _apply(0, x)
    assert got[0] == 1.0 and got[1] == 1.0 and got[7] == 1.0
    assert got[2] == np.inf and got[5] == np.inf
    assert got[3] == 0.0 and got[6] == 0.0
    assert np.isnan(got[4])


def test_float32_small_exp_and_log1p_within_one_ulp_on_their_domain():
    x = np.random.default_rng(3).uniform(-2 * precision.SMALL, 2 * precision.SMALL, 20000).astype(np.float32)
    assert ulps32(_apply(1, x), exact_exp(x.astype(np.float64))).max() <= MAX_ULP
    x = x[x != 0]
    assert ulps32(_apply(2, x), exact_log1p(x.astype(np.float64))).max() <= MAX_ULP


# --- the loss, backprop and finite differences, called directly ---------------------------------------------

KERNEL_RTOL = 1e-12  # kernel vs twin, the same arithmetic in another order: rounding only
KERNEL_FD_RTOL = 1e-7  # incremental finite differences vs the twin's perturb-and-rerun: both carry ~eps*L/h
ACT_CODES = {
    "sigmoid": network.ACTIVATION_CODES["sigmoid"],
    "tanh": network.ACTIVATION_CODES["tanh"],
    "relu": network.ACTIVATION_CODES["relu"],
    "leaky-relu": network.ACTIVATION_CODES["leaky-relu"],
    "mish": network.ACTIVATION_CODES["mish"],
}
LOSS_CODES = {"cross-entropy": network.LOSS_CODES["cross-entropy"], "mse": network.LOSS_CODES["mse"]}


def small_problem(seed, hidden=4, batch=3, n_in=9):
    gen = np.random.default_rng(seed)
    x = gen.uniform(size=(batch, n_in)) * (gen.uniform(size=(batch, n_in)) < 0.6)  # MNIST-like exact zeros
    W1, b1 = gen.normal(0, 0.5, (n_in, hidden)), gen.normal(0, 0.5, hidden)
    W2, b2 = gen.normal(0, 0.5, (hidden, 10)), gen.normal(0, 0.5, 10)
    return [W1, b1, W2, b2], x, gen.integers(0, 10, batch)


def norm_rel(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-300)


@pytest.mark.parametrize("act", list(ACT_CODES))
@pytest.mark.parametrize("loss", list(LOSS_CODES))
def test_loss_kernel_is_the_twins_loss(act, loss):
    w, x, y = small_problem(1)
    eps = 1e-7 if loss == "cross-entropy" else 0.0
    no_mask = np.ones((3, 4))  # the kernels take a mask always (ones: no dropout)
    got = forward._loss(x, y, *w, ACT_CODES[act], no_mask, LOSS_CODES[loss], eps, None, None)
    assert abs(got - ref.loss(w, x, y, act, loss=loss, eps=eps)) <= KERNEL_RTOL * abs(got)


@pytest.mark.parametrize("act", list(ACT_CODES))
@pytest.mark.parametrize("loss", list(LOSS_CODES))
def test_analytic_kernel_is_the_twins_backprop(act, loss):
    w, x, y = small_problem(2)
    mask = np.where(np.random.default_rng(3).uniform(size=(3, 4)) < 0.25, 0.0, 1 / 0.75)
    value, flat = backward._analytic(x, y, *w, ACT_CODES[act], mask, LOSS_CODES[loss], 0.0, None, None)
    expected = np.concatenate([g.ravel() for g in ref.analytic_gradient(w, x, y, act, mask, loss)])
    assert flat.shape == expected.shape and norm_rel(flat, expected) <= KERNEL_RTOL
    assert abs(value - ref.loss(w, x, y, act, mask, loss)) <= KERNEL_RTOL * abs(value)
    zero_rows = np.flatnonzero(~x.any(axis=0))  # pixels dark in every image: their rows of W1 get exactly 0
    assert np.all(flat[: x.shape[1] * 4].reshape(-1, 4)[zero_rows] == 0.0)


@pytest.mark.parametrize("central", [True, False])
@pytest.mark.parametrize("textbook", [False, True])
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "mish"])  # smooth: the twin and the kernel see no kink
def test_numeric_kernel_is_the_twins_finite_differences(act, central, textbook):
    w, x, y = small_problem(4)
    step = 1e-4
    blocks = numeric_blocks(
        x, y, *w, ACT_CODES[act], np.ones((3, 4)), step, central, network.LOSS_CODES["cross-entropy"], textbook, 0.0
    )
    expected = ref.numeric_gradient(w, x, y, step, "central" if central else "forward", act)
    for got, want in zip(blocks, expected, strict=True):
        assert got.shape == want.shape and norm_rel(got, want) <= KERNEL_FD_RTOL
