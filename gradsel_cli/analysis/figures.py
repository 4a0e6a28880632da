"""Figures as PNG files: learning curves, the paper's Figure 2 (digits and predictions), the gradcheck V.

The only module importing matplotlib, and only inside its functions (an
optional extra: ``pip install "gradsel[plot]"``). Figures are drawn on the Agg
canvas with one fixed style, size and dpi, so the same data give the same
picture. Input is the plain data of report.py and gradcheck.py.
"""

import itertools
import math
import textwrap

from ..config import counted, images_label

INSTALL = 'pip install "gradsel[plot]"'
DPI = 100
CURVES_SIZE = (12.0, 4.0)  # inches: 1200 x 400 pixels
GRADCHECK_SIZE = (10.0, 4.2)  # 1000 x 420 pixels
DIGITS_PER_ROW = 8
DIGIT_CELL = (1.5, 1.45)  # inches per digit: the image and its title line
CAPTION_LINE = 0.17  # inches per method under each digit
TITLE_SPACE = 0.45  # inches above the grid for the figure title
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}
POLICY_COLOURS = {"alternate": "#2ca02c", "select": "#d62728"}  # a source alone: the colour its module declares


def method_colour(method: str) -> str | None:
    from .. import sources

    return sources.REGISTRY[method].colour if method in sources.REGISTRY else POLICY_COLOURS.get(method)


BLOCK_COLOURS = {"W1": "#1f77b4", "b1": "#ff7f0e", "W2": "#2ca02c", "b2": "#9467bd", "all": "black"}
RIGHT, WRONG, DISAGREE = "#1a7f37", "#cf222e", "#e36209"


def figure_title(command: str, c: dict, seeds, methods=None) -> str:
    """The title line of a figure: the command and the configuration it shows, with the step option of each
    source that `methods` (default: the config's method) computes, by its own name (numeric's fd-step, say);
    c["budget"], if given, in place of the iterations (compare --budget)."""
    from .. import sources
    from ..config import computed_sources

    seeds = list(seeds)
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}"
    used = computed_sources(c, methods or [c["method"]])
    steps = [f"{s.step.replace('_', '-')} {c[s.step]:g}" for s in map(sources.get, used) if s.step]
    return ", ".join(
        [
            f"gradsel {command} — {images_label(c)}",
            f"B={c['batch']}",
            f"H={c['hidden']}",
            counted(c["iters"], "iteration", ",") if c.get("budget") is None else f"budget {c['budget']:,.0f} fpe",
            f"lr {c['lr']}",
            *steps,
            which,
        ]
    )


