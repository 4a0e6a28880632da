"""The two papers' Table 1 as data: the published numbers, the tables' layouts, and the claims.

Preset ``alternate`` is paper A (the alternating gradient), preset ``select``
is paper B (choosing the better of the two updates); the README describes
both. The published numbers are read from the package's own copy,
``published.csv``, so they are available from a wheel as well as a checkout.
"""

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

AVG = "avg"  # the `shots` value of a printed average (paper B's AVG column)


@functools.cache
def _table() -> dict[tuple, float]:
    """{(preset, batch, hidden, method, shots): accuracy} from published.csv, parsed once."""
    text = resources.files(__package__).joinpath("published.csv").read_text(encoding="utf-8")
    table = {}
    for row in csv.DictReader(io.StringIO(text)):
        shots = AVG if row["shots"] == AVG else int(row["shots"])
        key = (row["preset"], int(row["batch"]), int(row["hidden"]), row["method"], shots)
        table[key] = float(row["accuracy"])
    return table


def published(preset: str, batch: int, hidden: int, method: str, shots: int | str) -> float | None:
    """The published accuracy of one cell (``shots="avg"`` for a printed average), None if not printed."""
    layout(preset)  # an unknown preset is a mistake, not a missing cell
    shots = AVG if shots == AVG else int(shots)
    return _table().get((preset, int(batch), int(hidden), method, shots))


@dataclass(frozen=True)
class Layout:
    """How one paper lays out its Table 1: a group of rows per batch size, a column per shot count."""

    preset: str
    title: str                            # the paper
    batches: tuple[int, ...]              # one group of rows per batch size, in the paper's order
    rows: tuple[tuple[str, int], ...]     # (method, hidden) in the paper's order
    shots: tuple[int, ...]                # the columns
    has_avg: bool = False                 # an AVG column: the mean over the shots columns
    baseline: str = "analytic"            # what every other method is compared with

    def cells(self) -> list[dict]:
        """Every grid cell the table needs, in table order (batch group, row, column)."""
        return [dict(method=method, shots=shots, batch=batch, hidden=hidden)
                for batch in self.batches for method, hidden in self.rows for shots in self.shots]


LAYOUTS = {
    "alternate": Layout(
        preset="alternate",
        title="Deploying Analytic and Numerical Gradients in the Gradient Descent Method",
        batches=(1, 2, 4, 8),
        rows=(("analytic", 20), ("alternate", 20), ("analytic", 50), ("alternate", 50)),
        shots=(1, 2, 3, 4),
    ),
    "select": Layout(
        preset="select",
        title="Analytic and numerical differentiation based optimal parameter selection "
              "for few-shot learning and lightweight deep learning",
        batches=(1, 2, 4),
        rows=(("numeric", 20), ("analytic", 20), ("select", 20)),
        shots=(1, 2, 3),
        has_avg=True,
    ),
}


def layout(preset: str) -> Layout:
    """The layout of a preset's table; ValueError naming the valid presets otherwise."""
    try:
        return LAYOUTS[preset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(LAYOUTS)}") from None


def avg_check(preset: str) -> list[dict]:
    """Printed AVGs that are not the mean of their own row's printed cells.

    A printed AVG agrees when it is a correct 4-decimal rounding of the mean
    (within half a unit of the last digit), so a tie rounded either way is not
    flagged. Paper B prints select at B = 1 as 0.5382; its cells average 0.5378.
    """
    lay = layout(preset)
    found = []
    for batch in lay.batches:
        for method, hidden in lay.rows:
            printed = published(preset, batch, hidden, method, AVG)
            if printed is None:
                continue
            cells = [published(preset, batch, hidden, method, k) for k in lay.shots]
            mean = sum(cells) / len(cells)
            # 1e-9 absorbs the binary representation of the decimal numbers
            if abs(printed - mean) > 0.5e-4 + 1e-9:
                found.append(dict(batch=batch, hidden=hidden, method=method,
                                  printed=printed, mean_of_cells=round(mean, 4)))
    return found


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, as a paired comparison that the data can support or not.

    The claim holds when `method` beats every one of `baselines` in the
    `direction` given. A claim over several cells is pooled by seed: for each
    seed, each method's accuracy is averaged over `cells`, and the paired
    comparison runs over those per-seed means.
    """

    id: str
    preset: str
    text: str                             # the claim in plain words
    method: str
    baselines: tuple[str, ...]
    cells: tuple[dict, ...]               # dict(batch, hidden, shots) pooled by this claim
    direction: str = "greater"            # the method's accuracy is greater than the baseline's


def _alternate_claims() -> tuple[Claim, ...]:
    lay = LAYOUTS["alternate"]
    hiddens = sorted({hidden for _, hidden in lay.rows})
    each = [Claim(id=f"alternate-k2-H{hidden}-B{batch}", preset="alternate",
                  text=f"alternate is better than analytic at k = 2 (H = {hidden}, B = {batch})",
                  method="alternate", baselines=("analytic",),
                  cells=(dict(batch=batch, hidden=hidden, shots=2),))
            for batch in lay.batches for hidden in hiddens]
    pooled = Claim(id="alternate-k2-pooled", preset="alternate",
                   text="alternate is better than analytic at k = 2 (pooled over every H and B)",
                   method="alternate", baselines=("analytic",),
                   cells=tuple(cell for claim in each for cell in claim.cells))
    return (*each, pooled)


CLAIMS = {
    "alternate": _alternate_claims(),
    "select": (
        Claim(id="select-B1-avg", preset="select",
              text="select has the best average accuracy at B = 1 (mean over k = 1-3, H = 20)",
              method="select", baselines=("numeric", "analytic"),
              cells=tuple(dict(batch=1, hidden=20, shots=k) for k in LAYOUTS["select"].shots)),
    ),
}


def claims(preset: str) -> tuple[Claim, ...]:
    """The claims of a preset's paper; ValueError naming the valid presets otherwise."""
    return CLAIMS[layout(preset).preset]
