"""The complex-step derivative: every gradient entry as Im L(w + i h e_i) / h.

For a real-analytic loss L, L(w + i h e_i) = L(w) + i h dL/dw_i - h^2 / 2
d2L/dw_i^2 - i h^3 / 6 d3L/dw_i^3 + ..., so Im L(w + i h e_i) / h = dL/dw_i
+ O(h^2) (Squire & Trapp, SIAM Review 1998; Martins, Sturdza & Alonso, ACM
TOMS 2003). No two nearby losses are subtracted: the derivative is carried in
the imaginary part from the start, so the finite difference's cancellation is
absent and h can be tiny (1e-20 by default, h^2 far below the rounding of any
weight): the result is as accurate as backpropagation's, rounding in its sums
included, where a central difference is at best about eps^(2/3) relative.
The arithmetic is complex128 for float64 weights and complex64 for float32
weights, and the gradient comes back in the weights' dtype.

What is reused, as the numeric kernel (differences.py) reuses it: perturbing
W1[i, j] (or b1[j], the bias entry of value 1 in _nonzero's lit-pixel lists)
moves only a1[b, j] of the samples with x[b, i] != 0, hence z1[b, j] and their
K logits. So the forward pass is real, once, and complex arithmetic is done
only where a weight's move reaches: per (sample, unit j, distinct lit pixel
value v, as _distinct gives them) the perturbed a1[b, j] + i h v, its complex
activation, the K moved logits a2[b, :] + (z1' - z1[b, j]) W2[j, :] and the
sample's loss (log-sum-exp with the real max subtracted). The samples where the
pixel is dark add exactly 0 and are skipped. Perturbing W2[j, k] (b2[k]: a
hidden value of 1) moves only logit k of each sample, by i h z1[b, j]. With
batch norm, perturbing W1[i, j] moves unit j of every sample through the batch
mean and variance of the unit (all in complex); gamma[j] and beta[j] move u[b, j]
by i h ahat[b, j] and i h.

The kinks: ReLU and leaky ReLU are not analytic, so they branch on the real
part: z for Re z > 0, else 0 (ReLU) or 0.01 z (leaky ReLU). At a
pre-activation of exactly 0 this gives the analytic kernel's choice, the slope
of the a <= 0 side: ReLU'(0) = 0 and leaky ReLU'(0) = 0.01. The losses are
those of forward.py (cross-entropy as log-sum-exp or, with loss_epsilon > 0,
-log(p_y + loss_epsilon); 1/2 squared error of the softmax), in complex.
"""

import cmath
import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

from .activations import LEAKY_RELU, LEAKY_SLOPE, RELU, SIGMOID, TANH
from .differences import _distinct
from .forward import BN_EPS, CROSS_ENTROPY, _blocks, _forward, _forward_lit, _mean_loss, _softmax_parts
from .policy import INLINE, PARALLEL
from .precision import _c


def _cbuf(like, n):
    """An uninitialised complex array (n,) in the precision of the float array `like`; compiled only."""
    raise TypeError("_cbuf runs inside kernels only")


@overload(_cbuf, inline="always")
def _cbuf_typed(like, n):
    cdt = np.complex64 if like.dtype == types.float32 else np.complex128
    return lambda like, n: np.empty(n, cdt)


@numba.njit(**INLINE)
def _ctanh(z):
    """tanh of a complex z in z's precision: (sinh 2x + i sin 2y) / (cosh 2x + cos 2y); for |x| > 20,
    where tanh x rounds to +-1 in either precision, its limit +-1 + 4i sin y cos y e^(-2|x|), which
    does not overflow. (Numba's cmath.tanh returns complex128 for a complex64.)"""
    x = z.real
    y = z.imag
    one = _c(x, 1.0)
    two = _c(x, 2.0)
    if abs(x) > 20.0:
        return complex(one if x > 0.0 else -one, _c(x, 4.0) * math.sin(y) * math.cos(y) * math.exp(-two * abs(x)))
    d = math.cosh(two * x) + math.cos(two * y)
    return complex(math.sinh(two * x) / d, math.sin(two * y) / d)


@numba.njit(**INLINE)
def _act_c(z, act):
    """The hidden activation of a complex pre-activation (codes of activations.py). The sigmoid and
    the softplus inside mish take exp of the side with Re <= 0 (no overflow); ReLU and leaky ReLU
    branch on the real part (their kink: the a <= 0 side at exactly 0)."""
    one = _c(z.real, 1.0)
    if act == SIGMOID:
        if z.real >= 0.0:
            return one / (one + cmath.exp(-z))
        w = cmath.exp(z)
        return w / (one + w)
    if act == TANH:
        return _ctanh(z)
    if act == RELU:
        return z if z.real > 0.0 else z * _c(z.real, 0.0)
    if act == LEAKY_RELU:
        return z if z.real > 0.0 else z * _c(z.real, LEAKY_SLOPE)
    # MISH: z tanh(softplus z)
    softplus = z + cmath.log(one + cmath.exp(-z)) if z.real > 0.0 else cmath.log(one + cmath.exp(z))
    return z * _ctanh(softplus)


