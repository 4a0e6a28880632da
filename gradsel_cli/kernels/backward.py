"""The analytic gradient: backpropagation, over the lit pixels of each image."""

import numba
import numpy as np

from .activations import SIGMOID, _act, _act_deriv
from .forward import CROSS_ENTROPY, _blocks, _forward_lit, _mean_loss, _softmax_parts
from .lit import _nonzero
from .policy import INLINE, SERIAL
from .precision import _c, _exp


@numba.njit(**INLINE)
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


@numba.njit(**SERIAL)
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


@numba.njit(**SERIAL)
def _analytic(x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, gamma, beta):
    """Loss (with loss_epsilon) and the exact gradient of the loss without it, by backpropagation (through
    the batch norm unless gamma is None): value, and the gradient as one flat vector [gW1 | gb1 |
    gW2 | gb2], with batch norm then [ggamma | gbeta] (the layout of Params)."""
    n_in = x.shape[1]
    H = W1.shape[1]
    K = W2.shape[1]
    grad = np.zeros(n_in * H + H + H * K + K + (0 if gamma is None else 2 * H), W1.dtype)
    value, _, _ = _analytic_into(x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, gamma, beta, grad)
    return value, grad


@numba.njit(**SERIAL)
def _analytic_into(x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, gamma, beta, grad):
    """_analytic's value, its gradient added into `grad` (flat, zero where it is written: the rows of
    W1 of the lit pixels, b1, and the batch-norm part; W2 and b2 are assigned), and the lit pixels
    idx, ptr of _nonzero(x) (the rows of W1 written). x W1 and the gradient of W1 take only the lit
    pixels: a row of W1 per pixel, contiguous in H."""
    idx, val, ptr = _nonzero(x)
    return _analytic_lit(idx, val, ptr, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, gamma, beta, grad)


@numba.njit(**SERIAL)
def _analytic_lit(idx, val, ptr, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, gamma, beta, grad):
    """_analytic_into of the batch given by its lit pixels idx, val, ptr (as _nonzero gives them)."""
    B = ptr.shape[0] - 1
    n_in, H = W1.shape
    K = W2.shape[1]
    _, pre, z1, a2, ahat, sigma = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, gamma, beta)
    _, e, S = _softmax_parts(a2)
    value = _mean_loss(a2, y, loss, loss_epsilon)
    da2 = _loss_grad_logits(e, S, y, loss)
    gW2, gb2, da1 = _backprop_output(z1, da2, W2, pre, act, mask)
    row = n_in * H + H
    if gamma is not None:  # da1 is d loss / d u so far: back through the normalisation
        nB = _c(gamma, B)
        ggamma = grad[row + H * K + K : row + H * K + K + H]
        gbeta = grad[row + H * K + K + H :]
        sum_dh = np.zeros(H, W1.dtype)  # sum_b d loss / d ahat
        sum_dhh = np.zeros(H, W1.dtype)  # sum_b d loss / d ahat * ahat
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
            g = grad[idx[t] * H : idx[t] * H + H]  # a slice, not computed indices: it vectorises
            for j in range(H):
                g[j] += v * d[j]
    for j in range(H):
        for k in range(K):
            grad[row + j * K + k] = gW2[j, k]
    for k in range(K):
        grad[row + H * K + k] = gb2[k]
    return value, idx, ptr


@numba.njit(**SERIAL)
def _analytic_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """The analytic source's step (step_signature): backpropagation over the lit pixels, into g."""
    n_in = x.shape[1]
    K = (flat.shape[0] - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    value, _, _ = _analytic_lit(idx, val, ptr, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, None, None, g)
    return np.float64(value)
