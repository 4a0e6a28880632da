"""Everything a person sees: Rich tables, progress bars, sparklines, digit pictures. The only module importing Rich.

Every table fits 80 columns (numbers never wrap; titles break between their
parts), and every string that comes from data (a results file, a config, a
path) goes through ``clean`` before it is printed.
"""

import json
import math
import os
import re
import textwrap
from contextlib import contextmanager

import numpy as np

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.style import Style
from rich.table import Column, Table
from rich.text import Text

from .config import counted

SPARKS = "▁▂▃▄▅▆▇█"
PIPE_WIDTH = 80  # columns of output that is not a terminal (unless $COLUMNS says otherwise)
MIN_WIDTH = 40  # columns laid out at the least, however narrow the terminal or $COLUMNS (the terminal wraps them)
TITLE_WIDTH = 76  # a title longer than this breaks between its parts

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value) -> str:
    """A string from data, safe to print: control characters shown as ``\\xNN`` (an escape
    sequence cannot restyle the terminal, a newline cannot break a row) and Rich markup escaped."""
    return escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


def consoles(quiet: bool = False) -> tuple[Console, Console]:
    """(stdout, stderr) consoles; stderr is silent when quiet. Output that is not a terminal is
    PIPE_WIDTH columns wide (or $COLUMNS), not a width guessed from whatever terminal is around; none
    is narrower than MIN_WIDTH."""
    out, err = Console(), Console(stderr=True, quiet=quiet)
    for console in (out, err):
        if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            console.width = PIPE_WIDTH
        console.width = max(console.width, MIN_WIDTH)  # narrower, Rich cannot lay out a table (nor a bar)
    return out, err


def progress_enabled(err: Console) -> bool:
    return not err.quiet and err.is_terminal


class RateColumn(ProgressColumn):
    """Iterations per second; blank until there is a rate to show (Rich's speed is None at first)."""

    def __init__(self, unit: str, **kwargs):
        super().__init__(**kwargs)
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        scaled, prefix = next(((speed / scale, prefix) for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"))
                               if speed >= scale), (speed, ""))
        return Text(f"{scaled:>5.{0 if scaled >= 10 else 1}f}{prefix} {self.unit}/s", style="progress.data.speed")


def progress_columns(unit: str = "it") -> list:
    """The columns of every progress bar: description, bar, done/total, info (e.g. the loss), rate, times.
    Every column but the bar keeps its whole text; the bar takes the width they leave, so the line
    fits 80 columns however large the numbers."""
    whole = dict(table_column=Column(no_wrap=True))
    columns = [TextColumn("{task.description}", style="bold", markup=False, **whole),
               BarColumn(bar_width=None, table_column=Column(ratio=1)),
               MofNCompleteColumn(**whole), TextColumn("{task.fields[info]}", markup=False, **whole)]
    if unit:
        columns.append(RateColumn(unit, **whole))
    return columns + [TimeElapsedColumn(**whole), TextColumn("ETA", **whole), TimeRemainingColumn(**whole)]


class _Progress(Progress):
    """A progress display as wide as the terminal up to PIPE_WIDTH columns (the bar takes what is left)."""

    def __init__(self, *columns, console: Console, **kwargs):
        self.line_width = min(console.width, PIPE_WIDTH)
        super().__init__(*columns, console=console, **kwargs)

    def make_tasks_table(self, tasks):
        table = super().make_tasks_table(tasks)
        table.width = self.line_width
        return table


@contextmanager
def progress_bar(err: Console, total: int, description: str, unit: str = "it"):
    """Yield ``update(done, total, loss=None, info=None)``; a no-op when stderr is quiet or not a terminal."""
    if not progress_enabled(err):
        yield lambda *a, **k: None
        return
    with _Progress(*progress_columns(unit), console=err, transient=False, expand=True) as bar:
        task = bar.add_task(_CONTROL.sub("", str(description)), total=total, info="")

        def update(done, total=total, loss=None, info=None):
            text = info if info is not None else (f"loss {fmt_loss(loss)}" if loss is not None else "")
            bar.update(task, completed=done, total=total, info=_CONTROL.sub("", str(text)))

        yield update


def fmt_loss(x) -> str:
    """A loss: 4 decimals, or 3 significant digits in e-notation when it is huge or tiny; nan, inf as such."""
    if x is None:
        return "—"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and not 1e-3 <= abs(x) < 1e4:
        return f"{x:.2e}"
    return f"{x:.4f}"


def _title(*parts: str, first_sep: str = " — ") -> str:
    """Title parts joined by ', ' (the first by first_sep) into lines of at most TITLE_WIDTH
    characters, broken only between parts."""
    lines = [parts[0]]
    for i, part in enumerate(parts[1:]):
        sep = first_sep if i == 0 else ", "
        if len(lines[-1]) + len(sep) + len(part) <= TITLE_WIDTH:
            lines[-1] += sep + part
        else:
            lines[-1] += sep.rstrip()
            lines.append(part)
    return "\n".join(lines)


def _table(title: str, **kwargs) -> Table:
    """A left-titled table at least as wide as the longest line of its title, up to PIPE_WIDTH (so the title
    does not wrap, and a longer one does not make the table too wide for the layouts of Fit)."""
    plain = Text.from_markup(title).plain
    return Table(title=title, title_justify="left",
                 min_width=min(PIPE_WIDTH, max(len(line) for line in plain.splitlines())),
                 **kwargs)


