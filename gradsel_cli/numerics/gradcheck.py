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

import math
import warnings
from collections.abc import Mapping

import numpy as np

from .. import data, sources
from ..config import GRADCHECK_DRAWS, GRADCHECK_QS, Notice, TrainConfig
from ..core import network
from ..core.network import Params
from . import loop
from .training import Dataset, batch_indices, train

BLOCKS = ("W1", "b1", "W2", "b2")
DRAWS = GRADCHECK_DRAWS  # the draws a random source's error is averaged over: the directions of iterations 1 ... 20
QS = GRADCHECK_QS  # the numbers of directions q a random source is checked at by default
SIZES = (10, 20, 50, 100)  # the hidden sizes its error is measured at against the number of weights (at init)


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def compare(numeric: np.ndarray, analytic: np.ndarray) -> dict:
    """Relative error ||n - a|| / ||a||, cosine similarity and 1 - cosine of two gradients (None where
    undefined). 1 - cos is computed as ||n/|n| - a/|a|||^2 / 2, which keeps its digits near cos = 1."""
    n, a = np.ravel(numeric), np.ravel(analytic)
    na, nn = float(np.sqrt(np.dot(a, a))), float(np.sqrt(np.dot(n, n)))
    diff = float(np.sqrt(np.dot(n - a, n - a)))
    rel = diff / na if na > 0 else (0.0 if diff == 0 else float("inf"))
    if 0 < nn < math.inf and 0 < na < math.inf:  # an infinite gradient (a step of 1e-320) has no direction
        u = n / nn - a / na
        gap = 0.5 * float(np.dot(u, u))
        cos = float(np.dot(n, a)) / (nn * na)
    else:
        gap = cos = float("nan")
    return {"rel_diff": _finite_or_none(rel), "cosine": _finite_or_none(cos), "one_minus_cosine": _finite_or_none(gap)}


def check_steps(params: Params, x, y, steps=None, config: TrainConfig | None = None, source: str = "") -> list:
    """For each step h (the source's step option set to it; one row without h for a source that has none): per
    block and over all weights, the source's gradient against the exact one (sources.exact()). `steps` None:
    the source's own range (Source.check.steps) in the precision of `config`; steps the source refuses
    (Source.problem: a step its precision cannot carry) are left out.

    x : (B, n_in) float, y : (B,) int; both gradients in the precision of `params`.
    """
    config = TrainConfig() if config is None else config
    chosen = sources.get(source or _first_other())
    if steps is not None and not len(steps):
        raise ValueError("give at least one step")
    exact, _ = sources.get(sources.exact()).gradient(params, x, y, loop.settings(config))
    rows = []
    option = chosen.step
    for h in usable_steps(chosen.name, steps, config)[0] if option else (None,):
        settings = loop.settings(config if option is None else config.replace(**{option: h}))
        g, _ = chosen.gradient(params, x, y, settings, None, loop.words_of(settings, chosen.name, 0, 1)[0])
        blocks = {name: compare(getattr(g, name), getattr(exact, name)) for name in BLOCKS}
        rows.append({"step": None if h is None else float(h), "blocks": blocks, "all": compare(g.flat, exact.flat)})
    return rows


def _compared(g: Params, exact: Params) -> dict:
    return {
        "blocks": {b: compare(getattr(g, b), getattr(exact, b)) for b in BLOCKS},
        "all": compare(g.flat, exact.flat),
    }


