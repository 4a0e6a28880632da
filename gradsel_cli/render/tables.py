"""The terminal tables of every command (Rich): train, bench, compare, sweep and runs, tune, gradcheck, the
paper tables and the studies; and the output of ``table`` in the format asked for.
"""

from rich import box
from rich.table import Table
from rich.text import Text

from .. import sources
from ..config import METHOD_NAMES, TrainConfig, counted, images_label
from .cells import (
    cell_text,
    column_names,
    differences_legend,
    duration,
    entries,
    fmt_loss,
    fmt_number,
    footer_lines,
    ledger_text,
    option_value,
    outcome,
    p_value,
    plus_minus,
    power_text,
    probe_text,
    row_label,
    sparkline,
    study_legend,
    study_parts,
    verdict_lines,
)
from .console import clean
from .digits import digits_grid
from .formats import json_text, paper_table_csv, paper_table_latex, paper_table_markdown, study_markdown
from .layout import COMPACT, Fit, Lines, number_column, stacked_table, titled_table, wrap_title


def train_summary(record: dict) -> Table:
    """The end-of-run summary of one training run record."""
    c = record["config"]
    t = titled_table(
        wrap_title(
            f"gradsel train — {clean(c['method'])}",
            clean(images_label(c)),
            f"B={clean(c['batch'])}",
            f"H={clean(c['hidden'])}",
            f"{record['iterations_done']}/{clean(counted(c['iters'], 'iteration'))}",
            f"seed {clean(c['seed'])}",
            first_sep=": ",
        ),
        show_header=False,
    )
    t.add_column(style="bold")
    t.add_column()
    if record["diverged"]:
        from ..numerics.training import divergence_message  # the line stderr shows: the same words

        t.add_row("status", f"[red]{clean(divergence_message(record['iterations_done'], TrainConfig.from_dict(c)))}")
    limit = c.get("test_limit", 10000)
    acc_label = "test accuracy" + ("" if limit == 10000 else f" (first {clean(limit)} images)")
    t.add_row(acc_label, f"[bold green]{fmt_number(record['accuracy'])}")
    t.add_row("final training loss", fmt_loss(record["final_loss"]))
    t.add_row("loss (log scale)", sparkline(record["loss_history"]["values"], log=True))
    t.add_row("wall time", f"{duration(record['wall_time'])} ({duration(record['time_per_iter'])} / iteration)")
    if record.get("compile_time") is not None:
        t.add_row("kernels loaded in", f"{duration(record['compile_time'])} (part of the wall time)")
    names = record["sources"]
    t.add_row("gradient evaluations", ", ".join(f"{clean(n)} {record['counts'][n]:,}" for n in names))
    if record.get("probe"):  # runs made with --probe-every
        t.add_row("probe: cosine to backprop", clean(probe_text(record["probe"])))
    if record.get("ledger"):  # records made before the ledger have none
        t.add_row("cost", clean(ledger_text(record["ledger"], record["iterations_done"])))
    if len(names) > 1:
        t.add_row("share of updates", ", ".join(f"{clean(n)} {record['shares'][n]:.3f}" for n in names))
    if record["select_wins"] is not None:
        ties = record.get("select_ties")  # records made before ties were counted have none
        if ties is None:
            t.add_row("select wins", ", ".join(f"{clean(n)} {record['select_wins'][n]:,}" for n in names))
        else:
            strict = ", ".join(f"{clean(n)} {record['select_wins'][n] - ties[n]:,}" for n in names)
            t.add_row("select wins (strict)", strict)
            t.add_row("select ties", f"{sum(ties.values()):,}: candidates' losses equal, the first listed kept")
    for n, value in (record["rel_diff_mean"] or {}).items():
        shown = "not finite" if value is None else f"{value:.3e}"  # None: a gradient overflowed (a huge step)
        t.add_row(f"mean ‖g − g {clean(names[0])}‖ / ‖g {clean(names[0])}‖, {clean(n)}", shown)
    for it, acc in [p for p in record.get("acc_curve") or record.get("acc_history", []) if p[0]][-5:]:
        t.add_row(f"accuracy @ {it}", f"{acc:.4f}")
    return t


def _bench_cell(value, fmt: str) -> str:
    if fmt == "duration":
        return duration(value)
    if fmt == "M":  # a count: millions, or as it is below 10,000 (which 0.00M would hide)
        return f"{value / 1e6:.2f}M" if value >= 1e4 else f"{value:,.0f}"
    if fmt.endswith("×"):
        return f"{value:{fmt[:-1]}}×"
    return f"{value:{fmt}}"