def require():
    """Import matplotlib (Agg backend), or raise ValueError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError(f"plotting needs matplotlib, which is not installed: {INSTALL}") from None
    matplotlib.use("Agg")
    return matplotlib


def _figure(size):
    require()
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _save(fig, path) -> None:
    fig.savefig(path, dpi=DPI, format="png")


def _style():
    return require().rc_context(STYLE)


X_LABELS = {  # curves' x axis (choices.CURVE_AXES)
    "iterations": "iteration",
    "budget": "forward-pass equivalents spent (cost ledger)",
    "time": "seconds of training (iterations x time per iteration)",
}


def curves_figure(path, curves: dict, title: str) -> None:
    """Training loss (log scale), test accuracy, and — when select ran — where select kept the
    numeric update, per method: the mean over seeds with a min-max band."""
    rows = curves["methods"]
    has_select = any(r["shares"] for r in rows)
    has_probe = any(r.get("probe") for r in rows)
    with _style():
        panels = 2 + has_select + has_probe
        fig = _figure((4.6 * panels, CURVES_SIZE[1]) if panels > 3 else CURVES_SIZE)
        axes = fig.subplots(1, panels)
        loss_ax, acc_ax = axes[0], axes[1]
        seeds = max(len(r["seeds"]) for r in rows)
        band = f" (mean, band: min–max over {seeds} seeds)" if seeds > 1 else ""
        for r in rows:
            colour = method_colour(r["method"])
            if r["loss"]:
                _line(loss_ax, r["loss"], r["method"], colour)
            if r["accuracy"]:
                _line(acc_ax, r["accuracy"], r["method"], colour, marker=".")
        windows = {r["loss"]["every"] for r in rows if r["loss"]}
        every = f"{windows.pop()}-iteration" if len(windows) == 1 else "each run's"
        xlabel = X_LABELS[curves.get("x_axis", "iterations")]
        loss_ax.set(
            yscale="log",
            xlabel=xlabel,
            title="training loss" + band,
            ylabel=f"batch loss (nats), mean of {every} windows",
        )
        loss_ax.legend()
        acc_ax.set(xlabel=xlabel, ylabel="test accuracy (fraction correct)", title="test accuracy" + band)
        if any(r["accuracy"] for r in rows):
            acc_ax.legend(loc="lower right")
        else:
            acc_ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=acc_ax.transAxes)
        if has_select:
            _select_panel(axes[2], rows, xlabel)
        if has_probe:
            _probe_panel(axes[-1], rows, xlabel)
        fig.suptitle(title)
        _save(fig, path)


def train_figure(path, record: dict) -> None:
    """The learning curves of one run record (``train --plot``)."""
    from .report import curves

    c = record["config"]
    curves_figure(path, curves([record], [c["method"]]), figure_title("train", c, [c["seed"]]))


def _line(ax, series: dict, label: str, colour, marker=None) -> None:
    x = series.get("x", series["iterations"])
    ax.plot(x, series["mean"], label=label, color=colour, lw=1.3, marker=marker, ms=3)
    if series["lo"] != series["hi"]:
        ax.fill_between(x, series["lo"], series["hi"], color=colour, alpha=0.2, lw=0)


def _select_panel(ax, rows: list[dict], xlabel: str = "iteration") -> None:
    """select: share of iterations whose kept update came from each source but the first (left), and that
    source's relative difference to the first (right, log scale), per window."""
    from .. import sources

    err_ax = ax.twinx()
    err_ax.grid(False)
    for r in rows:
        for name, series in r["shares"].items():
            colour = sources.REGISTRY[name].colour if name in sources.REGISTRY else None
            _line(ax, series, f"{r['method']}: {name} share", colour)
        for name, d in r["rel_diffs"].items():
            err_ax.plot(
                d.get("x", d["iterations"]),
                d["mean"],
                color="grey",
                lw=1,
                ls="--",
                label=f"{r['method']}: {name} rel. diff.",
            )
    every = next(v["every"] for r in rows for v in r["shares"].values())
    ax.set(
        ylim=(-0.02, 1.02),
        xlabel=xlabel,
        title="where select keeps another source's update",
        ylabel=f"share of updates per {every}-iteration window",
    )
    err_ax.set(yscale="log", ylabel="‖g − g_first‖ / ‖g_first‖ (window mean)")
    err_ax.spines["right"].set_visible(True)
    handles = ax.get_legend_handles_labels()
    extra = err_ax.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="lower right")


def _probe_panel(ax, rows: list[dict], xlabel: str) -> None:
    """The fidelity probe: each source's cosine to the exact gradient at the run's weights (solid, left: symlog,
    so that 0.005 and 1 both show) and its relative error (dashed, right: log), mean over seeds."""
    from .. import sources

    err_ax = ax.twinx()
    err_ax.grid(False)
    for r in rows:
        for name, series in r.get("probe", {}).get("cosine", {}).items():
            colour = sources.REGISTRY[name].colour if name in sources.REGISTRY else None
            alone = r["method"] == name
            _line(ax, series, name if alone else f"{r['method']}: {name}", colour, marker="." if alone else "x")
            error = r["probe"]["rel_error"][name]
            err_ax.plot(error.get("x", error["iterations"]), error["mean"], color=colour, lw=1, ls="--")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set(xlabel=xlabel, title="each source against backprop (probe)", ylabel="cosine to ∇L (solid)")
    ax.set_ylim(-1e-2, 1.5)
    err_ax.set(yscale="log", ylabel="‖g − ∇L‖ / ‖∇L‖ (dashed)")
    err_ax.spines["right"].set_visible(True)
    ax.legend(loc="lower left")


def digits_size(n: int, methods: int) -> tuple[float, float]:
    """The figure size (inches) of a grid of n digits captioned with `methods` predictions:
    always DIGITS_PER_ROW cells wide, as many rows as needed."""
    rows = math.ceil(n / DIGITS_PER_ROW)
    return DIGITS_PER_ROW * DIGIT_CELL[0], TITLE_SPACE + rows * (DIGIT_CELL[1] + methods * CAPTION_LINE)