def _number_column(table: Table, header: str, **kwargs) -> None:
    """A right-justified column of numbers, never wrapped (nor is its header: break a long one with \\n)."""
    table.add_column(header, justify="right", no_wrap=True, **kwargs)


class Fit:
    """The first of several layouts of the same content that fits the width (the last one otherwise)."""

    def __init__(self, *layouts):
        self.layouts = layouts

    def _pick(self, console, options):
        unbounded = options.update_width(10_000)
        for layout in self.layouts:
            if Measurement.get(console, unbounded, layout).maximum <= options.max_width:
                return layout
        return self.layouts[-1]

    def __rich_console__(self, console, options):
        yield self._pick(console, options)

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self._pick(console, options))


def _stacked(t: Table, label) -> Table:
    """Table `t` as one block per row, for a width its columns do not fit: `label(cells)` (the row's cells,
    markup strings) names the row in bold, then each other column's "header value" on a line of its own."""
    s = Table(title=t.title, title_justify="left", caption=t.caption, caption_justify="left", show_header=False,
              box=None, padding=(0, 1, 0, 0), pad_edge=False, min_width=t.min_width)  # the title unwrapped if it can
    s.add_column(no_wrap=True)
    s.add_column(overflow="fold")
    for i in range(t.row_count):
        cells = [c._cells[i] for c in t.columns]
        name, keys = label(cells)
        lines = [f"{str(c.header).replace(chr(10), ' ')} {str(cell).replace(chr(10), ' ')}"
                 for j, (c, cell) in enumerate(zip(t.columns, cells)) if j not in keys and str(cell).strip()]
        s.add_row(f"[bold]{name}[/]", "\n".join(lines), end_section=True)
    return s


def sparkline(values, width: int = 40, log: bool = False) -> str:
    """A one-line picture of a series (e.g. the loss), `width` characters; `log`: of log10 of the
    positive values (a loss that falls by decades)."""
    vals = [v for v in values if v is not None and v == v and abs(v) != float("inf")]
    if log:
        vals = [float(np.log10(v)) for v in vals if v > 0]
    if not vals:
        return ""
    step = max(1, len(vals) // width)
    pts = [sum(vals[i:i + step]) / len(vals[i:i + step]) for i in range(0, len(vals), step)][:width]
    lo, hi = min(pts), max(pts)
    span = hi - lo or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((p - lo) / span * (len(SPARKS) - 1) + 0.5))] for p in pts)


def _fmt(x, spec=".4f", none="—"):
    return none if x is None else format(x, spec)


def train_summary(record: dict) -> Table:
    """The end-of-run summary of one training run record."""
    c = record["config"]
    t = _table(_title(f"gradsel train — {clean(c['method'])}", f"k={clean(c['shots'])}", f"B={clean(c['batch'])}",
                      f"H={clean(c['hidden'])}",
                      f"{record['iterations_done']}/{clean(counted(c['iters'], 'iteration'))}",
                      f"seed {clean(c['seed'])}", first_sep=": "), show_header=False)
    t.add_column(style="bold")
    t.add_column()
    if record["diverged"]:
        t.add_row("status", f"[red]diverged at iteration {record['iterations_done']}; try a smaller --lr")
    limit = c.get("test_limit", 10000)
    acc_label = "test accuracy" + ("" if limit == 10000 else f" (first {clean(limit)} images)")
    t.add_row(acc_label, f"[bold green]{_fmt(record['accuracy'])}")
    t.add_row("final training loss", fmt_loss(record["final_loss"]))
    t.add_row("loss (log scale)", sparkline(record["loss_history"]["values"], log=True))
    t.add_row("wall time", f"{_dur(record['wall_time'])} ({_dur(record['time_per_iter'])} / iteration)")
    if record.get("compile_time") is not None:
        t.add_row("kernels loaded in", f"{_dur(record['compile_time'])} (part of the wall time)")
    t.add_row("gradient evaluations", f"analytic {record['counts']['analytic']}, numeric {record['counts']['numeric']}")
    t.add_row("numeric share of updates", f"{record['numeric_share']:.3f}")
    if record["select_wins"] is not None:
        w = record["select_wins"]
        t.add_row("select wins", f"analytic {w['analytic']}, numeric {w['numeric']}")
    if record["rel_diff_mean"] is not None:
        t.add_row("mean ‖g_num − g_ana‖/‖g_ana‖", f"{record['rel_diff_mean']:.3e}")
    for it, acc in [p for p in record.get("acc_curve") or record.get("acc_history", []) if p[0]][-5:]:
        t.add_row(f"accuracy @ {it}", f"{acc:.4f}")
    return t


def _dur(seconds: float) -> str:
    """A duration to 3 significant digits with a sensible unit: 48.0 µs, 175 µs, 4.97 ms, 27.8 s, 3.1 min."""
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    value, unit = next((seconds * scale, unit) for scale, unit in ((1, "s"), (1e3, "ms"), (1e6, "µs"))
                       if seconds * scale >= 1 or unit == "µs")
    return f"{value:.{2 if value < 10 else 1 if value < 100 else 0}f} {unit}"


COMPACT = dict(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1))  # wide tables at 80 columns


BENCH_CALL_COLUMNS = ("H", "B", "pixels", "loss", "analytic", "numeric", "naive", "naive /\nnumeric",
                      "numeric /\nanalytic", "exps", "ns /\nexp")


