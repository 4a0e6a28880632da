"""Every Numba kernel of gradsel, and nothing else (no I/O, no Rich, no Click).

The network is ``x (B, n_in) -> a1 = x W1 + b1 -> z1 = act(a1) * mask ->
a2 = z1 W2 + b2 -> mean softmax cross-entropy``. Kernels are private; the
checked public wrappers live in ``network.py``.

Determinism: a ``prange`` loop owns disjoint output elements and every sum is
done serially in a fixed order, so results are bitwise identical whatever the
thread count.
"""

import math

import numba
import numpy as np

# The one decorator policy (STYLE.md): cached, no fastmath; parallel only
# where a prange exists.
_SERIAL = dict(cache=True, nogil=True, error_model="numpy")
_PARALLEL = dict(_SERIAL, parallel=True)
_INLINE = dict(_SERIAL, inline="always")

# Activation codes; the names are mapped in network.py.
SIGMOID, TANH, RELU, LEAKY_RELU, MISH = 0, 1, 2, 3, 4
LEAKY_SLOPE = 0.01


@numba.njit(**_INLINE)
def _softplus(a):
    return math.log1p(math.exp(-abs(a))) + max(a, 0.0)


@numba.njit(**_INLINE)
def _act(a, act):
    """Hidden activation of one pre-activation value."""
    if act == SIGMOID:
        return 1.0 / (1.0 + math.exp(-a))
    if act == TANH:
        return math.tanh(a)
    if act == RELU:
        return a if a > 0.0 else 0.0
    if act == LEAKY_RELU:
        return a if a > 0.0 else LEAKY_SLOPE * a
    return a * math.tanh(_softplus(a))  # MISH


@numba.njit(**_INLINE)
def _act_deriv(a, z, act):
    """d act / d a at pre-activation `a` with value `z = act(a)` (ReLU'(0) = 0)."""
    if act == SIGMOID:
        return z * (1.0 - z)
    if act == TANH:
        return 1.0 - z * z
    if act == RELU:
        return 1.0 if a > 0.0 else 0.0
    if act == LEAKY_RELU:
        return 1.0 if a > 0.0 else LEAKY_SLOPE
    t = math.tanh(_softplus(a))  # MISH
    sig = 1.0 / (1.0 + math.exp(-a))
    return t + a * (1.0 - t * t) * sig


@numba.njit(**_SERIAL)
def _nonzero(x):
    """Non-zero entries of each row of x (B, n_in), plus a bias entry (index n_in, value 1).

    Returns idx (nnz,) int64, val (nnz,) float64, ptr (B + 1,) int64 (CSR rows).
    """
    B, n_in = x.shape
    count = B
    for b in range(B):
        for i in range(n_in):
            if x[b, i] != 0.0:
                count += 1
    idx = np.empty(count, np.int64)
    val = np.empty(count, np.float64)
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


@numba.njit(**_INLINE)
def _sample_forward(xrow, W1, b1, W2, b2, act, maskrow, a1, z1, a2):
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
        z1[j] = _act(a1[j], act) * maskrow[j]
    for k in range(K):
        a2[k] = 0.0
    for j in range(H):
        zj = z1[j]
        for k in range(K):
            a2[k] += zj * W2[j, k]
    for k in range(K):
        a2[k] += b2[k]


@numba.njit(**_PARALLEL)
def _forward(x, W1, b1, W2, b2, act, mask):
    """a1, z1 (B, H) and a2 (B, K); z1 already carries the (dropout) mask."""
    B = x.shape[0]
    H = W1.shape[1]
    K = W2.shape[1]
    a1 = np.empty((B, H))
    z1 = np.empty((B, H))
    a2 = np.empty((B, K))
    for b in numba.prange(B):
        _sample_forward(x[b], W1, b1, W2, b2, act, mask[b], a1[b], z1[b], a2[b])
    return a1, z1, a2


@numba.njit(**_SERIAL)
def _softmax_parts(a2):
    """Per-sample shift m = max_k a2, e = exp(a2 - m) (B, K) and S = sum_k e (B,)."""
    B, K = a2.shape
    m = np.empty(B)
    e = np.empty((B, K))
    S = np.empty(B)
    for b in range(B):
        mb = a2[b, 0]
        for k in range(1, K):
            mb = max(mb, a2[b, k])
        s = 0.0
        for k in range(K):
            e[b, k] = math.exp(a2[b, k] - mb)
            s += e[b, k]
        m[b] = mb
        S[b] = s
    return m, e, S


@numba.njit(**_SERIAL)
def _mean_loss(a2, y):
    """Mean softmax cross-entropy, log-sum-exp form, summed serially."""
    m, e, S = _softmax_parts(a2)
    total = 0.0
    for b in range(a2.shape[0]):
        total += math.log(S[b]) + m[b] - a2[b, y[b]]
    return total / a2.shape[0]


@numba.njit(**_SERIAL)
def _loss(x, y, W1, b1, W2, b2, act, mask):
    a1, z1, a2 = _forward(x, W1, b1, W2, b2, act, mask)
    return _mean_loss(a2, y)


@numba.njit(**_PARALLEL)
def _predict(x, W1, b1, W2, b2, act):
    """Predicted class of every row of x (N, n_in), no mask (test time)."""
    N = x.shape[0]
    H = W1.shape[1]
    K = W2.shape[1]
    out = np.empty(N, np.int64)
    n_chunks = (N + 255) // 256
    for c in numba.prange(n_chunks):
        a1 = np.empty(H)
        z1 = np.empty(H)
        a2 = np.empty(K)
        ones = np.ones(H)
        for n in range(c * 256, min(N, (c + 1) * 256)):
            _sample_forward(x[n], W1, b1, W2, b2, act, ones, a1, z1, a2)
            best = 0
            for k in range(1, K):
                if a2[k] > a2[best]:
                    best = k
            out[n] = best
    return out