def digits_figure(path, images, labels, indices, predictions: dict, title: str) -> None:
    """A grid of test images (28 x 28, ink dark on white), each titled with its index and true
    label and captioned with each method's prediction (green right, red wrong); a digit on which
    the methods disagree has an orange frame and title. Cells are placed in inches, so captions
    never overlap whatever the number of methods."""
    import numpy as np

    methods = list(predictions)
    width, height = digits_size(len(indices), len(methods))
    cell_w, cell_h = DIGIT_CELL[0], DIGIT_CELL[1] + len(methods) * CAPTION_LINE
    side = DIGIT_CELL[1] - 0.3  # the image; 0.3 in above it for the title
    with _style():
        fig = _figure((width, height))
        fig.set_layout_engine("none")
        for k, i in enumerate(indices):
            row, col = divmod(k, DIGITS_PER_ROW)
            left = col * cell_w + (cell_w - side) / 2
            top = height - TITLE_SPACE - row * cell_h - 0.25  # inches from the bottom
            ax = fig.add_axes([left / width, (top - side) / height, side / width, side / height])
            preds = [int(predictions[m][i]) for m in methods]
            differ = len(set(preds)) > 1
            ax.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(differ)
                spine.set_color(DISAGREE)
                spine.set_linewidth(2.5)
            ax.set_title(
                f"#{i}  true {int(labels[i])}",
                fontsize=8,
                pad=3,
                color=DISAGREE if differ else "black",
                fontweight="bold" if differ else "normal",
            )
            for j, (m, p) in enumerate(zip(methods, preds)):
                y = top - side - 0.05 - j * CAPTION_LINE
                fig.text(
                    (col + 0.5) * cell_w / width,
                    y / height,
                    f"{m} {p if p >= 0 else '–'}",
                    ha="center",
                    va="top",
                    fontsize=7,
                    color=RIGHT if p == labels[i] else WRONG,
                    fontweight="bold" if differ else "normal",
                )
        fig.suptitle(title, y=1 - 0.12 / height, va="top")
        _save(fig, path)


def digits_view_figure(path, digits: dict) -> None:
    """digits_figure of a report.digits_view (``compare --figure``)."""
    digits_figure(path, digits["images"], digits["labels"], digits["indices"], digits["predictions"], digits["title"])


def gradcheck_title(check: dict) -> str:
    """The title of the gradcheck figure: the sources and the configuration checked."""
    c = check["config"]
    names = ", ".join(check["states"][0]["sources"])
    return f"gradcheck: {names} vs {check['exact']}, k={c['shots']}, B={c['batch']}, H={c['hidden']}, seed {c['seed']}"


def gradcheck_figure(path, check: dict, title: str) -> None:
    """Relative error of each source's gradient against the step h, log-log, at initialisation and after
    training: over all weights for every source (a source without a step: a level line), per block for the
    first, with the slopes of truncation and rounding error. Random sources (those with "law") in a row of
    their own: their mean error over the draws against the number of directions q, its spread as bars, beside
    sqrt(P / q), and at initialisation against the number of weights."""
    states = check["states"]
    fixed = [n for n, v in states[0]["sources"].items() if "law" not in v]
    random = [n for n, v in states[0]["sources"].items() if "law" in v]
    with _style():
        width, height = GRADCHECK_SIZE
        fig = _figure((width, height * (bool(fixed) + bool(random))))
        parts = fig.subfigures(bool(fixed) + bool(random), 1, squeeze=False)[:, 0]
        if fixed:
            _gradcheck_steps(parts[0], check, fixed)
        if random:
            _gradcheck_draws(parts[-1], check, random)
        fig.suptitle(title)
        _save(fig, path)


def _gradcheck_steps(fig, check: dict, names: list) -> None:
    """gradcheck_figure's panels of the sources `names` against the step h."""
    from .. import sources

    axes = fig.subplots(1, len(check["states"]), sharey=True, squeeze=False)[0]
    errors = []
    for ax, state in zip(axes, check["states"]):
        stepped = [n for n in names if state["sources"][n]["step_option"]]
        for n in names:
            checked = state["sources"][n]
            rows = checked["rows"]
            colour = sources.get(n).colour if n in sources.REGISTRY else None
            for block in ("W1", "b1", "W2", "b2", "all") if stepped[:1] == [n] else ("all",):
                errs = [(r["blocks"][block] if block != "all" else r["all"])["rel_diff"] for r in rows]
                errors += [e for e in errs if e]
                if not checked["step_option"]:
                    if errs[0]:
                        ax.axhline(errs[0], color=colour, lw=1.6, ls="--", label=f"{n} (no step)")
                    continue
                pts = [(r["step"], e) for r, e in zip(rows, errs) if e is not None and e > 0]
                if pts:
                    whole = block == "all"
                    ax.plot(
                        *zip(*pts),
                        marker="o",
                        ms=3.5,
                        color=BLOCK_COLOURS[block] if stepped[:1] == [n] else colour,
                        lw=2.2 if whole else 1.0,
                        label=f"{n}: all weights" if whole else f"{n}: {block}",
                    )
        if stepped:
            first = state["sources"][stepped[0]]
            _slopes(ax, first, sources.get(stepped[0]).check.truncation(check["config"]))
        when = (
            "at initialisation"
            if state["iteration"] == 0
            else f"after {state['iteration']:,} {check['exact']} iterations"
        )
        ax.set(xscale="log", yscale="log", xlabel="step h (weight units)", title=when)
        ax.invert_xaxis()
    if errors:  # the panels share y: limits that show every block of every panel
        axes[0].set_ylim(min(errors) / 3, max(errors) * 3)
    axes[0].set_ylabel(f"relative error ‖g − g_{check['exact']}‖ / ‖g_{check['exact']}‖")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper")


