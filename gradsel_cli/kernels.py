"""Every Numba kernel of gradsel, and nothing else (no I/O, no Rich, no Click).

The network is ``x (B, n_in) -> a1 = x W1 + b1 -> z1 = act(a1) * mask ->
a2 = z1 W2 + b2 -> mean softmax cross-entropy``; with batch norm the
activation takes the normalised u instead of a1. Kernels are private; the
checked public wrappers live in ``network.py``.

Determinism: a ``prange`` loop owns disjoint output elements and every sum is
done serially in a fixed order, so results are bitwise identical whatever the
thread count.

Precision: every kernel is generic over float64 and float32 (Numba compiles
one version per dtype). Arrays are allocated with the inputs' dtype and every
constant goes through ``_c`` (a Python float literal would silently promote
float32 arithmetic to float64), so a float32 run rounds every operation to
float32. ``_exp``, ``_exp_small`` and ``_log1p_small`` pick their variant by
the argument's type at compile time: the float64 ones (int64 bit-casts, a
13-term series) and float32 ones built the same way at float32 width (int32
bit-casts, float32 constants, shorter series, float32 arithmetic throughout),
each within 1 ulp of the correctly rounded result in its own precision and,
unlike a libm call, vectorisable. math.log, log1p, expm1 and tanh are libm's
in the argument's precision. Float64 results are bitwise what they were before
the kernels became generic.

Finite-difference arithmetic (``textbook``): the default differences the
per-sample losses of the affected samples, so nothing cancels and the only
error is the finite difference's own. With ``textbook`` each perturbed batch
loss L(w +- h) is accumulated as a number (the mean of every sample's loss)
and the two are subtracted, (L+ - L-) / 2h, as the textbook code does: its
cancellation error, about eps * L / h, is the textbook's.

Loss epsilon (``eps``): the cross-entropy is -log(p_y + eps), the textbook's
form, wherever a loss is evaluated (the loss value and every finite
difference); with eps = 0 it is the log-sum-exp form. Backpropagation always
differentiates -log p_y, as the textbook's backward pass does.

The thread policy lives here too, so that nothing else imports numba:
``set_threads`` / ``get_threads`` / ``max_threads``, and ``run_parallel``, through
which the wrappers call every parallel kernel. By default a call runs on one
thread unless its work is large, and then on the faster of one thread and all
of them, as measured on the last calls (on a busy machine waking threads can
cost far more than the work). ``kernels_cached`` says whether Numba has the
compiled kernels on disk; a cache that cannot be loaded is dropped and the
kernel compiled again (``drop_damaged_cache`` checks it before any work).
"""

import glob
import math
import os
import time

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

# The one decorator policy (STYLE.md): cached; parallel only where a prange
# exists. Of fastmath only "contract" (fused multiply-add: one rounding
# instead of two, deterministic on a machine; the polynomials below run ~1.4x
# faster); no reassociation, no finite-math assumptions.
_SERIAL = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
_PARALLEL = dict(_SERIAL, parallel=True)
_INLINE = dict(_SERIAL, inline="always")
# The few helpers that must round as NumPy does (the fused loop's SGD step and norms): no
# contraction. fastmath=False is said, not left out: Numba compiles a callee that leaves it
# unset with its caller's flags.
_EXACT = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)

# Activation and loss codes; the names are mapped in network.py.
SIGMOID, TANH, RELU, LEAKY_RELU, MISH = 0, 1, 2, 3, 4
CROSS_ENTROPY, MSE = 0, 1
LEAKY_SLOPE = 0.01


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

    @overload(stub, jit_options=dict(error_model="numpy", fastmath={"contract"}))
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


_bits = _bitcast(types.float64, types.int64, ir.IntType(64))       # a float64's bits as an int64
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


@numba.njit(**_INLINE)
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
    p = 1.0 + r * (1.0 + r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * (_E6 + r * (_E7 + r * (_E8 + r * (
        _E9 + r * (_E10 + r * (_E11 + r * (_E12 + r * _E13))))))))))))  # Horner, from the highest degree
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


@numba.njit(**_INLINE)
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


@numba.njit(**_INLINE)
def _exp_small64(x):
    """exp(x) for |x| <= 1/128: degree-6 Taylor, truncation below 4e-19 relative.

    The perturbed logits move by dz * W2[j, k], tiny for a small step, and
    this is where most of the numerical gradient's exponentials fall.
    """
    return 1.0 + x * (1.0 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x * (1 / 720))))))


@numba.njit(**_INLINE)
def _log1p_small64(x):
    """log(1 + x) for |x| <= 1/128: degree-9 alternating series, truncation below 2e-20 relative."""
    return x * (1.0 - x * (1 / 2 - x * (1 / 3 - x * (1 / 4 - x * (1 / 5 - x * (1 / 6 - x * (1 / 7 - x * (1 / 8 - x / 9))))))))


@numba.njit(**_INLINE)
def _exp_small32(x):
    """exp(x) of a float32 for |x| <= 1/128: degree-4 Taylor in float32 (truncation below 3e-13)."""
    return _ONE_F + x * (_ONE_F + x * (_E2_F + x * (_E3_F + x * _E4_F)))


@numba.njit(**_INLINE)
def _log1p_small32(x):
    """log(1 + x) of a float32 for |x| <= 1/128: degree-5 series in float32 (truncation below 6e-12)."""
    return x * (_ONE_F - x * (_F(1 / 2) - x * (_F(1 / 3) - x * (_F(1 / 4) - x * _F(1 / 5)))))


_exp = _by_precision(_exp64.py_func, _exp32.py_func)
_exp_small = _by_precision(_exp_small64.py_func, _exp_small32.py_func)
_log1p_small = _by_precision(_log1p_small64.py_func, _log1p_small32.py_func)


@numba.njit(**_INLINE)
def _softplus(a):
    return math.log1p(_exp(-abs(a))) + max(a, _c(a, 0.0))


@numba.njit(**_INLINE)
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


@numba.njit(**_INLINE)
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


@numba.njit(**_SERIAL)
def _nonzero(x):
    """Non-zero entries of each row of x (B, n_in), plus a bias entry (index n_in, value 1).

    Returns idx (nnz,) int64, val (nnz,) of x's dtype, ptr (B + 1,) int64 (CSR rows),
    in one pass over x (room for every pixel is allocated; the used part is returned).
    """
    B, n_in = x.shape
    idx = np.empty(B * (n_in + 1), np.int64)
    val = np.empty(B * (n_in + 1), x.dtype)
    ptr = np.empty(B + 1, np.int64)
    t = 0
    for b in range(B):
        ptr[b] = t
        for i in range(n_in):
            v = x[b, i]
            idx[t] = i
            val[t] = v
            t += 1 if v != 0.0 else 0  # keep it only when lit (no branch)
        idx[t] = n_in
        val[t] = 1.0
        t += 1
    ptr[B] = t
    return idx[:t], val[:t], ptr


@numba.njit(**_INLINE)
def _lit_dot(idx, val, lo, hi, W1, out):
    """out[j] += val[t] * W1[idx[t], j] for t = lo, ..., hi - 1 in this order (a sample's lit pixels).

    Four pixels per pass over out, so that each out[j] is loaded and stored
    once per four rows of W1; the sum runs in the same order as one at a time.
    """
    H = W1.shape[1]
    t = lo
    while t + 4 <= hi:
        v0, v1, v2, v3 = val[t], val[t + 1], val[t + 2], val[t + 3]
        r0, r1, r2, r3 = idx[t], idx[t + 1], idx[t + 2], idx[t + 3]
        for j in range(H):
            s = out[j]
            s += v0 * W1[r0, j]
            s += v1 * W1[r1, j]
            s += v2 * W1[r2, j]
            s += v3 * W1[r3, j]
            out[j] = s
        t += 4
    while t < hi:
        v = val[t]
        r = idx[t]
        for j in range(H):
            out[j] += v * W1[r, j]
        t += 1