def _mean_sd(values, rms: bool = False) -> tuple[float | None, float | None]:
    """The mean (rms: the root mean square) and the standard deviation of the values that are not None."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    if not np.any(np.isfinite(v)):
        return None, None
    centre = np.sqrt(np.nanmean(v * v)) if rms else np.nanmean(v)
    return _finite_or_none(centre), _finite_or_none(np.nanstd(v))


def _draws_of(chosen, params: Params, x, y, exact: Params, config: TrainConfig, draws: int) -> list[dict]:
    """The random source's estimate on the directions of iterations 1 ... `draws` of `config`, each against
    `exact`."""
    settings = loop.settings(config)
    words = loop.words_of(settings, chosen.name, 0, draws)
    return [_compared(chosen.gradient(params, x, y, settings, None, w)[0], exact) for w in words]


def _summary(per: list[dict], weights: int, q: int) -> dict:
    """Over the draws: the root mean square of each block's and all weights' relative error (the square root
    of the estimate's variance over |g|^2, which the 1/q law predicts), its spread (sd), the mean cosine, and
    sqrt(P / q): the law's value, P weights (for Gaussian directions sqrt((P + 1) / q), a hair more)."""
    blocks = {b: {"rel_diff": _mean_sd([d["blocks"][b]["rel_diff"] for d in per], rms=True)[0]} for b in BLOCKS}
    rel, rel_sd = _mean_sd([d["all"]["rel_diff"] for d in per], rms=True)
    cos, cos_sd = _mean_sd([d["all"]["cosine"] for d in per])
    gap = _mean_sd([d["all"]["one_minus_cosine"] for d in per])[0]
    return {
        "blocks": blocks,
        "all": {"rel_diff": rel, "cosine": cos, "one_minus_cosine": gap},
        "spread": {"rel_diff": rel_sd, "cosine": cos_sd},
        "expected": float(np.sqrt(weights / q)),
    }


def check_draws(params: Params, x, y, config: TrainConfig, source: str, qs, draws: int, steps=None) -> list:
    """A random source (Source.check.count: it draws q directions an iteration) at each step h (one row
    without h for a source that has none) and each q of `qs`: its estimates on the directions of
    iterations 1 ... `draws` against the exact gradient: their relative error and cosine (_summary)."""
    chosen = sources.get(source)
    exact, _ = sources.get(sources.exact()).gradient(params, x, y, loop.settings(config))
    rows = []
    option, count = chosen.step, str(chosen.check.count)
    for h in usable_steps(chosen.name, steps, config)[0] if option else (None,):
        for q in qs:
            c = config.replace(**{count: int(q)})
            c = c.replace(**{option: h}) if option else c
            row = _summary(_draws_of(chosen, params, x, y, exact, c, draws), params.flat.size, int(q))
            rows.append({"step": None if h is None else float(h), "q": int(q), "draws": draws, **row})
    return rows


def slope(points) -> float | None:
    """The slope of log error against log x over the (x, error) points with an error (None: fewer than two)."""
    pts = [(x, e) for x, e in points if e]
    if len(pts) < 2:
        return None
    return float(np.polyfit(np.log([x for x, _ in pts]), np.log([e for _, e in pts]), 1)[0])


def check_sizes(config: TrainConfig, x, y, source: str, q: int, draws: int) -> list:
    """A random source's relative error (root mean square over the draws) at initial weights of each hidden size
    of SIZES and the config's, with q directions: how it grows with the number of weights P (as sqrt(P / q), if
    the law holds)."""
    chosen = sources.get(source)
    c = config.replace(**{str(chosen.check.count): int(q)})
    rows = []
    for hidden in sorted({*SIZES, config.hidden}):
        params = network.init_params(hidden, config.seed, config.init_std, config.init, dtype=config.precision)
        exact, _ = sources.get(sources.exact()).gradient(params, x, y, loop.settings(c))
        rel, sd = _mean_sd([d["all"]["rel_diff"] for d in _draws_of(chosen, params, x, y, exact, c, draws)], True)
        size = params.flat.size
        rows.append(
            {"hidden": hidden, "weights": size, "rel_diff": rel, "spread": sd, "expected": float(np.sqrt(size / q))}
        )
    return rows


def usable_steps(name: str, steps, config: TrainConfig) -> tuple[list[float], list[float]]:
    """(the steps source `name` is checked at, largest first; those of `steps` it refuses): `steps` None is its
    own range in the config's precision."""
    source = sources.get(name)
    if source.step is None:
        return [], []
    given = source.check.steps(config.precision) if steps is None else steps
    usable: list[float] = []
    refused: list[float] = []
    for h in sorted((float(h) for h in given), reverse=True):
        refused_here = source.problem(config.replace(**{source.step: h})) is not None
        (refused if refused_here else usable).append(h)
    return usable, refused


def given_steps(steps, name: str):
    """The steps given for source `name`: `steps` itself, or its entry where `steps` maps sources to their steps
    (None: its own range)."""
    return steps.get(name) if isinstance(steps, Mapping) else steps


def _first_other() -> str:
    return next(n for n in sources.names() if n != sources.exact())


def _sorted(steps) -> list[float] | None:
    return None if steps is None else sorted((float(h) for h in steps), reverse=True)


def best_step(rows: list[dict]) -> float | None:
    """The step with the smallest relative error over all weights."""
    scored = [(r["all"]["rel_diff"], r["step"]) for r in rows if r["all"]["rel_diff"] is not None]
    return min(scored)[1] if scored else None


def gradcheck(
    config: TrainConfig, steps=None, raw=None, progress=None, names=None, qs=None, draws: int = DRAWS
) -> dict:
    """Relative error and cosine per block (and step, for a source with one) of every source but the exact
    gradient (or of `names`), at initialisation and after `config.iters` iterations of exact training, on the
    first mini-batch of the run. Each source is checked at `steps` (one list for all, or a dict of each
    source's), or by default (None) across its own range (Source.check.steps); a given step a source refuses
    is left out of its rows and listed ("refused_steps"). A random source (Source.check.count) is checked
    at each number of directions q of `qs` (None: QS) over `draws` draws (check_draws), with
    the slope of its error against q ("law") and, at initialisation, against the number of weights ("sizes").

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
    if any(given_steps(steps, n) is not None and not len(given_steps(steps, n)) for n in names):
        raise ValueError("give at least one step")
    qs = QS if qs is None else tuple(int(q) for q in qs)
    if not qs or min(qs) < 1:
        raise ValueError("give the numbers of directions q as whole numbers of 1 or more")
    if draws < 2:
        raise ValueError(f"--draws {draws}: give 2 or more (the spread over the draws needs two)")
    for n in names:
        source = sources.get(n)
        usable, refused = usable_steps(n, given_steps(steps, n), config)
        if source.step is None:
            continue
        why = source.problem(config.replace(**{source.step: refused[-1]})) if refused else None
        if not usable:
            raise ValueError(f"none of the steps given is one {n} can take in {config.precision} ({why})")
        if refused:
            said = ",".join(f"{h:.3g}" for h in refused)
            warnings.warn(f"{n} is not checked at {said}: {why}", Notice, stacklevel=2)
    ds = Dataset.for_config(data.load_mnist_raw() if raw is None else raw, config)
    idx = batch_indices(config, len(ds.y_train))[0]
    x, y = ds.x_train[idx], ds.y_train[idx]  # (B, 784), (B,)
    start = network.init_params(config.hidden, config.seed, config.init_std, config.init, dtype=config.precision)
    trained = train(config, ds, progress=progress).params
    settings = loop.settings(config)
    states = []
    for name, iteration, params in (("init", 0, start), ("trained", config.iters, trained)):
        checked = {}
        for n in names:
            random = sources.get(n).check.count is not None
            if random:
                rows = check_draws(params, x, y, config, n, qs, draws, given_steps(steps, n))
            else:
                rows = check_steps(params, x, y, given_steps(steps, n), config, n)
            checked[n] = {
                "description": sources.get(n).description,
                "step_option": sources.get(n).step,
                "rows": rows,
                "best_step": None if random else best_step(rows),
                "refused_steps": usable_steps(n, given_steps(steps, n), config)[1],
            }
            if random:
                first = [r for r in rows if r["step"] == rows[0]["step"]]
                checked[n]["law"] = slope((r["q"], r["all"]["rel_diff"]) for r in first)
                if iteration == 0:
                    sizes = check_sizes(config, x, y, n, sorted(qs)[len(qs) // 2], draws)
                    checked[n]["sizes"] = sizes
                    checked[n]["size_law"] = slope((r["weights"], r["rel_diff"]) for r in sizes)
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
        # None: each its own range; a dict: each source's (None: its own range)
        "steps": {n: _sorted(given_steps(steps, n)) for n in names} if isinstance(steps, Mapping) else _sorted(steps),
        "states": states,
    }