@numba.njit(**INLINE)
def _loss_c(m, a2, b, y_b, E, S, dy, loss, loss_epsilon):
    """Sample b's loss in complex from its moved exponentials E[k] = exp(a2'[b, k] - m[b]) (K,), S their
    sum and dy the move of its true class's logit: log S + m - (a2[b, y] + dy) or, with loss_epsilon,
    -log(E_y / S + loss_epsilon) (cross-entropy); 1/2 sum_k (E_k / S - onehot_k)^2 (MSE)."""
    if loss == CROSS_ENTROPY:
        if loss_epsilon == 0.0:
            return cmath.log(S) + m[b] - (a2[b, y_b] + dy)
        return -cmath.log(E[y_b] / S + loss_epsilon)
    one = _c(m, 1.0)
    zero = _c(m, 0.0)
    total = S * zero
    for k in range(E.shape[0]):
        d = E[k] / S - (one if k == y_b else zero)
        total += d * d
    return _c(m, 0.5) * total


@numba.njit(**INLINE)
def _im_hidden(e, m, a2, b, y_b, w2j, dz, loss, loss_epsilon, E):
    """Im of sample b's loss when its hidden value j moves by the complex dz (w2j = W2[j] (K,)): its K
    logits move by dz w2j; E (K,) is scratch."""
    K = w2j.shape[0]
    S = dz * _c(m, 0.0)
    for k in range(K):
        E[k] = e[b, k] * cmath.exp(dz * w2j[k])
        S += E[k]
    return _loss_c(m, a2, b, y_b, E, S, dz * w2j[y_b], loss, loss_epsilon).imag


@numba.njit(**PARALLEL)
def _complex_step_output(z1, a2, m, e, y, step, loss, loss_epsilon):
    """Complex steps of W2 (H, K) and b2 (K,): perturbing W2[j, k] moves only logit a2[b, k] of every
    sample, by i h z1[b, j] (b2[k]: by i h). Returns gW2, gb2."""
    B, H = z1.shape
    K = e.shape[1]
    zero = _c(step, 0.0)
    one = _c(step, 1.0)
    denom = _c(step, B) * step
    gW2 = np.empty((H, K), z1.dtype)
    gb2 = np.empty(K, z1.dtype)
    for j in numba.prange(H + 1):  # row H stands for b2 (a hidden value of 1)
        E = _cbuf(z1, K)
        for k in range(K):
            total = zero
            for b in range(B):
                d = complex(zero, step * (z1[b, j] if j < H else one))
                S = d * zero
                for kk in range(K):
                    E[kk] = e[b, kk] * cmath.exp(d) if kk == k else e[b, kk] + d * zero
                    S += E[kk]
                total += _loss_c(m, a2, b, y[b], E, S, d if k == y[b] else d * zero, loss, loss_epsilon).imag
            if j < H:
                gW2[j, k] = total / denom
            else:
                gb2[k] = total / denom
    return gW2, gb2