def _gradcheck_draws(fig, check: dict, names: list) -> None:
    """gradcheck_figure's panels of the random sources `names`: their error over the draws (root mean square;
    bars: its spread) against q in each state, and against the number of weights P at initialisation, beside
    sqrt(P / q); each panel's legend gives each source's slope."""
    from matplotlib.ticker import NullFormatter

    from .. import sources

    def slope(x) -> str:
        return "no slope" if x is None else f"slope {x:+.2f}".replace("-", "−")

    def draw(ax, x, rows, colour, label, marker) -> None:
        pts = [(a, r["rel_diff"], r["spread"] or 0.0) for a, r in zip(x, rows) if r["rel_diff"]]
        if pts:
            a, e, sd = zip(*pts)
            ax.errorbar(a, e, yerr=sd, marker=marker, ms=3.5, color=colour, lw=2.0, capsize=2, label=label)

    states = check["states"]
    sized = [n for n in names if "sizes" in states[0]["sources"][n]]
    axes = fig.subplots(1, len(states) + bool(sized), sharey=True, squeeze=False)[0]
    for ax, state in zip(axes, states):
        for n in names:
            checked = state["sources"][n]
            rows = [r for r in checked["rows"] if r["step"] == checked["rows"][0]["step"]]
            flat = [{"rel_diff": r["all"]["rel_diff"], "spread": r["spread"]["rel_diff"]} for r in rows]
            colour = sources.get(n).colour if n in sources.REGISTRY else None
            draw(ax, [r["q"] for r in rows], flat, colour, f"{n} ({slope(checked['law'])})", "o")
        first = [
            r for r in state["sources"][names[0]]["rows"] if r["step"] == state["sources"][names[0]]["rows"][0]["step"]
        ]
        ax.plot(
            [r["q"] for r in first],
            [r["expected"] for r in first],
            ls=":",
            color="grey",
            lw=1.4,
            label="√(P/q)",
        )
        when = (
            "at initialisation"
            if state["iteration"] == 0
            else f"after {state['iteration']:,} {check['exact']} iterations"
        )
        ax.set(xscale="log", yscale="log", xlabel="directions q", title=when)
        ax.legend(loc="upper right", fontsize=7)
    if sized:
        ax = axes[-1]
        rows = states[0]["sources"][sized[0]]["sizes"]
        q = round(rows[0]["weights"] / rows[0]["expected"] ** 2)
        for n in sized:
            checked = states[0]["sources"][n]
            colour = sources.get(n).colour if n in sources.REGISTRY else None
            sizes = checked["sizes"]
            draw(ax, [r["weights"] for r in sizes], sizes, colour, f"{n} ({slope(checked['size_law'])})", "s")
        ax.plot(
            [r["weights"] for r in rows], [r["expected"] for r in rows], ls=":", color="grey", lw=1.4, label="√(P/q)"
        )
        ax.set(xscale="log", yscale="log", xlabel="weights P (H = " + ", ".join(str(r["hidden"]) for r in rows) + ")")
        ax.set_title(f"q = {q}, at initialisation")
        ax.set_xticks([r["weights"] for r in rows], [f"{r['weights'] / 1000:.0f}k" for r in rows])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(loc="upper left", fontsize=7)
    axes[0].set_ylabel("relative error (rms over the draws)")


def _slopes(ax, state: dict, order: int) -> None:
    """Dotted guides through the all-weights curve: truncation error ∝ h^order from the largest h
    down to the best one, rounding error ∝ 1/h from the smallest h up to it."""
    pts = sorted((r["step"], r["all"]["rel_diff"]) for r in state["rows"] if r["all"]["rel_diff"])
    if len(pts) < 3:
        return
    best = state["best_step"]
    (h_lo, e_lo), (h_hi, e_hi) = pts[0], pts[-1]
    big = [h for h, _ in pts if h >= best]
    small = [h for h, _ in pts if h <= best]
    ax.plot(
        big,
        [e_hi * (h / h_hi) ** order for h in big],
        ls=":",
        color="grey",
        lw=1.2,
        label=f"∝ h{'²' if order == 2 else ''} (truncation)",
    )
    ax.plot(small, [e_lo * h_lo / h for h in small], ls="-.", color="grey", lw=1.2, label="∝ 1/h (rounding)")


PATHS_PANEL = (4.6, 3.6)  # inches per optimizer's panel
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "Momentum", "nesterov": "Nesterov", "adagrad": "AdaGrad"}
OPTIMIZER_LABELS |= {"rmsprop": "RMSprop", "adam": "Adam"}


