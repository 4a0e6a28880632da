"""Everything a person sees: Rich tables, progress bars, sparklines. The only module importing Rich."""

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

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


def sparkline(values, width: int = 40) -> str:
    """A one-line picture of a series (e.g. the loss), `width` characters."""
    vals = [v for v in values if v == v and abs(v) != float("inf")]
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
    t.add_row("loss", sparkline(record["loss_history"]["values"]))
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
    for col in ("H", "B", "loss", "analytic", "numeric", "naive", "naive/num", "num/ana", "ns/exp"):
        calls.add_column(col, justify="right")
    runs = Table(title=f"projected time of a {iters:,}-iteration run", title_justify="left")
    for col in ("H", "B", "analytic", "numeric", "alternate", "select"):
        runs.add_column(col, justify="right")
    for r in rows:
        naive = _dur(r["naive"]) + ("*" if r["naive_extrapolated"] else "")
        calls.add_row(str(r["hidden"]), str(r["batch"]), _dur(r["loss"]), _dur(r["analytic"]), _dur(r["numeric"]),
                      naive, f"{r['naive_over_numeric']:,.0f}×", f"{r['numeric_over_analytic']:.1f}×",
                      f"{r['ns_per_exponential']:.2f}")
        runs.add_row(str(r["hidden"]), str(r["batch"]),
                     *(_dur(r[f"iter_{m}"] * iters) for m in ("analytic", "numeric", "alternate", "select")))
    notes = ["ns/exp: numeric time / (2 × H × (non-zero pixels + bias) × 10), the exponentials a central difference needs"]
    if any(r["naive_extrapolated"] for r in rows):
        notes.append("* naive: timed on a random sample of weights, extrapolated to all of them")
    calls.caption = "\n".join(notes)
    calls.caption_justify = "left"
    return [calls, runs]
