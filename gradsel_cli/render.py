"""Everything a person sees: Rich tables, progress bars, sparklines, digit pictures. The only module importing Rich."""

from contextlib import contextmanager

import numpy as np

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.style import Style
from rich.table import Table
from rich.text import Text

SPARKS = "▁▂▃▄▅▆▇█"


def consoles(quiet: bool = False) -> tuple[Console, Console]:
    """(stdout, stderr) consoles; stderr is silent when quiet."""
    return Console(), Console(stderr=True, quiet=quiet)


def progress_enabled(err: Console) -> bool:
    return not err.quiet and err.is_terminal


@contextmanager
def progress_bar(err: Console, total: int, description: str, unit: str = "it"):
    """Yield ``update(done, total, loss=None)``; a no-op when stderr is quiet or not a terminal."""
    if not progress_enabled(err):
        yield lambda *a, **k: None
        return
    columns = [
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TextColumn("{task.speed:>7.0f} " + unit + "/s" if unit else ""),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(done, total=total, loss=None, info=None):
            text = info if info is not None else (f"loss {loss:.4f}" if loss is not None else "")
            bar.update(task, completed=done, total=total, info=text)

        yield update


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
    title = (f"gradsel train — {c['method']}, k={c['shots']}, B={c['batch']}, H={c['hidden']}, "
             f"{record['iterations_done']}/{c['iters']} iterations, seed {c['seed']}")
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    if record["diverged"]:
        t.add_row("status", f"[red]diverged at iteration {record['iterations_done']} (non-finite loss); lower --lr")
    acc_label = "test accuracy" + ("" if c["test_limit"] == 10000 else f" (first {c['test_limit']} images)")
    t.add_row(acc_label, f"[bold green]{_fmt(record['accuracy'])}")
    t.add_row("final training loss", _fmt(record["final_loss"]))
    t.add_row("loss (log scale)", sparkline(record["loss_history"]["values"], log=True))
    t.add_row("wall time", f"{record['wall_time']:.2f} s ({record['time_per_iter'] * 1e3:.3f} ms / iteration)")
    t.add_row("gradient evaluations", f"analytic {record['counts']['analytic']}, numeric {record['counts']['numeric']}")
    t.add_row("numeric share of updates", f"{record['numeric_share']:.3f}")
    if record["select_wins"] is not None:
        w = record["select_wins"]
        t.add_row("select wins", f"analytic {w['analytic']}, numeric {w['numeric']}")
    if record["rel_diff_mean"] is not None:
        t.add_row("mean ‖g_num − g_ana‖/‖g_ana‖", f"{record['rel_diff_mean']:.3e}")
    for it, acc in record["acc_history"][-5:]:
        t.add_row(f"accuracy @ {it}", f"{acc:.4f}")
    return t


def _dur(seconds: float) -> str:
    """A duration with a sensible unit."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def bench_tables(rows: list[dict], threads: int, iters: int = 10000) -> list[Table]:
    """The `gradsel bench` tables: per-call timings with the ratios that matter, projected run times."""
    calls = Table(title=f"gradsel bench — median per call, {threads} Numba thread(s), float64", title_justify="left")
    for col in ("H", "B", "loss", "analytic", "numeric", "naive", "naive/num", "num/ana", "exps", "ns/exp"):
        calls.add_column(col, justify="right")
    runs = Table(title=f"projected time of a {iters:,}-iteration run", title_justify="left")
    for col in ("H", "B", "analytic", "numeric", "alternate", "select"):
        runs.add_column(col, justify="right")
    for r in rows:
        naive = _dur(r["naive"]) + ("*" if r["naive_extrapolated"] else "")
        calls.add_row(str(r["hidden"]), str(r["batch"]), _dur(r["loss"]), _dur(r["analytic"]), _dur(r["numeric"]),
                      naive, f"{r['naive_over_numeric']:,.0f}×", f"{r['numeric_over_analytic']:.1f}×",
                      f"{r['exponentials'] / 1e6:.2f}M", f"{r['ns_per_exponential']:.2f}")
        runs.add_row(str(r["hidden"]), str(r["batch"]),
                     *(_dur(r[f"iter_{m}"] * iters) for m in ("analytic", "numeric", "alternate", "select")))
    notes = ["exps: exponentials the numeric gradient evaluates: 2 × 10 per hidden unit and distinct (sample, pixel "
             "value) — repeats share one — plus 2 per (hidden unit + 1, logit, sample); ns/exp: numeric time / exps"]
    if any(r["naive_extrapolated"] for r in rows):
        notes.append("* naive: timed on a random sample of weights, extrapolated to all of them")
    calls.caption = "\n".join(notes)
    calls.caption_justify = "left"
    return [calls, runs]


def _pm(entry: dict, digits: int = 4) -> str:
    """'mean ± half-width' (just the mean for one seed, '—' for none)."""
    if entry.get("mean") is None:
        return "—"
    if entry.get("n", 0) > 1 and entry.get("lo") == entry.get("lo"):
        return f"{entry['mean']:.{digits}f} ± {(entry['hi'] - entry['lo']) / 2:.{digits}f}"
    return f"{entry['mean']:.{digits}f}"


def _p(p) -> str:
    if p is None or p != p:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compare_tables(summary: dict, config: dict, curves: dict | None = None) -> list[Table]:
    """The `gradsel compare` tables: per method, each method against the baseline, and with
    `curves` (report.curves) a sparkline of each method's mean training loss."""
    c = config
    title = (f"gradsel compare — k={c['shots']}, B={c['batch']}, H={c['hidden']}, {c['iters']:,} iterations, "
             f"lr {c['lr']}, subset {c['subset']}")
    per = Table(title=title, title_justify="left")
    for col in ("method", "seeds", "accuracy (95% CI)", "final loss", "ms/iter", "numeric share", "select wins"):
        per.add_column(col, justify="left" if col == "method" else "right")
    for r in summary["methods"]:
        win = "—" if r["select_win_rate"] is None else f"{r['select_win_rate']:.3f}"
        per.add_row(r["method"], str(len(r["seeds"])), _pm(r["accuracy"]), f"{r['final_loss']:.4f}",
                    f"{r['time_per_iter'] * 1e3:.3f}", f"{r['numeric_share']:.3f}", win)
    vs = Table(title=f"paired against {summary['baseline']} (same seeds)", title_justify="left")
    for col in ("method", "Δ accuracy", "95% CI", "p (t)", "p (Wilcoxon)", "predictions differ"):
        vs.add_column(col, justify="left" if col == "method" else "right")
    for r in summary["methods"]:
        v = r.get("versus")
        if v:
            lo, hi = v["ci"]
            ci = "—" if lo != lo else f"{lo:+.4f} … {hi:+.4f}"
            vs.add_row(r["method"], f"{v['difference']:+.4f}", ci, _p(v["p_t"]), _p(v["p_wilcoxon"]),
                       f"{v['disagreement']:.2%}")
    tables = [per, vs]
    rows = [c for c in (curves or {}).get("methods", []) if c["loss"]]
    if rows:
        loss = Table(title="training loss over the run (window means, mean over seeds)", title_justify="left")
        for col in ("method", "first", "last", "loss (log scale)"):
            loss.add_column(col, justify="right" if col in ("first", "last") else "left", no_wrap=col != "method")
        for c in rows:
            values = [v for v in c["loss"]["mean"] if v == v]
            loss.add_row(c["method"], _fmt(values[0] if values else None), _fmt(values[-1] if values else None),
                         sparkline(c["loss"]["mean"], log=True))
        tables.append(loss)
    return tables


def sweep_table(summary: dict, seeds: int) -> Table:
    """The `gradsel sweep` table: one row per cell, the varied options first."""
    varied = summary["varied"]
    table = Table(title=f"gradsel sweep — {len(summary['cells'])} cells × {seeds} seeds", title_justify="left")
    for name in varied or ["cell"]:
        table.add_column(name.replace("_", "-"))
    for col in ("accuracy (95% CI)", "final loss", "runs", "diverged"):
        table.add_column(col, justify="right")
    for cell in summary["cells"]:
        labels = [str(cell["values"][k]) for k in varied] or ["all"]
        table.add_row(*labels, _pm(cell["accuracy"]), _fmt(cell["final_loss"]), str(cell["runs"]),
                      str(cell["diverged"]) if cell["diverged"] else "")
    return table


def _row_label(row: dict, preset: str) -> str:
    return f"{row['method']} H={row['hidden']}" if preset == "alternate" else row["method"]


def _columns(table: dict) -> list[str]:
    first = table["groups"][0]["rows"][0]
    cols = [f"k={c['shots']}" for c in first["cells"]]
    return cols + (["AVG"] if "avg" in first else [])


def _entries(row: dict) -> list[dict]:
    return row["cells"] + ([row["avg"]] if "avg" in row else [])


def _cell_text(e: dict, paper: bool, fmt: str) -> str:
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
        ours += f" ({e['published']:.4f})"
    return ours


def _verdict_lines(table: dict) -> list[str]:
    lines = []
    for v in table["verdicts"]:
        if all(part["outcome"] == "no data" for part in v["comparisons"]):
            mark = "NO DATA"
        else:
            mark = {True: "SUPPORTED", False: "CONTRADICTED", None: "NOT SUPPORTED"}[v["supported"]]
        lines.append(f"{mark} — {v['text']}")
        for part in v["comparisons"]:
            lines.append(f"    vs {part['baseline']}: {part['words']}")
    return lines


def _footer_lines(table: dict) -> list[str]:
    s = table["settings"]
    lines = [f"seeds: {', '.join(map(str, table['seeds'])) or 'none'}; settings: {s['iters']:,} iterations, "
             f"SGD lr {s['lr']}, subset {s['subset']}, init std {s['init_std']}, fd step {s['fd_step']} ({s['fd_scheme']})"]
    if table["mad_baseline"] is not None:
        lines.append(f"mean |ours − published|: baseline cells {table['mad_baseline']:.4f}, all cells {table['mad_all']:.4f}")
    if table["missing_cells"]:
        lines.append(f"{table['missing_cells']} cells have no runs yet: `gradsel table --preset {table['preset']} --run`")
    for m in table["avg_mismatches"]:
        lines.append(f"note: the published AVG of {m['method']} at B={m['batch']} is printed {m['printed']:.4f}, "
                     f"the mean of its printed cells is {m['mean_of_cells']:.4f} (shown as printed)")
    return lines


def paper_table_rich(table: dict, paper: bool = True) -> list:
    """The paper table as Rich renderables: one table, then footer and verdicts."""
    from rich.text import Text

    t = Table(title=f"{table['title']} — ours (mean ± 95% CI){' (published)' if paper else ''}", title_justify="left")
    t.add_column("B", justify="right")
    t.add_column("method")
    for col in _columns(table):
        t.add_column(col, justify="right")
    for g in table["groups"]:
        for i, row in enumerate(g["rows"]):
            t.add_row(str(g["batch"]) if i == 0 else "", _row_label(row, table["preset"]),
                      *(_cell_text(e, paper, "rich") for e in _entries(row)),
                      end_section=i == len(g["rows"]) - 1)
    return [t, Text("\n".join(_footer_lines(table))), Text("\n".join(_verdict_lines(table)))]


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


def paper_table_csv(table: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["preset", "batch", "method", "hidden", "shots", "mean", "ci_lo", "ci_hi", "n", "published", "best"])
    for g in table["groups"]:
        for row in g["rows"]:
            for e, col in zip(_entries(row), [c["shots"] for c in row["cells"]] + (["avg"] if "avg" in row else [])):
                w.writerow([table["preset"], g["batch"], row["method"], row["hidden"], col,
                            *("" if e.get(k) is None or e.get(k) != e.get(k) else e[k] for k in ("mean", "lo", "hi")),
                            e["n"], "" if e["published"] is None else e["published"], int(bool(e.get("best")))])
    return buf.getvalue()


def tune_table(summary: dict, top: int = 10) -> list:
    """The best trials of `gradsel tune`, and the chosen setting."""
    from rich.text import Text

    c = summary["config"]
    t = Table(title=(f"gradsel tune — {c['method']}, {c['optimizer']}, k={c['shots']}, B={c['batch']}, "
                     f"H={c['hidden']}, {c['iters']:,} iterations; {len(summary['trials'])} trials"),
              title_justify="left", caption=summary["split"], caption_justify="left")
    for col in ("rank", "trial", "lr", "weight decay", "val accuracy", "final loss"):
        t.add_column(col, justify="right")
    for rank, r in enumerate(summary["trials"][:top], start=1):
        acc = "diverged" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        loss = "—" if r["final_loss"] is None else f"{r['final_loss']:.4f}"
        style = "bold green" if rank == 1 else None
        t.add_row(str(rank), str(r["trial"]), f"{r['lr']:.4g}", f"{r['weight_decay']:.3g}", acc, loss, style=style)
    b = summary["best"]
    chosen = Text(f"chosen: --lr {b['lr']:.4g} --weight-decay {b['weight_decay']:.3g}" if b else "no trial finished")
    return [t, chosen]


# --- digit pictures (the paper's Figure 2) -----------------------------------------

HALF_BLOCK = "▀"  # upper half block: its foreground is the upper pixel, its background the lower one


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
        text.append(f"\n{m[:width - 3]:<{width - 2}}{p if p >= 0 else '-'}",
                    style=f"{colour} bold" if differ else colour)
    return text


def digits_grid(images, labels, indices, predictions: dict, title: str):
    """The chosen test images side by side as half-block pictures with their captions."""
    from rich.columns import Columns
    from rich.console import Group

    cells = []
    for i in indices:
        side = int(round(np.sqrt(np.asarray(images[i]).size)))
        cells.append(Group(digit(np.asarray(images[i]).reshape(side, side)),
                           digit_caption(int(i), int(labels[i]), {m: int(p[i]) for m, p in predictions.items()},
                                         width=side)))
    return Group(Text(title, style="bold"), Columns(cells, padding=(1, 2)))


def gradcheck_tables(check: dict) -> list:
    """One table per state (initialisation, after training): per step h, the relative error of each
    block and of all weights, and 1 - cosine over all weights; the best step in bold."""
    c = check["config"]
    out = []
    for state in check["states"]:
        when = "at initialisation" if state["iteration"] == 0 else f"after {state['iteration']:,} analytic iterations"
        t = Table(title=(f"gradcheck — numeric ({check['scheme']}) vs analytic gradient {when}: k={c['shots']}, "
                         f"B={c['batch']}, H={c['hidden']}, seed {c['seed']}, batch loss {state['loss']:.4f}"),
                  title_justify="left")
        t.add_column("h", justify="right")
        for col in ("W1", "b1", "W2", "b2", "all weights", "1 − cos (all)"):
            t.add_column(col, justify="right")
        for r in state["rows"]:
            cells = [_fmt(r["blocks"][b]["rel_error"], ".2e") for b in ("W1", "b1", "W2", "b2")]
            cells += [_fmt(r["all"]["rel_error"], ".2e"), _fmt(r["all"]["one_minus_cosine"], ".1e")]
            t.add_row(f"{r['step']:g}", *cells, style="bold" if r["step"] == state["best_step"] else None)
        t.caption = ("relative error ‖g_num − g_ana‖ / ‖g_ana‖ per block; "
                     "bold: the smallest error over all weights")
        t.caption_justify = "left"
        out.append(t)
    return out
