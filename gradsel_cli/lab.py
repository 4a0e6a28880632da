"""The experiments of the study notes' chapter 6 (`gradsel lab PRESET`), as data: what each preset runs.

A preset is its settings (the textbook's chapter-6 regime, each overridable on
the command line), its cells (what it varies: the runs of one seed), the panel
each cell is drawn in, its curves' labels, and the caption that says how it
differs from the textbook's experiment. No heavy imports: the command line
reads it to build its options.
"""

from dataclasses import dataclass

from .choices import OPTIMIZERS
from .config import POLICIES, counted, images_label

# The textbook's chapter-6 training (ch06/optimizer_compare_mnist.py, weight_init_compare.py): all 60,000 images,
# mini-batches of 128, 2,000 iterations, ReLU units of 100, He initialisation, SGD with lr 0.01.
TEXTBOOK = dict(subset="all", batch=128, hidden=100, iters=2000, activation="relu", init="he", optimizer="sgd", lr=0.01)
# The textbook's optimizers' default learning rates (common/optimizer.py): 0.01, Adam's 0.001.
TEXTBOOK_RATES = {name: 0.001 if name == "adam" else 0.01 for name in OPTIMIZERS}
# The textbook's overfitting experiments (overfit_weight_decay.py, overfit_dropout.py): 300 training images, mini-
# batches of 100, SGD at lr 0.01; 200 epochs of 3 iterations. Its network is 6 hidden layers of 100 ReLU units.
OVERFIT = {**TEXTBOOK, "subset": "first", "shots": 30, "batch": 100, "iters": 600}
# The textbook's batch_norm_test.py: 1,000 training images, mini-batches of 100, SGD at lr 0.01, 20 epochs of 10
# iterations; weights N(0, w^2) for 16 scales w, logspace(0, -4). Its network is 5 hidden layers of 100 ReLU units.
BATCH_NORM = {**TEXTBOOK, "subset": "first", "shots": 100, "batch": 100, "iters": 200}
SCALES = tuple(float(10 ** (-4 * i / 15)) for i in range(16))
# The textbook's hyperparameter_optimization.py: the first 500 training images, shuffled, 100 of them held out to
# validate on; 100 trials of lr 10^U(-6, -2) and weight decay 10^U(-8, -4); 50 epochs of 4 mini-batches of 100, SGD.
# Its network is 6 hidden layers of 100 ReLU units.
SEARCH = {**TEXTBOOK, "subset": "first", "shots": 40, "batch": 100, "iters": 200}
INITS = (dict(init="std", init_std=1.0), dict(init="std", init_std=0.01), dict(init="xavier"), dict(init="he"))
ACTIVATIONS = ("sigmoid", "tanh", "relu")  # the textbook's histograms' three
TWO_LAYERS = (
    "The textbook trains 5 layers here (4 hidden layers of 100 units); gradsel trains its two-layer "
    "network (784-H-10), so the effect of depth is not in these curves."
)


@dataclass(frozen=True)
class Search:
    """A random search on `gradsel tune`'s machinery: its trials, the log-uniform ranges of the learning rate and
    weight decay, the validation images per class, and how many of the best trials' curves are drawn."""

    trials: int
    lr: tuple[float, float]
    weight_decay: tuple[float, float]
    val_per_class: int
    best: int


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line: what the preset shows (--help, the docs)
    settings: dict  # TrainConfig fields it sets (a given option overrides each)
    cells: tuple  # the runs of one seed: each a dict of the fields it varies (not overridable)
    panel: str | None  # the field whose value gives each cell its panel, or None (one panel)
    caption: str  # how it differs from the textbook's experiment, under the figure
    # what its figure draws: "curves" (training loss over test accuracy), "histograms" (the hidden activations:
    # the textbook's deep stack, the runs' own), "train-test" (train against test accuracy per epoch) or "grid"
    # (a small panel per value of the panel field: the accuracy on the training images per epoch of each cell) or
    # "search" (the validation accuracy of each trial of `search` over lr x weight decay, and the best trials' curves)
    figure: str = "curves"
    curve_points: int = 20  # accuracy evaluations per run (train-test, grid, search: one per epoch instead)
    search: Search | None = None  # a random search instead of cells (the trials are its runs)

    def points(self, config: dict) -> int:
        """The accuracy evaluations of a run of this preset: curve_points, or (train-test, grid, search) one per
        epoch."""
        if self.figure not in ("train-test", "grid", "search"):
            return self.curve_points
        return max(1, round(config["iters"] / epoch(config)))

    def varies(self) -> set[str]:
        return {k for cell in self.cells for k in cell} | ({"lr", "weight_decay"} if self.search else set())


def epoch(config: dict) -> float:
    """The iterations of one epoch (one pass over the training images, in mini-batches) of a config's run."""
    return (60_000 if config["subset"] == "all" else 10 * config["shots"]) / config["batch"]


GRID_OPTIONS = {"seeds", "workers", "executor", "scheduler", "timeout"}  # how a grid of cells runs, not a search


def refusal(preset: str, given: set[str]) -> str | None:
    """Why the options `given` cannot run with `preset` (one it varies per run is among them; --trials without a
    search; how a grid runs, with a search), or None."""
    p = PRESETS[preset]
    if p.search is None and "trials" in given:
        searches = ", ".join(name for name, q in PRESETS.items() if q.search is not None)
        return f"--trials: only a search preset ({searches}) draws trials; drop --trials"
    if p.search is not None and (grid := sorted(given & GRID_OPTIONS)):
        flag = "--" + grid[0]
        return (
            f"{flag}: the {preset} preset runs one search on gradsel tune's machinery, its trials one after "
            f"another in this process; drop {flag} (--trials sets how many)"
        )
    varied = sorted(given & p.varies())
    if not varied:
        return None
    key, flag = varied[0], "--" + varied[0].replace("_", "-")
    if p.search is not None:
        lo, hi = getattr(p.search, key)
        return f"{flag}: the {preset} preset draws it per trial, log-uniform in [{lo:g}, {hi:g}]; drop {flag}"
    values = dict.fromkeys(f"{c[key]:g}" if isinstance(c[key], float) else str(c[key]) for c in p.cells if key in c)
    return f"{flag}: the {preset} preset sets it per run ({', '.join(values)}); drop {flag}"