# Batch normalisation of the hidden pre-activations: u = gamma (a1 - mu) / sigma + beta,
# sigma = sqrt(var + BN_EPS), mu and var over the batch; z1 = act(u) * mask. The kernels take
# gamma, beta (H,), or None for both without batch norm, a case Numba compiles apart: its
# `gamma is None` branches are decided at compile time and the batch-norm code left out.
BN_EPS = 1e-6


@numba.njit(**_SERIAL)
def _batch_norm(a1, gamma, beta):
    """ahat = (a1 - mu) / sigma and u = gamma ahat + beta (B, H), and sigma (H,); the batch mean and
    variance of each column of a1 two-pass, serial."""
    B, H = a1.shape
    mu = np.zeros(H, a1.dtype)
    var = np.zeros(H, a1.dtype)
    for b in range(B):
        for j in range(H):
            mu[j] += a1[b, j]
    mu /= _c(a1, B)
    for b in range(B):
        for j in range(H):
            d = a1[b, j] - mu[j]
            var[j] += d * d
    var /= _c(a1, B)
    sigma = np.sqrt(var + _c(var, BN_EPS))
    ahat = np.empty((B, H), a1.dtype)
    u = np.empty((B, H), a1.dtype)
    for b in range(B):
        for j in range(H):
            ahat[b, j] = (a1[b, j] - mu[j]) / sigma[j]
            u[b, j] = gamma[j] * ahat[b, j] + beta[j]
    return ahat, u, sigma


@numba.njit(**_INLINE)
def _sample_output(pre, W2, b2, act, maskrow, z1, a2):
    """The rest of one sample's forward pass from what its activation takes, pre (H,):
    z1 = act(pre) * mask (H,), a2 = z1 W2 + b2 (K,)."""
    H = W2.shape[0]
    K = W2.shape[1]
    if act == SIGMOID:  # the common case apart, so that it vectorises
        for j in range(H):
            z1[j] = _c(pre, 1.0) / (_c(pre, 1.0) + _exp(-pre[j])) * maskrow[j]
    else:
        for j in range(H):
            z1[j] = _act(pre[j], act) * maskrow[j]
    for k in range(K):
        a2[k] = 0.0
    for j in range(H):
        zj = z1[j]
        for k in range(K):
            a2[k] += zj * W2[j, k]
    for k in range(K):
        a2[k] += b2[k]


@numba.njit(**_SERIAL)
def _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, gamma, beta):
    """a1, pre, z1 (B, H), a2 (B, K), ahat (B, H) and sigma (H,) from the lit pixels of x (_nonzero(x)).

    pre is what the activation takes: a1, or with batch norm the normalised u
    (ahat and sigma are then those of _batch_norm; without, empty). z1 already
    carries the (dropout) mask. Each a1[b, j] sums v W1[i, j] over the lit
    pixels i ascending from +0.0, then adds b1[j], bitwise as a pass over
    every pixel: adding a zero term (v w = +-0.0) to a sum s gives s back
    unless s is itself a zero, when only the sign of that zero can change; the
    sums here never see such terms (a pixel of -0.0 is skipped like +0.0).
    """
    B = ptr.shape[0] - 1
    H = W1.shape[1]
    K = W2.shape[1]
    dt = W1.dtype
    a1 = np.zeros((B, H), dt)
    z1 = np.empty((B, H), dt)
    a2 = np.empty((B, K), dt)
    for b in range(B):
        _lit_dot(idx, val, ptr[b], ptr[b + 1] - 1, W1, a1[b])  # the row's last entry is the bias
        for j in range(H):
            a1[b, j] += b1[j]
        if gamma is None:  # the rest of the sample's pass at once, while its a1 is at hand
            _sample_output(a1[b], W2, b2, act, mask[b], z1[b], a2[b])
    if gamma is None:  # ahat and sigma empty (of the batch-norm version's types)
        return a1, a1, z1, a2, np.empty((0, H), dt), np.empty(0, dt)
    ahat, u, sigma = _batch_norm(a1, gamma, beta)
    for b in range(B):
        _sample_output(u[b], W2, b2, act, mask[b], z1[b], a2[b])
    return a1, u, z1, a2, ahat, sigma


@numba.njit(**_SERIAL)
def _forward(x, W1, b1, W2, b2, act, mask, gamma, beta):
    """_forward_lit of x (B, n_in).

    Serial: a mini-batch is too small to repay waking threads (predict,
    over thousands of images, is the parallel one).
    """
    idx, val, ptr = _nonzero(x)
    return _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, gamma, beta)


@numba.njit(**_SERIAL)
def _softmax_parts(a2):
    """Per-sample shift m = max_k a2, e = exp(a2 - m) (B, K) and S = sum_k e (B,)."""
    B, K = a2.shape
    m = np.empty(B, a2.dtype)
    e = np.empty((B, K), a2.dtype)
    S = np.empty(B, a2.dtype)
    for b in range(B):
        mb = a2[b, 0]
        for k in range(1, K):
            mb = max(mb, a2[b, k])
        s = _c(a2, 0.0)
        for k in range(K):
            e[b, k] = _exp(a2[b, k] - mb)
            s += e[b, k]
        m[b] = mb
        S[b] = s
    return m, e, S


@numba.njit(**_INLINE)
def _cross_entropy(S, m, ay, ey, dy, eps):
    """One sample's cross-entropy when its logit of the true class, ay, moves by dy: from S = sum_k
    exp(a_k - m) (of the moved logits), the shift m and ey = exp(ay - m) (unmoved).

    eps = 0: the log-sum-exp form log S + m - a_y; eps > 0: the textbook's -log(p_y + eps).
    """
    if eps == 0.0:
        return math.log(S) + m - (ay + dy)
    return -math.log(ey * _exp(dy) / S + eps)


@numba.njit(**_INLINE)
def _ce_change(Sp, Sm, dy, dym, ey, eps, small):
    """One sample's cross-entropy with its logits moved one way (+) minus with them moved another (-):
    Sp, Sm = sum_k exp(a_k - m) of the two moved logits, dy = the move of the true class's logit
    (+) minus its move (-), dym its move (-), ey = exp(a_y - m) unmoved.

    log(Sp / Sm) - dy: m cancels, and Sp - Sm is exact (Sterbenz), so log1p of
    it loses nothing (`small`: by the short series). With eps > 0 the change
    of -log(p_y + eps): the new p_y is p exp(-d), p = ey exp(dym) / Sm the
    old one, so it is -log1p(p expm1(-d) / (p + eps)) (_with_eps); nothing
    cancels either.
    """
    r = (Sp - Sm) / Sm
    d = (_log1p_small(r) if small else math.log1p(r)) - dy
    return d if eps == 0.0 else _with_eps(d, ey * _exp(dym) / Sm, eps)


@numba.njit(**_INLINE)
def _with_eps(d, p, eps):
    """The change of -log(p_y + eps) from the change d of -log p_y, p the probability before."""
    return -math.log1p(p * math.expm1(-d) / (p + eps))


@numba.njit(**_SERIAL)
def _mse_sample(e, b, y_b, S_b):
    """1/2 sum_k (softmax_k - onehot_k)^2 of sample b, from e = exp(a2 - m) and S = sum e."""
    total = _c(e, 0.0)
    for k in range(e.shape[1]):
        d = e[b, k] / S_b - (_c(e, 1.0) if k == y_b else _c(e, 0.0))
        total += d * d
    return _c(e, 0.5) * total


