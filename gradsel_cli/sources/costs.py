"""What one gradient of each source costs, in forward-pass equivalents (the ledger's unit, numerics/ledger.py).

A source's cost is its step kernel's time over the time of one forward pass and loss on the same batch
(kernels/forward._loss_step), both on gradsel's kernels, one thread, float64, sigmoid and cross-entropy, the
sources' default options, the first B training images: measured, not assumed (backpropagation is not the
textbook's 3 here, nor numeric's count of perturbed losses its time). `gradsel bench --costs` measured them over
the grid in costs.json (its "measured" says when and where) and measures them again beside the table, with
their ratio. Between the grid's sizes a cost is interpolated in log H and log B, beyond it clamped to its edge.

A source with random directions (Check.count) is measured at q = 1 and q = COST_Q, and its cost is the line
through both. What the grid does not vary is counted from a measured cost, said where it is (numeric's forward
scheme: half the perturbed losses).
"""

import json
import math
from functools import cache
from pathlib import Path

COST_Q = 16  # the second q at which a random source's cost is measured
TOLERANCE = 0.35  # `gradsel bench --costs`: a measured cost within 35% of the table's agrees with it
TABLE = Path(__file__).with_name("costs.json")


@cache
def table() -> dict:
    """The measured costs, as `gradsel bench --costs --json` wrote them: "hidden" and "batch" (the grid),
    "costs" (key -> [[cost at hidden[i], batch[j]]]) and "measured" (when, on what)."""
    with TABLE.open() as fh:
        return json.load(fh)


def key(name: str, directions: int = 1) -> str:
    """The table's key of source `name` measured at its default options (and q directions, q > 1)."""
    return name if directions == 1 else f"{name}@{directions}"


def measured(key_: str, hidden: int, batch: int, grid: dict | None = None) -> float:
    """The cost of the table's entry `key_` at (hidden, batch): bilinear in log H and log B between the grid's
    sizes, the edge's value beyond them."""
    t = table() if grid is None else grid
    values = t["costs"][key_]
    i, u = _place(t["hidden"], hidden)
    j, v = _place(t["batch"], batch)
    lo = values[i][j] * (1 - v) + values[i][j + 1] * v
    hi = values[i + 1][j] * (1 - v) + values[i + 1][j + 1] * v
    return lo * (1 - u) + hi * u


def of_directions(name: str, directions: int, hidden: int, batch: int) -> float:
    """A random source's cost at q directions: the line through its measured costs at 1 and COST_Q."""
    one = measured(key(name), hidden, batch)
    per = (measured(key(name, COST_Q), hidden, batch) - one) / (COST_Q - 1)
    return one + (directions - 1) * per


def _place(grid: list, size: float) -> tuple[int, float]:
    """(i, u): size lies u of the way from grid[i] to grid[i + 1] in log scale (clamped to the grid's ends; a
    grid has two sizes or more)."""
    if size <= grid[0]:
        return 0, 0.0
    for i in range(len(grid) - 1):
        if size <= grid[i + 1]:
            return i, math.log(size / grid[i]) / math.log(grid[i + 1] / grid[i])
    return len(grid) - 2, 1.0
