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
from typing import Any, cast

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
    title: str  # the paper
    batches: tuple[int, ...]  # one group of rows per batch size, in the paper's order
    rows: tuple[tuple[str, int], ...]  # (method, hidden) in the paper's order
    shots: tuple[int, ...]  # the columns
    has_avg: bool = False  # an AVG column: the mean over the shots columns
    baseline: str = "analytic"  # what every other method is compared with

    def cells(self) -> list[dict]:
        """Every grid cell the table needs, in table order (batch group, row, column)."""
        return [
            dict(method=method, shots=shots, batch=batch, hidden=hidden)
            for batch in self.batches
            for method, hidden in self.rows
            for shots in self.shots
        ]


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
            # a row with a printed AVG prints every cell
            cells = cast(list[float], [published(preset, batch, hidden, method, k) for k in lay.shots])
            mean = sum(cells) / len(cells)
            # 1e-9 absorbs the binary representation of the decimal numbers
            if abs(printed - mean) > 0.5e-4 + 1e-9:
                found.append(
                    dict(batch=batch, hidden=hidden, method=method, printed=printed, mean_of_cells=round(mean, 4))
                )
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
    text: str  # the claim in plain words
    method: str
    baselines: tuple[str, ...]
    cells: tuple[dict, ...]  # dict(batch, hidden, shots) pooled by this claim
    direction: str = "greater"  # the method's accuracy is greater than the baseline's


def _alternate_claims() -> tuple[Claim, ...]:
    lay = LAYOUTS["alternate"]
    hiddens = sorted({hidden for _, hidden in lay.rows})
    each = [
        Claim(
            id=f"alternate-k2-H{hidden}-B{batch}",
            preset="alternate",
            text=f"alternate is better than analytic at k = 2 (H = {hidden}, B = {batch})",
            method="alternate",
            baselines=("analytic",),
            cells=(dict(batch=batch, hidden=hidden, shots=2),),
        )
        for batch in lay.batches
        for hidden in hiddens
    ]
    pooled = Claim(
        id="alternate-k2-pooled",
        preset="alternate",
        text="alternate is better than analytic at k = 2 (pooled over every H and B)",
        method="alternate",
        baselines=("analytic",),
        cells=tuple(cell for claim in each for cell in claim.cells),
    )
    return (*each, pooled)


CLAIMS = {
    "alternate": _alternate_claims(),
    "select": (
        Claim(
            id="select-B1-avg",
            preset="select",
            text="select has the best average accuracy at B = 1 (mean over k = 1-3, H = 20)",
            method="select",
            baselines=("numeric", "analytic"),
            cells=tuple(dict(batch=1, hidden=20, shots=k) for k in LAYOUTS["select"].shots),
        ),
    ),
}


SMALLEST_MARGIN = 0.00005  # half a test image of 10,000: a claimed gain of nothing leaves only exact equality


def claimed_gain(claim: Claim, baseline: str) -> float:
    """The gain the paper's own numbers show for `claim` over `baseline`: the published method − baseline, in
    the claimed direction, averaged over the claim's cells (0 or below: the published numbers show none)."""
    sign = 1.0 if claim.direction == "greater" else -1.0
    gains = []
    for c in claim.cells:
        mine = published(claim.preset, c["batch"], c["hidden"], claim.method, c["shots"])
        theirs = published(claim.preset, c["batch"], c["hidden"], baseline, c["shots"])
        if mine is not None and theirs is not None:
            gains.append(sign * (mine - theirs))
    return sum(gains) / len(gains) if gains else 0.0


def claim_margin(claim: Claim, baseline: str, default: float) -> float:
    """The equivalence margin of a claim: below the gain it claims, so that "equivalent" can refute it: half the
    published gain, at most `default` and at least SMALLEST_MARGIN (a claimed gain of 0 or less, as most of
    paper A's k = 2 cells print, is refuted only by differences of less than one test image)."""
    return min(default, max(claimed_gain(claim, baseline) / 2, SMALLEST_MARGIN))


def claims(preset: str) -> tuple[Claim, ...]:
    """The claims of a preset's paper; ValueError naming the valid presets otherwise."""
    return CLAIMS[layout(preset).preset]


# --- which network did the papers train? -----------------------------------------------------------------

# Named settings (--setting NAME): fields set together, each still overridden by its own option when given.
# relu-textbook: the textbook's chapter-5 TwoLayerNet and its training (ch05/two_layer_net.py,
# train_neuralnet.py): ReLU, N(0, 0.01^2) weights, pixels float32 (its loader) under float64 weights, the loss
# -log(p + 1e-7) and its numerical_gradient's arithmetic (each perturbed batch loss a number, then subtracted).
# Its mini-batches are drawn with replacement, as gradsel's always are.
NAMED_SETTINGS: dict[str, dict[str, Any]] = {
    "relu-textbook": {
        "activation": "relu",
        "init": "std",
        "init_std": 0.01,
        "pixels": "float32",
        "precision": "float64",
        "loss_epsilon": 1e-7,
        "fd_arith": "textbook",
    },
}

# Presets of both papers' tables in a named setting of the same name (`gradsel table --preset relu-textbook`):
# each paper's grid, printed beside the published numbers and beside gradsel's default setting (sigmoid).
SETTING_PRESETS: dict[str, tuple[str, ...]] = {"relu-textbook": ("alternate", "select")}
assert set(SETTING_PRESETS) <= set(NAMED_SETTINGS)