def bench_tables(rows: list[dict], threads, iters: int = 10000, precision: str = "float64") -> list[Table]:
    """The `gradsel bench` tables: per-call timings with the ratios that matter, projected run times;
    `threads`: the count, or a label for the automatic policy."""
    numba = counted(threads, "Numba thread") if isinstance(threads, int) else f"{threads} Numba thread(s)"
    calls = _table(_title("gradsel bench — median time per call", numba, precision,
                          first_sep=", "),
                   **dict(COMPACT, padding=0))  # eleven columns: one space apart, within 80 columns
    for col in BENCH_CALL_COLUMNS:
        _number_column(calls, col)
    runs = _table(f"projected time of a {iters:,}-iteration run", **COMPACT)
    for col in ("H", "B", "analytic", "numeric", "alternate", "select", "iteration /\nanalytic"):
        _number_column(runs, col)
    for r in rows:
        naive = _dur(r["naive"]) + ("*" if r["naive_extrapolated"] else "")
        calls.add_row(str(r["hidden"]), str(r["batch"]), str(r["nonzero_pixels"]), _dur(r["loss"]),
                      _dur(r["analytic"]), _dur(r["numeric"]), naive, f"{r['naive_over_numeric']:,.0f}×",
                      f"{r['numeric_over_analytic']:.1f}×", f"{r['exponentials'] / 1e6:.2f}M",
                      f"{r['ns_per_exponential']:.2f}")
        runs.add_row(str(r["hidden"]), str(r["batch"]),
                     *(_dur(r[f"iter_{m}"] * iters) for m in ("analytic", "numeric", "alternate", "select")),
                     f"{r['iter_analytic'] / r['analytic']:.2f}×")
    run_notes = ["iterations as training runs them: plain SGD, many per kernel call;",
                 "iteration / analytic: one analytic iteration over one gradient call"]
    runs.caption = "\n".join(run_notes)
    runs.caption_justify = "left"
    runs.min_width = max(len(note) for note in run_notes)
    notes = ["pixels: non-zero pixels in the batch; naive: the textbook numerical gradient",
             "exps: the numeric gradient's exponentials (equal pixel values of a sample,",
             "and repeated samples, share theirs); ns / exp: numeric time / exps"]
    if any(r["naive_extrapolated"] for r in rows):
        notes.append("*: timed on a random sample of weights, extrapolated to all of them")
    calls.caption = "\n".join(notes)
    calls.caption_justify = "left"
    calls.min_width = max(calls.min_width, *(len(note) for note in notes))  # notes are not wrapped
    return [calls, runs]


def bench_record_tables(record: dict) -> list[Table]:
    """The bench tables of a benchmark.bench_record, titled with its thread count or the automatic policy."""
    return bench_tables(record["rows"], record["threads"] or f"auto (1 or {record['max_threads']})",
                        precision=record.get("precision", "float64"))


def _pm(entry: dict, digits: int = 4) -> str:
    """'mean ± half-width' (just the mean for one seed, '—' for none)."""
    if entry.get("mean") is None:
        return "—"
    if entry.get("n", 0) > 1 and entry.get("lo") is not None and entry.get("lo") == entry.get("lo"):
        return f"{entry['mean']:.{digits}f} ± {(entry['hi'] - entry['lo']) / 2:.{digits}f}"
    return f"{entry['mean']:.{digits}f}"


def _p(p) -> str:
    if p is None or p != p:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _outcome(result: dict, sep: str = " ", upper: bool = True) -> str:
    """A test's outcome in capitals, with the reason it has no numbers: 'INCONCLUSIVE (one seed)'."""
    word = result["outcome"].upper() if upper else result["outcome"]
    return word + (f"{sep}({result['reason']})" if result.get("reason") else "")


def compare_tables(summary: dict, config: dict, curves: dict | None = None) -> list[Table]:
    """The `gradsel compare` tables: per method, each method against the baseline, and with
    `curves` (report.curves) a sparkline of each method's mean training loss."""
    c = config
    per = _table(_title("gradsel compare", f"k={clean(c['shots'])}", f"B={clean(c['batch'])}",
                        f"H={clean(c['hidden'])}", counted(c['iters'], 'iteration', ','), f"lr {clean(c['lr'])}",
                        f"subset {clean(c['subset'])}", first_sep=": "))
    per.add_column("method", no_wrap=True)
    for col in ("seeds", "accuracy\n(95% CI)", "final\nloss", "ms /\niter", "numeric\nshare", "select\nwins"):
        _number_column(per, col)
    for r in summary["methods"]:
        win = "—" if r["select_win_rate"] is None else f"{r['select_win_rate']:.3f}"
        per.add_row(clean(r["method"]), str(len(r["seeds"])), _pm(r["accuracy"]), fmt_loss(r["final_loss"]),
                    f"{r['time_per_iter'] * 1e3:.3f}", f"{r['numeric_share']:.3f}", win)
    diverged = [f"{clean(r['method'])} {r['diverged']} of {len(r['seeds'])}" for r in summary["methods"]
                if r["diverged"]]
    if diverged:
        per.caption, per.caption_justify = f"diverged (left out of the statistics): {', '.join(diverged)}", "left"
    tables = [Fit(per, _stacked(per, lambda cells: (cells[0], {0}))), _versus_table(summary)]
    rows = [c for c in (curves or {}).get("methods", []) if c["loss"]]
    if rows:
        loss = _table("training loss over the run (window means, mean over seeds)")
        loss.add_column("method")
        _number_column(loss, "first")
        _number_column(loss, "last")
        loss.add_column("loss (log scale)", no_wrap=True)
        for c in rows:
            values = [v for v in c["loss"]["mean"] if v == v]
            loss.add_row(clean(c["method"]), fmt_loss(values[0] if values else None),
                         fmt_loss(values[-1] if values else None), sparkline(c["loss"]["mean"], log=True))
        tables.append(loss)
    return tables


