"""What the training images cannot see: the part of a trained network's first-layer change that lies outside the
span of its training images.

A hidden unit's pre-activation on an image x is x·W1[:, j] + b1[j], so a change of W1 moves the network's outputs
on the training images only through its projection on the span of their pixel vectors (at most one dimension
per training image: 20 of 784 at k = 2). Backprop's gradient of W1 is xᵀδ over a batch of training images, so
every step it takes lies in that span; a random direction (spsa, forward) has most of its length outside it,
and its steps there add up to a random walk that no training loss feels and every test image does.
"""

import numpy as np

from ..core.network import Params

RANK_TOLERANCE = 1e-10  # singular values below this times the largest are taken as 0 (repeated images)


def split(change: np.ndarray, x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A change of W1 (n_in, H) as (seen, unseen): its projection on the span of the training images (rows of
    `x_train`) and the rest, on which no training image's pre-activation depends."""
    x = np.asarray(x_train, dtype=np.float64)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    basis = vt[s > RANK_TOLERANCE * s[0]].T if s.size and s[0] > 0 else np.zeros((x.shape[1], 0))
    seen = basis @ (basis.T @ np.asarray(change, dtype=np.float64))
    return seen, change - seen


def unseen_split(params: Params, init: Params, x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W1's change from `init` to `params` as (seen, unseen): see split."""
    return split(params.W1 - init.W1, x_train)


def drop_unseen(params: Params, init: Params, x_train: np.ndarray) -> Params:
    """`params` with W1's unseen change removed (W1 = init's W1 + its seen change): the same outputs on every
    training image, to rounding, and what its test accuracy owes to the random walk outside their span."""
    seen, _ = unseen_split(params, init, x_train)
    out = Params(params.flat.copy(), params.hidden, params.n_in, params.n_out, params.batch_norm)
    out.W1[...] = init.W1 + seen
    return out