def bench_tables(rows: list[dict], threads, iters: int = 10000, precision: str = "float64") -> list[Table | Fit]:
    """The `gradsel bench` tables: each source's time per call (and over the exact gradient's), what each
    source measures of its own, projected run times; `threads`: the count, or a label for the automatic policy.
    A table with a column per source or method is one block per size where it would not fit the width."""
    numba = counted(threads, "Numba thread") if isinstance(threads, int) else f"{threads} Numba thread(s)"
    exact = sources.exact()
    names = [n for n in sources.names() if all(n in r for r in rows)]  # a source registered after the rows: none
    others = [n for n in names if n != exact]
    calls = titled_table(
        wrap_title("gradsel bench — median time per call", numba, precision, first_sep=", "), **dict(COMPACT, padding=0)
    )  # one space apart, within 80 columns
    for col in ("H", "B", "pixels", "loss", *names, *(f"{n} /\n{exact}" for n in others)):
        number_column(calls, col)
    for r in rows:
        calls.add_row(
            str(r["hidden"]),
            str(r["batch"]),
            str(r["nonzero_pixels"]),
            duration(r["loss"]),
            *(duration(r[n]) for n in names),
            *(f"{r[f'{n}_over_{exact}']:.1f}×" for n in others),
        )
    calls.caption = "pixels: non-zero pixels in the batch"
    calls.caption_justify = "left"
    tables: list[Table | Fit] = [Fit(calls, stacked_table(calls, _by_size))]
    for n in names:
        source = sources.get(n)
        if source.bench is None or not source.bench.columns:
            continue
        own = titled_table(source.bench.title or f"{n}: further measurements", **COMPACT)
        for col in ("H", "B", *(header for header, _, _ in source.bench.columns)):
            number_column(own, col)
        for r in rows:
            cells = [_bench_cell(r[key], fmt) for _, key, fmt in source.bench.columns]
            own.add_row(str(r["hidden"]), str(r["batch"]), *cells)
        notes = [*source.bench.notes]
        own.caption = "\n".join(notes)
        own.caption_justify = "left"
        if notes:
            assert own.min_width is not None  # titled_table sets it
            own.min_width = max(own.min_width, *(len(note) for note in notes))  # notes are not wrapped
        tables.append(own)
    methods = [m for m in METHOD_NAMES if all(f"iter_{m}" in r for r in rows)]
    fused = [n for n in others if n in methods]  # each source's iteration over the exact gradient's
    runs = titled_table(f"projected time of a {iters:,}-iteration run", **COMPACT)
    for col in ("H", "B", *methods, f"iteration /\n{exact}", *(f"{n} it. /\n{exact} it." for n in fused)):
        number_column(runs, col)
    for r in rows:
        runs.add_row(
            str(r["hidden"]),
            str(r["batch"]),
            *(duration(r[f"iter_{m}"] * iters) for m in methods),
            f"{r['iteration_over_exact']:.2f}×",
            *(f"{r[f'iter_{n}'] / r[f'iter_{exact}']:.2f}×" for n in fused),
        )
    run_notes = [
        "iterations as training runs them: plain SGD, many per kernel call;",
        f"iteration / {exact}: one {exact} iteration over one gradient call;",
        f"X it. / {exact} it.: an iteration of source X over one of {exact}",
    ]
    runs.caption = "\n".join(run_notes)
    runs.caption_justify = "left"
    runs.min_width = max(len(note) for note in run_notes)
    return [*tables, Fit(runs, stacked_table(runs, _by_size))]


def _by_size(cells) -> tuple[str, set[int]]:
    """A bench row's label when stacked: its H and B (its first two cells)."""
    return f"H={cells[0]} B={cells[1]}", {0, 1}


def bench_record_tables(record: dict) -> list[Table | Fit]:
    """The bench tables of a benchmark.bench_record, titled with its thread count or the automatic policy."""
    return bench_tables(
        record["rows"],
        record["threads"] or f"auto (1 or {record['max_threads']})",
        precision=record.get("precision", "float64"),
    )


