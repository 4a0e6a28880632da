"""Gradient diagnostics: how far each gradient source is from the exact gradient (backpropagation).

For one mini-batch (the first of a run's batch sequence), at the initial weights
and after some iterations of exact training, every other registered source's
gradient (at each step h, for a source that has one: Source.step) is compared
with the exact one, block by block (W1, b1, W2, b2) and over all weights: the
relative error ||g - g_exact|| / ||g_exact|| and the cosine similarity. For
finite differences too large an h gives truncation error (O(h^2) central, O(h)
forward) and too small an h rounding error (about eps * |L| / h): the error
against h is V-shaped. The config's precision, finite-difference arithmetic and
loss epsilon apply (the exact gradient, as in training, ignores the loss epsilon).
"""

import numpy as np

from .. import data, sources
from ..config import GRADCHECK_STEPS as DEFAULT_STEPS
from ..config import TrainConfig
from . import network
from .network import Params
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


def check_steps(params: Params, x, y, steps=DEFAULT_STEPS, config: TrainConfig | None = None, source: str = "") -> list:
    """For each step h (the source's step option set to it; one row without h for a source that has none): per
    block and over all weights, the source's gradient against the exact one (sources.exact()).

    x : (B, n_in) float, y : (B,) int; both gradients in the precision of `params`.
    """
    config = TrainConfig() if config is None else config
    chosen = sources.get(source or _first_other())
    if not steps:
        raise ValueError("give at least one finite-difference step")
    exact, _ = sources.get(sources.exact()).gradient(params, x, y, network.settings(config))
    rows = []
    option = chosen.step
    for h in steps if option else (None,):
        settings = network.settings(config if option is None else config.replace(**{option: h}))
        g, _ = chosen.gradient(params, x, y, settings)
        blocks = {name: compare(getattr(g, name), getattr(exact, name)) for name in BLOCKS}
        rows.append({"step": None if h is None else float(h), "blocks": blocks, "all": compare(g.flat, exact.flat)})
    return rows


def _first_other() -> str:
    return next(n for n in sources.names() if n != sources.exact())


def best_step(rows: list[dict]) -> float | None:
    """The step with the smallest relative error over all weights."""
    scored = [(r["all"]["rel_diff"], r["step"]) for r in rows if r["all"]["rel_diff"] is not None]
    return min(scored)[1] if scored else None


def gradcheck(config: TrainConfig, steps=DEFAULT_STEPS, raw=None, progress=None, names=None) -> dict:
    """Relative error and cosine per block (and step, for a source with one) of every source but the exact
    gradient (or of `names`), at initialisation and after `config.iters` iterations of exact training, on the
    first mini-batch of the run.

    Only the plain network is checked (no dropout or batch norm); ``progress(done, total, loss)``
    follows the training.
    """
    config = config.replace(method=sources.exact()).validate()
    if config.batch_norm or config.dropout:
        raise ValueError("gradcheck checks the plain network: drop --batch-norm and --dropout")
    others = [n for n in sources.names() if n != sources.exact()]
    if names and sources.exact() in names:
        raise ValueError(
            f"{sources.exact()} is the exact gradient every source is checked against, not one to check; "
            f"check one or more of: {', '.join(others)}"
        )
    names = list(names or others)
    for n in names:
        sources.get(n)
    ds = Dataset.for_config(data.load_mnist_raw() if raw is None else raw, config)
    idx = batch_indices(config, len(ds.y_train))[0]
    x, y = ds.x_train[idx], ds.y_train[idx]  # (B, 784), (B,)
    start = network.init_params(config.hidden, config.seed, config.init_std, config.init, dtype=config.precision)
    trained = train(config, ds, progress=progress).params
    settings = network.settings(config)
    states = []
    for name, iteration, params in (("init", 0, start), ("trained", config.iters, trained)):
        checked = {}
        for n in names:
            rows = check_steps(params, x, y, steps, config, n)
            checked[n] = {
                "description": sources.get(n).description,
                "step_option": sources.get(n).step,
                "rows": rows,
                "best_step": best_step(rows),
            }
        states.append(
            {
                "state": name,
                "iteration": iteration,
                "loss": network.loss(params, x, y, settings),
                "sources": checked,
            }
        )
    return {
        "config": config.to_dict(),
        "exact": sources.exact(),
        "steps": [float(h) for h in steps],
        "states": states,
    }