def _versus_table(summary: dict) -> Fit:
    """compare's methods against the baseline: difference, CI, t-test and exact Wilcoxon p, predictions that
    differ, TOST; boxed where that fits the width, else compact."""
    rows, tost_lines = [], []
    for r in summary["methods"]:
        v = r.get("versus")
        if v:
            lo, hi = v["ci"]
            ci = "—" if lo is None else f"{lo:+.4f} … {hi:+.4f}"
            e = v["equivalence"]
            rows.append((clean(r["method"]), f"{v['difference']:+.4f}", ci, _p(v["p_t"]), _p(v["p_wilcoxon"]),
                         f"{v['disagreement']:.2%}", _outcome(e, "\n")))
            tost_lines.append(f"{clean(r['method'])}: {_outcome(e)} within ±{e['margin']:g} — {clean(e['numbers'])}")

    def layout(compact: bool) -> Table:
        vs = _table(f"paired against {clean(summary['baseline'])} (same seeds)",
                    **(dict(COMPACT, padding=0) if compact else {}))
        vs.add_column("method", no_wrap=True)
        for col in ("Δ\naccuracy", "95% CI", "t-test\np", "Wilcoxon\np", "predictions\ndiffer", "TOST"):
            _number_column(vs, col)
        for row in rows:
            vs.add_row(*row)
        if tost_lines:
            vs.caption = "\n".join(tost_lines)
            vs.caption_justify = "left"
        return vs

    return Fit(layout(False), layout(True), _stacked(layout(True), lambda cells: (cells[0], {0})))


SWEEP_LABEL_WIDTH = 28  # the progress bar's label names the swept options up to this width


def sweep_label(lists: dict[str, list]) -> str:
    """The progress label of a sweep: 'sweep lr, fd-step' (the options given several values), or 'sweep 5
    options' when their names would crowd the bar."""
    varied = [k.replace("_", "-") for k, v in lists.items() if len(v) > 1]
    label = "sweep " + ", ".join(varied) if varied else "sweep"
    return label if len(label) <= SWEEP_LABEL_WIDTH else f"sweep {counted(len(varied), 'option')}"


def sweep_table(summary: dict, seeds: int):
    """The `gradsel sweep` table: one row per cell, the varied options first."""
    return _configurations(f"gradsel sweep — {counted(len(summary['cells']), 'cell')} × {counted(seeds, 'seed')}",
                           summary["varied"],
                           summary["cells"], [
                               ("accuracy\n(95% CI)", lambda c: _pm(c["accuracy"])),
                               ("final\nloss", lambda c: fmt_loss(c["final_loss"])),
                               ("runs", lambda c: str(c["runs"])),
                               ("diverged", lambda c: str(c["diverged"]) if c["diverged"] else "")])


def _option_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)


def _configurations(title: str, varied: list[str], rows: list[dict], numbers: list[tuple]) -> Fit:
    """A table of configurations: the values of the `varied` options (row["values"]) as columns where
    they fit in the width, else two options to a column (one above the other, a blank line between
    rows), else as one wrapped "option=value, ..." column; then the `numbers` columns, (header, row -> text)."""
    names = [clean(k.replace("_", "-")) for k in varied]

    def layout(stacked: bool, per_column: int = 1) -> Table:
        t = _table(title, **({} if stacked else COMPACT if per_column == 1 else dict(COMPACT, padding=0)))
        groups = [range(i, min(i + per_column, len(names))) for i in range(0, len(names), per_column)]
        if stacked:
            t.add_column("configuration", overflow="fold")
        else:
            for header in ["\n".join(names[i] for i in g) for g in groups] or ["configuration"]:
                t.add_column(header, no_wrap=True)
        for header, _ in numbers:
            _number_column(t, header)
        for row in rows:
            values = [clean(_option_value(row["values"][k])) for k in varied]
            labels = ([", ".join(f"{k}={v}" for k, v in zip(names, values)) or "all"] if stacked else
                      ["\n".join(values[i] for i in g) for g in groups] or ["all"])
            t.add_row(*labels, *(cell(row) for _, cell in numbers), end_section=per_column > 1)
        return t

    paired = [layout(False, 2)] if len(varied) > 2 else []
    return Fit(layout(False), *paired, layout(True))


def _row_label(row: dict, preset: str) -> str:
    return f"{row['method']} H={row['hidden']}" if preset == "alternate" else row["method"]


def _columns(table: dict) -> list[str]:
    first = table["groups"][0]["rows"][0]
    cols = [f"k={c['shots']}" for c in first["cells"]]
    return cols + (["AVG"] if "avg" in first else [])


def _entries(row: dict) -> list[dict]:
    return row["cells"] + ([row["avg"]] if "avg" in row else [])


def _cell_text(e: dict, paper: bool, fmt: str, stacked: bool = False) -> str:
    ours = _pm(e)
    if fmt == "markdown" and e.get("best"):
        ours = f"**{ours}**"
    if fmt == "latex":
        ours = ours.replace("±", r"$\pm$")
        if e.get("best"):
            ours = rf"\textbf{{{ours}}}"
    if fmt == "rich" and e.get("best"):
        ours = f"[bold]{ours}[/]"
    if paper and e.get("published") is not None:
        ours += ("\n" if stacked else " ") + f"({e['published']:.4f})"
    return ours