def compare_tables(summary: dict, config: dict, curves: dict | None = None) -> list[Table | Fit]:
    """The `gradsel compare` tables: per method, each method against the baseline, and with
    `curves` (report.curves) a sparkline of each method's mean training loss."""
    c = config
    budget = summary.get("budget")
    per = titled_table(
        wrap_title(
            "gradsel compare",
            clean(images_label(c)),
            f"B={clean(c['batch'])}",
            f"H={clean(c['hidden'])}",
            counted(c["iters"], "iteration", ",") if budget is None else f"budget {budget:,.0f} forward-pass equiv.",
            f"lr {clean(c['lr'])}",
            f"subset {clean(c['subset'])}",
            first_sep=": ",
        )
    )
    per.add_column("method", no_wrap=True)
    share = f"non-\n{clean(sources.exact())}"  # the share of updates not from the exact gradient
    spent = ("iters", "cost\n(fpe)") if budget is not None else ()
    for col in ("seeds", *spent, "accuracy\n(95% CI)", "final\nloss", "ms /\niter", share, "select\nwins"):
        number_column(per, col)
    for r in summary["methods"]:
        win = "—" if r["select_win_rate"] is None else f"{r['select_win_rate']:.3f}"
        cost = "—" if r.get("cost") is None else f"{r['cost']:,.0f}"
        per.add_row(
            clean(r["method"]),
            str(len(r["seeds"])),
            *((f"{r['iterations']:,}", cost) if spent else ()),
            plus_minus(r["accuracy"]),
            fmt_loss(r["final_loss"]),
            f"{r['time_per_iter'] * 1e3:.3f}",
            f"{r['not_exact_share']:.3f}",
            win,
        )
    diverged = [
        f"{clean(r['method'])} {r['diverged']} of {len(r['seeds'])}" for r in summary["methods"] if r["diverged"]
    ]
    notes = [f"diverged (left out of the statistics): {', '.join(diverged)}"] if diverged else []
    ties = [f"{clean(r['method'])} {r['select_tie_rate']:.3f}" for r in summary["methods"] if r.get("select_tie_rate")]
    if ties:
        notes.append(
            f"select wins: strict wins only; its candidates tied (equal losses, the first listed kept) in a share "
            f"of the iterations: {', '.join(ties)}"
        )
    if notes:
        per.caption, per.caption_justify = "\n".join(notes), "left"
    tables: list[Table | Fit] = [Fit(per, stacked_table(per, lambda cells: (cells[0], {0}))), _versus_table(summary)]
    rows = [c for c in (curves or {}).get("methods", []) if c["loss"]]
    if rows:
        loss = titled_table("training loss over the run (window means, mean over seeds)")
        loss.add_column("method")
        number_column(loss, "first")
        number_column(loss, "last")
        loss.add_column("loss (log scale)", no_wrap=True)
        for c in rows:
            values = [v for v in c["loss"]["mean"] if v == v]
            loss.add_row(
                clean(c["method"]),
                fmt_loss(values[0] if values else None),
                fmt_loss(values[-1] if values else None),
                sparkline(c["loss"]["mean"], log=True),
            )
        tables.append(loss)
    return tables


def holm_line(summary: dict) -> list[str]:
    """compare's t-test p-values Holm-adjusted over the t-tests it made, in one line (none when it made none)."""
    tested = [(r["method"], r["versus"]) for r in summary["methods"] if r.get("versus") and r["versus"].get("tests")]
    if not tested:
        return []
    adjusted = ", ".join(f"{clean(m)} {p_value(v['p_holm'])}" for m, v in tested if v.get("p_holm") is not None)
    made = tested[0][1]["tests"]
    return [f"t-test p Holm-adjusted over the {made} t-tests made (pairs with no spread make none): {adjusted}"]


def power_lines(summary: dict) -> list[str]:
    """compare --power: per method, the seeds a paired t-test needs to tell the asked difference apart."""
    lines = []
    for r in summary["methods"]:
        p = (r.get("versus") or {}).get("power")
        if p:
            lines.append(f"{clean(r['method'])}: {power_text(p)}")
    return lines


