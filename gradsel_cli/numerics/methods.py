"""Methods: where each iteration's update comes from, as policies over the gradient sources (sources/).

- a source's name: that source's gradient every iteration (plain descent);
- ``alternate``: the first of the run's sources, but on every K-th iteration the next of the
  others in turn (of two: the second on every K-th, paper A's numeric every K-th);
- ``select``: every source's update from the same weights and optimizer state, the one with the
  lowest loss kept (paper B); ties go to the first listed.
"""

from dataclasses import dataclass

import numpy as np

from .. import sources as registry
from ..core import network
from ..core.network import Params, Settings
from . import loop
from .optimizers import Optimizer


@dataclass(frozen=True)
class StepContext:
    """What every method needs to know besides the batch."""

    optimizer: Optimizer
    settings: Settings  # loop.settings(config)
    x_train: np.ndarray | None = None  # the whole few-shot set, for select_on == "train"
    y_train: np.ndarray | None = None


@dataclass
class Step:
    """The outcome of one iteration."""

    params: Params
    opt_state: dict
    loss: float  # batch loss at the weights before the update
    source: int  # the position in settings.sources of the source whose update was kept
    rel_diffs: tuple[float, ...] = ()  # select: ||g_s - g_first|| / ||g_first|| of each other source s
    tied: bool = False  # select: another candidate's loss equalled the kept one's, bitwise


def gradient(s: StepContext, source: str, params: Params, x, y, mask, t: int) -> tuple[Params, float]:
    """(gradient, batch loss) from one source at iteration t (1-based), with its draws of that iteration."""
    draws = loop.words_of(s.settings, source, t - 1, 1)[0]
    return registry.get(source).gradient(params, x, y, s.settings, mask, draws)


def plain(s: StepContext, params, opt_state, x, y, mask, t) -> Step:
    """The run's one source."""
    return _update(s, 0, params, opt_state, x, y, mask, t)


def alternate(s: StepContext, params, opt_state, x, y, mask, t) -> Step:
    """Iteration t (1-based) uses the first source, but when t is a multiple of alternate_every the next of the
    others in turn (loop.source_at: the fused loop's schedule)."""
    return _update(s, loop.source_at(s.settings, t), params, opt_state, x, y, mask, t)


def select(s: StepContext, params, opt_state, x, y, mask, t) -> Step:
    """Every source's candidate update; keep the one with the lowest loss (ties: the first listed, and the step
    says it was a tie)."""
    grads = []
    value = float("nan")
    for position, name in enumerate(s.settings.sources):
        g, v = gradient(s, name, params, x, y, mask, t)
        value = v if position == 0 else value
        grads.append(g)
    candidates, losses = candidate_losses(s, grads, params, opt_state, x, y, mask)
    norm = network.norm(grads[0].flat)
    rel = tuple(network.norm(g.flat - grads[0].flat) / norm if norm > 0 else network.norm(g.flat) for g in grads[1:])
    best, best_loss = 0, 0.0
    for position, loss in enumerate(losses):
        if position == 0 or loss < best_loss:
            best, best_loss = position, loss
    tied = any(q != best and loss == best_loss for q, loss in enumerate(losses))
    p, state = candidates[best]
    return Step(p, state, value, best, rel, tied)


def candidate_losses(s: StepContext, grads, params, opt_state, x, y, mask) -> tuple[list, list[float]]:
    """select's candidates: each gradient's update from the same weights and optimizer state, as (Params, state),
    and the loss of each, on the batch or (select_on_train) the whole training set without dropout."""
    candidates = []
    for g in grads:
        flat, state = s.optimizer.step(params.flat, g.flat, opt_state)
        candidates.append((params.with_flat(flat), state))
    if s.settings.select_on_train:  # the whole training set, no dropout
        x, y, mask = s.x_train, s.y_train, None
    return candidates, [network.loss(p, x, y, s.settings, mask) for p, _ in candidates]


def _update(s: StepContext, position: int, params, opt_state, x, y, mask, t) -> Step:
    g, value = gradient(s, s.settings.sources[position], params, x, y, mask, t)
    flat, state = s.optimizer.step(params.flat, g.flat, opt_state)
    return Step(params.with_flat(flat), state, value, position)


POLICIES = {"alternate": alternate, "select": select}


def method(name: str):
    """The step function of a method: a policy, or plain descent with the source of that name."""
    return POLICIES.get(name, plain)