@numba.njit(**_SERIAL)
def _sample_losses(a2, m, e, S, y, loss, eps):
    """Each sample's loss (B,): cross-entropy (see _cross_entropy) or MSE of the softmax."""
    B = a2.shape[0]
    out = np.empty(B, a2.dtype)
    for b in range(B):
        if loss == CROSS_ENTROPY:
            out[b] = _cross_entropy(S[b], m[b], a2[b, y[b]], e[b, y[b]], _c(a2, 0.0), eps)
        else:
            out[b] = _mse_sample(e, b, y[b], S[b])
    return out


@numba.njit(**_SERIAL)
def _mean_loss(a2, y, loss, eps):
    """Mean loss: softmax cross-entropy (log-sum-exp form, or -log(p + eps)) or MSE of the softmax;
    summed serially."""
    m, e, S = _softmax_parts(a2)
    losses = _sample_losses(a2, m, e, S, y, loss, eps)
    total = _c(a2, 0.0)
    for b in range(a2.shape[0]):
        total += losses[b]
    return total / _c(a2, a2.shape[0])


@numba.njit(**_SERIAL)
def _loss(x, y, W1, b1, W2, b2, act, mask, loss, eps, gamma, beta):
    """Mean loss of x (B, n_in), y (B,); through the batch norm unless gamma is None."""
    a2 = _forward(x, W1, b1, W2, b2, act, mask, gamma, beta)[3]
    return _mean_loss(a2, y, loss, eps)


@numba.njit(**_PARALLEL)
def _predict(x, W1, b1, W2, b2, act):
    """Predicted class of every row of x (N, n_in), no mask (test time)."""
    N = x.shape[0]
    H = W1.shape[1]
    K = W2.shape[1]
    out = np.empty(N, np.int64)
    n_chunks = (N + 255) // 256
    ones = np.ones((256, H), W1.dtype)
    for c in numba.prange(n_chunks):
        lo = c * 256
        a2 = _forward(x[lo:min(N, lo + 256)], W1, b1, W2, b2, act, ones, None, None)[3]
        for n in range(a2.shape[0]):
            best = 0
            for k in range(1, K):
                if a2[n, k] > a2[n, best]:
                    best = k
            out[lo + n] = best
    return out


@numba.njit(**_SERIAL)
def _loss_grad_logits(e, S, y, loss):
    """d mean loss / d a2 (B, K) from the softmax parts e = exp(a2 - max), S = row sums of e."""
    B, K = e.shape
    da2 = np.empty((B, K), e.dtype)
    nB = _c(e, B)
    one, zero = _c(e, 1.0), _c(e, 0.0)
    for b in range(B):
        if loss == CROSS_ENTROPY:  # (softmax - onehot) / B
            for k in range(K):
                da2[b, k] = e[b, k] / S[b] / nB
            da2[b, y[b]] -= one / nB
        else:  # MSE: p_k (g_k - sum_m p_m g_m) / B with g = p - onehot
            dot = zero
            for k in range(K):
                p = e[b, k] / S[b]
                dot += p * (p - (one if k == y[b] else zero))
            for k in range(K):
                p = e[b, k] / S[b]
                da2[b, k] = p * ((p - (one if k == y[b] else zero)) - dot) / nB
    return da2


@numba.njit(**_SERIAL)
def _backprop_output(z1, da2, W2, pre, act, mask):
    """Through the output layer and the activation: gW2, gb2 and d loss / d pre, where `pre` (B, H)
    is what the activation was applied to (a1, or the batch-normalised u) and z1 its masked output."""
    B, H = z1.shape
    K = W2.shape[1]
    gW2 = np.zeros((H, K), z1.dtype)
    gb2 = np.zeros(K, z1.dtype)
    dpre = np.empty((B, H), z1.dtype)
    for b in range(B):
        for k in range(K):
            gb2[k] += da2[b, k]
        for j in range(H):
            zj = z1[b, j]
            s = _c(z1, 0.0)
            for k in range(K):
                gW2[j, k] += zj * da2[b, k]
                s += da2[b, k] * W2[j, k]
            dpre[b, j] = s
        if act == SIGMOID:  # the common case apart, so that it vectorises
            one = _c(pre, 1.0)
            for j in range(H):
                z = one / (one + _exp(-pre[b, j]))
                dpre[b, j] = dpre[b, j] * (z * (one - z)) * mask[b, j]
        else:
            for j in range(H):
                dpre[b, j] = dpre[b, j] * _act_deriv(pre[b, j], _act(pre[b, j], act), act) * mask[b, j]
    return gW2, gb2, dpre


@numba.njit(**_SERIAL)
def _analytic(x, y, W1, b1, W2, b2, act, mask, loss, eps, gamma, beta):
    """Loss (with eps) and the exact gradient of the loss without eps, by backpropagation (through
    the batch norm unless gamma is None): value, and the gradient as one flat vector [gW1 | gb1 |
    gW2 | gb2], with batch norm then [ggamma | gbeta] (the layout of Params)."""
    n_in = x.shape[1]
    H = W1.shape[1]
    K = W2.shape[1]
    grad = np.zeros(n_in * H + H + H * K + K + (0 if gamma is None else 2 * H), W1.dtype)
    value, _, _ = _analytic_into(x, y, W1, b1, W2, b2, act, mask, loss, eps, gamma, beta, grad)
    return value, grad


@numba.njit(**_SERIAL)
def _analytic_into(x, y, W1, b1, W2, b2, act, mask, loss, eps, gamma, beta, grad):
    """_analytic's value, its gradient added into `grad` (flat, zero where it is written: the rows of
    W1 of the lit pixels, b1, and the batch-norm part; W2 and b2 are assigned), and the lit pixels
    idx, ptr of _nonzero(x) (the rows of W1 written). x W1 and the gradient of W1 take only the lit
    pixels: a row of W1 per pixel, contiguous in H."""
    idx, val, ptr = _nonzero(x)
    return _analytic_lit(idx, val, ptr, y, W1, b1, W2, b2, act, mask, loss, eps, gamma, beta, grad)


@numba.njit(**_SERIAL)
def _analytic_lit(idx, val, ptr, y, W1, b1, W2, b2, act, mask, loss, eps, gamma, beta, grad):
    """_analytic_into of the batch given by its lit pixels idx, val, ptr (as _nonzero gives them)."""
    B = ptr.shape[0] - 1
    n_in, H = W1.shape
    K = W2.shape[1]
    a1, pre, z1, a2, ahat, sigma = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, gamma, beta)
    m, e, S = _softmax_parts(a2)
    value = _mean_loss(a2, y, loss, eps)
    da2 = _loss_grad_logits(e, S, y, loss)
    gW2, gb2, da1 = _backprop_output(z1, da2, W2, pre, act, mask)
    row = n_in * H + H
    if gamma is not None:  # da1 is d loss / d u so far: back through the normalisation
        nB = _c(gamma, B)
        ggamma = grad[row + H * K + K:row + H * K + K + H]
        gbeta = grad[row + H * K + K + H:]
        sum_dh = np.zeros(H, W1.dtype)    # sum_b d loss / d ahat
        sum_dhh = np.zeros(H, W1.dtype)   # sum_b d loss / d ahat * ahat
        for b in range(B):
            for j in range(H):
                ggamma[j] += da1[b, j] * ahat[b, j]
                gbeta[j] += da1[b, j]
                dh = da1[b, j] * gamma[j]
                sum_dh[j] += dh
                sum_dhh[j] += dh * ahat[b, j]
        for b in range(B):
            for j in range(H):
                dh = da1[b, j] * gamma[j]
                da1[b, j] = (dh - sum_dh[j] / nB - ahat[b, j] * sum_dhh[j] / nB) / sigma[j]
    for b in range(B):
        d = da1[b]
        for t in range(ptr[b], ptr[b + 1]):  # lit pixels, then the bias entry (pixel n_in: gb1)
            v = val[t]
            g = grad[idx[t] * H:idx[t] * H + H]  # a slice, not computed indices: it vectorises
            for j in range(H):
                g[j] += v * d[j]
    for j in range(H):
        for k in range(K):
            grad[row + j * K + k] = gW2[j, k]
    for k in range(K):
        grad[row + H * K + k] = gb2[k]
    return value, idx, ptr


