"""The SPSA estimate of the gradient (Spall 1992; MeZO's form): two losses a direction, the directions made of
the iteration's draws (kernels/draws.py) within the call, never kept between iterations.

For directions z_1 ... z_q (one word of the iteration's draws each),
g = (1/q) sum_r (L(w + eps z_r) - L(w - eps z_r)) / (2 eps) z_r (central: 2q forward passes over the batch's
lit pixels, and one at w for the loss the step returns), or (1/q) sum_r (L(w + eps z_r) - L(w)) / eps z_r
(forward: q passes, and the one at w it shares). z has independent entries, standard normal (GAUSSIAN) or
+-1 (RADEMACHER), or is a standard normal vector scaled to length sqrt(P) (SPHERE: DeepZero's random gradient
estimate), so that E[z z^T] = I and the estimate is unbiased up to the O(eps^2) of the central difference.
"""

import numba
import numpy as np

from .draws import _direction
from .forward import _blocks, _forward_lit, _mean_loss
from .policy import INLINE, SERIAL
from .precision import _c


@numba.njit(**INLINE)
def _batch_loss(w, idx, val, ptr, y, n_in, H, K, act, mask, loss, loss_epsilon):
    W1, b1, W2, b2 = _blocks(w, n_in, H, K)
    a2 = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)[3]
    return _mean_loss(a2, y, loss, loss_epsilon)


@numba.njit(**SERIAL)
def _spsa_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """The SPSA source's step (step_signature): g = the estimate over the directions of the words `draws`
    (one each), knobs = (zo_eps, the distribution's code, 1 central / 0 forward, ...); returns the batch loss at
    flat. Every entry of g is written."""
    n_in = x.shape[1]
    P = flat.shape[0]
    K = (P - n_in * H - H) // (H + 1)
    eps = _c(flat, knobs[0])
    dist = np.int64(knobs[1])
    central = knobs[2] != 0.0
    q = draws.shape[0]
    here = _batch_loss(flat, idx, val, ptr, y, n_in, H, K, act, mask, loss, loss_epsilon)
    w = np.empty_like(flat)
    z = np.empty_like(flat)  # a direction, drawn once per word
    g[:] = 0.0
    for r in range(q):
        _direction(draws[r], dist, z)
        for i in range(P):
            w[i] = flat[i] + eps * z[i]
        plus = _batch_loss(w, idx, val, ptr, y, n_in, H, K, act, mask, loss, loss_epsilon)
        if central:
            for i in range(P):
                w[i] = flat[i] - eps * z[i]
            minus = _batch_loss(w, idx, val, ptr, y, n_in, H, K, act, mask, loss, loss_epsilon)
            slope = (plus - minus) / (_c(flat, 2.0) * eps)
        else:
            slope = (plus - here) / eps
        for i in range(P):
            g[i] += slope * z[i]
    for i in range(P if q > 0 else 0):
        g[i] /= _c(flat, q)
    return np.float64(here)
