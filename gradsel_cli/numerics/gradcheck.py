"""Gradient diagnostics: how far the finite-difference gradient is from backpropagation.

For one mini-batch (the first of a run's batch sequence), at the initial weights
and after some iterations of analytic training, the numeric gradient at each
finite-difference step h is compared with the analytic one, block by block
(W1, b1, W2, b2) and over all weights: the relative error
||g_num - g_ana|| / ||g_ana|| and the cosine similarity. Too large an h gives
truncation error (O(h^2) central, O(h) forward); too small an h gives rounding
error (about eps * |L| / h): the error against h is V-shaped. The config's
precision, finite-difference arithmetic and loss epsilon apply (the analytic
gradient, as in training, ignores the loss epsilon).
"""

import numpy as np

from .. import data
from ..config import GRADCHECK_STEPS as DEFAULT_STEPS
from ..config import TrainConfig
from . import network
from .network import DEFAULTS, Params, Settings
from .training import Dataset, batch_indices, train

BLOCKS = ("W1", "b1", "W2", "b2")


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def compare(numeric: np.ndarray, analytic: np.ndarray) -> dict:
    """Relative error ||n - a|| / ||a||, cosine similarity and 1 - cosine of two gradients (None where
    undefined). 1 - cos is computed as ||n/|n| - a/|a|||^2 / 2, which keeps its digits near cos = 1."""
    n, a = np.ravel(numeric), np.ravel(analytic)
    na, nn = float(np.sqrt(np.dot(a, a))), float(np.sqrt(np.dot(n, n)))
    diff = float(np.sqrt(np.dot(n - a, n - a)))
    rel = diff / na if na > 0 else (0.0 if diff == 0 else float("inf"))
    if nn > 0 and na > 0:
        u = n / nn - a / na
        gap = 0.5 * float(np.dot(u, u))
        cos = float(np.dot(n, a)) / (nn * na)
    else:
        gap = cos = float("nan")
    return {"rel_diff": _finite_or_none(rel), "cosine": _finite_or_none(cos), "one_minus_cosine": _finite_or_none(gap)}


def check_steps(params: Params, x, y, steps=DEFAULT_STEPS, settings: Settings = DEFAULTS) -> list[dict]:
    """For each step h (settings' fd_step replaced by it): per block and over all weights, the numeric gradient
    against the analytic one.

    x : (B, n_in) float, y : (B,) int; both gradients in the precision of `params`.
    """
    if not steps:
        raise ValueError("give at least one finite-difference step")
    analytic = network.analytic_gradient(params, x, y, settings)
    rows = []
    for h in steps:
        numeric = network.numeric_gradient(params, x, y, settings._replace(fd_step=h))
        blocks = {name: compare(getattr(numeric, name), getattr(analytic, name)) for name in BLOCKS}
        rows.append({"step": float(h), "blocks": blocks, "all": compare(numeric.flat, analytic.flat)})
    return rows


def best_step(rows: list[dict]) -> float | None:
    """The step with the smallest relative error over all weights."""
    scored = [(r["all"]["rel_diff"], r["step"]) for r in rows if r["all"]["rel_diff"] is not None]
    return min(scored)[1] if scored else None


def gradcheck(config: TrainConfig, steps=DEFAULT_STEPS, raw=None, progress=None) -> dict:
    """Relative error and cosine per block and step, at initialisation and after `config.iters`
    iterations of analytic training, on the first mini-batch of the run.

    Only the plain network is checked (no dropout or batch norm); ``progress(done, total, loss)``
    follows the training.
    """
    config = config.replace(method="analytic").validate()
    if config.batch_norm or config.dropout:
        raise ValueError("gradcheck checks the plain network: drop --batch-norm and --dropout")
    ds = Dataset.for_config(data.load_mnist_raw() if raw is None else raw, config)
    idx = batch_indices(config, len(ds.y_train))[0]
    x, y = ds.x_train[idx], ds.y_train[idx]  # (B, 784), (B,)
    start = network.init_params(config.hidden, config.seed, config.init_std, config.init, dtype=config.precision)
    trained = train(config, ds, progress=progress).params
    settings = network.settings(config)
    states = []
    for name, iteration, params in (("init", 0, start), ("trained", config.iters, trained)):
        rows = check_steps(params, x, y, steps, settings)
        states.append(
            {
                "state": name,
                "iteration": iteration,
                "loss": network.loss(params, x, y, settings),
                "rows": rows,
                "best_step": best_step(rows),
            }
        )
    return {
        "config": config.to_dict(),
        "scheme": config.fd_scheme,
        "steps": [float(h) for h in steps],
        "states": states,
    }