@numba.njit(**_INLINE)
def _hidden_shift(abj, zbj, mbj, step, val, lo, n, act, small, out):
    """out[t] = change of z1[b, j] when a1[b, j] moves by step * val[lo + t], t < n.

    For the sigmoid, exp(-(a + s)) = exp(-a) exp(-s), the second factor small
    when `small` (step * max pixel <= SMALL): a loop that vectorises.
    """
    if act == SIGMOID and small:
        E = _exp(-abj)
        for t in range(n):
            out[t] = mbj / (_c(abj, 1.0) + E * _exp_small(-step * val[lo + t])) - zbj
    else:
        for t in range(n):
            out[t] = _act(abj + step * val[lo + t], act) * mbj - zbj


@numba.njit(**_SERIAL)
def _mse_shifted(e, b, y_b, w, dz):
    """MSE of sample b when its logits move by dz * w[k] (a hidden value moved by dz)."""
    K = e.shape[1]
    s = _c(e, 0.0)
    for k in range(K):
        s += e[b, k] * _exp(dz * w[k])
    total = _c(e, 0.0)
    for k in range(K):
        d = e[b, k] * _exp(dz * w[k]) / s - (_c(e, 1.0) if k == y_b else _c(e, 0.0))
        total += d * d
    return _c(e, 0.5) * total


@numba.njit(**_SERIAL)
def _mse_logit_shift(e, b, y_b, k_moved, d):
    """MSE of sample b when only its logit k_moved moves by d."""
    K = e.shape[1]
    s = _c(e, 0.0)
    for k in range(K):
        s += e[b, k] * _exp(d) if k == k_moved else e[b, k]
    total = _c(e, 0.0)
    for k in range(K):
        ek = e[b, k] * _exp(d) if k == k_moved else e[b, k]
        diff = ek / s - (_c(e, 1.0) if k == y_b else _c(e, 0.0))
        total += diff * diff
    return _c(e, 0.5) * total


@numba.njit(**_INLINE)
def _max_abs(v, n):
    m = _c(v, 0.0)
    for t in range(n):
        m = max(m, abs(v[t]))
    return m


@numba.njit(**_INLINE)
def _fd_scale(B, step, central):
    """1 / (B * 2h) (central) or 1 / (B * h) (forward): summed loss differences to a gradient."""
    return _c(step, 1.0) / (_c(step, B) * (_c(step, 2.0) * step if central else step))


@numba.njit(**_INLINE)
def _textbook_difference(Lp, Lm, B, step, central):
    """(L+ - L-) / 2h (central) or (L+ - L) / h (forward) of two summed batch losses, each first made
    a mean: the two numbers subtracted, as the textbook does."""
    nB = _c(step, B)
    return (Lp / nB - Lm / nB) / (_c(step, 2.0) * step if central else step)


@numba.njit(**_PARALLEL)
def _numeric_output_layer(z1, a2, m, e, y, step, central, loss, textbook, eps):
    """Finite differences of W2 (H, K) and b2 (K,): perturbing W2[j, k] moves only logit
    a2[b, k], by step * z1[b, j] (b2[k]: by step). Returns gW2, gb2."""
    B, H = z1.shape
    K = e.shape[1]
    scale = _fd_scale(B, step, central)
    zero = _c(step, 0.0)
    gW2 = np.empty((H, K), z1.dtype)
    gb2 = np.empty(K, z1.dtype)
    for j in numba.prange(H + 1):  # row H stands for b2 (a hidden value of 1)
        for k in range(K):
            d = zero   # exact: summed loss differences
            Lp = zero  # textbook: summed perturbed losses
            Lm = zero
            for b in range(B):
                zbj = z1[b, j] if j < H else _c(step, 1.0)
                dp = step * zbj
                dm = -dp if central else zero
                if loss == MSE:
                    lp = _mse_logit_shift(e, b, y[b], k, dp)
                    lm = _mse_logit_shift(e, b, y[b], k, dm)
                    d += lp - lm
                    Lp += lp
                    Lm += lm
                    continue
                sp = zero
                sm = zero
                for kk in range(K):
                    if kk == k:
                        sp += e[b, kk] * _exp(dp)
                        sm += e[b, kk] * _exp(dm)
                    else:
                        sp += e[b, kk]
                        sm += e[b, kk]
                yb = y[b]
                dyp = dp if k == yb else zero
                dym = dm if k == yb else zero
                if textbook:
                    Lp += _cross_entropy(sp, m[b], a2[b, yb], e[b, yb], dyp, eps)
                    Lm += _cross_entropy(sm, m[b], a2[b, yb], e[b, yb], dym, eps)
                else:
                    d += _ce_change(sp, sm, (dp - dm) if k == yb else zero, dym, e[b, yb], eps, False)
            g = _textbook_difference(Lp, Lm, B, step, central) if textbook else d * scale
            if j < H:
                gW2[j, k] = g
            else:
                gb2[k] = g
    return gW2, gb2


@numba.njit(**_INLINE)
def _ce_differences(e, m, a2, b, w2j, y_b, wmax, dzp, dzm, n, Sp, Sm, textbook, eps, diff, lp, lm):
    """Cross-entropy of sample b with hidden value j moved by dzp[t] and by dzm[t], t < n (w2j = W2[j]
    (K,), wmax = max |w2j|): exact, their difference diff[t] (with eps: of -log(p + eps)); textbook,
    the two losses themselves, lp[t] and lm[t]."""
    K = w2j.shape[0]
    small = max(_max_abs(dzp, n), _max_abs(dzm, n)) * wmax <= SMALL
    for t in range(n):
        Sp[t] = 0.0
        Sm[t] = 0.0
    for k in range(K):
        w = w2j[k]
        ek = e[b, k]
        if small:
            for t in range(n):
                Sp[t] += ek * _exp_small(dzp[t] * w)
                Sm[t] += ek * _exp_small(dzm[t] * w)
        else:
            for t in range(n):
                Sp[t] += ek * _exp(dzp[t] * w)
                Sm[t] += ek * _exp(dzm[t] * w)
    wy = w2j[y_b]
    ey = e[b, y_b]
    if textbook:  # each loss as a number
        for t in range(n):
            lp[t] = _cross_entropy(Sp[t], m[b], a2[b, y_b], ey, dzp[t] * wy, eps)
            lm[t] = _cross_entropy(Sm[t], m[b], a2[b, y_b], ey, dzm[t] * wy, eps)
    elif small:  # a loop of its own, and eps after it, so that it vectorises
        for t in range(n):
            diff[t] = _ce_change(Sp[t], Sm[t], (dzp[t] - dzm[t]) * wy, dzm[t] * wy, ey, _c(ey, 0.0), True)
        if eps != 0.0:
            for t in range(n):
                diff[t] = _with_eps(diff[t], ey * _exp(dzm[t] * wy) / Sm[t], eps)
    else:
        for t in range(n):
            diff[t] = _ce_change(Sp[t], Sm[t], (dzp[t] - dzm[t]) * wy, dzm[t] * wy, ey, eps, False)


