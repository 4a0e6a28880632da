"""Forward-mode differentiation of the network along a direction of its weights: the tangent pass.

For a direction v of all the weights (V1, vb1, V2, vb2, in the layout of Params), the pre-activations' tangent is
ta1 = x V1 + vb1 (over the lit pixels, as the forward pass), the masked activations' tz1 = act'(a1) ta1 mask, the
logits' ta2 = tz1 W2 + z1 V2 + vb2, and the directional derivative of the mean loss is sum_b sum_k
dL/da2[b, k] ta2[b, k], with the backward pass's dL/da2 (kernels/backward._loss_grad_logits: the derivative of
-log p_y whatever loss_epsilon, as backpropagation's). No difference is taken: it is exact to rounding.
"""

import numba
import numpy as np

from .activations import _act, _act_deriv
from .lit import _lit_dot
from .policy import INLINE
from .precision import _c


@numba.njit(**INLINE)
def _pre_tangent(idx, val, ptr, V1, vb1):
    """ta1 = x V1 + vb1 (B, H) over the lit pixels: each entry summed over the lit pixels ascending from 0, then
    the bias added, as the forward pass sums a1."""
    B = ptr.shape[0] - 1
    H = V1.shape[1]
    ta1 = np.zeros((B, H), V1.dtype)
    for b in range(B):
        _lit_dot(idx, val, ptr[b], ptr[b + 1] - 1, V1, ta1[b])
        for j in range(H):
            ta1[b, j] += vb1[j]
    return ta1


@numba.njit(**INLINE)
def _directional(a1, z1, ta1, W2, V2, vb2, act, mask, da2):
    """sum_b sum_k da2[b, k] ta2[b, k]: the mean loss's derivative along the direction whose pre-activation
    tangent is ta1 and whose output-layer part is V2, vb2, at the forward pass a1, z1 (masked)."""
    B, H = a1.shape
    K = W2.shape[1]
    ta2 = np.empty(K, a1.dtype)
    total = _c(a1, 0.0)
    for b in range(B):
        for k in range(K):
            ta2[k] = vb2[k]
        for j in range(H):
            tz = _act_deriv(a1[b, j], _act(a1[b, j], act), act) * ta1[b, j] * mask[b, j]
            zj = z1[b, j]
            for k in range(K):
                ta2[k] += tz * W2[j, k] + zj * V2[j, k]
        for k in range(K):
            total += da2[b, k] * ta2[k]
    return total