def _verdict_lines(table: dict) -> list[str]:
    lines = []
    for v in table["verdicts"]:
        lines.append(f"{_outcome(v)} — {v['text']}")
        for part in v["comparisons"]:
            lines.append(f"    vs {part['baseline']}: {part['words']}")
            if "equivalence" in part:
                e = part["equivalence"]
                lines.append(f"    vs {part['baseline']}: {_outcome(e)} within ±{e['margin']:g} (TOST): "
                             f"{e['numbers']}")
    return lines


def _footer_lines(table: dict) -> list[str]:
    s = table["settings"]
    lines = [f"seeds: {', '.join(map(str, table['seeds'])) or 'none'}; settings: {s['iters']:,} iterations, "
             f"SGD lr {s['lr']}, subset {s['subset']}, init std {s['init_std']}, fd step {s['fd_step']} ({s['fd_scheme']})"]
    if (s.get("precision", "float64"), s.get("fd_arith", "exact"), s.get("loss_epsilon", 0.0)) != ("float64", "exact", 0.0):
        lines.append(f"arithmetic: {s['precision']}, fd arith {s['fd_arith']}, loss epsilon {s['loss_epsilon']:g}")
    if table["mad_baseline"] is not None:
        lines.append(f"mean |ours − published|: baseline cells {table['mad_baseline']:.4f}, all cells {table['mad_all']:.4f}")
    if table["missing_cells"]:
        has = "has" if table["missing_cells"] == 1 else "have"
        lines.append(f"{counted(table['missing_cells'], 'cell')} {has} no runs yet: "
                     f"`gradsel table --preset {table['preset']} --run`")
    for m in table["avg_mismatches"]:
        lines.append(f"note: the published AVG of {m['method']} at B={m['batch']} is printed {m['printed']:.4f}, "
                     f"the mean of its printed cells is {m['mean_of_cells']:.4f} (shown as printed)")
    return lines


def paper_table_rich(table: dict, paper: bool = True) -> list:
    """The paper table as Rich renderables: the table, then footer and verdicts. The table is one
    line per row where that fits the width; else (80 columns) each cell puts the published number
    under ours and the hidden size goes under the method."""
    head = f"{clean(table['title'])}\nours: mean ± 95% CI over seeds" + ("; published in parentheses" if paper else "")

    def layout(stacked: bool) -> Table:
        t = _table(head, **(COMPACT if stacked else {}))
        _number_column(t, "B")
        t.add_column("method", no_wrap=True)
        for col in _columns(table):
            _number_column(t, col)
        for g in table["groups"]:
            for i, row in enumerate(g["rows"]):
                label = clean(_row_label(row, table["preset"]))
                cells = [_cell_text(e, paper, "rich", stacked) for e in _entries(row)]
                t.add_row(str(g["batch"]) if i == 0 else "", label.replace(" ", "\n") if stacked else label, *cells,
                          end_section=i == len(g["rows"]) - 1)
        return t

    batch = [None]

    def label(cells):  # "B=8 analytic H=20": the batch of a group's first row stands for its other rows
        batch[0] = cells[0] or batch[0]
        return f"B={batch[0]} {cells[1]}".replace("\n", " "), {0, 1}

    return [Fit(layout(False), layout(True), _stacked(layout(False), label)), _lines(_footer_lines(table)),
            _lines(_verdict_lines(table))]


class _Lines:
    """Footer lines; a long one breaks between words (at TITLE_WIDTH, or the narrower width it is printed at),
    its continuation indented."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def text(self, width: int = TITLE_WIDTH) -> Text:
        out = []
        for line in self.lines:
            lead = line[:len(line) - len(line.lstrip())]
            glued = line.replace(" = ", "\xa0=\xa0")  # "k = 2" stays on one line
            out += [part.replace("\xa0", " ") for part in textwrap.wrap(
                glued, max(width, len(lead) + 12), subsequent_indent=lead + "  ", break_long_words=False,
                break_on_hyphens=False)] or [""]
        return Text("\n".join(out))

    def __rich_console__(self, console, options):
        yield self.text(min(options.max_width, TITLE_WIDTH))

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self.text(min(options.max_width, TITLE_WIDTH)))


def _lines(lines: list[str]) -> _Lines:
    return _Lines(lines)


def paper_table_markdown(table: dict, paper: bool = True) -> str:
    cols = _columns(table)
    lines = [f"**{table['title']}** — ours: mean ± 95% CI over seeds" + ("; published in parentheses" if paper else ""),
             "", "| B | method | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for g in table["groups"]:
        for row in g["rows"]:
            lines.append(f"| {g['batch']} | {_row_label(row, table['preset'])} | "
                         + " | ".join(_cell_text(e, paper, "markdown") for e in _entries(row)) + " |")
    lines += [""] + [f"- {x}" for x in _footer_lines(table)] + ["", "Verdicts:", ""]
    lines += [f"- {x.strip()}" if not x.startswith("    ") else f"  - {x.strip()}" for x in _verdict_lines(table)]
    return "\n".join(lines)


def paper_table_latex(table: dict, paper: bool = True) -> str:
    cols = _columns(table)
    lines = [r"\begin{tabular}{rl" + "r" * len(cols) + "}", r"\hline",
             "B & method & " + " & ".join(cols) + r" \\", r"\hline"]
    for g in table["groups"]:
        for i, row in enumerate(g["rows"]):
            lines.append(f"{g['batch'] if i == 0 else ''} & {_row_label(row, table['preset'])} & "
                         + " & ".join(_cell_text(e, paper, "latex") for e in _entries(row)) + r" \\")
        lines.append(r"\hline")
    lines.append(r"\end{tabular}")
    return "\n".join(lines)


def paper_table_output(table: dict, fmt: str, paper: bool = True):
    """The paper table as `fmt` prints it: the Rich parts (rich), or the text of json, csv, markdown or latex."""
    if fmt == "rich":
        return paper_table_rich(table, paper)
    if fmt == "json":
        return json.dumps(table, indent=2) + "\n"
    if fmt == "csv":
        return paper_table_csv(table)
    return (paper_table_markdown if fmt == "markdown" else paper_table_latex)(table, paper) + "\n"


CSV_DIGITS = 15  # significant digits of a float in CSV: 0.4966, not the 0.49660000000000004 a mean can be


def _csv_cell(x) -> str:
    """A CSV cell: None and NaN empty, a float as the shortest text of its value to CSV_DIGITS digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float):
        return repr(float(f"{x:.{CSV_DIGITS}g}"))
    return str(x)


