"""The forward gradient (Baydin, Pearlmutter, Syme, Wood & Torr, 2022): g = (1/q) sum_r (grad L . v_r) v_r over q
standard normal directions v_r of all the weights, each directional derivative exact to rounding by the tangent
pass (kernels/tangent.py): no difference taken, no backward pass. The directions are made of the iteration's
draws (kernels/draws.py) within the call, never kept between iterations."""

import numba
import numpy as np

from .backward import _loss_grad_logits
from .draws import GAUSSIAN, _add_along, _average, _direction
from .forward import _blocks, _forward_lit, _mean_loss, _softmax_parts
from .policy import SERIAL
from .tangent import _directional, _pre_tangent


@numba.njit(**SERIAL)
def _along(x, y, idx, val, ptr, flat, H, act, mask, loss, v):
    """The mean loss's derivative at flat along v (both in the layout of Params) on the batch of lit pixels idx,
    val, ptr (x: only its width read), by the tangent pass."""
    n_in = x.shape[1]
    K = (flat.shape[0] - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    V1, vb1, V2, vb2 = _blocks(v, n_in, H, K)
    a1, _, z1, a2, _, _ = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)
    _, e, S = _softmax_parts(a2)
    da2 = _loss_grad_logits(e, S, y, loss)
    return _directional(a1, z1, _pre_tangent(idx, val, ptr, V1, vb1), W2, V2, vb2, act, mask, da2)


@numba.njit(**SERIAL)
def _forward_gradient_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """The forward source's step (step_signature): g = the mean of (grad L . v) v over the directions of the
    words `draws` (one each); returns the batch loss at flat. Every entry of g is written."""
    n_in = x.shape[1]
    P = flat.shape[0]
    K = (P - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    a1, _, z1, a2, _, _ = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)
    _, e, S = _softmax_parts(a2)
    da2 = _loss_grad_logits(e, S, y, loss)
    q = draws.shape[0]
    v = g if q == 1 else np.empty_like(flat)  # a direction; with one, drawn into g and scaled there
    V1, vb1, V2, vb2 = _blocks(v, n_in, H, K)
    if q != 1:
        g[:] = 0.0
    for r in range(q):
        _direction(draws[r], GAUSSIAN, v)
        d = _directional(a1, z1, _pre_tangent(idx, val, ptr, V1, vb1), W2, V2, vb2, act, mask, da2)
        _add_along(g, v, d, q)
    _average(g, q)
    return np.float64(_mean_loss(a2, y, loss, loss_epsilon))