def wilcoxon_floor(summary: dict) -> list[str]:
    """The smallest p the exact two-sided Wilcoxon test can give with the pairs compare has: 2 / 2^n (0.0625 for
    5 pairs), said where it cannot reach 0.05 (n < 6) and a Wilcoxon p is shown."""
    pairs = {r["versus"]["n"] for r in summary["methods"] if (r.get("versus") or {}).get("p_wilcoxon") is not None}
    few = sorted(n for n in pairs if 1 < n < 6)
    if not few:
        return []
    floors = ", ".join(f"{2 / 2**n:.3g} with {n} pairs" for n in few)
    return [f"Wilcoxon (exact): its smallest possible p is {floors}, so it cannot reach 0.05 here"]


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
            rows.append(
                (
                    clean(r["method"]),
                    f"{v['difference']:+.4f}",
                    ci,
                    p_value(v["p_t"]),
                    p_value(v["p_wilcoxon"]),
                    f"{v['disagreement']:.2%}",
                    outcome(e, "\n"),
                )
            )
            tost_lines.append(f"{clean(r['method'])}: {outcome(e)} within ±{e['margin']:g} — {clean(e['numbers'])}")

    def layout(compact: bool) -> Table:
        vs = titled_table(
            f"paired against {clean(summary['baseline'])} (same seeds)", **(dict(COMPACT, padding=0) if compact else {})
        )
        vs.add_column("method", no_wrap=True)
        for col in ("Δ\naccuracy", "95% CI", "t-test\np", "Wilcoxon\np", "predictions\ndiffer", "TOST"):
            number_column(vs, col)
        for row in rows:
            vs.add_row(*row)
        if tost_lines:
            vs.caption = "\n".join([*tost_lines, *holm_line(summary), *wilcoxon_floor(summary), *power_lines(summary)])
            vs.caption_justify = "left"
        return vs

    return Fit(layout(False), layout(True), stacked_table(layout(True), lambda cells: (cells[0], {0})))


def compare_parts(summary: dict, config: dict, curves: dict, digits: dict | None = None) -> list:
    """What ``compare`` prints: its tables, then the digits of a report.digits_view when they are shown."""
    parts = compare_tables(summary, config, curves)
    if digits is not None:
        parts.append(
            digits_grid(digits["images"], digits["labels"], digits["indices"], digits["predictions"], digits["title"])
        )
    return parts


SWEEP_LABEL_WIDTH = 28  # the progress bar's label names the swept options up to this width


def sweep_label(lists: dict[str, list]) -> str:
    """The progress label of a sweep: 'sweep lr, fd-step' (the options given several values), or 'sweep 5
    options' when their names would crowd the bar."""
    varied = [k.replace("_", "-") for k, v in lists.items() if len(v) > 1]
    label = "sweep " + ", ".join(varied) if varied else "sweep"
    return label if len(label) <= SWEEP_LABEL_WIDTH else f"sweep {counted(len(varied), 'option')}"


RUN_NUMBERS = (
    ("runs", lambda r: str(r["runs"])),
    ("accuracy\n(95% CI)", lambda r: plus_minus(r["accuracy"])),
    ("final\nloss", lambda r: fmt_loss(r["final_loss"])),
    ("diverged", lambda r: str(r["diverged"]) if r["diverged"] else ""),
)  # (header, row -> text)


def _configurations(title: str, varied: list[str], rows: list[dict]) -> Fit:
    """A table of configurations: the values of the `varied` options (row["values"]) as columns where
    they fit in the width, else two options to a column (one above the other, a blank line between
    rows), else as one wrapped "option=value, ..." column; then the RUN_NUMBERS columns."""
    names = [clean(k.replace("_", "-")) for k in varied]

    def layout(stacked: bool, per_column: int = 1) -> Table:
        t = titled_table(title, **({} if stacked else COMPACT if per_column == 1 else dict(COMPACT, padding=0)))
        groups = [range(i, min(i + per_column, len(names))) for i in range(0, len(names), per_column)]
        if stacked:
            t.add_column("configuration", overflow="fold")
        else:
            for header in ["\n".join(names[i] for i in g) for g in groups] or ["configuration"]:
                t.add_column(header, no_wrap=True)
        for header, _ in RUN_NUMBERS:
            number_column(t, header)
        for row in rows:
            values = [clean(option_value(row["values"][k])) for k in varied]
            labels = (
                [", ".join(f"{k}={v}" for k, v in zip(names, values)) or "all"]
                if stacked
                else ["\n".join(values[i] for i in g) for g in groups] or ["all"]
            )
            t.add_row(*labels, *(cell(row) for _, cell in RUN_NUMBERS), end_section=per_column > 1)
        return t

    paired = [layout(False, 2)] if len(varied) > 2 else []
    return Fit(layout(False), *paired, layout(True))


def runs_title(summary: dict, source: str | None = None) -> str:
    """The title of `gradsel runs`: the file, its runs and configurations."""
    return wrap_title(
        "gradsel runs" + (f" — {clean(source)}" if source else ""),
        counted(summary["runs"], "run"),
        counted(len(summary["rows"]), "configuration"),
        first_sep=": ",
    )


def sweep_title(summary: dict, seeds: int) -> str:
    """The title of `gradsel sweep`: its cells and seeds."""
    return f"gradsel sweep — {counted(len(summary['rows']), 'cell')} × {counted(seeds, 'seed')}"


