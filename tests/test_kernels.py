"""The kernels' own exp and small-argument exp/log1p against exact references, in ulps.

The reference is Python's ``decimal`` at 40 significant digits, rounded once to
float64: the correctly rounded result, the same on every CPU. (NumPy's and the
C library's exp and log1p are not: NumPy picks SIMD code by CPU, and on an
AVX-512 machine its log1p is 1 ulp from elsewhere.)
"""

from decimal import Context, Decimal

import numba
import numpy as np
import pytest

from gradsel_cli import kernels

MAX_ULP = 1.0  # the true bound: within 1 ulp of the correctly rounded result (measured: never more)
EXACT = Context(prec=40, Emin=-10**6, Emax=10**6)
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
            out[i] = kernels._exp(x[i])
        elif fn_code == 1:
            out[i] = kernels._exp_small(x[i])
        else:
            out[i] = kernels._log1p_small(x[i])
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
    assert np.allclose(_apply(0, x), want, rtol=1e-12, atol=np.finfo(float).tiny * 2 ** -50)


def test_small_exp_and_log1p_within_one_ulp_on_their_domain():
    # The kernel takes the small paths only for |x| <= SMALL (exp) and |u| <= 2 * SMALL (log1p).
    x = np.random.default_rng(1).uniform(-2 * kernels.SMALL, 2 * kernels.SMALL, 20000)
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
    x = np.random.default_rng(3).uniform(-2 * kernels.SMALL, 2 * kernels.SMALL, 20000).astype(np.float32)
    assert ulps32(_apply(1, x), exact_exp(x.astype(np.float64))).max() <= MAX_ULP
    x = x[x != 0]
    assert ulps32(_apply(2, x), exact_log1p(x.astype(np.float64))).max() <= MAX_ULP