def _csv(header, rows) -> str:
    """CSV text (the csv module's quoting) of a header and rows, every cell through _csv_cell."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([_csv_cell(x) for x in row] for row in rows)
    return buf.getvalue()


def paper_table_csv(table: dict) -> str:
    rows = []
    for g in table["groups"]:
        for row in g["rows"]:
            for e, col in zip(_entries(row), [c["shots"] for c in row["cells"]] + (["avg"] if "avg" in row else [])):
                rows.append([table["preset"], g["batch"], row["method"], row["hidden"], col,
                             *(e.get(k) for k in ("mean", "lo", "hi")), e["n"], e["published"],
                             int(bool(e.get("best")))])
    return _csv(["preset", "batch", "method", "hidden", "shots", "mean", "ci_lo", "ci_hi", "n", "published", "best"],
                rows)


def tune_table(summary: dict, top: int = 10) -> list:
    """The best trials of `gradsel tune`, and the chosen setting."""
    c = summary["config"]
    t = _table(_title("gradsel tune", clean(c["method"]), clean(c["optimizer"]), f"k={clean(c['shots'])}",
                      f"B={clean(c['batch'])}", f"H={clean(c['hidden'])}", counted(c['iters'], 'iteration', ','),
                      counted(len(summary['trials']), 'trial'), first_sep=": "),
               caption=clean(summary["split"]), caption_justify="left")
    for col in ("rank", "trial", "lr", "weight\ndecay", "val\naccuracy", "final\nloss"):
        _number_column(t, col)
    for rank, r in enumerate(summary["trials"][:top], start=1):
        acc = "diverged" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        style = "bold green" if rank == 1 and summary["best"] else None
        t.add_row(str(rank), str(r["trial"]), f"{r['lr']:.4g}", f"{r['weight_decay']:.3g}", acc,
                  fmt_loss(r["final_loss"]), style=style)
    b, tied = summary["best"], summary.get("tied") or []
    if b:
        chosen = f"chosen: --lr {b['lr']:.4g} --weight-decay {b['weight_decay']:.3g}"
    elif tied:
        chosen = f"none chosen: trials {', '.join(map(str, sorted(tied)))} tie for the best validation accuracy"
    else:
        chosen = "no trial finished"
    return [t, Text(chosen)]


def runs_table(summary: dict, source: str | None = None) -> list:
    """`gradsel runs`: one row per configuration of a results file (report.runs_summary), the options
    that vary first, then a line of the options every run shares."""
    title = _title("gradsel runs" + (f" — {clean(source)}" if source else ""), counted(summary['runs'], 'run'),
                   counted(len(summary['rows']), 'configuration'), first_sep=": ")
    table = _configurations(title, summary["varied"], summary["rows"], [
        ("runs", lambda r: str(r["runs"])),
        ("accuracy\n(95% CI)", lambda r: _pm(r["accuracy"])),
        ("final\nloss", lambda r: fmt_loss(r["final_loss"])),
        ("diverged", lambda r: str(r["diverged"]) if r["diverged"] else "")])
    shared = ", ".join(f"{k.replace('_', '-')}={clean(_option_value(v))}" for k, v in summary["fixed"].items())
    return [table, _lines([f"every run: {shared}" if shared else "no runs"])]


def runs_csv(summary: dict) -> str:
    """The runs summary as CSV: the varied options, then runs, seeds, accuracy and its CI, loss, diverged."""
    rows = [[*(row["values"][k] for k in summary["varied"]), row["runs"], " ".join(map(str, row["seeds"])),
             *(row["accuracy"][k] for k in ("mean", "lo", "hi")), row["final_loss"], row["diverged"]]
            for row in summary["rows"]]
    return _csv([*summary["varied"], "runs", "seeds", "accuracy_mean", "accuracy_ci_lo", "accuracy_ci_hi",
                 "final_loss", "diverged"], rows)


# --- digit pictures (the paper's Figure 2) -----------------------------------------

HALF_BLOCK = "▀"  # upper half block: its foreground is the upper pixel, its background the lower one
SHADES = " .:-=+*#%@"  # without colour: one character per pair of pixels, darkest to brightest (ASCII)


def _grey(value) -> str:
    v = int(value)
    return f"rgb({v},{v},{v})"


def digit(image) -> Text:
    """An image (h, w) of uint8 grey levels as h/2 lines of w half blocks: each character shows the
    pixel of an even row as its foreground colour and the pixel below it as its background colour
    (an odd last row is paired with black, the MNIST background)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"a digit image must be 2-D, got shape {image.shape}")
    if image.shape[0] % 2:
        image = np.vstack([image, np.zeros((1, image.shape[1]), dtype=image.dtype)])
    text = Text(no_wrap=True, overflow="crop")
    for r in range(0, image.shape[0], 2):
        if r:
            text.append("\n")
        for top, bottom in zip(image[r], image[r + 1]):
            text.append(HALF_BLOCK, Style(color=_grey(top), bgcolor=_grey(bottom)))
    return text