def paths_figure(path, record: dict, title: str) -> None:
    """One panel per optimizer (the textbook's 2 x 2 for four): contours of the surface, the path from its start
    (a point per step; a path that diverged stops at its last finite point) and the marked minima and saddles."""
    import numpy as np

    from ..numerics.paths import surface

    s = surface(record["surface"])
    (x0, x1), (y0, y1) = s.extent
    X, Y = np.meshgrid(np.linspace(x0, x1, 241), np.linspace(y0, y1, 241))
    Z = s.f(np.array([X, Y]))
    levels = np.unique(np.quantile(Z, np.linspace(0.01, 0.9, 14)))
    names = list(record["paths"])
    cols = 2 if len(names) <= 4 else 3
    rows = math.ceil(len(names) / cols)
    with _style():
        fig = _figure((PATHS_PANEL[0] * cols, PATHS_PANEL[1] * rows + 0.4))
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, name in zip(axes, names):
            run = record["paths"][name]
            ax.contour(X, Y, Z, levels=levels, colors="#9a9a9a", linewidths=0.7)
            finite = list(itertools.takewhile(lambda p: p is not None, run["points"]))  # to where it diverged
            xs, ys = zip(*finite)
            ax.plot(xs, ys, "o-" if len(xs) <= 61 else "-", color="#d62728", ms=3.0, lw=1.0)  # a dot a step, to 60
            ax.plot(xs[0], ys[0], "s", color="#d62728", ms=5)
            for _what, (mx, my) in s.marks:
                ax.plot(mx, my, "+", color="black", ms=10, mew=1.6)
            diverged = " — diverged" if len(finite) < len(run["points"]) else ""
            ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")
            ax.set_title(f"{OPTIMIZER_LABELS.get(name, name)} (lr {run['lr']:g}){diverged}")
            ax.grid(False)
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        # about 48 characters of the title per panel
        fig.suptitle("\n".join(textwrap.wrap(title, 48 * cols, break_on_hyphens=False)))
        _save(fig, path)


LAB_PANEL = (4.8, 3.4)  # inches per panel of a lab figure
LAB_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")  # a cell's by its place in a panel


def lab_figure(path, summary: dict, title: str) -> None:
    """gradsel lab's curves: per panel (one, or one per activation) the training loss of each cell (log scale)
    above its test accuracy, each a mean over the seeds with a min-max band; the preset's caption below."""
    panels = list(dict.fromkeys(c["panel"] for c in summary["cells"]))
    seeds = summary["seeds"]
    band = f" (mean, band: min–max over {seeds} seeds)" if seeds > 1 else ""
    with _style():
        n = len(panels)
        fig = _figure((LAB_PANEL[0] * max(n, 2), LAB_PANEL[1] * (1 if n == 1 else 2) + 0.9))
        grid = fig.subplots(1, 2, squeeze=False) if n == 1 else fig.subplots(2, n, squeeze=False)
        pairs = [(grid[0, 0], grid[0, 1])] if n == 1 else [(grid[0, j], grid[1, j]) for j in range(n)]
        for panel, (loss_ax, acc_ax) in zip(panels, pairs):
            cells = [c for c in summary["cells"] if c["panel"] == panel]
            for colour, c in zip(itertools.cycle(LAB_COLOURS), cells):
                if c["loss"]:
                    _line(loss_ax, c["loss"], c["label"], colour)
                if c["accuracy_curve"]:
                    _line(acc_ax, c["accuracy_curve"], c["label"], colour, marker=".")
            where = "" if panel is None else f"{panel}: "
            every = next((c["loss"]["every"] for c in cells if c["loss"]), 1)
            loss_ax.set(
                yscale="log",
                xlabel="iteration",
                ylabel=f"batch loss, mean of {every}-iteration windows",
                title=f"{where}training loss{band}",
            )
            acc_ax.set(xlabel="iteration", ylabel="test accuracy", title=f"{where}test accuracy{band}")
            loss_ax.legend()
            if any(c["accuracy_curve"] for c in cells):
                acc_ax.legend(loc="lower right")
        fig.suptitle("\n".join(textwrap.wrap(title, 60 * max(n, 2), break_on_hyphens=False)))
        fig.supxlabel("\n".join(textwrap.wrap(summary["caption"], 80 * max(n, 2))), fontsize=8, color="#444444")
        _save(fig, path)


HISTOGRAM_PANEL = (1.45, 0.95)  # inches per histogram
HISTOGRAM_COLOURS = {"textbook": "#1f77b4", "init": "#7f7f7f", "trained": "#ff7f0e"}