@numba.njit(**_SERIAL)
def _analytic(x, y, W1, b1, W2, b2, act, mask):
    """Loss and its exact gradient by backpropagation: loss, gW1, gb1, gW2, gb2."""
    B, n_in = x.shape
    H = W1.shape[1]
    K = W2.shape[1]
    a1, z1, a2 = _forward(x, W1, b1, W2, b2, act, mask)
    m, e, S = _softmax_parts(a2)
    loss = 0.0
    da2 = np.empty((B, K))  # d loss / d a2 = (softmax - onehot) / B
    for b in range(B):
        loss += math.log(S[b]) + m[b] - a2[b, y[b]]
        for k in range(K):
            da2[b, k] = e[b, k] / S[b] / B
        da2[b, y[b]] -= 1.0 / B
    loss /= B
    gW2 = np.zeros((H, K))
    gb2 = np.zeros(K)
    da1 = np.empty((B, H))
    for b in range(B):
        for k in range(K):
            gb2[k] += da2[b, k]
        for j in range(H):
            zj = z1[b, j]
            s = 0.0
            for k in range(K):
                gW2[j, k] += zj * da2[b, k]
                s += da2[b, k] * W2[j, k]
            zraw = _act(a1[b, j], act)
            da1[b, j] = s * _act_deriv(a1[b, j], zraw, act) * mask[b, j]
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
    return loss, gW1, gb1, gW2, gb2


@numba.njit(**_PARALLEL)
def _numeric(x, y, W1, b1, W2, b2, act, mask, step, central):
    """Finite-difference gradient, each perturbed loss re-evaluated incrementally.

    Perturbing W1[i, j] (or b1[j], as a pixel of value 1) moves only a1[b, j]
    of the samples with x[b, i] != 0, hence z1[b, j] and their K logits;
    perturbing W2[j, k] (or b2[k]) moves only logit a2[b, k]. The perturbed
    per-sample loss is recomputed from the unperturbed forward pass; the
    unaffected samples contribute exactly nothing to L(w+h) - L(w-h).
    Returns gW1, gb1, gW2, gb2.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    K = W2.shape[1]
    a1, z1, a2 = _forward(x, W1, b1, W2, b2, act, mask)
    m, e, S = _softmax_parts(a2)
    logS = np.log(S)
    idx, val, ptr = _nonzero(x)
    max_row = 0
    for b in range(B):
        max_row = max(max_row, ptr[b + 1] - ptr[b])
    scale = 1.0 / (B * (2.0 * step if central else step))

    gW1 = np.empty((n_in, H))
    gb1 = np.empty(H)
    for j in numba.prange(H):
        col = np.zeros(n_in + 1)  # summed loss differences for W1[:, j] and b1[j]
        dzp = np.empty(max_row)
        dzm = np.empty(max_row)
        Sp = np.empty(max_row)
        Sm = np.empty(max_row)
        for b in range(B):
            mbj = mask[b, j]
            if mbj == 0.0:
                continue  # a dropped unit: perturbing its inputs changes nothing
            lo = ptr[b]
            n = ptr[b + 1] - lo
            abj = a1[b, j]
            zbj = z1[b, j]
            for t in range(n):
                dzp[t] = _act(abj + step * val[lo + t], act) * mbj - zbj
                Sp[t] = 0.0
            if central:
                for t in range(n):
                    dzm[t] = _act(abj - step * val[lo + t], act) * mbj - zbj
                    Sm[t] = 0.0
            for k in range(K):
                w = W2[j, k]
                ek = e[b, k]
                for t in range(n):
                    Sp[t] += ek * math.exp(dzp[t] * w)
                if central:
                    for t in range(n):
                        Sm[t] += ek * math.exp(dzm[t] * w)
            wy = W2[j, y[b]]
            if central:
                for t in range(n):
                    col[idx[lo + t]] += (math.log(Sp[t]) - dzp[t] * wy) - (math.log(Sm[t]) - dzm[t] * wy)
            else:
                for t in range(n):
                    col[idx[lo + t]] += (math.log(Sp[t]) - dzp[t] * wy) - logS[b]
        for i in range(n_in):
            gW1[i, j] = col[i] * scale
        gb1[j] = col[n_in] * scale

    gW2 = np.empty((H, K))
    gb2 = np.empty(K)
    for j in numba.prange(H + 1):  # row H stands for b2 (a hidden value of 1)
        for k in range(K):
            d = 0.0
            for b in range(B):
                zbj = z1[b, j] if j < H else 1.0
                dp = step * zbj
                sp = 0.0
                sm = 0.0
                for kk in range(K):
                    if kk == k:
                        sp += e[b, kk] * math.exp(dp)
                        sm += e[b, kk] * math.exp(-dp)
                    else:
                        sp += e[b, kk]
                        sm += e[b, kk]
                on_label = dp if k == y[b] else 0.0
                if central:
                    d += (math.log(sp) - on_label) - (math.log(sm) + on_label)
                else:
                    d += (math.log(sp) - on_label) - logS[b]
            if j < H:
                gW2[j, k] = d * scale
            else:
                gb2[k] = d * scale
    return gW1, gb1, gW2, gb2