def shaded_digit(image) -> Text:
    """The same picture as `digit` without colour: each character is the shade (SHADES) of the mean of
    the pixel of an even row and the one below it."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"a digit image must be 2-D, got shape {image.shape}")
    if image.shape[0] % 2:
        image = np.vstack([image, np.zeros((1, image.shape[1]), dtype=image.dtype)])
    pairs = (image[0::2].astype(np.float64) + image[1::2]) / 2  # (h/2, w) grey levels 0-255
    levels = np.minimum((pairs * len(SHADES) / 256).astype(int), len(SHADES) - 1)
    return Text("\n".join("".join(SHADES[v] for v in row) for row in levels), no_wrap=True, overflow="crop")


class DigitPicture:
    """A digit as half blocks in grey levels on a console with colour, else in ASCII shades (a file, a pipe,
    NO_COLOR): half blocks without their colours would be a solid rectangle."""

    def __init__(self, image):
        self.image = np.asarray(image)
        self.text = digit(self.image)  # checks the image

    def _shown(self, console) -> Text:
        return self.text if console.color_system and not console.no_color else shaded_digit(self.image)

    def __rich_console__(self, console, options):
        yield self._shown(console)

    def __rich_measure__(self, console, options):
        return Measurement.get(console, options, self._shown(console))


def digit_caption(index: int, label: int, predictions: dict[str, int], width: int = 28) -> Text:
    """'#index true L' and one line per method with its prediction: green when right, red when wrong;
    when the methods disagree the first line says so and the predictions are bold."""
    differ = len(set(predictions.values())) > 1
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{index} true {label}", style="bold")
    if differ:
        text.append("  differ", style="bold black on yellow")
    for m, p in predictions.items():
        colour = "green" if p == label else "red"
        text.append(f"\n{_CONTROL.sub('', m)[:width - 3]:<{width - 2}}{p if p >= 0 else '-'}",
                    style=f"{colour} bold" if differ else colour)
    return text


def digits_grid(images, labels, indices, predictions: dict, title: str):
    """The chosen test images side by side as half-block pictures with their captions."""
    from rich.columns import Columns
    from rich.console import Group

    cells = []
    for i in indices:
        side = int(round(np.sqrt(np.asarray(images[i]).size)))
        cells.append(Group(DigitPicture(np.asarray(images[i]).reshape(side, side)),
                           digit_caption(int(i), int(labels[i]), {m: int(p[i]) for m, p in predictions.items()},
                                         width=side)))
    return Group(Text(_title(*_CONTROL.sub("", title).split(", "), first_sep=", "), style="bold"),
                 Columns(cells, padding=(1, 2)))


def gradcheck_tables(check: dict) -> list:
    """One table per state (initialisation, after training): per step h, the relative error of each
    block and of all weights, and 1 - cosine over all weights; the best step in bold."""
    c = check["config"]
    out = []
    for state in check["states"]:
        when = "at initialisation" if state["iteration"] == 0 else f"after {state['iteration']:,} analytic iterations"
        t = _table(_title(f"gradcheck — numeric ({clean(check['scheme'])}) vs analytic gradient {when}",
                          f"k={clean(c['shots'])}", f"B={clean(c['batch'])}", f"H={clean(c['hidden'])}",
                          f"seed {clean(c['seed'])}", f"batch loss {fmt_loss(state['loss'])}", first_sep=": "))
        for col in ("h", "W1", "b1", "W2", "b2", "all\nweights", "1 − cos\n(all)"):
            _number_column(t, col)
        for r in state["rows"]:
            cells = [_fmt(r["blocks"][b]["rel_diff"], ".2e") for b in ("W1", "b1", "W2", "b2")]
            cells += [_fmt(r["all"]["rel_diff"], ".2e"), _fmt(r["all"]["one_minus_cosine"], ".1e")]
            t.add_row(f"{r['step']:g}", *cells, style="bold" if r["step"] == state["best_step"] else None)
        t.caption = ("relative error ‖g_num − g_ana‖ / ‖g_ana‖ per block;\n"
                     "bold: the smallest error over all weights")
        t.caption_justify = "left"
        out.append(t)
    return out


COMPARE_CSV_HEADER = ("method,seeds,accuracy_mean,accuracy_ci_lo,accuracy_ci_hi,final_loss,time_per_iter,"
                      "numeric_share,select_win_rate,diff_vs_baseline,diff_ci_lo,diff_ci_hi,p_t,p_wilcoxon,disagreement,"
                      "tost,tost_ci_lo,tost_ci_hi,p_lower,p_upper")


def compare_parts(summary: dict, config: dict, curves: dict, digits: dict | None = None) -> list:
    """What ``compare`` prints: its tables, then the digits of a report.digits_view when they are shown."""
    parts = compare_tables(summary, config, curves)
    if digits is not None:
        parts.append(digits_grid(digits["images"], digits["labels"], digits["indices"], digits["predictions"],
                                 digits["title"]))
    return parts


def compare_csv(summary: dict) -> str:
    """The per-method summary of `compare` as CSV (one header line, one line per method)."""
    rows = []
    for r in summary["methods"]:
        v = r.get("versus", {})
        cells = [r["method"], len(r["seeds"]), r["accuracy"]["mean"], r["accuracy"]["lo"], r["accuracy"]["hi"],
                 r["final_loss"], r["time_per_iter"], r["numeric_share"], r["select_win_rate"],
                 v.get("difference"), *(v.get("ci") or (None, None)), v.get("p_t"), v.get("p_wilcoxon"),
                 v.get("disagreement")]
        e = v.get("equivalence", {})
        cells += [e.get("outcome"), *(e.get("ci") or (None, None)), e.get("p_lower"), e.get("p_upper")]
        rows.append(cells)
    return _csv(COMPARE_CSV_HEADER.split(","), rows)


def _study_parts(preset: str, s: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The study's tables as (title, headers, rows) of plain strings, for Rich or Markdown."""
    if preset == "subsets":
        rows = [[f"H={r['hidden']} k={r['shots']}", str(r["subsets"]), f"{r['mean']:.4f}",
                 f"{r['lo']:.3f}–{r['hi']:.3f}", _fmt(r["published"]), _fmt(r["published_percentile"], ".0f"),
                 _fmt(r["first_k_mean"]), _fmt(r["published_percentile_first_k"], ".0f")] for r in s["rows"]]
        return [("Paper A, B=1, analytic: the published baseline among random few-shot subsets (pct) and among "
                 "first-k runs (pct 1st), one run per seed",
                 ["cell", "n", "random", "range", "paper", "pct", "first-k", "pct 1st"], rows)]
    parts = []
    for name in dict.fromkeys(r["condition"] for r in s["rows"]):
        rows, share, diverged = [], None, 0
        for r in (r for r in s["rows"] if r["condition"] == name):
            tost = r["tost"] or {}
            pm = ("—" if r["difference"] is None else f"{r['difference']:+.4f}" if r["ci"][0] is None
                  else f"{r['difference']:+.4f}±{(r['ci'][1] - r['ci'][0]) / 2:.4f}")
            rows.append([r["method"], _fmt(r["predictions_differ"], ".3%"), pm,
                         _outcome(tost, "\n", upper=False) if tost else "—",
                         f"{r['cells_equivalent']}/{r['cells']}", f"{r['runs_within']}/{r['pairs'] - r['diverged']}",
                         _fmt(r["largest"], "+.4f")])
            share = r["numeric_share"] if r["method"] == "select" else share
            diverged += r["diverged"]
        title = (f"{name}: against analytic" + ("" if share is None else f"; select keeps numeric {share:.1%}")
                 + (f"; {counted(diverged, 'pair')} diverged" if diverged else ""))
        parts.append((title, ["method", "differ", "Δ acc ±CI", "TOST", "eq.", "≤2 img", "largest"], rows))
    pub = [[p["paper"], p["method"], f"{p['within']}/{p['n']}", str(p["exact_zero"]), f"{p['largest']:+.4f}"]
           for p in s["published"]]
    parts.append(("Published: each method − analytic, single runs", ["paper", "method", "≤2 img", "exactly 0",
                                                                      "largest"], pub))
    return parts


