"""The kernels as they were before the sparse analytic gradient and the deduplicated numeric one
(copied unchanged but for names, generic over float64/float32, with the textbook arithmetic and the
loss epsilon): the new ones must give bitwise the same results."""

import math

import numba
import numpy as np

from gradsel_cli.kernels import activations, backward, differences, forward, policy, precision


@numba.njit(**policy.SERIAL)
def old_nonzero(x):
    """Non-zero entries of each row of x (B, n_in), plus a bias entry (index n_in, value 1).

    Returns idx (nnz,) int64, val (nnz,) of x's dtype, ptr (B + 1,) int64 (CSR rows).
    """
    B, n_in = x.shape
    count = B
    for b in range(B):
        for i in range(n_in):
            if x[b, i] != 0.0:
                count += 1
    idx = np.empty(count, np.int64)
    val = np.empty(count, x.dtype)
    ptr = np.empty(B + 1, np.int64)
    t = 0
    for b in range(B):
        ptr[b] = t
        for i in range(n_in):
            if x[b, i] != 0.0:
                idx[t] = i
                val[t] = x[b, i]
                t += 1
        idx[t] = n_in
        val[t] = 1.0
        t += 1
    ptr[B] = t
    return idx, val, ptr


@numba.njit(**policy.INLINE)
def old_with_eps(d, p, eps):
    """The change of -log(p_y + eps) from the change d of -log p_y, p the probability before."""
    if eps == 0.0:
        return d
    return -math.log1p(p * math.expm1(-d) / (p + eps))


@numba.njit(**policy.INLINE)
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
        z1[j] = activations._act(a1[j], act) * maskrow[j]
    for k in range(K):
        a2[k] = 0.0
    for j in range(H):
        zj = z1[j]
        for k in range(K):
            a2[k] += zj * W2[j, k]
    for k in range(K):
        a2[k] += b2[k]


@numba.njit(**policy.SERIAL)
def old_forward(x, W1, b1, W2, b2, act, mask):
    """a1, z1 (B, H) and a2 (B, K); z1 already carries the (dropout) mask.

    Serial: a mini-batch is too small to repay waking threads (predict,
    over thousands of images, is the parallel one).
    """
    B = x.shape[0]
    H = W1.shape[1]
    K = W2.shape[1]
    a1 = np.empty((B, H), W1.dtype)
    z1 = np.empty((B, H), W1.dtype)
    a2 = np.empty((B, K), W1.dtype)
    for b in range(B):
        old_sample_forward(x[b], W1, b1, W2, b2, act, mask[b], a1[b], z1[b], a2[b])
    return a1, z1, a2


@numba.njit(**policy.SERIAL)
def old_backprop_output(z1, da2, W2, pre, act, mask):
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
            s = precision._c(z1, 0.0)
            for k in range(K):
                gW2[j, k] += zj * da2[b, k]
                s += da2[b, k] * W2[j, k]
            dpre[b, j] = s * activations._act_deriv(pre[b, j], activations._act(pre[b, j], act), act) * mask[b, j]
    return gW2, gb2, dpre


@numba.njit(**policy.SERIAL)
def old_analytic(x, y, W1, b1, W2, b2, act, mask, loss, eps):
    """Loss (with eps) and the exact gradient of the loss without eps, by backpropagation:
    value, gW1, gb1, gW2, gb2."""
    B, n_in = x.shape
    H = W1.shape[1]
    a1, z1, a2 = old_forward(x, W1, b1, W2, b2, act, mask)
    m, e, S = forward._softmax_parts(a2)
    value = forward._mean_loss(a2, y, loss, eps)
    da2 = backward._loss_grad_logits(e, S, y, loss)
    gW2, gb2, da1 = old_backprop_output(z1, da2, W2, a1, act, mask)
    gW1 = np.zeros((n_in, H), W1.dtype)
    gb1 = np.zeros(H, W1.dtype)
    for b in range(B):
        for j in range(H):
            gb1[j] += da1[b, j]
        for i in range(n_in):
            v = x[b, i]
            if v != 0.0:
                for j in range(H):
                    gW1[i, j] += v * da1[b, j]
    return value, gW1, gb1, gW2, gb2