def runs_table(summary: dict, title: str) -> list:
    """One row per configuration of a report.runs_summary (of a results file, or of a sweep), the options
    that vary first, then a line of the options every run shares."""
    table = _configurations(title, summary["varied"], summary["rows"])
    shared = ", ".join(f"{k.replace('_', '-')}={clean(option_value(v))}" for k, v in summary["fixed"].items())
    return [table, Lines([f"every run: {shared}" if shared else "no runs"])]


def tune_table(summary: dict, top: int = 10, title: str | None = None, caption: str | None = None) -> list:
    """The best trials of `gradsel tune` (or of `gradsel lab`'s search, under its `title` and `caption`, with each
    trial's accuracy on its training images), and the chosen setting."""
    c = summary["config"]
    t = titled_table(
        title
        or wrap_title(
            "gradsel tune",
            clean(c["method"]),
            clean(c["optimizer"]),
            clean(images_label(c)),
            f"B={clean(c['batch'])}",
            f"H={clean(c['hidden'])}",
            counted(c["iters"], "iteration", ","),
            counted(len(summary["trials"]), "trial"),
            first_sep=": ",
        ),
        caption=clean(caption or summary["split"]),
        caption_justify="left",
    )
    trained = "train_accuracy" in (summary["trials"] or [{}])[0]
    columns = (
        "rank",
        "trial",
        "lr",
        "weight\ndecay",
        *(("train\naccuracy",) * trained),
        "val\naccuracy",
        "final\nloss",
    )
    for col in columns:
        number_column(t, col)
    for rank, r in enumerate(summary["trials"][:top], start=1):
        acc = "diverged" if r["val_accuracy"] is None else f"{r['val_accuracy']:.4f}"
        style = "bold green" if rank == 1 and summary["best"] else None
        t.add_row(
            str(rank),
            str(r["trial"]),
            f"{r['lr']:.4g}",
            f"{r['weight_decay']:.3g}",
            *([fmt_number(r["train_accuracy"])] if trained else []),
            acc,
            fmt_loss(r["final_loss"]),
            style=style,
        )
    b, tied = summary["best"], summary.get("tied") or []
    if b:
        chosen = f"chosen: --lr {b['lr']:.4g} --weight-decay {b['weight_decay']:.3g}"
    elif tied:
        chosen = f"none chosen: trials {', '.join(map(str, sorted(tied)))} tie for the best validation accuracy"
    else:
        chosen = "no trial finished"
    return [t, Text(chosen)]


def gradcheck_tables(check: dict) -> list:
    """One table per state (initialisation, after training) and checked source: per step h (one row for a
    source without a step), the relative error of each block and of all weights, and 1 - cosine over all
    weights; the best step in bold."""
    c, exact = check["config"], check["exact"]
    out = []
    for state in check["states"]:
        when = "at initialisation" if state["iteration"] == 0 else f"after {state['iteration']:,} {exact} iterations"
        for name, checked in state["sources"].items():
            t = titled_table(
                wrap_title(
                    f"gradcheck — {clean(name)} vs {clean(exact)} gradient {when}",
                    clean(images_label(c)),
                    f"B={clean(c['batch'])}",
                    f"H={clean(c['hidden'])}",
                    f"seed {clean(c['seed'])}",
                    f"batch loss {fmt_loss(state['loss'])}",
                    first_sep=": ",
                )
            )
            if "law" in checked:  # a random source: by number of directions, mean over draws
                out += _random_tables(t, name, checked, exact, when)
                continue
            for col in ("h", "W1", "b1", "W2", "b2", "all\nweights", "1 − cos\n(all)"):
                number_column(t, col)
            for r in checked["rows"]:
                cells = [fmt_number(r["blocks"][b]["rel_diff"], ".2e") for b in ("W1", "b1", "W2", "b2")]
                cells += [fmt_number(r["all"]["rel_diff"], ".2e"), fmt_number(r["all"]["one_minus_cosine"], ".1e")]
                step = "—" if r["step"] is None else f"{r['step']:g}"
                t.add_row(step, *cells, style="bold" if r["step"] == checked["best_step"] else None)
            option = checked["step_option"]
            t.caption = f"relative error ‖g − g_{clean(exact)}‖ / ‖g_{clean(exact)}‖ per block" + (
                f"; h: --{option.replace('_', '-')};\nbold: the smallest error over all weights" if option else ""
            )
            t.caption_justify = "left"
            out.append(t)
    return out