@numba.njit(**_SERIAL)
def _same_sample(idx, val, ptr, y, mask, b, c):
    """Whether samples b and c have the same lit pixels and values, label and mask row."""
    n = ptr[b + 1] - ptr[b]
    if n != ptr[c + 1] - ptr[c] or y[b] != y[c]:
        return False
    for t in range(n):
        if idx[ptr[b] + t] != idx[ptr[c] + t] or val[ptr[b] + t] != val[ptr[c] + t]:
            return False
    for j in range(mask.shape[1]):
        if mask[b, j] != mask[c, j]:
            return False
    return True


@numba.njit(**_SERIAL)
def _distinct(idx, val, ptr, y, mask):
    """What the numeric gradient of W1 can share, from the rows of _nonzero(x).

    first[b]: the first sample identical to b (same pixels, label and mask
    row; a batch drawn with replacement repeats samples), b itself if none.
    For each b that is its own first, its distinct values (pixels and the bias
    entry's 1) uval[uptr[b]:uptr[b + 1]], ascending (the rows of repeats are
    empty); for every entry t of the rows, which[t] is its value's place in the
    list of its first sample. A perturbed loss depends on the pixel only
    through its value, so one evaluation per (sample, distinct value) serves
    every pixel with that value, in every copy of the sample.
    """
    B = ptr.shape[0] - 1
    first = np.arange(B)
    for b in range(B):
        for c in range(b):
            if first[c] == c and _same_sample(idx, val, ptr, y, mask, b, c):
                first[b] = c
                break
    uval = np.empty(val.shape[0], val.dtype)
    uptr = np.empty(B + 1, np.int64)
    which = np.empty(val.shape[0], np.int64)
    u = 0
    for b in range(B):
        uptr[b] = u
        lo = ptr[b]
        n = ptr[b + 1] - lo
        if first[b] != b:
            for t in range(n):
                which[lo + t] = which[ptr[first[b]] + t]
            continue
        s = np.sort(val[lo:lo + n])
        nu = 0
        for t in range(n):
            if t == 0 or s[t] != s[t - 1]:
                uval[u + nu] = s[t]
                nu += 1
        for t in range(n):
            v = val[lo + t]
            which[lo + t] = np.searchsorted(uval[u:u + nu], v) if v == v else nu - 1  # NaN: sorted last
        u += nu
    uptr[B] = u
    return first, uval[:u], uptr, which


