"""Optimizer paths over 2-D surfaces: the textbook's figure 6-8 (ch06/optimizer_compare_naive.py), for any
gradient source that works from a function.

A surface is f(x, y) with its closed-form gradient, a start, a number of steps and a learning rate per
optimizer (the textbook's for its own surface). A path is the start and the point after each step of an
optimizer of numerics/optimizers.py, the one the network trains with, fed the gradient of a source's
``of_function``. Every f is a polynomial, so it also takes complex points, for a source that evaluates there.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import sources
from ..config import TrainConfig
from .optimizers import Optimizer


@dataclass(frozen=True)
class Surface:
    name: str
    description: str  # the formula, as the help and the figure say it
    f: Callable  # f(p) of a point p = (x, y), real or complex
    df: Callable  # its closed-form gradient, (2,)
    start: tuple[float, float]
    steps: int
    lrs: dict[str, float]  # the default learning rate of each optimizer
    extent: tuple[tuple[float, float], tuple[float, float]]  # (x range, y range) drawn
    marks: tuple[tuple[str, tuple[float, float]], ...] = field(default=())  # (what, point): minima, saddles


def _two_minima_marks() -> tuple[tuple[str, tuple[float, float]], ...]:
    """The stationary points of (x^2 - 1)^2 + 0.3 x + y^2 on y = 0: 4x^3 - 4x + 0.3 = 0."""
    xs = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)
    return (("global minimum", (xs[0], 0.0)), ("saddle", (xs[1], 0.0)), ("local minimum", (xs[2], 0.0)))


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            "textbook",
            "f(x, y) = x²/20 + y²",
            lambda p: p[0] ** 2 / 20.0 + p[1] ** 2,
            lambda p: np.array([p[0] / 10.0, 2.0 * p[1]]),
            (-7.0, 2.0),
            30,
            {"sgd": 0.95, "momentum": 0.1, "adagrad": 1.5, "adam": 0.3, "nesterov": 0.1, "rmsprop": 0.3},
            ((-10.0, 10.0), (-10.0, 10.0)),
            (("minimum", (0.0, 0.0)),),
        ),
        Surface(
            "saddle",
            "f(x, y) = x² - y²",
            lambda p: p[0] ** 2 - p[1] ** 2,
            lambda p: np.array([2.0 * p[0], -2.0 * p[1]]),
            (-5.0, 0.01),
            30,
            {"sgd": 0.1, "momentum": 0.05, "adagrad": 0.5, "adam": 0.2, "nesterov": 0.05, "rmsprop": 0.1},
            ((-6.0, 6.0), (-4.0, 4.0)),
            (("saddle", (0.0, 0.0)),),
        ),
        Surface(
            "two-minima",
            "f(x, y) = (x² - 1)² + 0.3x + y²",
            lambda p: (p[0] ** 2 - 1.0) ** 2 + 0.3 * p[0] + p[1] ** 2,
            lambda p: np.array([4.0 * p[0] * (p[0] ** 2 - 1.0) + 0.3, 2.0 * p[1]]),
            (2.0, 1.5),
            30,
            {"sgd": 0.05, "momentum": 0.02, "adagrad": 0.5, "adam": 0.2, "nesterov": 0.02, "rmsprop": 0.1},
            ((-2.0, 2.2), (-2.0, 2.0)),
            _two_minima_marks(),
        ),
        Surface(
            "rosenbrock",
            "f(x, y) = (1 - x)² + 100(y - x²)²",
            lambda p: (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2,
            lambda p: np.array([-2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] ** 2), 200.0 * (p[1] - p[0] ** 2)]),
            (-1.5, 2.0),
            1000,
            {"sgd": 0.002, "momentum": 0.001, "adagrad": 1.0, "adam": 0.1, "nesterov": 0.0005, "rmsprop": 0.01},
            ((-2.0, 2.0), (-1.0, 3.0)),
            (("minimum", (1.0, 1.0)),),
        ),
    )
}
OPTIMIZERS = ("sgd", "momentum", "adagrad", "adam")  # the textbook's four panels, in its order


def surface(name: str) -> Surface:
    if name not in SURFACES:
        raise ValueError(f"unknown surface {name!r}; choose one of: {', '.join(SURFACES)}")
    return SURFACES[name]


def gradient_of(config: TrainConfig, s: Surface) -> Callable[[np.ndarray], np.ndarray]:
    """The gradient of s.f that config.method's source computes (with its options), as a function of the point.
    ValueError when the method is not a source that works from a function."""
    if config.method not in sources.names():
        raise ValueError(f"--method {config.method}: paths take one gradient source; choose one of: {_usable()}")
    source = sources.get(config.method)
    if source.check.of_function is None:
        raise ValueError(f"--method {config.method} needs the network and cannot take a function's gradient")
    of_function, knobs = source.check.of_function, source.knobs(config)
    return lambda p: np.asarray(of_function(s.f, s.df, p, knobs), dtype=np.float64)


def _usable() -> str:
    return ", ".join(n for n in sources.names() if sources.get(n).check.of_function is not None)


def path(optimizer: Optimizer, gradient: Callable[[np.ndarray], np.ndarray], start, steps: int) -> np.ndarray:
    """The start and the point after each of `steps` steps of `optimizer` fed `gradient`: (steps + 1, 2)."""
    p = np.array(start, dtype=np.float64)
    state = optimizer.init(p.size, p.dtype)
    points = [p]
    for _ in range(steps):
        p, state = optimizer.step(p, gradient(p), state)
        points.append(p)
    return np.array(points)


def run(config: TrainConfig, name: str, optimizers, lrs: dict, start=None, steps: int | None = None) -> dict:
    """Every optimizer's path over the surface `name` with the gradient of config.method (a source) and its options,
    and the optimizers' other settings from config; lrs: learning rates that replace the surface's, start and
    steps likewise (None: the surface's). The record: the surface, the settings, and per optimizer its path's
    points and f at each (None where a point is not finite: the path diverged)."""
    s = surface(name)
    gradient = gradient_of(config, s)
    start = s.start if start is None else tuple(start)
    steps = s.steps if steps is None else steps
    out = {}
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging path is recorded, as None, not warned of
        for opt in optimizers:
            out[opt] = _one(config, s, gradient, opt, lrs.get(opt, s.lrs[opt]), start, steps)
    source = sources.get(config.method)
    return {
        "surface": s.name,
        "formula": s.description,
        "method": config.method,
        "options": {k: getattr(config, k) for k in source.reads},
        "optimizer_settings": {k: getattr(config, k) for k in ("momentum", "rho", "beta1", "beta2", "eps")},
        "start": list(start),
        "steps": steps,
        "marks": [{"what": what, "point": [float(v) for v in point]} for what, point in s.marks],
        "paths": out,
    }


def _one(config: TrainConfig, s: Surface, gradient, opt: str, lr: float, start, steps: int) -> dict:
    """One optimizer's path: its learning rate, its points and f at each (None where not finite)."""
    c = config
    optimizer = Optimizer(opt, lr=lr, momentum=c.momentum, rho=c.rho, beta1=c.beta1, beta2=c.beta2, eps=c.eps)
    points = path(optimizer, gradient, start, steps)
    values = [float(s.f(p)) for p in points]
    return {
        "lr": lr,
        "points": [[float(v) for v in p] if np.all(np.isfinite(p)) else None for p in points],
        "f": [v if np.isfinite(v) else None for v in values],
    }


def title(record: dict) -> str:
    """One line of what a record of run() shows: the surface, the steps and start, the gradient and its options."""
    start = ", ".join(f"{v:g}" for v in record["start"])
    options = ", ".join(
        f"{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"{k.replace('_', '-')} {v}"
        for k, v in record["options"].items()
    )
    source = record["method"] + (f" ({options})" if options else "")
    return f"{record['formula']}, {record['steps']} steps from ({start}), gradient: {source}"


def nearest(record: dict, point) -> tuple[str, float] | None:
    """The marked point (minimum, saddle) nearest `point`, and how far: (what, distance); None without marks."""
    if not record["marks"] or point is None:
        return None
    what, at = min(((m["what"], m["point"]) for m in record["marks"]), key=lambda m: math.dist(m[1], point))
    return what, math.dist(at, point)
