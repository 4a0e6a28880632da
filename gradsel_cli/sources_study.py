"""The sources study (`gradsel table --preset sources`): every gradient source alone, and each mixed with the
exact one by alternate and by select, at equal iterations and at equal compute.

Two settings (k = 2, B = 8, H = 50, and k = 1, B = 1, H = 20), each method at ITERS iterations and at
the iterations BUDGET forward-pass equivalents buy it (numerics/ledger.py), seeds 0-9; every run records its
test-accuracy curve and the fidelity probe. The methods come from the registry: no source is named here.
"""

from . import sources
from .config import TrainConfig

SETTINGS = ({"shots": 2, "batch": 8, "hidden": 50}, {"shots": 1, "batch": 1, "hidden": 20})
ITERS = 10_000  # the papers' iterations: the equal-iterations regime
# Forward-pass equivalents of the equal-compute regime: about 94,000 iterations of spsa with one direction at
# H = 50, B = 8 (10.7 each) and 56,000 at H = 20, B = 1 (17.9), 9.4 and 5.6 times what the equal-iterations
# regime gives it, so that a random source has the iterations it needs; backprop gets about 430,000 and 520,000.
BUDGET = 1e6
LR = 0.1  # the papers' learning rate, for the methods of deterministic sources only
# Methods with a random source: the best of 0.003, 0.01, 0.03 and 0.1 for spsa and forward alone (10,000
# iterations, seeds 0-1, both settings; at 0.03 and above they climb or end below 0.2 accuracy)
RANDOM_LR = 0.003
PROBE_EVERY = 500  # iterations between the fidelity probe's readings
CURVE_POINTS = 20  # test-accuracy evaluations of each run's curve
REGIMES = ("iterations", "budget")


def methods() -> list[dict]:
    """Each source alone, then alternate and select of the exact source with each other one, as config cells."""
    exact = sources.exact()
    others = [n for n in sources.names() if n != exact]
    cells = [{"method": n} for n in sources.names()]
    return cells + [{"method": p, "sources": f"{exact},{n}"} for p in ("alternate", "select") for n in others]


def random(config: TrainConfig) -> bool:
    """Whether the run computes a source of random directions."""
    return any(sources.get(n).check.count is not None for n in config.run_sources())


def cells() -> list[dict]:
    """Every run of one seed, in order: per setting, each method at ITERS iterations and its learning rate (a
    run of the equal-compute regime is the same with the iterations BUDGET buys: runs/experiments.py)."""
    out = []
    for setting in SETTINGS:
        for cell in methods():
            c = TrainConfig().replace(**cell)
            out.append({**setting, **cell, "iters": ITERS, "lr": RANDOM_LR if random(c) else LR})
    return out


def regime(config: dict) -> str:
    """The regime a stored run of the study belongs to: equal iterations (ITERS) or equal compute."""
    return "iterations" if config["iters"] == ITERS else "budget"


def setting_of(config: dict) -> dict | None:
    """The study setting a stored run belongs to, or None."""
    return next((s for s in SETTINGS if all(config.get(k) == v for k, v in s.items())), None)


def label(config: dict) -> str:
    """A method's name in the study: the source, or the policy with its sources (select analytic,spsa)."""
    return config["method"] if config["method"] in sources.names() else f"{config['method']} {config['sources']}"


def parts(method: str) -> tuple[str | None, str]:
    """(policy, the source it mixes with the exact one) of a label; (None, the source) for a source alone."""
    policy, _, mixed = method.partition(" ")
    return (policy, mixed.split(",", 1)[1]) if mixed else (None, method)
