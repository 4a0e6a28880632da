"""The sources study (`gradsel table --preset sources`): every gradient source alone, and each mixed with the
exact one by alternate and by select, at equal iterations and at equal compute.

Two settings (k = 2, B = 8, H = 50, and k = 1, B = 1, H = 20), each method at ITERS iterations and at
the iterations BUDGET forward-pass equivalents buy it (numerics/ledger.py), and each random source alone
again at LONG_BUDGET, seeds 0-9; every run records its test-accuracy curve and the fidelity probe. The
methods come from the registry: no source is named here.
"""

from . import sources
from .config import TrainConfig

SETTINGS = ({"shots": 2, "batch": 8, "hidden": 50}, {"shots": 1, "batch": 1, "hidden": 20})
ITERS = 10_000  # the papers' iterations: the equal-iterations regime
# Forward-pass equivalents of the equal-compute regime: about 94,000 iterations of spsa with one direction at
# H = 50, B = 8 (10.7 each) and 56,000 at H = 20, B = 1 (17.9), 9.4 and 5.6 times what the equal-iterations
# regime gives it; backprop gets about 430,000 and 520,000.
BUDGET = 1e6
# The long regime: each random source alone, to see how far ten times the compute takes it (at BUDGET its
# accuracy still rises; at LONG_BUDGET, about 936,000 spsa iterations at H = 50, B = 8, it rises ever slower);
# its exact baseline is the exact source's run at BUDGET, which has converged (its accuracy at ITERS and at
# BUDGET agree: docs/equal-compute.md)
LONG_BUDGET = 1e7
LR = 0.1  # the papers' learning rate, for the methods of deterministic sources only
# Methods with a random source: the best of 0.003, 0.01, 0.03 and 0.1 for spsa and forward alone (10,000
# iterations, seeds 0-1, both settings; at 0.03 and above they climb or end below 0.2 accuracy)
RANDOM_LR = 0.003
PROBE_EVERY = 500  # iterations between the fidelity probe's readings
CURVE_POINTS = 20  # test-accuracy evaluations of each run's curve
REGIMES = ("iterations", "budget", "long")


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


def long_cells() -> list[dict]:
    """The runs of one seed the long regime adds: each random source alone, per setting, at its learning rate
    and ITERS iterations (runs/experiments.py gives it the iterations LONG_BUDGET buys)."""
    return [c for c in cells() if c["method"] in sources.names() and random(TrainConfig().replace(**c))]


def regime(record: dict) -> str:
    """The regime a stored run of the study belongs to: equal iterations (ITERS), equal compute (within BUDGET
    by the ledger it was counted with, so that a re-measured cost table moves no stored run; a record made
    before the ledger is counted here), or long."""
    if record["config"]["iters"] == ITERS:
        return "iterations"
    total = (record.get("ledger") or {}).get("total")
    return "budget" if total is None or total <= BUDGET else "long"


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
