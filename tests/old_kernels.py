"""The kernels as they were before the sparse analytic gradient and the deduplicated numeric one
(copied unchanged but for names): the new ones must give bitwise the same results."""

import math

import numba
import numpy as np

from gradsel_cli import kernels as kn


@numba.njit(**kn._INLINE)
def old_sample_forward(xrow, W1, b1, W2, b2, act, maskrow, a1, z1, a2):
    """Forward pass of one sample into a1, z1 (H,) and a2 (K,), skipping zero pixels."""
    H = W1.shape[1]
    K = W2.shape[1]
    for j in range(H):
        a1[j] = 0.0
    for i in range(xrow.shape[0]):
        v = xrow[i]
        if v != 0.0:
            for j in range(H):
                a1[j] += v * W1[i, j]
    for j in range(H):
        a1[j] += b1[j]
        z1[j] = kn._act(a1[j], act) * maskrow[j]
    for k in range(K):
        a2[k] = 0.0
    for j in range(H):
        zj = z1[j]
        for k in range(K):
            a2[k] += zj * W2[j, k]
    for k in range(K):
        a2[k] += b2[k]


@numba.njit(**kn._SERIAL)
def old_forward(x, W1, b1, W2, b2, act, mask):
    """a1, z1 (B, H) and a2 (B, K); z1 already carries the (dropout) mask.

    Serial: a mini-batch is too small to repay waking threads (predict,
    over thousands of images, is the parallel one).
    """
    B = x.shape[0]
    H = W1.shape[1]
    K = W2.shape[1]
    a1 = np.empty((B, H))
    z1 = np.empty((B, H))
    a2 = np.empty((B, K))
    for b in range(B):
        old_sample_forward(x[b], W1, b1, W2, b2, act, mask[b], a1[b], z1[b], a2[b])
    return a1, z1, a2


@numba.njit(**kn._SERIAL)
def old_analytic(x, y, W1, b1, W2, b2, act, mask, loss):
    """Loss and its exact gradient by backpropagation: value, gW1, gb1, gW2, gb2."""
    B, n_in = x.shape
    H = W1.shape[1]
    a1, z1, a2 = old_forward(x, W1, b1, W2, b2, act, mask)
    m, e, S = kn._softmax_parts(a2)
    value = kn._mean_loss(a2, y, loss)
    da2 = kn._loss_grad_logits(e, S, y, loss)
    gW2, gb2, da1 = kn._backprop_output(z1, da2, W2, a1, act, mask)
    gW1 = np.zeros((n_in, H))
    gb1 = np.zeros(H)
    for b in range(B):
        for j in range(H):
            gb1[j] += da1[b, j]
        for i in range(n_in):
            v = x[b, i]
            if v != 0.0:
                for j in range(H):
                    gW1[i, j] += v * da1[b, j]
    return value, gW1, gb1, gW2, gb2


@numba.njit(**kn._PARALLEL)
def old_numeric(x, y, W1, b1, W2, b2, act, mask, step, central, loss):
    """Finite-difference gradient, each perturbed loss re-evaluated incrementally.

    Perturbing W1[i, j] (or b1[j], as a pixel of value 1) moves only a1[b, j]
    of the samples with x[b, i] != 0, hence z1[b, j] and their K logits;
    perturbing W2[j, k] (or b2[k]) moves only logit a2[b, k]. The perturbed
    per-sample loss log S' + m - a2'[y] is recomputed from the unperturbed
    forward pass (S' = sum_k exp(a2'[k] - m)); the unaffected samples
    contribute exactly nothing to L(w+h) - L(w-h). Every exponential is
    evaluated; for small arguments by a polynomial exact to 1 ulp.
    The MSE loss takes a plain path (every perturbed probability evaluated).
    Returns gW1, gb1, gW2, gb2.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    K = W2.shape[1]
    a1, z1, a2 = old_forward(x, W1, b1, W2, b2, act, mask)
    m, e, S = kn._softmax_parts(a2)
    idx, val, ptr = kn._nonzero(x)
    max_row = 0
    small_x = np.empty(B, np.bool_)  # the pixel shifts of sample b are small
    for b in range(B):
        max_row = max(max_row, ptr[b + 1] - ptr[b])
        small_x[b] = step * kn._max_abs(val[ptr[b]:], ptr[b + 1] - ptr[b]) <= kn.SMALL
    scale = 1.0 / (B * (2.0 * step if central else step))

    gW1 = np.empty((n_in, H))
    gb1 = np.empty(H)
    for j in numba.prange(H):
        col = np.zeros(n_in + 1)  # summed loss differences for W1[:, j] and b1[j]
        dzp = np.empty(max_row)
        dzm = np.zeros(max_row)   # stays 0 for the forward scheme
        Sp = np.empty(max_row)
        Sm = np.empty(max_row)
        diff = np.empty(max_row)
        wmax = kn._max_abs(W2[j], K)
        for b in range(B):
            mbj = mask[b, j]
            if mbj == 0.0:
                continue  # a dropped unit: perturbing its inputs changes nothing
            lo = ptr[b]
            n = ptr[b + 1] - lo
            kn._hidden_shift(a1[b, j], z1[b, j], mbj, step, val, lo, n, act, small_x[b], dzp)
            if central:
                kn._hidden_shift(a1[b, j], z1[b, j], mbj, -step, val, lo, n, act, small_x[b], dzm)
            if loss == kn.MSE:
                for t in range(n):
                    lm = kn._mse_shifted(e, b, y[b], W2[j], dzm[t]) if central else kn._mse_sample(e, b, y[b], S[b])
                    col[idx[lo + t]] += kn._mse_shifted(e, b, y[b], W2[j], dzp[t]) - lm
                continue
            small = max(kn._max_abs(dzp, n), kn._max_abs(dzm, n)) * wmax <= kn.SMALL
            for t in range(n):
                Sp[t] = 0.0
                Sm[t] = 0.0
            for k in range(K):
                w = W2[j, k]
                ek = e[b, k]
                if small:
                    for t in range(n):
                        Sp[t] += ek * kn._exp_small(dzp[t] * w)
                        Sm[t] += ek * kn._exp_small(dzm[t] * w)
                else:
                    for t in range(n):
                        Sp[t] += ek * kn._exp(dzp[t] * w)
                        Sm[t] += ek * kn._exp(dzm[t] * w)
            # loss(+) - loss(-) = log(Sp / Sm) - (dzp - dzm) * W2[j, y]; m cancels.
            # Sp - Sm is exact (Sterbenz), so log1p of it loses nothing.
            wy = W2[j, y[b]]
            if small:
                for t in range(n):
                    diff[t] = kn._log1p_small((Sp[t] - Sm[t]) / Sm[t]) - (dzp[t] - dzm[t]) * wy
            else:
                for t in range(n):
                    diff[t] = math.log1p((Sp[t] - Sm[t]) / Sm[t]) - (dzp[t] - dzm[t]) * wy
            for t in range(n):
                col[idx[lo + t]] += diff[t]
        for i in range(n_in):
            gW1[i, j] = col[i] * scale
        gb1[j] = col[n_in] * scale

    gW2, gb2 = kn._numeric_output_layer(z1, e, y, step, central, loss)
    return gW1, gb1, gW2, gb2
