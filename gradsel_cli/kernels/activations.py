"""The hidden activations and their derivatives, of one pre-activation value."""

import math

import numba

from .policy import INLINE
from .precision import _c, _exp

# Activation codes: the names' positions in choices.ACTIVATIONS (mapped in core/network.py).
SIGMOID, TANH, RELU, LEAKY_RELU, MISH = 0, 1, 2, 3, 4
LEAKY_SLOPE = 0.01


@numba.njit(**INLINE)
def _softplus(a):
    return math.log1p(_exp(-abs(a))) + max(a, _c(a, 0.0))


@numba.njit(**INLINE)
def _act(a, act):
    """Hidden activation of one pre-activation value."""
    if act == SIGMOID:
        return _c(a, 1.0) / (_c(a, 1.0) + _exp(-a))
    if act == TANH:
        return math.tanh(a)
    if act == RELU:
        return a if a > 0.0 else _c(a, 0.0)
    if act == LEAKY_RELU:
        return a if a > 0.0 else _c(a, LEAKY_SLOPE) * a
    return a * math.tanh(_softplus(a))  # MISH


@numba.njit(**INLINE)
def _act_deriv(a, z, act):
    """d act / d a at pre-activation `a` with value `z = act(a)` (ReLU'(0) = 0)."""
    one = _c(a, 1.0)
    if act == SIGMOID:
        return z * (one - z)
    if act == TANH:
        return one - z * z
    if act == RELU:
        return one if a > 0.0 else _c(a, 0.0)
    if act == LEAKY_RELU:
        return one if a > 0.0 else _c(a, LEAKY_SLOPE)
    t = math.tanh(_softplus(a))  # MISH
    sig = one / (one + _exp(-a))
    return t + a * (one - t * t) * sig
