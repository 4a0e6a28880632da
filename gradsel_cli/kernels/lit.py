"""Lit pixels: the non-zero entries of each image, and the products over them alone."""

import numba
import numpy as np

from .policy import INLINE, SERIAL


@numba.njit(**SERIAL)
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


@numba.njit(**INLINE)
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


@numba.njit(**SERIAL)
def _by_pixel(idx, ptr, n_pix):
    """The rows of _nonzero grouped by pixel: the entries t of pixel i are order[pptr[i]:pptr[i + 1]], in
    sample order (a counting sort, stable). n_pix: the number of pixels, the bias entry's included."""
    pptr = np.zeros(n_pix + 1, np.int64)
    for t in range(idx.shape[0]):
        pptr[idx[t] + 1] += 1
    for i in range(n_pix):
        pptr[i + 1] += pptr[i]
    fill = pptr[:n_pix].copy()
    order = np.empty(idx.shape[0], np.int64)
    for t in range(ptr[-1]):
        i = idx[t]
        order[fill[i]] = t
        fill[i] += 1
    return order, pptr
