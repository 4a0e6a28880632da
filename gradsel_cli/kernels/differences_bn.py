"""The numeric gradient through batch norm, whose statistics couple the samples of a batch."""

import math

import numba
import numpy as np

from .activations import _act
from .differences import _fd_scale, _mse_shifted, _numeric_output_layer, _textbook_difference
from .forward import (
    BN_EPS,
    CROSS_ENTROPY,
    _ce_change,
    _cross_entropy,
    _forward,
    _mse_sample,
    _sample_losses,
    _softmax_parts,
)
from .policy import PARALLEL, SERIAL
from .precision import _c, _exp

# The batch norm couples the samples of a batch: perturbing one weight moves every sample's
# normalised unit, so its finite differences have a kernel of their own.


@numba.njit(**SERIAL)
def _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, fd_textbook, loss_epsilon):
    """Sum over the batch of (per-sample loss with unit j's pre-activations u_new) - (unperturbed loss);
    `fd_textbook`: the sum of the perturbed per-sample losses themselves."""
    total = _c(z1, 0.0)
    for b in range(u_new.shape[0]):
        dz = _act(u_new[b], act) * mask[b, j] - z1[b, j]
        if loss == CROSS_ENTROPY:
            s = _c(z1, 0.0)
            for k in range(W2.shape[1]):
                s += e[b, k] * _exp(dz * W2[j, k])
            if fd_textbook:
                total += _cross_entropy(s, m[b], a2[b, y[b]], e[b, y[b]], dz * W2[j, y[b]], loss_epsilon)
            else:
                total += _ce_change(s, S[b], dz * W2[j, y[b]], _c(z1, 0.0), e[b, y[b]], loss_epsilon, False)
        elif fd_textbook:
            total += _mse_shifted(e, b, y[b], W2[j], dz)
        else:
            total += _mse_shifted(e, b, y[b], W2[j], dz) - _mse_sample(e, b, y[b], S[b])
    return total


@numba.njit(**SERIAL)
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


@numba.njit(**PARALLEL)
def _numeric_bn(x, y, W1, b1, W2, b2, gamma, beta, act, mask, fd_step, fd_central, loss, fd_textbook, loss_epsilon):
    """Finite differences through the batch norm: gW1, gb1, gW2, gb2, ggamma, gbeta.

    Perturbing W1[i, j] moves a1[b, j] of the samples with x[b, i] != 0, and
    with it the batch mean and variance of unit j: unit j of every sample is
    renormalised and every sample's loss re-evaluated. `fd_textbook`: the
    perturbed batch losses are summed as numbers and subtracted.
    """
    B, n_in = x.shape
    H = W1.shape[1]
    dt = W1.dtype
    a1, _, z1, a2, ahat, _ = _forward(x, W1, b1, W2, b2, act, mask, gamma, beta)
    m, e, S = _softmax_parts(a2)
    base = _sample_losses(a2, m, e, S, y, loss, loss_epsilon)
    base_sum = _c(fd_step, 0.0)  # textbook, forward scheme: the unperturbed batch loss, summed
    for b in range(B):
        base_sum += base[b]
    used = np.zeros(n_in + 1, np.bool_)  # pixels non-zero in some sample, and the bias (n_in)
    used[n_in] = True
    for b in range(B):
        for i in range(n_in):
            if x[b, i] != 0.0:
                used[i] = True
    cols = np.flatnonzero(used)
    scale = _fd_scale(B, fd_step, fd_central)
    one = _c(fd_step, 1.0)
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
                a_col[b] = a1[b, j] + fd_step * (x[b, i] if i < n_in else one)
            _normalise(a_col, gamma[j], beta[j], u_new)
            d = _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, fd_textbook, loss_epsilon)
            dm = base_sum if fd_textbook else _c(fd_step, 0.0)
            if fd_central:
                for b in range(B):
                    a_col[b] = a1[b, j] - fd_step * (x[b, i] if i < n_in else one)
                _normalise(a_col, gamma[j], beta[j], u_new)
                dm = _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, fd_textbook, loss_epsilon)
            g = _textbook_difference(d, dm, B, fd_step, fd_central) if fd_textbook else (d - dm) * scale
            if i < n_in:
                gW1[i, j] = g
            else:
                gb1[j] = g
        for which in range(2):  # 0: gamma[j], 1: beta[j]
            d = _c(fd_step, 0.0)
            dm = base_sum if fd_textbook else _c(fd_step, 0.0)
            for sgn in (one, -one):
                if sgn < 0 and not fd_central:
                    break
                for b in range(B):
                    if which == 0:
                        u_new[b] = (gamma[j] + sgn * fd_step) * ahat[b, j] + beta[j]
                    else:
                        u_new[b] = gamma[j] * ahat[b, j] + beta[j] + sgn * fd_step
                change = _unit_change(u_new, j, z1, mask, act, a2, m, e, S, W2, y, loss, fd_textbook, loss_epsilon)
                if sgn > 0:
                    d = change
                else:
                    dm = change
            g = _textbook_difference(d, dm, B, fd_step, fd_central) if fd_textbook else (d - dm) * scale
            if which == 0:
                ggamma[j] = g
            else:
                gbeta[j] = g
    gW2, gb2 = _numeric_output_layer(z1, a2, m, e, y, fd_step, fd_central, loss, fd_textbook, loss_epsilon)
    return gW1, gb1, gW2, gb2, ggamma, gbeta