def _histogram_panel(ax, h: dict | None, colour: str) -> None:
    """One histogram as shares of its values per bin; its spread (std), the share at exactly 0 (ReLU's, not in the
    bars) and outside the range in a corner."""
    if h is None:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, fontsize=7)
        return
    import numpy as np

    lo, hi = h["range"]
    total = max(sum(h["counts"]) + h["zeros"] + h["below"] + h["above"], 1)
    edges = np.linspace(lo, hi, len(h["counts"]) + 1)
    ax.stairs(np.array(h["counts"]) / total, edges, fill=True, color=colour, alpha=0.85)
    notes = [] if h["std"] is None else [f"std {h['std']:.3g}"]
    notes += [
        f"{n / total:.0%} {what}" for n, what in ((h["zeros"], "at 0"), (h["below"] + h["above"], "outside")) if n
    ]
    box = dict(facecolor="white", alpha=0.75, lw=0, pad=1)
    ax.text(0.97, 0.95, "\n".join(notes), ha="right", va="top", transform=ax.transAxes, fontsize=6, bbox=box)
    ax.set_xlim(lo, hi)
    ax.tick_params(labelsize=6, pad=1)
    ax.set_yticks([])
    ax.grid(False)


def lab_histograms_figure(path, summary: dict, title: str) -> None:
    """gradsel lab init-histograms: a row per activation and initialisation; the textbook's 5 layers of random
    weights (blue), then gradsel's hidden layer at initialisation (grey) and after training (orange)."""
    cells = summary["cells"]
    layers = len(cells[0]["textbook"])
    cols = layers + 2
    with _style():
        fig = _figure((HISTOGRAM_PANEL[0] * cols, HISTOGRAM_PANEL[1] * len(cells) + 1.3))
        axes = fig.subplots(len(cells), cols, squeeze=False)
        hidden = summary["config"]["hidden"]
        heads = [f"layer {i + 1} (textbook)" for i in range(layers)] + [f"H={hidden}, at init", "H, trained"]
        for r, c in enumerate(cells):
            network = c["network"] or {}
            parts = [(h, "textbook") for h in c["textbook"]]
            parts += [(network.get("init"), "init"), (network.get("trained"), "trained")]
            for j, (h, kind) in enumerate(parts):
                ax = axes[r, j]
                _histogram_panel(ax, h, HISTOGRAM_COLOURS[kind])
                if r == 0:
                    ax.set_title(heads[j], fontsize=7)
            diverged = " (diverged)" if c["network"] and c["network"].get("trained") is None else ""
            axes[r, 0].set_ylabel(
                f"{c['panel']}\n{c['label']}{diverged}", fontsize=7, rotation=0, ha="right", va="center"
            )
        fig.suptitle("\n".join(textwrap.wrap(title, 130, break_on_hyphens=False)))
        fig.supxlabel("\n".join(textwrap.wrap(summary["caption"], 150)), fontsize=7, color="#444444")
        _save(fig, path)


TRAIN_TEST_COLOURS = {"train": "#1f77b4", "test": "#ff7f0e"}


def lab_train_test_figure(path, summary: dict, title: str) -> None:
    """gradsel lab overfit: one panel per cell, the accuracy on the training images against the test accuracy per
    epoch (the textbook's overfitting figures), each a mean over the seeds with a min-max band."""
    cells = summary["cells"]
    seeds = summary["seeds"]
    band = f" (mean, band: min–max over {seeds} seeds)" if seeds > 1 else ""
    with _style():
        fig = _figure((LAB_PANEL[0] * len(cells), LAB_PANEL[1] + 0.9))
        for ax, c in zip(fig.subplots(1, len(cells), squeeze=False)[0], cells):
            for kind, curve in (("train", c["train_curve"]), ("test", c["accuracy_curve"])):
                if curve:
                    epochs = {**curve, "iterations": [t / summary["epoch"] for t in curve["iterations"]]}
                    _line(ax, epochs, kind, TRAIN_TEST_COLOURS[kind])
            ends = [curve["mean"][-1] for curve in (c["train_curve"], c["accuracy_curve"]) if curve]
            gap = f" — gap {ends[0] - ends[1]:.3f}" if len(ends) == 2 else ""
            ax.set(xlabel="epoch", ylabel="accuracy", title=f"{c['label']}{gap}{band}", ylim=(0.0, 1.02))
            ax.legend(loc="lower right")
        fig.suptitle("\n".join(textwrap.wrap(title, 60 * max(len(cells), 2), break_on_hyphens=False)))
        fig.supxlabel(
            "\n".join(textwrap.wrap(summary["caption"], 80 * max(len(cells), 2))), fontsize=8, color="#444444"
        )
        _save(fig, path)


GRID_PANEL = (2.6, 2.0)  # inches per small panel of a lab grid
GRID_STYLES = ("-", "--")  # the first cell of a panel solid, the second dashed (the textbook's batch-norm figure)