def cell_label(cell: dict) -> str:
    """A cell's curve label: its optimizer (and rate), or its initialisation."""
    if "optimizer" in cell:
        return f"{cell['optimizer']} (lr {cell['lr']:g})"
    if "batch_norm" in cell:
        return "batch norm" if cell["batch_norm"] else "without"
    if "dropout" in cell:
        regularised = [f"weight decay {cell['weight_decay']:g}"] * bool(cell["weight_decay"])
        regularised += [f"dropout {cell['dropout']:g}"] * bool(cell["dropout"])
        return ", ".join(regularised) or "plain"
    return f"std {cell['init_std']:g}" if cell["init"] == "std" else cell["init"]


PRESETS = {
    p.name: p
    for p in (
        Preset(
            "optimizers",
            "training loss per optimizer (section 6.1; the textbook's ch06/optimizer_compare_mnist.py), paired",
            TEXTBOOK,
            tuple(dict(optimizer=o, lr=TEXTBOOK_RATES[o]) for o in OPTIMIZERS),
            None,
            f"Each optimizer at the textbook's learning rate. {TWO_LAYERS}",
        ),
        Preset(
            "init",
            "training loss per initialisation, for sigmoid, tanh and ReLU (section 6.2; weight_init_compare.py)",
            TEXTBOOK,
            tuple(dict(activation=a, **i) for a in ACTIVATIONS for i in INITS[1:]),
            "activation",
            f"std 0.01, Xavier sqrt(1/784) and He sqrt(2/784) for W1 (sqrt(1/H), sqrt(2/H) for W2). {TWO_LAYERS}",
        ),
        Preset(
            "init-histograms",
            "hidden activations per initialisation and activation (section 6.2; weight_init_activation_histogram.py), "
            "and gradsel's network at initialisation and after training",
            TEXTBOOK,
            tuple(dict(activation=a, **i) for a in ACTIVATIONS for i in INITS),
            "activation",
            "Left: the textbook's experiment as it is (1,000 N(0, 1) inputs through 5 layers of 100 units, forward "
            "passes only). Right: gradsel's two-layer network on 1,000 MNIST test images, whose inputs are pixels "
            "in [0, 1] with about 140 of 784 lit, not N(0, 1): one hidden layer, so no deeper layer to saturate.",
            figure="histograms",
        ),
        Preset(
            "overfit",
            "train against test accuracy per epoch on 300 images: plain, with weight decay, with dropout (6.4)",
            OVERFIT,
            (
                dict(weight_decay=0.0, dropout=0.0),
                dict(weight_decay=0.1, dropout=0.0),
                dict(weight_decay=0.0, dropout=0.2),
            ),
            None,
            "The textbook trains on the first 300 training images for 200 epochs of 3 mini-batches of 100; the "
            "preset's are 30 per class. The textbook overfits a network of 6 hidden layers of 100 units; gradsel's "
            "two-layer network (784-H-10) has far fewer weights to overfit with.",
            figure="train-test",
        ),
        Preset(
            "batch-norm",
            "accuracy on the training images per epoch with and without batch norm, for 16 weight scales (6.3)",
            BATCH_NORM,
            tuple(dict(init="std", init_std=w, batch_norm=b) for w in SCALES for b in (True, False)),
            "init_std",
            "The textbook trains on the first 1,000 training images for 20 epochs of 10 mini-batches of 100; the "
            "preset's are 100 per class. Initial weights N(0, w²), w from 1 to 1e-4. The textbook's network is 5 "
            "hidden layers of 100 units, each normalised; gradsel normalises its one hidden layer.",
            figure="grid",
        ),
        Preset(
            "hyperparameters",
            "random search of lr and weight decay: each trial's validation accuracy, the best trials' curves (6.5)",
            SEARCH,
            (),
            None,
            "The textbook trains on 400 of the first 500 training images, shuffled, and validates on the other 100; "
            "gradsel's split is balanced by class. 50 epochs of 4 mini-batches of 100. The textbook's network is 6 "
            "hidden layers of 100 units; gradsel trains its two-layer network (784-H-10).",
            figure="search",
            search=Search(trials=100, lr=(1e-6, 1e-2), weight_decay=(1e-8, 1e-4), val_per_class=10, best=20),
        ),
    )
}
SET = tuple(dict.fromkeys(k for p in PRESETS.values() for k in p.settings))  # the fields some preset sets


def title(summary: dict) -> str:
    """The line that names what a lab summary ran: the preset, the gradient, the data, the fixed settings."""
    p, c = PRESETS[summary["preset"]], summary["config"]
    gradient = f"{c['method']} over {c['sources']}" if c["method"] in POLICIES else c["method"]
    fixed = [f"{k} {c[k]}" for k in ("activation", "init", "optimizer") if k not in p.varies()]
    if "lr" not in p.varies():
        fixed.append(f"lr {c['lr']:g}")
    seeds = summary["seeds"]
    return ", ".join(
        [
            f"gradsel lab {p.name} — {gradient}",
            images_label(c),
            f"B={c['batch']}",
            f"H={c['hidden']}",
            *fixed,
            counted(c["iters"], "iteration", ","),
            "seed 0" if seeds == 1 else f"seeds 0–{seeds - 1}",
        ]
    )