# --- when does the gradient source matter? ------------------------------------------------------------------

# The conditions of the study (`gradsel table --preset conditions`): settings that differ from the default setting.
CONDITIONS: dict[str, dict[str, Any]] = {
    "float64 exact": {},
    "float64 forward": {"fd_scheme": "forward"},
    "float64 textbook ε": {"fd_arith": "textbook", "loss_epsilon": 1e-7},
    "float32 exact": {"precision": "float32"},
    "float32 textbook ε": {"precision": "float32", "fd_arith": "textbook", "loss_epsilon": 1e-7},
    "relu": {"activation": "relu"},
}
STUDY_SOURCES = ("analytic", "numeric")  # what the papers compared: the exact gradient and finite differences
STUDY_METHODS = (*STUDY_SOURCES, "alternate", "select")
NEAR_ZERO = 0.0002  # a published difference this small is "no difference" (2 test images)


def study_cells() -> list[dict]:
    """Paper A's k = 2 cells and its B = 1 cells (each once), as dict(batch, hidden, shots)."""
    lay = LAYOUTS["alternate"]
    hiddens = sorted({hidden for _, hidden in lay.rows})
    cells = [dict(batch=b, hidden=h, shots=2) for b in lay.batches for h in hiddens]
    cells += [dict(batch=1, hidden=h, shots=k) for h in hiddens for k in lay.shots if k != 2]
    return cells


def condition_of(config: dict) -> str | None:
    """The study condition a run's config belongs to (its settings the defaults but for the condition's)."""
    for name, changes in CONDITIONS.items():
        want = {
            "fd_scheme": "central",
            "fd_arith": "exact",
            "loss_epsilon": 0.0,
            "precision": "float64",
            "activation": "sigmoid",
            "pixels": "float64",
            **changes,
        }
        if all(config.get(k) == v for k, v in want.items()):
            return name
    return None


# --- which network did the papers train? (`gradsel table --preset differences`) -----------------------------

# The published single-run differences (each paper's method − analytic, one run a cell) are tested against the
# paired single-run differences of these conditions: each of the conditions study's on its cells (study_cells),
# the textbook's setting on every cell of both papers and on the study's cells alone (like for like).
DIFFERENCE_CONDITIONS = (*CONDITIONS, "relu-textbook")
TEST_IMAGES = 10_000  # MNIST's test set, on which the papers report: a difference of 0.0001 is one test image
assert set(DIFFERENCE_CONDITIONS) <= set(CONDITIONS) | set(NAMED_SETTINGS)


def condition_fields() -> tuple[str, ...]:
    """The fields the conditions of the differences comparison set between them (network and arithmetic): each
    condition's run has them at the condition's values or the defaults, never at a command line's."""
    return tuple(dict.fromkeys(k for n in DIFFERENCE_CONDITIONS for k in condition_changes(n)))


def condition_changes(name: str) -> dict[str, Any]:
    """The fields a condition of the differences comparison sets: a study condition's or a named setting's."""
    return dict(NAMED_SETTINGS[name]) if name in NAMED_SETTINGS else dict(CONDITIONS[name])


def difference_scopes(name: str) -> tuple[str, ...]:
    """The cells a condition is compared on: "study" (study_cells), and "all" (both papers' every cell) for a
    named setting, whose runs cover them."""
    return ("study", "all") if name in NAMED_SETTINGS else ("study",)


def difference_cells(scope: str) -> list[dict]:
    """Each paper's cells in `scope` ("study" or "all"), as dict(paper, method, batch, hidden, shots)."""
    study = {(c["batch"], c["hidden"], c["shots"]) for c in study_cells()}
    return [
        {"paper": preset, **cell}
        for preset, lay in LAYOUTS.items()
        for cell in lay.cells()
        if scope == "all" or (cell["batch"], cell["hidden"], cell["shots"]) in study
    ]


def published_pattern() -> list[dict]:
    """Per paper, the published differences of each method against analytic, in the same cell and paper:
    how many there are, how many are within NEAR_ZERO, and the largest."""
    out = []
    for preset in ("alternate", "select"):
        lay = LAYOUTS[preset]
        for method in sorted({m for m, _ in lay.rows} - {"analytic"}):
            diffs = []
            for batch in lay.batches:
                for hidden in sorted({h for _, h in lay.rows}):
                    for k in lay.shots:
                        a, b = (
                            published(preset, batch, hidden, method, k),
                            published(preset, batch, hidden, "analytic", k),
                        )
                        if a is not None and b is not None:
                            diffs.append(round(a - b, 4))
            out.append(
                {
                    "paper": preset,
                    "method": method,
                    "n": len(diffs),
                    "within": sum(abs(d) <= NEAR_ZERO + 1e-9 for d in diffs),
                    "exact_zero": diffs.count(0.0),
                    "largest": max(diffs, key=abs),
                }
            )
    return out


def cross_paper_analytic() -> dict:
    """The analytic H = 20 cells printed in both papers: the largest difference between the two prints."""
    diffs = []
    for batch in LAYOUTS["select"].batches:
        for k in LAYOUTS["select"].shots:
            a, b = published("alternate", batch, 20, "analytic", k), published("select", batch, 20, "analytic", k)
            if a is not None and b is not None:
                diffs.append({"batch": batch, "shots": k, "difference": round(a - b, 4)})
    return max(diffs, key=lambda d: abs(d["difference"]))