@numba.njit(**_PARALLEL)
def _numeric(x, y, W1, b1, W2, b2, act, mask, step, central, loss, textbook, eps):
    """Finite-difference gradient, each perturbed loss re-evaluated incrementally.

    Perturbing W1[i, j] (or b1[j], as a pixel of value 1) moves only a1[b, j]
    of the samples with x[b, i] != 0, hence z1[b, j] and their K logits;
    perturbing W2[j, k] (or b2[k]) moves only logit a2[b, k]. The perturbed
    per-sample loss log S' + m - a2'[y] is recomputed from the unperturbed
    forward pass (S' = sum_k exp(a2'[k] - m)); the unaffected samples
    contribute exactly nothing to L(w+h) - L(w-h). Every exponential is
    evaluated; for small arguments by a polynomial exact to 1 ulp.
    The MSE loss takes a plain path (every perturbed probability evaluated).
    A perturbed loss is evaluated once per (sample, distinct pixel value) and
    not at all for a repeated sample (_distinct): the pixels and copies that
    share it take the same number.

    `textbook`: each perturbed batch loss is instead summed as a number over
    all samples (the unaffected ones with their unperturbed loss, in sample
    order; every copy of a repeated sample with its own term) and the two sums
    are subtracted (see the module docstring).
    Returns gW1, gb1, gW2, gb2.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    K = W2.shape[1]
    idx, val, ptr = _nonzero(x)
    a1, _, z1, a2, _, _ = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)
    m, e, S = _softmax_parts(a2)
    base = _sample_losses(a2, m, e, S, y, loss, eps)  # textbook: the unaffected samples' losses
    first, uval, uptr, which = _distinct(idx, val, ptr, y, mask)
    max_row = 0
    small_x = np.empty(B, np.bool_)  # the pixel shifts of sample b are small
    for b in range(B):
        max_row = max(max_row, uptr[b + 1] - uptr[b])
        small_x[b] = step * _max_abs(val[ptr[b]:], ptr[b + 1] - ptr[b]) <= SMALL
    scale = _fd_scale(B, step, central)
    dt = W1.dtype

    gW1 = np.empty((n_in, H), dt)
    gb1 = np.empty(H, dt)
    for j in numba.prange(H):
        col = np.zeros(n_in + 1, dt)  # exact: summed loss differences for W1[:, j] and b1[j]
        n_tb = n_in + 1 if textbook else 0
        Lp = np.zeros(n_tb, dt)       # textbook: summed perturbed losses
        Lm = np.zeros(n_tb, dt)
        last = np.full(n_tb, -1, np.int64)  # textbook: the last sample that moved each entry
        dzp = np.empty(max_row, dt)
        dzm = np.zeros(max_row, dt)   # stays 0 for the forward scheme
        Sp = np.empty(max_row, dt)
        Sm = np.empty(max_row, dt)
        # per (sample, distinct value): exact, loss(+) - loss(-); textbook, loss(+) and loss(-)
        diffs = np.empty(0 if textbook else uval.shape[0], dt)
        lps = np.empty(uval.shape[0] if textbook else 0, dt)
        lms = np.empty(uval.shape[0] if textbook else 0, dt)
        wmax = _max_abs(W2[j], K)
        for b in range(B):
            mbj = mask[b, j]
            lit = mbj != 0.0  # a dropped unit: perturbing its inputs changes nothing
            lo = uptr[first[b]]
            if lit and first[b] == b:  # else a repeat: its losses are those of its first copy
                n = uptr[b + 1] - lo
                diff = diffs[lo:lo + n]  # empty under textbook, as lp and lm otherwise
                lp = lps[lo:lo + n]
                lm = lms[lo:lo + n]
                _hidden_shift(a1[b, j], z1[b, j], mbj, step, uval, lo, n, act, small_x[b], dzp)
                if central:
                    _hidden_shift(a1[b, j], z1[b, j], mbj, -step, uval, lo, n, act, small_x[b], dzm)
                if loss == MSE:
                    for t in range(n):
                        lmt = _mse_shifted(e, b, y[b], W2[j], dzm[t]) if central else base[b]
                        lpt = _mse_shifted(e, b, y[b], W2[j], dzp[t])
                        if textbook:
                            lp[t] = lpt
                            lm[t] = lmt
                        else:
                            diff[t] = lpt - lmt
                else:
                    _ce_differences(e, m, a2, b, W2[j], y[b], wmax, dzp, dzm, n, Sp, Sm, textbook, eps,
                                    diff, lp, lm)
            if textbook:  # every sample's loss enters both sums, each copy of a repeat with its own term
                if lit:
                    for t in range(ptr[b], ptr[b + 1]):
                        i = idx[t]
                        Lp[i] += lps[lo + which[t]]
                        Lm[i] += lms[lo + which[t]]
                        last[i] = b
                for i in range(n_in + 1):
                    if last[i] != b:
                        Lp[i] += base[b]
                        Lm[i] += base[b]
            elif lit:
                for t in range(ptr[b], ptr[b + 1]):
                    col[idx[t]] += diffs[lo + which[t]]
        for i in range(n_in + 1):
            g = _textbook_difference(Lp[i], Lm[i], B, step, central) if textbook else col[i] * scale
            if i < n_in:
                gW1[i, j] = g
            else:
                gb1[j] = g

    gW2, gb2 = _numeric_output_layer(z1, a2, m, e, y, step, central, loss, textbook, eps)
    return gW1, gb1, gW2, gb2


# The batch norm couples the samples of a batch: perturbing one weight moves every sample's
# normalised unit, so its finite differences have a kernel of their own.


@numba.njit(**_SERIAL)
def _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, textbook, eps):
    """Sum over the batch of (per-sample loss with unit j's pre-activations u_new) - (unperturbed loss);
    `textbook`: the sum of the perturbed per-sample losses themselves."""
    total = _c(z1, 0.0)
    for b in range(u_new.shape[0]):
        dz = _act(u_new[b], act) * mask[b, j] - z1[b, j]
        if loss == CROSS_ENTROPY:
            s = _c(z1, 0.0)
            for k in range(W2.shape[1]):
                s += e[b, k] * _exp(dz * W2[j, k])
            if textbook:
                total += _cross_entropy(s, m[b], a2[b, y[b]], e[b, y[b]], dz * W2[j, y[b]], eps)
            else:
                total += _ce_change(s, S[b], dz * W2[j, y[b]], _c(z1, 0.0), e[b, y[b]], eps, False)
        elif textbook:
            total += _mse_shifted(e, b, y[b], W2[j], dz)
        else:
            total += _mse_shifted(e, b, y[b], W2[j], dz) - _mse_sample(e, b, y[b], S[b])
    return total


@numba.njit(**_SERIAL)
def _normalise(a_col, g, bt, out):
    """out = g (a_col - mean) / sqrt(var + BN_EPS) + bt, the batch statistics of a_col recomputed."""
    B = a_col.shape[0]
    mu = _c(a_col, 0.0)
    for b in range(B):
        mu += a_col[b]
    mu /= _c(a_col, B)
    var = _c(a_col, 0.0)
    for b in range(B):
        var += (a_col[b] - mu) * (a_col[b] - mu)
    sigma = math.sqrt(var / _c(a_col, B) + _c(a_col, BN_EPS))
    for b in range(B):
        out[b] = g * (a_col[b] - mu) / sigma + bt


@numba.njit(**_PARALLEL)
def _numeric_bn(x, y, W1, b1, W2, b2, gamma, beta, act, mask, step, central, loss, textbook, eps):
    """Finite differences through the batch norm: gW1, gb1, gW2, gb2, ggamma, gbeta.

    Perturbing W1[i, j] moves a1[b, j] of the samples with x[b, i] != 0, and
    with it the batch mean and variance of unit j: unit j of every sample is
    renormalised and every sample's loss re-evaluated. `textbook`: the
    perturbed batch losses are summed as numbers and subtracted.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    dt = W1.dtype
    a1, u, z1, a2, ahat, sigma = _forward(x, W1, b1, W2, b2, act, mask, gamma, beta)
    m, e, S = _softmax_parts(a2)
    base = _sample_losses(a2, m, e, S, y, loss, eps)
    base_sum = _c(step, 0.0)  # textbook, forward scheme: the unperturbed batch loss, summed
    for b in range(B):
        base_sum += base[b]
    used = np.zeros(n_in + 1, np.bool_)  # pixels non-zero in some sample, and the bias (n_in)
    used[n_in] = True
    for b in range(B):
        for i in range(n_in):
            if x[b, i] != 0.0:
                used[i] = True
    cols = np.flatnonzero(used)
    scale = _fd_scale(B, step, central)
    one = _c(step, 1.0)
    gW1 = np.zeros((n_in, H), dt)
    gb1 = np.empty(H, dt)
    ggamma = np.empty(H, dt)
    gbeta = np.empty(H, dt)
    for j in numba.prange(H):
        a_col = np.empty(B, dt)
        u_new = np.empty(B, dt)
        for c in range(cols.shape[0]):
            i = cols[c]
            for b in range(B):
                a_col[b] = a1[b, j] + step * (x[b, i] if i < n_in else one)
            _normalise(a_col, gamma[j], beta[j], u_new)
            d = _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, textbook, eps)
            dm = base_sum if textbook else _c(step, 0.0)
            if central:
                for b in range(B):
                    a_col[b] = a1[b, j] - step * (x[b, i] if i < n_in else one)
                _normalise(a_col, gamma[j], beta[j], u_new)
                dm = _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, textbook, eps)
            g = _textbook_difference(d, dm, B, step, central) if textbook else (d - dm) * scale
            if i < n_in:
                gW1[i, j] = g
            else:
                gb1[j] = g
        for which in range(2):  # 0: gamma[j], 1: beta[j]
            d = _c(step, 0.0)
            dm = base_sum if textbook else _c(step, 0.0)
            for sgn in (one, -one):
                if sgn < 0 and not central:
                    break
                for b in range(B):
                    if which == 0:
                        u_new[b] = (gamma[j] + sgn * step) * ahat[b, j] + beta[j]
                    else:
                        u_new[b] = gamma[j] * ahat[b, j] + beta[j] + sgn * step
                change = _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, textbook, eps)
                if sgn > 0:
                    d = change
                else:
                    dm = change
            g = _textbook_difference(d, dm, B, step, central) if textbook else (d - dm) * scale
            if which == 0:
                ggamma[j] = g
            else:
                gbeta[j] = g
    gW2, gb2 = _numeric_output_layer(z1, a2, m, e, y, step, central, loss, textbook, eps)
    return gW1, gb1, gW2, gb2, ggamma, gbeta


# The fused training loop: whole stretches of iterations of plain SGD in one call, for the
# common configurations (no weight decay, dropout or batch norm). Each iteration computes
# exactly what methods.py computes one call at a time, and the update and the norms are
# rounded as NumPy rounds them (_EXACT: no fused multiply-add), so the two loops give
# bitwise the same run. Method codes; the names are mapped in network.py.
ANALYTIC, NUMERIC, ALTERNATE, SELECT = 0, 1, 2, 3


@numba.njit(**_EXACT)
def _sgd_into(p, g, lr, lo, hi):
    """g[i] = p[i] - lr * g[i] for lo <= i < hi (NumPy's p - lr * g, each product rounded); whether
    every new value is finite."""
    pp, gg = p[lo:hi], g[lo:hi]  # slices, not computed indices: it vectorises
    finite = True
    for i in range(hi - lo):
        v = pp[i] - lr * gg[i]
        gg[i] = v
        finite &= math.isfinite(v)  # no branch, and no chain of float additions
    return finite


@numba.njit(**_EXACT)
def _sgd_rows(p, g, lr, rows, n_rows, H, lo, hi, finite):
    """The SGD step p - lr * g on the rows rows[:n_rows] of length H and on p[lo:hi], where alone g can
    be non-zero; kept only when `finite` (the loss was) and every new value is finite (whether
    returned). g is left zero on the rows. One pass writes the new values and keeps the old ones in
    g, the second clears g (and puts the old values back if the step is not kept)."""
    finite = _sgd_into(p, g, lr, lo, hi) and finite
    for q in range(n_rows):
        pp = p[rows[q] * H:rows[q] * H + H]  # slices, not computed indices: it vectorises
        gg = g[rows[q] * H:rows[q] * H + H]
        for i in range(H):
            v = pp[i] - lr * gg[i]
            gg[i] = pp[i]
            pp[i] = v
            finite &= math.isfinite(v)
    for q in range(n_rows):
        pp = p[rows[q] * H:rows[q] * H + H]
        gg = g[rows[q] * H:rows[q] * H + H]
        for i in range(H):
            if not finite:
                pp[i] = gg[i]
            gg[i] = 0.0
    if finite:
        for i in range(hi - lo):
            p[lo + i] = g[lo + i]
    return finite


