"""The kernels' own exp and small-argument exp/log1p against NumPy, in ulps."""

import numba
import numpy as np
import pytest

from gradsel_cli import kernels

MAX_ULP = 1.0


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


@pytest.mark.parametrize("lo, hi", [(-1e-6, 1e-6), (-1, 1), (-40, 40), (-700, 700), (-745, -700), (700, 709.7)])
def test_exp_within_one_ulp(lo, hi):
    x = np.random.default_rng(0).uniform(lo, hi, 20000)
    assert ulps(_apply(0, x), np.exp(x)).max() <= MAX_ULP


def test_exp_edge_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 710.0, -746.0, -1e-300])
    got = _apply(0, x)
    assert got[0] == 1.0 and got[1] == 1.0 and got[7] == 1.0
    assert got[2] == np.inf and got[5] == np.inf
    assert got[3] == 0.0 and got[6] == 0.0
    assert np.isnan(got[4])


def test_exp_subnormal_results_are_rounded_like_numpy():
    x = np.linspace(-744.0, -708.5, 2001)
    assert np.array_equal(_apply(0, x) == 0, np.exp(x) == 0)
    assert np.allclose(_apply(0, x), np.exp(x), rtol=1e-12, atol=np.finfo(float).tiny * 2 ** -50)


def test_small_exp_and_log1p_within_one_ulp_on_their_domain():
    # The kernel takes the small paths only for |x| <= SMALL (exp) and |u| <= 2 * SMALL (log1p).
    x = np.random.default_rng(1).uniform(-2 * kernels.SMALL, 2 * kernels.SMALL, 20000)
    assert ulps(_apply(1, x), np.exp(x)).max() <= MAX_ULP
    x = x[x != 0]
    assert ulps(_apply(2, x), np.log1p(x)).max() <= MAX_ULP


# --- the float32 variants: float32 arguments take them, in float32 arithmetic ---

def ulps32(got, want64):
    """Error in float32 ulps of the correctly rounded float32 result (want64 computed in float64)."""
    want = want64.astype(np.float32)
    return np.abs(got.astype(np.float64) - want.astype(np.float64)) / np.spacing(np.abs(want)).astype(np.float64)


@pytest.mark.parametrize("lo, hi", [(-1e-6, 1e-6), (-1, 1), (-40, 40), (-87, 88.7), (-103, -87)])
def test_float32_exp_within_one_ulp(lo, hi):
    x = np.random.default_rng(2).uniform(lo, hi, 20000).astype(np.float32)
    got = _apply(0, x)
    assert got.dtype == np.float32
    assert ulps32(got, np.exp(x.astype(np.float64))).max() <= MAX_ULP


def test_float32_exp_edge_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 89.0, -104.0, -1e-30], dtype=np.float32)
    got = _apply(0, x)
    assert got[0] == 1.0 and got[1] == 1.0 and got[7] == 1.0
    assert got[2] == np.inf and got[5] == np.inf
    assert got[3] == 0.0 and got[6] == 0.0
    assert np.isnan(got[4])


def test_float32_small_exp_and_log1p_within_one_ulp_on_their_domain():
    x = np.random.default_rng(3).uniform(-2 * kernels.SMALL, 2 * kernels.SMALL, 20000).astype(np.float32)
    assert ulps32(_apply(1, x), np.exp(x.astype(np.float64))).max() <= MAX_ULP
    x = x[x != 0]
    assert ulps32(_apply(2, x), np.log1p(x.astype(np.float64))).max() <= MAX_ULP
