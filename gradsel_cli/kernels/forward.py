"""Batch norm, the forward pass, the losses and the prediction.

The network is ``x (B, n_in) -> a1 = x W1 + b1 -> z1 = act(a1) * mask ->
a2 = z1 W2 + b2 -> mean loss``; with batch norm the activation takes the
normalised u instead of a1.

Loss epsilon (``loss_epsilon``): the cross-entropy is -log(p_y + loss_epsilon),
the textbook's form, wherever a loss is evaluated (the loss value and every
finite difference); with 0 it is the log-sum-exp form. Backpropagation always
differentiates -log p_y, as the textbook's backward pass does.
"""

import math

import numba
import numpy as np

from .activations import SIGMOID, _act
from .lit import _lit_dot, _nonzero
from .policy import INLINE, PARALLEL, SERIAL
from .precision import _c, _exp, _log1p_small

# Loss codes: the names' positions in choices.LOSSES (mapped in core/network.py).
CROSS_ENTROPY, MSE = 0, 1


# Batch normalisation of the hidden pre-activations: u = gamma (a1 - mu) / sigma + beta,
# sigma = sqrt(var + BN_EPS), mu and var over the batch; z1 = act(u) * mask. The kernels take
# gamma, beta (H,), or None for both without batch norm, a case Numba compiles apart: its
# `gamma is None` branches are decided at compile time and the batch-norm code left out.
BN_EPS = 1e-6


@numba.njit(**SERIAL)
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


@numba.njit(**INLINE)
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


@numba.njit(**SERIAL)
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


@numba.njit(**SERIAL)
def _forward(x, W1, b1, W2, b2, act, mask, gamma, beta):
    """_forward_lit of x (B, n_in).

    Serial: a mini-batch is too small to repay waking threads (predict,
    over thousands of images, is the parallel one).
    """
    idx, val, ptr = _nonzero(x)
    return _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, gamma, beta)


@numba.njit(**INLINE)
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


@numba.njit(**INLINE)
def _cross_entropy(S, m, ay, ey, dy, loss_epsilon):
    """One sample's cross-entropy when its logit of the true class, ay, moves by dy: from S = sum_k
    exp(a_k - m) (of the moved logits), the shift m and ey = exp(ay - m) (unmoved).

    loss_epsilon = 0: the log-sum-exp form log S + m - a_y; > 0: the textbook's -log(p_y + loss_epsilon).
    """
    if loss_epsilon == 0.0:
        return math.log(S) + m - (ay + dy)
    return -math.log(ey * _exp(dy) / S + loss_epsilon)


@numba.njit(**INLINE)
def _ce_change(Sp, Sm, dy, dym, ey, loss_epsilon, small):
    """One sample's cross-entropy with its logits moved one way (+) minus with them moved another (-):
    Sp, Sm = sum_k exp(a_k - m) of the two moved logits, dy = the move of the true class's logit
    (+) minus its move (-), dym its move (-), ey = exp(a_y - m) unmoved.

    log(Sp / Sm) - dy: m cancels, and Sp - Sm is exact (Sterbenz), so log1p of
    it loses nothing (`small`: by the short series). With loss_epsilon > 0 the
    change of -log(p_y + loss_epsilon): the new p_y is p exp(-d), p = ey exp(dym) / Sm the
    old one, so it is -log1p(p expm1(-d) / (p + loss_epsilon)) (_with_eps); nothing
    cancels either.
    """
    r = (Sp - Sm) / Sm
    d = (_log1p_small(r) if small else math.log1p(r)) - dy
    return d if loss_epsilon == 0.0 else _with_eps(d, ey * _exp(dym) / Sm, loss_epsilon)


@numba.njit(**INLINE)
def _with_eps(d, p, loss_epsilon):
    """The change of -log(p_y + loss_epsilon) from the change d of -log p_y, p the probability before."""
    return -math.log1p(p * math.expm1(-d) / (p + loss_epsilon))


@numba.njit(**INLINE)
def _mse_sample(e, b, y_b, S_b):
    """1/2 sum_k (softmax_k - onehot_k)^2 of sample b, from e = exp(a2 - m) and S = sum e."""
    total = _c(e, 0.0)
    for k in range(e.shape[1]):
        d = e[b, k] / S_b - (_c(e, 1.0) if k == y_b else _c(e, 0.0))
        total += d * d
    return _c(e, 0.5) * total


@numba.njit(**INLINE)
def _sample_losses(a2, m, e, S, y, loss, loss_epsilon):
    """Each sample's loss (B,): cross-entropy (see _cross_entropy) or MSE of the softmax."""
    B = a2.shape[0]
    out = np.empty(B, a2.dtype)
    for b in range(B):
        if loss == CROSS_ENTROPY:
            out[b] = _cross_entropy(S[b], m[b], a2[b, y[b]], e[b, y[b]], _c(a2, 0.0), loss_epsilon)
        else:
            out[b] = _mse_sample(e, b, y[b], S[b])
    return out


@numba.njit(**SERIAL)
def _mean_loss(a2, y, loss, loss_epsilon):
    """Mean loss: softmax cross-entropy (log-sum-exp form, or -log(p + loss_epsilon)) or MSE of the softmax;
    summed serially."""
    m, e, S = _softmax_parts(a2)
    return _mean(_sample_losses(a2, m, e, S, y, loss, loss_epsilon))


@numba.njit(**INLINE)
def _mean(losses):
    """The mean of the samples' losses, summed serially in sample order."""
    total = _c(losses, 0.0)
    for b in range(losses.shape[0]):
        total += losses[b]
    return total / _c(losses, losses.shape[0])


@numba.njit(**SERIAL)
def _loss(x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, gamma, beta):
    """Mean loss of x (B, n_in), y (B,); through the batch norm unless gamma is None."""
    a2 = _forward(x, W1, b1, W2, b2, act, mask, gamma, beta)[3]
    return _mean_loss(a2, y, loss, loss_epsilon)


@numba.njit(**PARALLEL)
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
        a2 = _forward(x[lo : min(N, lo + 256)], W1, b1, W2, b2, act, ones, None, None)[3]
        for n in range(a2.shape[0]):
            best = 0
            for k in range(1, K):
                if a2[n, k] > a2[n, best]:
                    best = k
            out[lo + n] = best
    return out


@numba.njit(**INLINE)
def _blocks(flat, n_in, H, K):
    """W1 (n_in, H), b1 (H,), W2 (H, K), b2 (K,): views into flat (the layout of Params)."""
    row = n_in * H + H
    return (
        flat[: n_in * H].reshape((n_in, H)),
        flat[n_in * H : row],
        flat[row : row + H * K].reshape((H, K)),
        flat[row + H * K : row + H * K + K],
    )


@numba.njit(**SERIAL)
def _loss_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """One forward pass over the lit pixels and the batch loss, in the signature of a source's step
    (fused.step_signature), writing nothing into g: the unit of the cost ledger (sources/costs.py), timed
    beside each source's step by `gradsel bench --costs`."""
    n_in = x.shape[1]
    K = (flat.shape[0] - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    a2 = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)[3]
    return np.float64(_mean_loss(a2, y, loss, loss_epsilon))