def lab_grid_figure(path, summary: dict, title: str) -> None:
    """gradsel lab batch-norm: a small panel per value of the preset's panel field (the textbook's 4 x 4 for 16
    weight scales), the accuracy on the training images per epoch of each cell in it; a run that diverged says so."""
    panels = list(dict.fromkeys(c["panel"] for c in summary["cells"]))
    cols = math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / cols)
    name = {"init_std": "w"}.get(summary["panel"], summary["panel"])
    with _style():
        fig = _figure((GRID_PANEL[0] * cols, GRID_PANEL[1] * rows + 1.0))
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        for ax, panel in zip(axes.ravel(), panels):
            cells = [c for c in summary["cells"] if c["panel"] == panel]
            gone = []
            for style, colour, c in zip(GRID_STYLES, LAB_COLOURS, cells):
                if c["train_curve"]:
                    epochs = {
                        **c["train_curve"],
                        "iterations": [t / summary["epoch"] for t in c["train_curve"]["iterations"]],
                    }
                    _line(ax, epochs, c["label"], colour)
                    ax.lines[-1].set_linestyle(style)
                if c["accuracy"]["diverged"]:
                    gone.append(c["label"])
            if gone:
                ax.text(0.97, 0.05, f"{', '.join(gone)}: diverged", ha="right", transform=ax.transAxes, fontsize=7)
            ax.set_title(f"{name} = {panel:.3g}" if isinstance(panel, float) else f"{name} = {panel}", fontsize=9)
            ax.set_ylim(0.0, 1.02)
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(panels) :]:
            ax.set_visible(False)
        axes[0, 0].legend(fontsize=7, loc="upper left")
        fig.supylabel("accuracy on the training images", fontsize=9)
        fig.suptitle("\n".join(textwrap.wrap(title, 40 * cols, break_on_hyphens=False)))
        fig.supxlabel("epoch\n" + "\n".join(textwrap.wrap(summary["caption"], 45 * cols)), fontsize=8, color="#444444")
        _save(fig, path)


SEARCH_SIZE = (16.0, 7.6)  # inches: the scatter on the left, the best trials' small panels on the right
SEARCH_COLUMNS = 5  # small panels per row (the textbook's 5)
BEST_MARK = "#d62728"


def lab_search_figure(path, summary: dict, title: str) -> None:
    """gradsel lab hyperparameters: each trial's validation accuracy over its learning rate and weight decay (log
    axes; the best ringed, ranks numbered, a diverged trial a grey cross) and, on the right, the best trials'
    validation accuracy (solid) and accuracy on their training images (dashed) per epoch, as the textbook draws
    them."""
    trials, curves = summary["trials"], summary["curves"]
    best = {summary["best"]["trial"]} if summary["best"] else set(summary.get("tied") or [])
    with _style():
        fig = _figure(SEARCH_SIZE)
        left, right = fig.subfigures(1, 2, width_ratios=(1.0, 1.6))
        ax = left.subplots()
        done = [t for t in trials if t["val_accuracy"] is not None]
        gone = [t for t in trials if t["val_accuracy"] is None]
        dots = ax.scatter(
            [t["lr"] for t in done],
            [t["weight_decay"] for t in done],
            c=[t["val_accuracy"] for t in done],
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            s=28,
        )
        if gone:
            ax.scatter(
                [t["lr"] for t in gone], [t["weight_decay"] for t in gone], marker="x", c="#999999", label="diverged"
            )
        ringed = [t for t in done if t["trial"] in best]
        if ringed:
            ax.scatter(
                [t["lr"] for t in ringed],
                [t["weight_decay"] for t in ringed],
                s=160,
                facecolors="none",
                edgecolors=BEST_MARK,
                linewidths=1.6,
                label="best" if len(ringed) == 1 else "tied best",
            )
        for rank, t in enumerate(curves, start=1):
            ax.annotate(
                str(rank),
                (t["lr"], t["weight_decay"]),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=6,
                color="#333333",
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="learning rate",
            ylabel="weight decay",
            title=f"validation accuracy of {counted(len(trials), 'trial')} (numbers: rank)",
        )
        left.colorbar(dots, ax=ax, label="validation accuracy", fraction=0.05, aspect=30)
        if gone or ringed:
            ax.legend(loc="lower left")
        rows = max(1, math.ceil(len(curves) / SEARCH_COLUMNS))
        axes = right.subplots(rows, SEARCH_COLUMNS, squeeze=False, sharex=True, sharey=True)
        for rank, (a, t) in enumerate(zip(axes.ravel(), curves), start=1):
            for kind, curve, style in (("val", t["accuracy_curve"], "-"), ("train", t["train_curve"], "--")):
                if curve:
                    epochs = [i / summary["epoch"] for i in curve["iterations"]]
                    a.plot(
                        epochs,
                        curve["mean"],
                        style,
                        color=TRAIN_TEST_COLOURS["test" if kind == "val" else kind],
                        label=kind,
                    )
            acc = "diverged" if t["val_accuracy"] is None else f"{t['val_accuracy']:.2f}"
            a.set_title(
                f"Best-{rank}: {acc}\nlr {t['lr']:.2g}, wd {t['weight_decay']:.2g}",
                fontsize=7,
                color=BEST_MARK if t["trial"] in best else "black",
            )
            a.set_ylim(0.0, 1.02)
            a.tick_params(labelsize=7)
        for a in axes.ravel()[len(curves) :]:
            a.set_visible(False)
        if curves:
            axes[0, 0].legend(fontsize=6, loc="upper left")
        right.supxlabel("epoch", fontsize=8)
        right.supylabel("accuracy: validation (solid), training images (dashed)", fontsize=8)
        fig.suptitle("\n".join(textwrap.wrap(title, 150, break_on_hyphens=False)))
        caption = f"{summary['split']}. {summary['caption']}"
        fig.supxlabel("\n".join(textwrap.wrap(caption, 190)), fontsize=8, color="#444444")
        _save(fig, path)