@numba.njit(**_EXACT)
def _sum_squares_block(v, lo, n):
    """sum of v[i] ** 2, lo <= i < lo + n <= lo + 128, as NumPy sums a block: eight running sums."""
    if n < 8:
        s = _c(v, 0.0)
        for i in range(lo, lo + n):
            s += v[i] * v[i]
        return s
    r = np.empty(8, v.dtype)
    for k in range(8):
        r[k] = v[lo + k] * v[lo + k]
    i = 8
    while i < n - n % 8:
        for k in range(8):
            r[k] += v[lo + i + k] * v[lo + i + k]
        i += 8
    s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        s += v[lo + i] * v[lo + i]
        i += 1
    return s


@numba.njit(**_EXACT)
def _sum_squares(v):
    """The sum of v ** 2 in NumPy's pairwise order, bitwise np.sum(v * v): blocks of up to 128 summed
    as _sum_squares_block, longer runs halved at a multiple of 8 and the halves added. Without
    recursion (Numba's cache loads recursive functions broken): a stack of runs to sum, where
    lo = -1 means "add the last two sums"."""
    los = np.empty(192, np.int64)
    ns = np.empty(192, np.int64)
    sums = np.empty(64, v.dtype)
    los[0], ns[0] = 0, v.shape[0]
    top, n_sums = 1, 0
    while top > 0:
        top -= 1
        lo, n = los[top], ns[top]
        if lo < 0:
            n_sums -= 1
            sums[n_sums - 1] = sums[n_sums - 1] + sums[n_sums]
        elif n <= 128:
            sums[n_sums] = _sum_squares_block(v, lo, n)
            n_sums += 1
        else:
            half = n // 2
            half -= half % 8
            los[top], ns[top] = -1, 0
            los[top + 1], ns[top + 1] = lo + half, n - half
            los[top + 2], ns[top + 2] = lo, half
            top += 3
    return sums[0]


@numba.njit(**_EXACT)
def _norm(v):
    """||v|| as NumPy's np.sqrt(np.sum(v * v)), in v's precision, returned as a float64."""
    return np.float64(_c(v, math.sqrt(_sum_squares(v))))


@numba.njit(**_SERIAL)
def _blocks(flat, n_in, H, K):
    """W1 (n_in, H), b1 (H,), W2 (H, K), b2 (K,): views into flat (the layout of Params)."""
    row = n_in * H + H
    return (flat[:n_in * H].reshape((n_in, H)), flat[n_in * H:row], flat[row:row + H * K].reshape((H, K)),
            flat[row + H * K:row + H * K + K])


@numba.njit(**_SERIAL)
def _numeric_flat(x, y, flat, n_in, H, K, act, mask, step, central, loss, textbook, eps):
    """_numeric's gradient as one flat vector (the layout of Params)."""
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    gW1, gb1, gW2, gb2 = _numeric(x, y, W1, b1, W2, b2, act, mask, step, central, loss, textbook, eps)
    g = np.empty(flat.shape[0], flat.dtype)
    row = n_in * H + H
    g[:n_in * H] = gW1.ravel()
    g[n_in * H:row] = gb1
    g[row:row + H * K] = gW2.ravel()
    g[row + H * K:] = gb2
    return g


@numba.njit(**_SERIAL)
def _gather_lit(rows, lit_idx, lit_val, lit_ptr, idx, val, ptr):
    """The lit pixels of the batch of rows `rows` (as _nonzero would give them) into idx, val, ptr, from
    those of the whole set (lit_idx, lit_val, lit_ptr); returns how many."""
    n = 0
    for b in range(rows.shape[0]):
        lo, hi = lit_ptr[rows[b]], lit_ptr[rows[b] + 1]
        ptr[b] = n
        idx[n:n + hi - lo] = lit_idx[lo:hi]
        val[n:n + hi - lo] = lit_val[lo:hi]
        n += hi - lo
    ptr[rows.shape[0]] = n
    return n