def study_tables(preset: str, summary: dict, markdown: bool = False) -> list:
    """The conditions or subsets study: Rich tables (within 80 columns), or Markdown text."""
    out = []
    for title, headers, rows in _study_parts(preset, summary):
        if markdown:
            lines = [f"**{title}**", "", "| " + " | ".join(headers) + " |",
                     "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
            lines += ["| " + " | ".join(cell.replace("\n", " ") for cell in row) + " |" for row in rows]
            out.append("\n".join(lines) + "\n")
            continue
        t = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            t.add_row(*row)
        out.append(t)
    if preset == "conditions":
        x = summary["cross_paper"]
        legend = (f"differ: share of test predictions unlike analytic's. Δ: pooled by seed (mean over the "
                  f"cells), 95% CI; TOST margin ±{summary['margin']}. eq.: cells equivalent on their own. "
                  f"≤2 img: single runs within {summary['near_zero']} of analytic. largest: of a single run. "
                  f"The papers' analytic H=20 cells differ between the two papers by up to "
                  f"{x['difference']:+.4f} (B={x['batch']}, k={x['shots']}).")
        out.append(legend + "\n" if markdown else Text(legend))
    return out


def study_output(preset: str, summary: dict, fmt: str):
    """The study as `fmt` prints it: the Rich parts (rich), or the text of markdown or json; ValueError for
    the formats of the paper tables only."""
    if fmt == "json":
        return json.dumps(summary, indent=2) + "\n"
    if fmt == "rich":
        return study_tables(preset, summary)
    if fmt == "markdown":
        return "".join(part + "\n" for part in study_tables(preset, summary, markdown=True))
    raise ValueError(f"--format {fmt} is for the paper tables; the {preset} study prints rich, markdown or json")