SOURCES_SIZE = (15.0, 8.0)  # inches: the sources study, a row per setting
POLICY_STYLES = {"alternate": "--", "select": ":"}  # a mixed method: its source's colour, its policy's line


def sources_figure(path, records: list[dict]) -> None:
    """The sources study (sources_study.py), a row per setting: the training loss and the test accuracy against
    the forward-pass equivalents spent (the equal-compute runs and the random sources' long runs, mean over
    seeds), and the probe's cosine to backprop against the iteration (the equal-iterations runs). A source alone
    in its colour, solid; mixed with the exact source, in the other source's colour, dashed (alternate) or
    dotted (select)."""
    from .. import sources
    from .. import sources_study as study
    from .report import curves

    with _style():
        fig = _figure(SOURCES_SIZE)
        axes = fig.subplots(len(study.SETTINGS), 3, squeeze=False)
        for row, setting in zip(axes, study.SETTINGS):
            mine = [r for r in records if study.setting_of(r["config"]) == setting]
            labels = list(dict.fromkeys(study.label(r["config"]) for r in mine))
            where = f"k={setting['shots']}, B={setting['batch']}, H={setting['hidden']}"

            def label(r):
                return study.label(r["config"])

            spent = curves([r for r in mine if study.regime(r) == "budget"], labels, "budget", label)
            longer = curves([r for r in mine if study.regime(r) == "long"], labels, "budget", label)
            probed = curves([r for r in mine if study.regime(r) == "iterations"], labels, by=label)
            for c, named in [(c, True) for c in spent["methods"]] + [(c, False) for c in longer["methods"]]:
                colour, style = _study_style(c["method"])
                if c["loss"]:
                    name = c["method"] if named else None
                    row[0].plot(c["loss"]["x"], c["loss"]["mean"], color=colour, ls=style, lw=1.2, label=name)
                if c["accuracy"]:
                    dots = "." if named else None  # the long runs: the same line, further right, without dots
                    row[1].plot(c["accuracy"]["x"], c["accuracy"]["mean"], color=colour, ls=style, lw=1.2, marker=dots)
            for c in probed["methods"]:
                colour, style = _study_style(c["method"])
                for series in c["probe"].get("cosine", {}).values():
                    row[2].plot(series["iterations"], series["mean"], color=colour, ls=style, lw=1.2)
            for ax in row[:2]:  # compute spans decades: the first iterations at the left, not squeezed into 0
                ax.set_xscale("log", nonpositive="mask")
            row[0].set(yscale="log", xlabel=X_LABELS["budget"], ylabel="batch loss (window mean)")
            row[0].set_title(f"{where}: training loss, equal compute (and long)")
            row[1].set(xlabel=X_LABELS["budget"], ylabel="test accuracy")
            row[1].set_title(f"{where}: test accuracy, equal compute (and long)")
            row[2].set_yscale("symlog", linthresh=1e-3)
            row[2].set(xlabel="iteration", ylabel="cosine to ∇L", ylim=(-1e-2, 1.5))
            row[2].set_title(f"{where}: the probe, {study.ITERS:,} iterations")
        axes[0][0].legend(fontsize=7, ncol=2)
        n = len({r["config"]["seed"] for r in records})
        fig.suptitle(
            f"gradsel table --preset sources: each source alone (solid) and with {sources.exact()} by alternate "
            f"(dashed) or select (dotted), mean over {n} seed{'s' if n != 1 else ''}"
        )
        _save(fig, path)


def _study_style(method: str) -> tuple[str | None, str]:
    """A sources-study method's colour (its non-exact source's) and line style (its policy's)."""
    from .. import sources_study

    policy, source = sources_study.parts(method)
    return method_colour(source), "-" if policy is None else POLICY_STYLES.get(policy, "-")