@numba.njit(**_SERIAL)
def _select_step(x, y, flat, H, act, mask, loss, eps, step, central, textbook, lr, xs, ys, ms):
    """One select iteration on the batch x, y: both gradients, both SGD candidates, the one with the lower
    loss on xs, ys (mask ms) kept in flat (ties: analytic) unless the loss or it is not finite.
    Returns the batch loss, whether it was kept, whether numeric, and ||g_num - g_ana|| / ||g_ana||."""
    P = flat.shape[0]
    n_in = x.shape[1]
    K = (P - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    value, ga = _analytic(x, y, W1, b1, W2, b2, act, mask, loss, eps, None, None)
    gn = _numeric_flat(x, y, flat, n_in, H, K, act, mask, step, central, loss, textbook, eps)
    norm = _norm(ga)
    rel = _norm(gn - ga) / norm if norm > 0 else _norm(gn)
    finite_a = _sgd_into(flat, ga, lr, 0, P)  # ga, gn: now the two candidate weights
    finite_n = _sgd_into(flat, gn, lr, 0, P)
    Wa = _blocks(ga, n_in, H, K)
    Wn = _blocks(gn, n_in, H, K)
    la = _loss(xs, ys, Wa[0], Wa[1], Wa[2], Wa[3], act, ms, loss, eps, None, None)
    ln = _loss(xs, ys, Wn[0], Wn[1], Wn[2], Wn[3], act, ms, loss, eps, None, None)
    numeric = ln < la
    ok = math.isfinite(value) and (finite_n if numeric else finite_a)
    if ok:
        flat[:] = gn if numeric else ga
    return value, ok, numeric, rel


@numba.njit(**_SERIAL)
def _train_sgd(flat, H, x_train, y_train, batches, t0, method, numeric_every, lr, act, loss, eps, step, central,
               textbook, select_train, losses, sources, rel_diffs):
    """Iterations t0 + 1, ..., t0 + len(batches) of SGD with the gradient of `method`.

    flat : (P,) the weights (layout of Params), updated in place
    x_train : (N, n_in), y_train : (N,) the few-shot set; batches : (T, B) indices into it
    losses, sources, rel_diffs : (iters,) each iteration's batch loss, 1 where the kept update
        was numeric, and select's ||g_num - g_ana|| / ||g_ana|| (written at t - 1)

    Returns the iterations done and whether the last of them diverged (a loss or a new weight
    not finite: its loss is written, the weights stay those before it). The analytic update
    touches only the rows of W1 whose gradient can be non-zero (the batch's lit pixels).
    """
    P = flat.shape[0]
    n_in = x_train.shape[1]
    K = (P - n_in * H - H) // (H + 1)
    row = n_in * H + H
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    ones = np.ones((batches.shape[1], H), flat.dtype)
    x = np.empty((batches.shape[1], n_in), flat.dtype)
    y = np.empty(batches.shape[1], np.int64)
    ones_train = np.ones((x_train.shape[0], H), flat.dtype)
    g = np.zeros(P, flat.dtype)            # the analytic gradient (zero but on the rows just written), then the update
    seen = np.full(n_in + 1, -1, np.int64)  # the iteration that last wrote each row of W1 (row n_in: b1)
    lit_idx, lit_val, lit_ptr = _nonzero(x_train)
    longest = 0
    for r in range(x_train.shape[0]):
        longest = max(longest, lit_ptr[r + 1] - lit_ptr[r])
    idx = np.empty(batches.shape[1] * longest, np.int64)
    val = np.empty(batches.shape[1] * longest, flat.dtype)
    ptr = np.empty(batches.shape[1] + 1, np.int64)
    rows = np.empty(n_in + 1, np.int64)
    for i in range(batches.shape[0]):
        t = t0 + i + 1
        numeric = method == NUMERIC or (method == ALTERNATE and t % numeric_every == 0)
        for b in range(batches.shape[1]):  # the batch (x copied row by row: Numba's x_train[rows] is slower)
            y[b] = y_train[batches[i, b]]
            if numeric or method == SELECT:
                x[b] = x_train[batches[i, b]]
        if method == SELECT:
            xs, ys, ms = (x_train, y_train, ones_train) if select_train else (x, y, ones)
            value, ok, kept_numeric, rel = _select_step(x, y, flat, H, act, ones, loss, eps, step, central, textbook,
                                                        lr, xs, ys, ms)
            if ok:
                sources[t - 1] = kept_numeric
                rel_diffs[t - 1] = rel
        elif numeric:
            gn = _numeric_flat(x, y, flat, n_in, H, K, act, ones, step, central, loss, textbook, eps)
            value = _loss(x, y, W1, b1, W2, b2, act, ones, loss, eps, None, None)
            ok = _sgd_into(flat, gn, lr, 0, P) and math.isfinite(value)
            if ok:
                flat[:] = gn
                sources[t - 1] = 1
        else:
            n = _gather_lit(batches[i], lit_idx, lit_val, lit_ptr, idx, val, ptr)
            value, _, _ = _analytic_lit(idx[:n], val[:n], ptr, y, W1, b1, W2, b2, act, ones, loss, eps, None, None,
                                        g)
            n_rows = 0
            for e in range(n):
                if seen[idx[e]] != t:
                    seen[idx[e]] = t
                    rows[n_rows] = idx[e]
                    n_rows += 1
            ok = _sgd_rows(flat, g, lr, rows, n_rows, H, row, P, math.isfinite(value))
        losses[t - 1] = value
        if not ok:
            return i + 1, True
    return batches.shape[0], False


# The thread policy. The count is chosen per call and only changes the speed:
# every kernel gives bitwise the same result on any number of threads.
PARALLEL_WORK = 500_000  # inner-loop operations (about 0.3 ms) below which a parallel kernel runs on one thread
_PROBE_FIRST, _PROBE_LAST = 16, 1024  # calls between re-measurements of the slower choice: first, at most

_fixed = None  # the count set by set_threads; None: the automatic policy


def max_threads() -> int:
    """Threads Numba can use in this process (NUMBA_NUM_THREADS, all cores by default)."""
    return numba.config.NUMBA_NUM_THREADS


def set_threads(n: int | None) -> None:
    """Run every parallel kernel on `n` threads (1 to max_threads()); None: the automatic policy."""
    global _fixed
    if n is not None:
        if not 1 <= int(n) <= max_threads():
            raise ValueError(f"--threads {n}: between 1 and the {max_threads()} available; lower it or "
                             "set NUMBA_NUM_THREADS")
        n = int(n)
    _fixed = n


def get_threads() -> int | None:
    """The count set by set_threads, or None under the automatic policy."""
    return _fixed


class _Choice:
    """For one parallel kernel: seconds per unit of work on one thread and on all (a moving
    average of the measured calls) and the faster of the two; the slower is re-measured now
    and then, less often each time it loses again (on a busy machine one call on all threads
    can cost a scheduler time slice)."""

    def __init__(self):
        self.cost = {}
        self.best = 1
        self.since = 0
        self.interval = _PROBE_FIRST

    def pick(self, top: int) -> int:
        for n in (1, top):
            if n not in self.cost:
                return n
        self.since += 1
        if self.since >= self.interval:
            self.since = 0
            return top if self.best == 1 else 1
        return self.best

    def record(self, n: int, top: int, per_work: float) -> None:
        self.cost[n] = per_work if n not in self.cost else 0.5 * (self.cost[n] + per_work)
        if len(self.cost) < 2:
            return
        best = 1 if self.cost[1] <= self.cost[top] else top
        self.interval = min(2 * self.interval, _PROBE_LAST) if best == self.best else _PROBE_FIRST
        self.best = best


_choices = {}  # kernel -> _Choice


def threads_for(kernel, work: float) -> int:
    """The thread count the policy gives a call of `kernel` doing `work` inner-loop operations."""
    top = max_threads()
    if _fixed is not None:
        return _fixed
    if top == 1 or work < PARALLEL_WORK:
        return 1
    return _choices.setdefault(kernel, _Choice()).pick(top)


def run_parallel(kernel, work: float, *args, calls: int = 1):
    """kernel(*args) on the threads the policy gives `work` (of each of the `calls` parallel loops the
    call runs: the fused loop runs many); under the automatic policy a large call's time is recorded
    to choose the next ones' (not the first call: it may compile)."""
    n = threads_for(kernel, work)
    numba.set_num_threads(n)
    measure = (_fixed is None and kernel in _choices and work >= PARALLEL_WORK and calls > 0
               and bool(kernel.signatures))
    start = time.perf_counter()
    out = kernel(*args)
    if measure:
        _choices[kernel].record(n, max_threads(), (time.perf_counter() - start) / (work * calls))
    return out


_ENTRY_KERNELS = (_loss, _analytic, _numeric, _predict, _numeric_bn)


def kernels_cached() -> bool:
    """Whether Numba's cache holds kernels compiled from this very source (an older cache is
    stale: the first call compiles them again)."""
    try:
        return any(k._cache._cache_file._load_index() for k in _ENTRY_KERNELS)
    except Exception:  # another Numba's cache layout, or a damaged index: assume not
        return False


# A damaged cache (a file cut short or overwritten: Numba's loader raises pickle's errors,
# EOFError, ValueError...) is dropped and the kernel compiled again, never an error.
_CACHED = tuple(v for v in list(globals().values())
                if isinstance(v, numba.core.dispatcher.Dispatcher) and hasattr(v._cache, "_cache_file"))


def _cache_files(kernel) -> list[str]:
    """The cache files of `kernel` compiled from this source: its index and its data files."""
    f = kernel._cache._cache_file
    base = glob.escape(os.path.join(f._cache_path, f._index_name[:-len(".nbi")]))
    return [p for p in [f._index_path, *glob.glob(base + ".*.nbc")] if os.path.exists(p)]


def _drop(kernel) -> list[str]:
    """Remove `kernel`'s cache files (only these); the paths removed."""
    dropped = []
    for path in _cache_files(kernel):
        try:
            os.remove(path)
            dropped.append(path)
        except OSError:  # gone meanwhile, or not ours to remove: the guarded load compiles anyway
            pass
    return dropped


def _loads(kernel) -> bool:
    """Whether every cache entry of `kernel` unpickles (a missing file is no damage: Numba compiles)."""
    f = kernel._cache._cache_file
    try:
        for name in f._load_index().values():
            try:
                f._load_data(name)
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        return True
    except Exception:
        return False
    return True


def drop_damaged_cache() -> list[str]:
    """Check every kernel's cache files; drop those of each kernel whose cache cannot be loaded.
    The paths dropped (none when the cache is sound or absent)."""
    return [path for k in _CACHED if not _loads(k) for path in _drop(k)]


def _guarded(kernel) -> None:
    """Loading `kernel` from a cache that fails (damaged after the check, or in a process that
    made none) drops its files and compiles instead; saving then writes a sound cache. A save
    that fails (a full disk, say) leaves the kernel uncached, not the run stopped."""
    cache = kernel._cache
    load, save = cache.load_overload, cache.save_overload

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:
            _drop(kernel)
            return None

    def save_overload(sig, data):
        try:
            save(sig, data)
        except Exception:
            pass

    cache.load_overload, cache.save_overload = load_overload, save_overload


for _kernel in _CACHED:
    _guarded(_kernel)