@numba.njit(**PARALLEL)
def _complex_step_fused(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """The complex-step source's step (step_signature), and its kernel for every call of the gradient without
    batch norm: the complex-step gradient of the batch into g (every entry, flat's layout and dtype), h =
    knobs[0]; returns the batch loss (that of _loss) as a float64. One kernel, not a chain: see
    differences._numeric_step.

    x : (B, n_in) C-contiguous, y : (B,) int64, idx, val, ptr its lit pixels (lit._nonzero), mask (B, H).
    Parallel over the hidden units: unit j's thread owns column j of W1's gradient and b1's entry j (and
    row j of W2's), and sums its samples serially in order. A perturbed loss is evaluated once per
    (sample, distinct pixel value) and not at all for a repeated sample or a dropped unit (mask 0:
    nothing moves).
    """
    B, n_in = x.shape
    K = (flat.shape[0] - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    step = _c(flat, knobs[0])
    eps = loss_epsilon
    a1, _, z1, a2, _, _ = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)
    m, e, _ = _softmax_parts(a2)
    first, uval, uptr, which = _distinct(idx, val, ptr, y, mask)
    denom = _c(flat, B) * step
    dt = flat.dtype
    for j in numba.prange(H):
        col = np.zeros(n_in + 1, dt)  # summed Im of the perturbed losses, W1[:, j] and b1[j] (entry n_in)
        ims = np.empty(uval.shape[0], dt)  # per (sample, distinct value): Im of its perturbed loss
        E = _cbuf(flat, K)
        for b in range(B):
            mbj = mask[b, j]
            if mbj == 0.0:
                continue
            lo = uptr[first[b]]
            if first[b] == b:  # else a repeat: its values are those of its first copy
                for t in range(uptr[b + 1] - lo):
                    zc = _act_c(complex(a1[b, j], step * uval[lo + t]), act) * mbj
                    ims[lo + t] = _im_hidden(e, m, a2, b, y[b], W2[j], zc - z1[b, j], loss, eps, E)
            for t in range(ptr[b], ptr[b + 1]):
                col[idx[t]] += ims[lo + which[t]]
        for i in range(n_in + 1):
            g[i * H + j] = col[i] / denom  # W1[i, j], and for i = n_in b1[j]
    gW2, gb2 = _complex_step_output(z1, a2, m, e, y, step, loss, eps)
    row = n_in * H + H
    g[row : row + H * K] = gW2.ravel()
    g[row + H * K :] = gb2
    return np.float64(_mean_loss(a2, y, loss, loss_epsilon))


@numba.njit(**INLINE)
def _normalise_c(a_col, g, bt, out):
    """out = g (a_col - mean) / sqrt(var + BN_EPS) + bt of a complex column a_col (B,): the batch mean and
    variance (the mean of (a - mean)^2, not of |a - mean|^2) in complex, summed serially."""
    B = a_col.shape[0]
    nB = _c(g, B)
    mu = a_col[0] * _c(g, 0.0)
    for b in range(B):
        mu += a_col[b]
    mu /= nB
    var = mu * _c(g, 0.0)
    for b in range(B):
        d = a_col[b] - mu
        var += d * d
    sigma = cmath.sqrt(var / nB + _c(g, BN_EPS))
    for b in range(B):
        out[b] = g * (a_col[b] - mu) / sigma + bt


@numba.njit(**INLINE)
def _unit_im(u_new, j, z1, mask, act, a2, m, e, W2, y, loss, loss_epsilon, E):
    """Sum over the batch of Im of each sample's loss when unit j's pre-activations are u_new (B,)."""
    total = _c(z1, 0.0)
    for b in range(u_new.shape[0]):
        if mask[b, j] != 0.0:
            dz = _act_c(u_new[b], act) * mask[b, j] - z1[b, j]
            total += _im_hidden(e, m, a2, b, y[b], W2[j], dz, loss, loss_epsilon, E)
    return total


@numba.njit(**PARALLEL)
def _complex_step_bn(x, y, W1, b1, W2, b2, gamma, beta, act, mask, h, loss, loss_epsilon):
    """Complex steps through the batch norm: gW1, gb1, gW2, gb2, ggamma, gbeta (H,) in the weights' dtype.

    Perturbing W1[i, j] moves a1[b, j] by i h x[b, i] in the samples where pixel i is lit, and with
    it the batch mean and variance of unit j: unit j of every sample is renormalised in complex and
    every sample's loss evaluated. u is linear in gamma and beta, so perturbing gamma[j] moves
    u[b, j] by exactly i h ahat[b, j], and beta[j] by i h. The rows of W1 of pixels dark in every
    sample are 0. b1 moves the unit and its mean alike: its gradient is rounding noise about 0, as
    the analytic one is.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    K = W2.shape[1]
    dt = W1.dtype
    step = _c(W1, h)
    eps = _c(W1, loss_epsilon)
    one = _c(W1, 1.0)
    a1, pre, z1, a2, ahat, _ = _forward(x, W1, b1, W2, b2, act, mask, gamma, beta)
    m, e, _ = _softmax_parts(a2)
    used = np.zeros(n_in + 1, np.bool_)  # pixels lit in some sample, and the bias (n_in)
    used[n_in] = True
    for b in range(B):
        for i in range(n_in):
            if x[b, i] != 0.0:
                used[i] = True
    cols = np.flatnonzero(used)
    denom = _c(W1, B) * step
    gW1 = np.zeros((n_in, H), dt)
    gb1 = np.empty(H, dt)
    ggamma = np.empty(H, dt)
    gbeta = np.empty(H, dt)
    for j in numba.prange(H):
        a_col = _cbuf(W1, B)
        u_new = _cbuf(W1, B)
        E = _cbuf(W1, K)
        for c in range(cols.shape[0]):
            i = cols[c]
            for b in range(B):
                a_col[b] = complex(a1[b, j], step * (x[b, i] if i < n_in else one))
            _normalise_c(a_col, gamma[j], beta[j], u_new)
            g = _unit_im(u_new, j, z1, mask, act, a2, m, e, W2, y, loss, eps, E) / denom
            if i < n_in:
                gW1[i, j] = g
            else:
                gb1[j] = g
        for b in range(B):
            u_new[b] = complex(pre[b, j], step * ahat[b, j])
        ggamma[j] = _unit_im(u_new, j, z1, mask, act, a2, m, e, W2, y, loss, eps, E) / denom
        for b in range(B):
            u_new[b] = complex(pre[b, j], step)
        gbeta[j] = _unit_im(u_new, j, z1, mask, act, a2, m, e, W2, y, loss, eps, E) / denom
    gW2, gb2 = _complex_step_output(z1, a2, m, e, y, step, loss, eps)
    return gW1, gb1, gW2, gb2, ggamma, gbeta
