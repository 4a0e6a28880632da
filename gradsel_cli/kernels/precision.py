"""Precision: the constants' cast, bit-casts, and the exp / log polynomials in float64 and float32.

Every kernel is generic over float64 and float32 (Numba compiles one version
per dtype). Arrays are allocated with the inputs' dtype and every constant goes
through ``_c`` (a Python float literal would silently promote float32
arithmetic to float64), so a float32 run rounds every operation to float32.
``_exp``, ``_exp_small`` and ``_log1p_small`` pick their variant by the
argument's type at compile time: the float64 ones (int64 bit-casts, a 13-term
series) and float32 ones built the same way at float32 width (int32 bit-casts,
float32 constants, shorter series, float32 arithmetic throughout), each within
1 ulp of the correctly rounded result in its own precision and, unlike a libm
call, vectorisable. math.log, log1p, expm1 and tanh are libm's in the
argument's precision. Float64 results are bitwise what they were before the
kernels became generic.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from .policy import HELPER, INLINE


def _c(like, v):
    """`v` (a constant) in the precision of `like` (a float or an array); compiled only."""
    return v


@overload(_c, inline="always")
def _c_typed(like, v):
    dtype = like.dtype if isinstance(like, types.Array) else like
    if dtype == types.float64:
        return lambda like, v: v  # float64 kernels compile exactly as they did before
    cast = as_dtype(dtype).type
    return lambda like, v: cast(v)


def _by_precision(f64, f32):
    """One kernel helper of one float argument x: the plain function `f64` on float64, `f32` on float32
    (chosen at compile time), compiled with the kernels' flags (Numba's IR inlining of an overload
    trips its own scope checks; LLVM inlines the call anyway)."""

    def stub(x):
        raise TypeError(f"{f64.__name__} runs inside kernels only")

    @overload(stub, jit_options=HELPER)  # type: ignore[arg-type]  # numba types it as its private TypedDict
    def typed(x):
        return f32 if x == types.float32 else f64

    return stub


def _bitcast(src, dst, dst_ir):
    """An intrinsic that reads the IEEE-754 bits of a `src` value as a `dst` (a bit-cast, no conversion)."""

    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], dst_ir)

        return dst(src), codegen

    return cast


_bits = _bitcast(types.float64, types.int64, ir.IntType(64))  # a float64's bits as an int64
_from_bits = _bitcast(types.int64, types.float64, ir.DoubleType())  # the float64 of those bits
_bits32 = _bitcast(types.float32, types.int32, ir.IntType(32))
_from_bits32 = _bitcast(types.int32, types.float32, ir.FloatType())


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: x + _SHIFT rounds x to an integer held in the low bits
_SHIFT_BITS = 0x4338000000000000
_E2, _E3, _E4, _E5, _E6, _E7 = 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040
_E8, _E9, _E10, _E11, _E12, _E13 = 1 / 40320, 1 / 362880, 1 / 3628800, 1 / 39916800, 1 / 479001600, 1 / 6227020800


@numba.njit(**INLINE)
def _exp64(x):
    """exp(x) within 1 ulp of the correctly rounded result, in plain arithmetic so that loops of it vectorise.

    Without SVML, LLVM cannot vectorise a call to libm's exp, and the
    numerical gradient is mostly exponentials. x = n ln2 + r with |r| <= ln2/2
    (Cody-Waite), exp(r) by its degree-13 Taylor polynomial (truncation below
    1e-17), 2**n built from bits in two halves so that overflow gives inf and
    results below 2**-1022 round to subnormals or 0 as they should.
    """
    xc = min(max(x, -746.0), 710.0)
    kd = xc * _LOG2E + _SHIFT
    nf = kd - _SHIFT
    r = (xc - nf * _LN2_HI) - nf * _LN2_LO
    p = 1.0 + r * (
        1.0
        + r
        * (
            _E2
            + r
            * (
                _E3
                + r
                * (
                    _E4
                    + r
                    * (
                        _E5
                        + r
                        * (_E6 + r * (_E7 + r * (_E8 + r * (_E9 + r * (_E10 + r * (_E11 + r * (_E12 + r * _E13)))))))
                    )
                )
            )
        )
    )  # Horner, from the highest degree
    n = _bits(kd) - _SHIFT_BITS
    half = n >> 1
    out = p * _from_bits((half + 1023) << 52) * _from_bits((n - half + 1023) << 52)
    return x if x != x else out


_F = np.float32  # constants of the float32 variants: np.float32 globals compile as float32 constants
_LOG2E_F = _F(_LOG2E)
_LN2_HI_F = _F(0.693145751953125)  # ln 2 split for float32: n * _LN2_HI_F is exact for |n| < 2**8
_LN2_LO_F = _F(1.4286068203094172e-06)
_SHIFT_F = _F(12582912.0)  # 1.5 * 2**23
_SHIFT_BITS_F = np.int32(0x4B400000)
_E2_F, _E3_F, _E4_F, _E5_F, _E6_F, _E7_F = (_F(c) for c in (_E2, _E3, _E4, _E5, _E6, _E7))
_ONE_F, _I127, _I23 = _F(1.0), np.int32(127), np.int32(23)


@numba.njit(**INLINE)
def _exp32(x):
    """exp(x) of a float32 in float32 arithmetic, to within 1 ulp of the correctly rounded result.

    The float64 recipe of _exp64 at float32 width: Cody-Waite reduction with a
    float32 split of ln 2, the degree-7 Taylor polynomial (truncation below
    5e-9 relative for |r| <= ln2/2), 2**n from int32 bits in two halves.
    """
    xc = min(max(x, _F(-104.0)), _F(89.0))
    kd = xc * _LOG2E_F + _SHIFT_F
    nf = kd - _SHIFT_F
    r = (xc - nf * _LN2_HI_F) - nf * _LN2_LO_F
    p = _ONE_F + r * (_ONE_F + r * (_E2_F + r * (_E3_F + r * (_E4_F + r * (_E5_F + r * (_E6_F + r * _E7_F))))))
    n = _bits32(kd) - _SHIFT_BITS_F
    half = n >> 1
    out = p * _from_bits32((half + _I127) << _I23) * _from_bits32((n - half + _I127) << _I23)
    return x if x != x else out


SMALL = 1.0 / 256  # |x| bound below which the short polynomials below are exact to 1 ulp


@numba.njit(**INLINE)
def _exp_small64(x):
    """exp(x) for |x| <= 1/128: degree-6 Taylor, truncation below 4e-19 relative.

    The perturbed logits move by dz * W2[j, k], tiny for a small step, and
    this is where most of the numerical gradient's exponentials fall.
    """
    return 1.0 + x * (1.0 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x * (1 / 720))))))


@numba.njit(**INLINE)
def _log1p_small64(x):
    """log(1 + x) for |x| <= 1/128: degree-9 alternating series, truncation below 2e-20 relative."""
    return x * (
        1.0 - x * (1 / 2 - x * (1 / 3 - x * (1 / 4 - x * (1 / 5 - x * (1 / 6 - x * (1 / 7 - x * (1 / 8 - x / 9)))))))
    )


@numba.njit(**INLINE)
def _exp_small32(x):
    """exp(x) of a float32 for |x| <= 1/128: degree-4 Taylor in float32 (truncation below 3e-13)."""
    return _ONE_F + x * (_ONE_F + x * (_E2_F + x * (_E3_F + x * _E4_F)))


@numba.njit(**INLINE)
def _log1p_small32(x):
    """log(1 + x) of a float32 for |x| <= 1/128: degree-5 series in float32 (truncation below 6e-12)."""
    return x * (_ONE_F - x * (_F(1 / 2) - x * (_F(1 / 3) - x * (_F(1 / 4) - x * _F(1 / 5)))))


_exp = _by_precision(_exp64.py_func, _exp32.py_func)
_exp_small = _by_precision(_exp_small64.py_func, _exp_small32.py_func)
_log1p_small = _by_precision(_log1p_small64.py_func, _log1p_small32.py_func)
