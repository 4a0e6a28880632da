"""The cost ledger of a run and --budget.

A run's cost is counted in forward-pass equivalents (sources/costs.py: each source's gradient measured as its
step's time over a forward pass's): each source's cost of one gradient times the gradients the run computed of
it, plus select's comparisons (one loss of each candidate update an iteration: a forward pass of the batch,
or of the whole few-shot set with --select-on train, n / B passes). Its wall time stands beside it in the
record. The per-iteration costs are kept in the record (``ledger``), so that a cost table measured later does
not change what an old run is said to have cost.

--budget N gives each configuration the iterations it can afford: the most whose ledger stays within N.
"""

import numpy as np

from .. import sources
from ..config import MAX_DRAWS, TrainConfig
from ..data import train_size
from ..sources.costs import table
from . import loop

UNIT = "forward-pass equivalents"


def gradient_costs(config: TrainConfig) -> dict[str, float]:
    """Forward-pass equivalents of one gradient of each of the run's sources, with its options."""
    s = loop.settings(config)
    return {
        name: float(sources.get(name).cost(config.hidden, config.batch, sources.knobs_in(s, name)))
        for name in config.run_sources()
    }


def comparison_cost(config: TrainConfig) -> float:
    """select's comparisons an iteration: one loss of each candidate update, on the batch (one forward pass) or
    on the whole few-shot set (n / B); 0 for the other methods."""
    if config.method != "select":
        return 0.0
    per = train_size(config.shots, config.subset) / config.batch if config.select_on == "train" else 1.0
    return len(config.run_sources()) * per


def spent(config: TrainConfig, costs: dict[str, float], comparisons: float, iterations: int) -> float:
    """What the first `iterations` iterations of the run cost, given its costs a gradient and its comparisons
    an iteration."""
    calls = loop.iterations_of(loop.settings(config), 0, int(iterations))
    return sum(c * costs[name] for c, name in zip(calls, config.run_sources())) + iterations * comparisons


def ledger(config: TrainConfig, counts: dict[str, int], iterations: int) -> dict:
    """The record's ledger of a run that computed `counts` gradients of each source in `iterations` iterations:
    the cost of one gradient of each and of an iteration's comparisons, and what they came to, by source and in
    total, in forward-pass equivalents."""
    costs, comparisons = gradient_costs(config), comparison_cost(config)
    by_source = {name: counts.get(name, 0) * c for name, c in costs.items()}
    return {
        "unit": UNIT,
        "per_gradient": costs,
        "comparisons_per_iteration": comparisons,
        "by_source": by_source,
        "comparisons": iterations * comparisons,
        "total": sum(by_source.values()) + iterations * comparisons,
        "table": table()["measured"],
    }


def budget_iterations(config: TrainConfig, budget: float) -> int:
    """The most iterations of `config`'s run whose cost stays within `budget` forward-pass equivalents
    (ValueError when not even one does, or when more would be drawn than a run can hold)."""
    costs, comparisons = gradient_costs(config), comparison_cost(config)
    first = spent(config, costs, comparisons, 1)
    if budget < first:
        raise ValueError(
            f"--budget {budget:,.0f} is less than one iteration of {config.method} ({first:,.1f} {UNIT} at H "
            f"{config.hidden}, B {config.batch}); raise --budget"
        )
    most = MAX_DRAWS // config.batch  # iterations a run can draw
    lo, hi = 1, min(most + 1, max(2, int(budget / min(costs.values())) + 2))
    while hi - lo > 1:  # spent grows with iterations: the last within budget
        mid = (lo + hi) // 2
        if spent(config, costs, comparisons, mid) <= budget:
            lo = mid
        else:
            hi = mid
    if lo >= most:
        raise ValueError(
            f"--budget {budget:,.0f} buys {lo:,} iterations of {config.method}, more than a run holds "
            f"({MAX_DRAWS:,} mini-batch indices); lower --budget or --batch"
        )
    return lo


def within_budget(config: TrainConfig, budget: float | None) -> TrainConfig:
    """`config` with the iterations `budget` buys (unchanged without a budget)."""
    return config if budget is None else config.replace(iters=budget_iterations(config, budget))


def spent_curve(record: dict, iterations) -> np.ndarray:
    """What a stored run had spent at each of `iterations`, from its ledger (NaN for a record made before the
    ledger)."""
    led = record.get("ledger")
    its = np.asarray(iterations, dtype=np.int64)
    if not led:
        return np.full(its.shape, np.nan)
    config = TrainConfig.from_dict(record["config"])
    per, comparisons = led["per_gradient"], led["comparisons_per_iteration"]
    return np.array([spent(config, per, comparisons, int(t)) for t in its])
