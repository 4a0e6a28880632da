"""The SPSA estimate of the gradient (Spall 1992; MeZO's form): two losses a direction, the directions made of
the iteration's draws (kernels/draws.py) within the call, never kept between iterations.

For directions z_1 ... z_q (one word of the iteration's draws each),
g = (1/q) sum_r (L(w + eps z_r) - L(w - eps z_r)) / (2 eps) z_r (central: two losses a direction, and the one
at w the step returns), or (1/q) sum_r (L(w + eps z_r) - L(w)) / eps z_r (forward: one, and the one at w it
shares). z has independent entries, standard normal (GAUSSIAN) or +-1 (RADEMACHER), or is a standard normal
vector scaled to length sqrt(P) (SPHERE: DeepZero's random gradient estimate), so that E[z z^T] = I and the
estimate is unbiased up to the O(eps^2) of the central difference.
"""

import numba
import numpy as np

from .draws import _add_along, _average, _direction
from .forward import _blocks, _forward_lit, _mean_loss, _sample_output
from .policy import INLINE, SERIAL
from .precision import _c
from .tangent import _pre_tangent


@numba.njit(**INLINE)
def _moved_loss(a1, ta1, e, W2, b2, Z2, zb2, act, mask, y, loss, loss_epsilon):
    """The mean loss at w + e z, from the forward pass's pre-activations a1 at w and the direction's tangent
    ta1 = x Z1 + zb1 (kernels/tangent.py): a1 + e ta1 are the moved pre-activations, exactly so but for
    rounding, and the output layer is moved itself, W2 + e Z2 and b2 + e zb2."""
    B, H = a1.shape
    K = W2.shape[1]
    W2m = np.empty((H, K), W2.dtype)
    for j in range(H):
        for k in range(K):
            W2m[j, k] = W2[j, k] + e * Z2[j, k]
    b2m = np.empty(K, b2.dtype)
    for k in range(K):
        b2m[k] = b2[k] + e * zb2[k]
    pre = np.empty(H, a1.dtype)
    z1 = np.empty((B, H), a1.dtype)
    a2 = np.empty((B, K), a1.dtype)
    for b in range(B):
        for j in range(H):
            pre[j] = a1[b, j] + e * ta1[b, j]
        _sample_output(pre, W2m, b2m, act, mask[b], z1[b], a2[b])
    return _mean_loss(a2, y, loss, loss_epsilon)


@numba.njit(**SERIAL)
def _spsa_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """The SPSA source's step (step_signature): g = the estimate over the directions of the words `draws`
    (one each), knobs = (zo_eps, the distribution's code, 1 central / 0 forward, ...); returns the batch loss at
    flat. Every entry of g is written. One forward pass at w; then for each direction z, the tangent of the
    hidden pre-activations over the lit pixels, from which the losses at w +- eps z take only the hidden units
    and the output layer (_moved_loss). With one direction, z is drawn into g and scaled there."""
    n_in = x.shape[1]
    P = flat.shape[0]
    K = (P - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    a1, _, _, a2, _, _ = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)
    here = _mean_loss(a2, y, loss, loss_epsilon)
    eps = _c(flat, knobs[0])
    dist = np.int64(knobs[1])
    central = knobs[2] != 0.0
    q = draws.shape[0]
    z = g if q == 1 else np.empty_like(flat)  # a direction, drawn once per word
    Z1, zb1, Z2, zb2 = _blocks(z, n_in, H, K)
    if q != 1:
        g[:] = 0.0
    for r in range(q):
        _direction(draws[r], dist, z)
        ta1 = _pre_tangent(idx, val, ptr, Z1, zb1)
        plus = _moved_loss(a1, ta1, eps, W2, b2, Z2, zb2, act, mask, y, loss, loss_epsilon)
        if central:
            minus = _moved_loss(a1, ta1, -eps, W2, b2, Z2, zb2, act, mask, y, loss, loss_epsilon)
            slope = (plus - minus) / (_c(flat, 2.0) * eps)
        else:
            slope = (plus - here) / eps
        _add_along(g, z, slope, q)
    _average(g, q)
    return np.float64(here)