@numba.njit(**policy.PARALLEL)
def old_numeric(x, y, W1, b1, W2, b2, act, mask, step, central, loss, textbook, eps):
    """Finite-difference gradient, each perturbed loss re-evaluated incrementally.

    Perturbing W1[i, j] (or b1[j], as a pixel of value 1) moves only a1[b, j]
    of the samples with x[b, i] != 0, hence z1[b, j] and their K logits;
    perturbing W2[j, k] (or b2[k]) moves only logit a2[b, k]. The perturbed
    per-sample loss log S' + m - a2'[y] is recomputed from the unperturbed
    forward pass (S' = sum_k exp(a2'[k] - m)); the unaffected samples
    contribute exactly nothing to L(w+h) - L(w-h). Every exponential is
    evaluated; for small arguments by a polynomial exact to 1 ulp.
    The MSE loss takes a plain path (every perturbed probability evaluated).

    `textbook`: each perturbed batch loss is instead summed as a number over
    all samples (the unaffected ones with their unperturbed loss, in sample
    order) and the two sums are subtracted (see the module docstring).
    Returns gW1, gb1, gW2, gb2.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    K = W2.shape[1]
    a1, z1, a2 = old_forward(x, W1, b1, W2, b2, act, mask)
    m, e, S = forward._softmax_parts(a2)
    base = forward._sample_losses(a2, m, e, S, y, loss, eps)  # textbook: the unaffected samples' losses
    idx, val, ptr = old_nonzero(x)
    max_row = 0
    small_x = np.empty(B, np.bool_)  # the pixel shifts of sample b are small
    for b in range(B):
        max_row = max(max_row, ptr[b + 1] - ptr[b])
        small_x[b] = step * differences._max_abs(val[ptr[b]:], ptr[b + 1] - ptr[b]) <= precision.SMALL
    scale = differences._fd_scale(B, step, central)
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
        diff = np.empty(max_row, dt)
        lp = np.empty(max_row, dt)
        lm = np.empty(max_row, dt)
        wmax = differences._max_abs(W2[j], K)
        for b in range(B):
            mbj = mask[b, j]
            lo = ptr[b]
            n = ptr[b + 1] - lo if mbj != 0.0 else 0  # a dropped unit: perturbing its inputs changes nothing
            if n:
                differences._hidden_shift(a1[b, j], z1[b, j], mbj, step, val, lo, n, act, small_x[b], dzp)
                if central:
                    differences._hidden_shift(a1[b, j], z1[b, j], mbj, -step, val, lo, n, act, small_x[b], dzm)
            if n and loss == forward.MSE:
                for t in range(n):
                    lm[t] = differences._mse_shifted(e, b, y[b], W2[j], dzm[t]) if central else base[b]
                    lp[t] = differences._mse_shifted(e, b, y[b], W2[j], dzp[t])
                    diff[t] = lp[t] - lm[t]
            elif n:
                small = max(differences._max_abs(dzp, n), differences._max_abs(dzm, n)) * wmax <= precision.SMALL
                for t in range(n):
                    Sp[t] = 0.0
                    Sm[t] = 0.0
                for k in range(K):
                    w = W2[j, k]
                    ek = e[b, k]
                    if small:
                        for t in range(n):
                            Sp[t] += ek * precision._exp_small(dzp[t] * w)
                            Sm[t] += ek * precision._exp_small(dzm[t] * w)
                    else:
                        for t in range(n):
                            Sp[t] += ek * precision._exp(dzp[t] * w)
                            Sm[t] += ek * precision._exp(dzm[t] * w)
                wy = W2[j, y[b]]
                # exact: loss(+) - loss(-) = log(Sp / Sm) - (dzp - dzm) * W2[j, y]; m cancels.
                # Sp - Sm is exact (Sterbenz), so log1p of it loses nothing. textbook: each loss as a number.
                if textbook:
                    for t in range(n):
                        lp[t] = forward._cross_entropy(Sp[t], m[b], a2[b, y[b]], e[b, y[b]], dzp[t] * wy, eps)
                        lm[t] = forward._cross_entropy(Sm[t], m[b], a2[b, y[b]], e[b, y[b]], dzm[t] * wy, eps)
                elif small:
                    for t in range(n):
                        diff[t] = precision._log1p_small((Sp[t] - Sm[t]) / Sm[t]) - (dzp[t] - dzm[t]) * wy
                else:
                    for t in range(n):
                        diff[t] = math.log1p((Sp[t] - Sm[t]) / Sm[t]) - (dzp[t] - dzm[t]) * wy
                if eps != 0.0 and not textbook:
                    for t in range(n):
                        diff[t] = old_with_eps(diff[t], e[b, y[b]] * precision._exp(dzm[t] * wy) / Sm[t], eps)
            if textbook:
                for t in range(n):
                    Lp[idx[lo + t]] += lp[t]
                    Lm[idx[lo + t]] += lm[t]
                    last[idx[lo + t]] = b
                for i in range(n_in + 1):
                    if last[i] != b:
                        Lp[i] += base[b]
                        Lm[i] += base[b]
            else:
                for t in range(n):
                    col[idx[lo + t]] += diff[t]
        for i in range(n_in + 1):
            g = differences._textbook_difference(Lp[i], Lm[i], B, step, central) if textbook else col[i] * scale
            if i < n_in:
                gW1[i, j] = g
            else:
                gb1[j] = g

    gW2, gb2 = differences._numeric_output_layer(z1, a2, m, e, y, step, central, loss, textbook, eps)
    return gW1, gb1, gW2, gb2