def _random_tables(t, name: str, checked: dict, exact: str, when: str) -> list:
    """A random source's gradcheck table `t` filled: per step h (where it has one and more than one is checked)
    and number of directions q, the relative error over all weights (rms over the draws; the blocks' are in
    --json), its spread, the mean cosine and sqrt(P / q); at initialisation, its error against the number of
    weights."""
    rows = checked["rows"]
    steps = {r["step"] for r in rows}
    cols = (("h",) if len(steps) > 1 else ()) + ("q", "relative\nerror", "± sd", "cosine", "√(P/q)")
    for col in cols:
        number_column(t, col)
    for i, r in enumerate(rows):
        cells = [fmt_number(r["all"]["rel_diff"], ".3g"), fmt_number(r["spread"]["rel_diff"], ".3g")]
        cells += [fmt_number(r["all"]["cosine"], ".3f"), f"{r['expected']:.3g}"]
        head = [f"{r['step']:g}"] if len(steps) > 1 else []
        last = i + 1 == len(rows) or rows[i + 1]["step"] != r["step"]
        t.add_row(*head, f"{r['q']:,}", *cells, end_section=last and len(steps) > 1)
    draws = rows[0]["draws"] if rows else 0
    law = checked["law"]
    option = checked["step_option"]
    t.caption = (
        f"relative error ‖g − g_{clean(exact)}‖ / ‖g_{clean(exact)}‖ over all weights, root mean square over {draws} "
        f"draws (the directions of iterations 1–{draws}); ± sd: its spread; cosine: its mean; √(P/q): the "
        f"error the 1/q variance law predicts, P weights, q directions. Log error against log q: slope "
        f"{_signed(law)} (the law: −0.50)" + (f"; h: --{option.replace('_', '-')}" if option and len(steps) > 1 else "")
    )
    t.caption_justify = "left"
    out = [t]
    if "sizes" in checked:
        sizes = titled_table(f"gradcheck — {clean(name)}: its error against the number of weights {when}")
        for col in ("H", "weights P", "relative\nerror", "± sd", "√(P/q)"):
            number_column(sizes, col)
        for r in checked["sizes"]:
            sizes.add_row(
                str(r["hidden"]),
                f"{r['weights']:,}",
                fmt_number(r["rel_diff"], ".3g"),
                fmt_number(r["spread"], ".3g"),
                f"{r['expected']:.3g}",
            )
        q = round(checked["sizes"][0]["weights"] / checked["sizes"][0]["expected"] ** 2)
        sizes.caption = (
            f"q = {q}, root mean square over {draws} draws at the initial weights of each size; log error against "
            f"log P: slope {_signed(checked['size_law'])} (the law: +0.50)"
        )
        sizes.caption_justify = "left"
        out.append(sizes)
    return out


def _signed(x) -> str:
    """A slope with its sign, a true minus: +0.50, −0.47; — when there is none."""
    return "—" if x is None else f"{x:+.2f}".replace("-", "−")


def paper_table_rich(table: dict, paper: bool = True) -> list:
    """The paper table as Rich renderables: the table, then footer and verdicts. The table is one
    line per row where that fits the width; else (80 columns) each cell puts the published number
    under ours and the hidden size goes under the method."""
    head = f"{clean(table['title'])}\nours: mean ± 95% CI over seeds" + ("; published in parentheses" if paper else "")

    def layout(stacked: bool) -> Table:
        t = titled_table(head, **(COMPACT if stacked else {}))
        number_column(t, "B")
        t.add_column("method", no_wrap=True)
        for col in column_names(table):
            number_column(t, col)
        for g in table["groups"]:
            for i, row in enumerate(g["rows"]):
                label = clean(row_label(row, table["preset"]))
                cells = [cell_text(e, paper, "rich", stacked) for e in entries(row)]
                t.add_row(
                    str(g["batch"]) if i == 0 else "",
                    label.replace(" ", "\n") if stacked else label,
                    *cells,
                    end_section=i == len(g["rows"]) - 1,
                )
        return t

    batch = [None]

    def label(cells):  # "B=8 analytic H=20": the batch of a group's first row stands for its other rows
        batch[0] = cells[0] or batch[0]
        return f"B={batch[0]} {cells[1]}".replace("\n", " "), {0, 1}

    return [
        Fit(layout(False), layout(True), stacked_table(layout(False), label)),
        Lines(footer_lines(table)),
        Lines(verdict_lines(table)),
    ]


def paper_table_output(table: dict, fmt: str, paper: bool = True):
    """The paper table as `fmt` prints it: the Rich parts (rich), or the text of json, csv, markdown or latex."""
    if fmt == "rich":
        return paper_table_rich(table, paper)
    if fmt == "json":
        return json_text(table)
    if fmt == "csv":
        return paper_table_csv(table)
    return (paper_table_markdown if fmt == "markdown" else paper_table_latex)(table, paper) + "\n"


