"""Gradient methods: where each iteration's update comes from (a registry).

- ``analytic``: backpropagation every iteration;
- ``numeric``: central (or forward) finite differences every iteration;
- ``alternate``: numeric on every K-th iteration, analytic otherwise (paper A);
- ``select``: both updates from the same weights and optimizer state, keep the
  one with the lower loss (paper B); ties go to analytic.
"""

from dataclasses import dataclass

import numpy as np

from . import network
from .network import DEFAULTS, Params, Settings
from .optimizers import Optimizer

SOURCES = ("analytic", "numeric")


@dataclass(frozen=True)
class StepContext:
    """What every method needs to know besides the batch."""

    optimizer: Optimizer
    settings: Settings = DEFAULTS  # network.settings(config)
    x_train: np.ndarray | None = None  # the whole few-shot set, for select_on == "train"
    y_train: np.ndarray | None = None


@dataclass
class Step:
    """The outcome of one iteration."""

    params: Params
    opt_state: dict
    loss: float  # batch loss at the weights before the update
    source: str  # the gradient source whose update was kept
    computed: tuple[str, ...]  # the gradient sources computed this iteration
    rel_diff: float | None = None  # ||g_numeric - g_analytic|| / ||g_analytic|| when both computed


def gradient(s: StepContext, source: str, params: Params, x, y, mask) -> tuple[Params, float]:
    """(gradient, batch loss) from one source."""
    if source == "analytic":
        return network.analytic_gradient(params, x, y, s.settings, mask, return_loss=True)
    return network.numeric_gradient(params, x, y, s.settings, mask), network.loss(params, x, y, s.settings, mask)


def _update(s: StepContext, source, params, opt_state, x, y, mask, t) -> Step:
    g, value = gradient(s, source, params, x, y, mask)
    flat, state = s.optimizer.step(params.flat, g.flat, opt_state)
    return Step(params.with_flat(flat), state, value, source, (source,))


def analytic(s, params, opt_state, x, y, mask, t) -> Step:
    return _update(s, "analytic", params, opt_state, x, y, mask, t)


def numeric(s, params, opt_state, x, y, mask, t) -> Step:
    return _update(s, "numeric", params, opt_state, x, y, mask, t)


def alternate(s, params, opt_state, x, y, mask, t) -> Step:
    """Iteration t (1-based) uses the numeric gradient when t is a multiple of numeric_every."""
    source = "numeric" if t % s.settings.numeric_every == 0 else "analytic"
    return _update(s, source, params, opt_state, x, y, mask, t)


def select(s, params, opt_state, x, y, mask, t) -> Step:
    """Both candidate updates; keep the one with the lower loss (ties: analytic)."""
    ga, value = gradient(s, "analytic", params, x, y, mask)
    gn, _ = gradient(s, "numeric", params, x, y, mask)
    flat_a, state_a = s.optimizer.step(params.flat, ga.flat, opt_state)
    flat_n, state_n = s.optimizer.step(params.flat, gn.flat, opt_state)
    pa, pn = params.with_flat(flat_a), params.with_flat(flat_n)
    if s.settings.select_on_train:  # the whole training set, no dropout
        x, y, mask = s.x_train, s.y_train, None
    la = network.loss(pa, x, y, s.settings, mask)
    ln = network.loss(pn, x, y, s.settings, mask)
    norm = network.norm(ga.flat)
    rel = network.norm(gn.flat - ga.flat) / norm if norm > 0 else network.norm(gn.flat)
    if ln < la:
        return Step(pn, state_n, value, "numeric", SOURCES, rel)
    return Step(pa, state_a, value, "analytic", SOURCES, rel)


METHODS = {"analytic": analytic, "numeric": numeric, "alternate": alternate, "select": select}