def study_tables(preset: str, summary: dict) -> list:
    """The conditions or subsets study as Rich tables (within 80 columns), the legend of conditions below."""
    out: list[Table | Text] = []
    for title, headers, rows in study_parts(preset, summary):
        t = Table(title=Text(title), title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            t.add_row(*row)
        out.append(t)
    if preset == "conditions":
        out.append(Text(study_legend(summary)))
    if preset == "differences":
        out.append(Text(differences_legend(summary)))
    return out


def study_output(preset: str, summary: dict, fmt: str):
    """The study as `fmt` prints it: the Rich parts (rich), or the text of markdown or json; ValueError for
    the formats of the paper tables only."""
    if fmt == "json":
        return json_text(summary)
    if fmt == "rich":
        return study_tables(preset, summary)
    if fmt == "markdown":
        return study_markdown(preset, summary)
    raise ValueError(f"--format {fmt} is for the paper tables; the {preset} study prints rich, markdown or json")


def compile_tables(record: dict) -> list[Table]:
    """`gradsel bench --compile`: a line per scenario (what it compiled beyond the scenarios before it, on the
    same cache), then each scenario's kernels, the slowest to compile first."""
    total = titled_table(
        wrap_title("gradsel bench --compile", "each scenario on the cache the ones before it left", "seconds")
    )
    total.add_column("scenario", no_wrap=True)
    for col in ("kernels", "special-\nisations", "compiling", "whole\nrun", "peak\nRSS MB"):
        number_column(total, col)
    parts = [total]
    for s in record["scenarios"]:
        kernels = s["kernels"]
        compiling = sum(k["inclusive"] for k in kernels)
        signatures = sum(k["signatures"] for k in kernels)
        total.add_row(
            s["name"],
            str(len(kernels)),
            str(signatures),
            f"{compiling:.1f}",
            f"{s['seconds']:.1f}",
            str(s["peak_rss_mb"]),
        )
        if not kernels:
            continue
        table = titled_table(wrap_title(s["name"], "kernels compiled", "seconds"), **COMPACT)
        table.add_column("kernel", overflow="fold")
        for col in ("own", "with the\nkernels in it", "special-\nisations"):
            number_column(table, col)
        for k in sorted(kernels, key=lambda k: -k["seconds"]):
            inclusive = f"{k['inclusive']:.2f}" if k["inclusive"] else "—"
            table.add_row(k["kernel"], f"{k['seconds']:.2f}", inclusive, str(k["signatures"]))
        parts.append(table)
    return parts


def textbook_table(record: dict) -> Table:
    """`gradsel bench --textbook`: gradsel's chapter-4 training beside the NumPy loop, and the ratio."""
    iters = record["config"]["iters"]
    threads = record["threads"] or "auto"
    blas = "one BLAS thread" if record["blas_threads"] == 1 else "BLAS threads as the environment sets them"
    table = titled_table(
        wrap_title(
            "gradsel bench --textbook",
            "all 60,000 training images",
            "B=100, H=50, lr 0.1, analytic",
            counted(iters, "iteration", ","),
            f"best of {record['rounds']} rounds",
            f"threads {threads}, NumPy on {blas}",
        )
    )
    table.add_column("", no_wrap=True)
    for col in ("whole\nrun", "its\niterations", "per\niteration", "test\naccuracy"):
        number_column(table, col)
    loop, theirs = record["gradsel_iterations_seconds"], record["numpy_iterations_seconds"]
    table.add_row(
        "gradsel",
        f"{record['gradsel_seconds']:.2f} s",
        f"{loop:.2f} s",
        f"{loop / iters * 1e3:.3f} ms",
        f"{record['gradsel_accuracy']:.4f}",
    )
    table.add_row(
        "NumPy loop", "—", f"{theirs:.2f} s", f"{theirs / iters * 1e3:.3f} ms", f"{record['numpy_accuracy']:.4f}"
    )
    table.caption = f"NumPy / gradsel, iterations: {theirs / loop:.2f}×"
    table.caption_justify = "left"
    return table


def costs_table(record: dict) -> Table:
    """`gradsel bench --costs`: each source's cost in forward-pass equivalents as measured now, by H (rows) and B
    (columns), with its ratio to the cost table gradsel ships (sources/costs.json); a ratio outside the
    tolerance marked."""
    measured = record["measured"]
    table = titled_table(
        wrap_title(
            "gradsel bench --costs",
            "forward-pass equivalents of one gradient",
            "one thread, float64",
            f"now / shipped table ({record['declared']['measured']})",
        )
    )
    table.add_column("source")
    table.add_column("H", justify="right")
    for b in measured["batch"]:
        number_column(table, f"B={b}")
    by_cell = {(r["key"], r["hidden"], r["batch"]): r for r in record["agreement"]}
    for key in measured["costs"]:
        for h in measured["hidden"]:
            cells = []
            for b in measured["batch"]:
                r = by_cell[(key, h, b)]
                text = f"{r['measured']:.3g} ({r['ratio']:.2f})"
                cells.append(text if r["agrees"] else Text(text + " !", style="red"))
            table.add_row(key, str(h), *cells)
    off = sum(not r["agrees"] for r in record["agreement"])
    table.caption = (
        f"(ratio) = now / the shipped table; ! = outside 1 ± {record['tolerance']:g}: "
        f"{off} of {len(record['agreement'])}"
    )
    table.caption_justify = "left"
    return table


def paths_table(record: dict) -> Table:
    """gradsel paths: per optimizer its learning rate, where its path ends, f there, and the nearest marked point
    (minimum, saddle) with the distance to it."""
    from ..numerics.paths import nearest, title

    t = titled_table(wrap_title("gradsel paths", *clean(title(record)).split(", ")), box=box.SIMPLE_HEAD)
    t.add_column("optimizer")
    for header in ("lr", "x", "y", "f(x, y)", "nearest", "distance"):
        t.add_column(header, justify="left" if header == "nearest" else "right")
    for name, run in record["paths"].items():
        end = run["points"][-1]
        near = nearest(record, end)
        if end is None:
            t.add_row(clean(name), f"{run['lr']:g}", "diverged", "", "", "", "")
            continue
        t.add_row(
            clean(name),
            f"{run['lr']:g}",
            *(f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3g}" for v in end),
            f"{run['f'][-1]:.4g}",
            clean(near[0]) if near else "",
            (f"{near[1]:.4f}" if near[1] < 1e4 else f"{near[1]:.3g}") if near else "",
        )
    return t


def lab_table(summary: dict) -> list:
    """gradsel lab: one row per cell (its panel first, where the preset has panels): the last point of the accuracy
    on the training images (mean over the seeds), test accuracy (mean ± 95% CI half-width), final training loss,
    diverged runs (histograms: the spreads of the hidden activations instead of the training accuracy and the
    diverged count); the preset's caption below. One block per row when too wide."""
    from ..lab import title

    head, *rest = clean(title(summary)).split(", ")
    if "trials" in summary:  # a search preset: its trials, best first
        caption = f"{summary['split']}. {summary['caption']}"
        return tune_table(summary, title=wrap_title(*head.split(" — "), *rest), caption=caption)
    t = titled_table(wrap_title(*head.split(" — "), *rest), **COMPACT)
    panels = any(c["panel"] is not None for c in summary["cells"])
    histograms = "textbook" in summary["cells"][0]
    if panels:
        t.add_column(summary["panel"].replace("_", " "), no_wrap=True)
    t.add_column("init" if histograms else "curve", no_wrap=True)
    spreads = ("layer 1\nstd", "layer 5\nstd", "H init\nstd", "H trained\nstd") if histograms else ()
    trained = () if histograms else ("train\naccuracy",)
    for col in (*spreads, *trained, "test\naccuracy", "final\nloss", *(() if histograms else ("diverged",))):
        number_column(t, col)
    for c in summary["cells"]:
        acc = c["accuracy"]
        cells = [clean(c["label"])]
        if histograms:
            network = c["network"] or {}
            shown = (c["textbook"][0], c["textbook"][-1], network.get("init"), network.get("trained"))
            cells += [fmt_number(None if h is None else h["std"], ".3g") for h in shown]
        else:
            cells.append(fmt_number(c["train_curve"]["mean"][-1] if c["train_curve"] else None))
        cells += [plus_minus(acc), fmt_loss(c["final_loss"]), *(() if histograms else (str(acc["diverged"]),))]
        panel = f"{c['panel']:.3g}" if isinstance(c["panel"], float) else option_value(c["panel"])
        t.add_row(*([clean(panel)] if panels else []), *cells)
    names = 2 if panels else 1
    stacked = stacked_table(t, lambda cells: (" ".join(map(str, cells[:names])), set(range(names))))
    legend = "std: the spread of the hidden activations (layers 1, 5 of the textbook's stack; gradsel's H). "
    return [Fit(t, stacked), Lines([clean((legend if histograms else "") + summary["caption"])])]
