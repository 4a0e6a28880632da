"""What a person sees: progress bars at a terminal, every table within 80 columns with its
numbers whole, data strings printed as text (never as markup or escape sequences)."""

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gradsel_cli import render, sources
from gradsel_cli.analysis import report
from gradsel_cli.config import TrainConfig
from gradsel_cli.runs import results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
WIDTH = 80
PLUS_MINUS = re.compile(r"\d\.\d{4} ± \d\.\d{4}")


def show(*renderables, width=WIDTH) -> str:
    """What a plain (piped) console of `width` columns prints."""
    console = Console(width=width, file=io.StringIO(), force_terminal=False, color_system=None)
    for r in renderables:
        console.print(r)
    return console.file.getvalue()


def assert_fits(text: str, width=WIDTH):
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, f"{len(long)} line(s) wider than {width} columns, e.g. {long[0]!r}"
    assert not re.search(r"\w…", text), "a cell was cut short"


def assert_whole(text: str, summaries):
    """Every 'mean ± half-width' of the data is printed whole, on one line."""
    lines = text.splitlines()
    for s in summaries:
        assert any(s in line for line in lines), f"{s!r} is not whole on any line"


def pm(entry) -> str:
    return f"{entry['mean']:.4f} ± {(entry['hi'] - entry['lo']) / 2:.4f}"


@pytest.fixture(scope="module")
def compare_records():
    return results.load(RESULTS / "compare.jsonl")


# --- progress bars ---------------------------------------------------------------------


def terminal(width=WIDTH) -> Console:
    return Console(force_terminal=True, file=io.StringIO(), width=width, color_system=None)


@pytest.mark.parametrize("unit", ["it", ""])
def test_progress_bar_at_a_terminal_draws_from_the_first_update(unit):
    # The first update comes before Rich knows a speed (task.speed is None): it used to raise TypeError.
    err = terminal()
    assert render.progress_enabled(err)
    with render.progress_bar(err, 1000, "select", unit=unit) as update:
        update(0, 1000, loss=2.3026)
        update(1, 1000, loss=2.2)
        for done in range(100, 1001, 100):
            update(done, 1000, loss=1.0 / done)
    out = err.file.getvalue()
    assert "select" in out and "0/1000" in out and "1000/1000" in out
    assert "loss 0.0010" in out
    assert ("it/s" in out) == (unit == "it")
    assert "Traceback" not in out


@pytest.mark.parametrize("total", [100, 10_000_000])
def test_progress_bar_lines_fit_80_columns_whole(total):
    err = terminal()
    with render.progress_bar(err, total, "alternate") as update:
        update(total // 2, total, loss=1.0)
        update(total, total, loss=1e300)  # the last state is always drawn
    # the bar redraws with carriage returns and cursor moves: look at each drawn line
    drawn = [part for line in err.file.getvalue().splitlines() for part in re.split(r"\r|\x1b\[[0-9;?]*[A-Za-z]", line)]
    assert any(f"{total}/{total} loss 1.00e+300" in d for d in drawn)
    assert max(len(d) for d in drawn) <= WIDTH
    assert "…" not in err.file.getvalue()


def test_progress_bar_info_is_text_not_markup():
    err = terminal()
    with render.progress_bar(err, 3, "runs", unit="") as update:
        update(1, 3, info="[red]lr=0.1[/red] \x1b[31m")
    out = err.file.getvalue()
    assert "[red]lr=0.1[/red]" in out and "\x1b[31m" not in out


def test_progress_bar_is_a_no_op_when_not_a_terminal():
    err = Console(file=io.StringIO(), force_terminal=False)
    with render.progress_bar(err, 10, "analytic") as update:
        update(5, 10, loss=1.0)
    assert err.file.getvalue() == ""


def test_rate_column_handles_no_speed_yet():
    class Task:
        speed = None
        finished_speed = None

    assert render.RateColumn("it").render(Task()).plain == ""
    for speed, shown in (
        (123.4, "123 it/s"),
        (9.87, "9.9 it/s"),
        (1234.4, "1.2k it/s"),
        (98765.0, "99k it/s"),
        (4.4e9, "4.4G it/s"),
    ):
        Task.speed = speed
        assert render.RateColumn("it").render(Task()).plain.strip() == shown


# --- consoles -------------------------------------------------------------------------


def test_piped_output_is_80_columns_unless_columns_says_otherwise(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out, err = render.consoles()
    assert not out.is_terminal  # pytest captures stdout
    assert out.width == 80 and err.width == 80
    monkeypatch.setenv("COLUMNS", "132")
    out, err = render.consoles()
    assert out.width == 132


# --- every table within 80 columns ----------------------------------------------------


def test_train_summary_fits(compare_records):
    text = show(render.train_summary(compare_records[0]))
    assert_fits(text)
    assert "gradsel train" in text and "seed 0" in text and "0.5719" in text


def test_compare_tables_fit_with_every_interval_whole(compare_records):
    methods = ["analytic", "numeric", "alternate", "select"]
    summary = report.compare_summary(compare_records, methods)
    text = show(*render.compare_tables(summary, compare_records[0]["config"], report.curves(compare_records, methods)))
    assert_fits(text)
    assert_whole(text, [pm(r["accuracy"]) for r in summary["methods"]])
    ci = summary["methods"][1]["versus"]["ci"]
    assert_whole(text, [f"{ci[0]:+.4f} … {ci[1]:+.4f}"])
    paired = text.split("paired against", 1)[1]
    for m in methods[1:]:  # each row of the paired table names its method and its verdict
        assert re.search(rf"{m}\s.*(EQUIVALENT|BETTER|WORSE|INCONCLUSIVE)", paired), paired


@pytest.mark.parametrize(
    "varied",
    [["method", "lr", "optimizer"], ["method", "lr", "optimizer", "init", "activation", "weight_decay", "dropout"]],
)  # too many for columns
def test_sweep_table_fits(varied):
    records = results.load(RESULTS / "toolkit.jsonl")
    summary = report.runs_summary(records, varied)
    text = show(*render.runs_table(summary, render.sweep_title(summary, 3)))
    assert_fits(text)
    assert_whole(text, [pm(c["accuracy"]) for c in summary["rows"]])
    assert "weight-decay" in text and "0.0001" in text if len(varied) > 3 else "optimizer" in text
    header = [line for line in text.splitlines() if line.strip()][1:3]  # every option has a column of its own
    assert all(any(k.replace("_", "-") in line.split() for line in header) for k in varied)


@pytest.mark.parametrize("preset", ["alternate", "select"])
@pytest.mark.parametrize("paper", [True, False])
def test_paper_tables_fit_with_every_cell_whole(preset, paper):
    records = results.load(RESULTS / f"{preset}.jsonl")
    data = report.paper_table(preset, records, report.settings_of(TrainConfig().validate().to_dict()))
    text = show(*render.paper_table_rich(data, paper))
    assert_fits(text)
    cells = [
        e for g in data["groups"] for row in g["rows"] for e in row["cells"] + ([row["avg"]] if "avg" in row else [])
    ]
    assert_whole(text, [pm(e) for e in cells])
    if paper:
        published = [f"({e['published']:.4f})" for e in cells if e["published"] is not None]
        assert all(p in text for p in published)
    for line in text.splitlines():  # verdicts and footers break between words, not inside "k = 2"
        assert not line.rstrip().endswith((" =", " k")), line


def test_paper_table_is_one_line_per_row_on_a_wide_terminal():
    records = results.load(RESULTS / "alternate.jsonl")
    data = report.paper_table("alternate", records, report.settings_of(TrainConfig().validate().to_dict()))
    text = show(*render.paper_table_rich(data), width=160)
    first = data["groups"][0]["rows"][0]["cells"][0]
    assert any(f"{pm(first)} ({first['published']:.4f})" in line for line in text.splitlines())


def tune_summary(mnist_raw):
    from gradsel_cli.runs.tuning import tune

    config = TrainConfig(
        method="analytic", optimizer="adam", shots=2, batch=4, hidden=8, iters=20, test_limit=100
    ).validate()
    return tune(config, 3, (1e-3, 1.0), (1e-6, 1e-2), 0, mnist_raw)


def test_tune_table_fits(mnist_raw):
    summary = tune_summary(mnist_raw)
    text = show(*render.tune_table(summary))
    assert_fits(text)
    assert "gradsel tune" in text and "3 trials" in text and "chosen: --lr" in text


def test_gradcheck_tables_fit(mnist_raw):
    from gradsel_cli.numerics.gradcheck import gradcheck

    check = gradcheck(TrainConfig(shots=2, batch=4, hidden=8, iters=10, test_limit=100), (1e-2, 1e-4, 1e-6), mnist_raw)
    text = show(*render.gradcheck_tables(check))
    assert_fits(text)
    for state in check["states"]:
        assert list(state["sources"]) == [n for n in sources.names() if n != sources.exact()]  # all but the exact
        for checked in state["sources"].values():
            for row in checked["rows"]:  # a random source's: the rms over its draws, by q
                assert f"{row['all']['rel_diff']:{'.3g' if 'q' in row else '.2e'}}" in text


# bench rows as `gradsel bench` measured them (docs/performance.md), the widest values included
BENCH_ROWS = [
    dict(
        hidden=h,
        batch=b,
        nonzero_pixels=p,
        loss=loss,
        analytic=a,
        numeric=n,
        naive=naive,
        naive_extrapolated=ext,
        naive_over_numeric=naive / n,
        numeric_over_analytic=n / a,
        exponentials=exps // 40,
        exponentials_without_series=exps,
        multiply_adds=exps * 4 // 5,
        multiply_adds_without_series=exps * 8,
        divisions=exps // 20,
        iter_analytic=a * 1.3,
        iter_numeric=n * 1.1,
        iter_alternate=(a + n) / 2,
        iter_select=a + n,
        iteration_over_exact=1.3,
        **{"complex-step": 6 * n, "complex-step_over_analytic": 6 * n / a, "iter_complex-step": 6.1 * n},
    )
    for h, b, p, loss, a, n, naive, ext, exps in [
        (20, 1, 166, 15.8e-6, 20.5e-6, 107e-6, 0.661, False, 34_100),
        (100, 1, 166, 13.6e-6, 28.1e-6, 304e-6, 6.27, True, 170_000),
        (100, 32, 4678, 101e-6, 201e-6, 5.50e-3, 25.6, True, 4_540_000),
    ]
]
AUTO = "auto (1 or 2)"  # the title's thread count under the automatic policy on 2 cores


def test_bench_tables_fit():
    for threads in (2, AUTO):
        text = show(*render.bench_tables(BENCH_ROWS, threads))
        assert_fits(text)
        lines = text.splitlines()
        for value in (
            "20.5 µs",
            "5.50 ms",
            "25.6 s",
            "20,625×",
            "27.4×",
            "4678",
            "4.54M",
            "36.32M",
            "1.30×",
            "33.0 ms",
        ):
            assert any(value in line for line in lines), value
        assert "analyt…" not in text
        for r in BENCH_ROWS:  # each source's fused iteration over backprop's
            assert f"{r['iter_complex-step'] / r['iter_analytic']:.2f}×" in text
            assert f"{r['iter_numeric'] / r['iter_analytic']:.2f}×" in text


def test_documented_bench_table_is_the_tools_layout():
    page = (ROOT / "docs" / "performance.md").read_text()
    block = page.split("$ gradsel bench\n", 1)[1].split("```", 1)[0].splitlines()
    assert max(len(line) for line in block) <= WIDTH
    ours = [line.rstrip() for line in show(render.bench_tables(BENCH_ROWS, AUTO)[0]).splitlines()]
    assert block[:4] == ours[:4]  # title, the two header lines, the rule
    notes = [line for line in ours if ":" in line and not line.startswith("gradsel")]
    assert all(note in block for note in notes)


def test_digits_grid_fits(mnist_raw, compare_records):
    first = {r["config"]["method"]: r for r in compare_records if r["config"]["seed"] == 0}
    predictions = {m: report.parse_predictions(r["predictions"]) for m, r in first.items()}
    title = "Test images and predictions — k=2, B=8, H=50, 10,000 iterations, seed 0; digits from: disagree"
    grid = render.digits_grid(mnist_raw[2], mnist_raw[3], np.arange(6), predictions, title)
    text = show(grid)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "Test images and predictions" in text and "digits from: disagree" in text


@pytest.mark.parametrize("name", ["compare", "toolkit", "alternate-random", "select"])
def test_runs_table_fits(name):
    summary = report.runs_summary(results.load(RESULTS / f"{name}.jsonl"))
    text = show(*render.runs_table(summary, render.runs_title(summary, f"results/{name}.jsonl")))
    assert_fits(text)
    assert_whole(text, [pm(r["accuracy"]) for r in summary["rows"] if r["accuracy"]["n"] > 1])


# --- numbers: losses, timings, divergence -------------------------------------------------


@pytest.mark.parametrize(
    "value, shown",
    [
        (0.0014149, "0.0014"),
        (2.302585, "2.3026"),
        (673626.0, "6.74e+05"),
        (1e300, "1.00e+300"),
        (float(12345678901234567890123456789012345678901234567890), "1.23e+49"),
        (3e-7, "3.00e-07"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (None, "—"),
        (0.0, "0.0000"),
    ],
)
def test_losses_are_formatted_readably(value, shown):
    assert render.fmt_loss(value) == shown


def test_train_summary_says_diverged_and_shows_a_huge_loss_readably(compare_records):
    record = json.loads(json.dumps(compare_records[0]))
    record.update(diverged=True, iterations_done=37, final_loss=1e300, accuracy=None)
    text = show(render.train_summary(record))
    flat = " ".join(text.replace("│", " ").split())  # the status cell wraps
    assert "Diverged at iteration 37: the loss is not finite. Try a smaller --lr." in flat and "1.00e+300" in text
    assert not re.search(r"\d{20}", text)
    assert_fits(text)


def test_train_summary_shows_a_relative_difference_that_overflowed_as_not_finite(compare_records):
    # select with --fd-step 710: the numeric gradient overflows, and the record stores its mean difference as None
    record = json.loads(json.dumps(next(r for r in compare_records if r["rel_diff_mean"])))
    record["rel_diff_mean"] = dict.fromkeys(record["rel_diff_mean"])
    text = show(render.train_summary(record))
    assert "not finite" in text
    assert_fits(text)


def test_train_summary_shows_kernel_loading_apart_from_the_iterations(compare_records):
    record = json.loads(json.dumps(compare_records[0]))
    record.update(wall_time=5.2, time_per_iter=0.49e-3, compile_time=1.1)
    text = show(render.train_summary(record))
    assert "5.20 s (490 µs / iteration)" in text and "1.10 s (part of the wall time)" in text
    assert_fits(text)
    del record["compile_time"]
    assert "kernels loaded" not in show(render.train_summary(record))


# --- data strings are text --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("[bold]x[/bold]", "[bold]x[/bold]"),
        ("a\nb\tc", "a\\x0ab\\x09c"),
        ("plain-name_1.jsonl", "plain-name_1.jsonl"),
        (7, "7"),
    ],
)
def test_clean_prints_data_as_typed(raw, shown):
    assert show(render.clean(raw)).rstrip("\n") == shown
    assert show(f"[bold]{render.clean(raw)}[/]").rstrip("\n") == shown


def test_a_trailing_backslash_cannot_escape_the_markup_after_it():
    text = show(f"[bold]{render.clean('dir' + chr(92))}[/] done")
    assert text.startswith("dir" + chr(92)) and "[/]" not in text and text.rstrip().endswith("done")


def test_tables_print_hostile_config_values_as_text(compare_records):
    record = json.loads(json.dumps(compare_records[0]))
    record["config"].update(seed="\x1b[31m0", method="[bold red]analytic")
    text = show(render.train_summary(record))
    assert "\x1b" not in text and "\\x1b[31m0" in text and "[bold red]analytic" in text
    summary = report.runs_summary([record, *compare_records[1:]])
    text = show(*render.runs_table(summary, render.runs_title(summary, "runs[/]\x07.jsonl")))
    assert "\x1b" not in text and "\x07" not in text and "[bold red]analytic" in text and "runs[/]" in text


def test_runs_csv_parses_back(compare_records):
    import csv

    summary = report.runs_summary(compare_records)
    rows = list(csv.DictReader(io.StringIO(render.runs_csv(summary))))
    assert [r["method"] for r in rows] == ["analytic", "numeric", "alternate", "select"]
    for r, s in zip(rows, summary["rows"]):
        assert float(r["accuracy_mean"]) == pytest.approx(s["accuracy"]["mean"], rel=1e-14)
        assert int(r["runs"]) == s["runs"] == 5
        assert r["seeds"] == "0 1 2 3 4" and r["diverged"] == "0"


# --- one seed: inconclusive (one seed) everywhere, no NaN ---------------------------------------------------


def _seed0(records):
    return [r for r in records if r["config"]["seed"] == 0]


def test_compare_of_one_seed_is_inconclusive_one_seed(compare_records):
    methods = ["analytic", "numeric", "alternate", "select"]
    summary = report.compare_summary(_seed0(compare_records), methods)
    json.dumps(summary, allow_nan=False)  # no NaN: a null with its reason
    for row in summary["methods"][1:]:
        v = row["versus"]
        assert v["ci"] == [None, None] and v["p_t"] is None and v["p_wilcoxon"] is None and v["reason"] == "one seed"
        assert v["equivalence"]["reason"] == "one seed"
    assert summary["methods"][0]["accuracy"]["lo"] is None and summary["methods"][0]["accuracy"]["reason"] == "one seed"
    text = show(*render.compare_tables(summary, compare_records[0]["config"]))
    versus = text[text.index("paired against") :]
    assert "nan" not in text and "1.000" not in versus and "n/a" not in text
    assert text.count("INCONCLUSIVE (one seed) within") == 3
    csv_text = render.compare_csv(summary)
    assert "nan" not in csv_text.lower()


@pytest.mark.parametrize("preset", ["alternate", "select"])
def test_a_paper_table_of_one_seed_says_inconclusive_one_seed(preset):
    records = _seed0(results.load(RESULTS / f"{preset}.jsonl"))
    table = report.paper_table(preset, records, report.settings_of(TrainConfig().to_dict()))
    json.dumps(table, allow_nan=False)
    assert all(v["outcome"] == "inconclusive" and v["reason"] == "one seed" for v in table["verdicts"])
    text = show(*render.paper_table_rich(table))
    assert "NOT SUPPORTED" not in text and "nan" not in text
    assert text.count("INCONCLUSIVE (one seed) —") == len(table["verdicts"])


def test_the_conditions_study_of_one_seed_says_inconclusive_one_seed():
    records = _seed0(results.load(RESULTS / "conditions.jsonl"))
    summary = report.conditions_summary(records)
    json.dumps(summary, allow_nan=False)
    assert summary["rows"] and all(
        r["reason"] == "one seed" and r["tost"]["outcome"] == "inconclusive" for r in summary["rows"]
    )
    text = show(*render.study_tables("conditions", summary))
    assert_fits(text)
    assert re.search(r"inconclusive +\S+ +\S+ +\S+ *\n +\(one seed\)", text) and "nan" not in text
    assert "inconclusive (one seed)" in render.study_output("conditions", summary, "markdown")


def test_a_claim_is_inconclusive_only_when_no_comparison_says_more():
    part = lambda outcome, reason=None: {"outcome": outcome, "reason": reason}  # noqa: E731
    assert report._overall([part("inconclusive", "one seed")] * 2) == {"outcome": "inconclusive", "reason": "one seed"}
    assert report._overall([part("supported"), part("inconclusive", "one seed")])["outcome"] == "inconclusive"
    assert report._overall([part("not supported"), part("inconclusive", "one seed")])["outcome"] == "not supported"
    assert report._overall([part("contradicted"), part("supported")])["outcome"] == "contradicted"
    assert report._overall([part("no data")] * 2)["outcome"] == "no data"
    assert report._overall([part("supported")] * 2)["outcome"] == "supported"


def test_compare_prints_the_wilcoxon_p_values(compare_records):
    summary = report.compare_summary(compare_records, ["analytic", "numeric", "alternate", "select"])
    for width in (80, 120):
        text = show(*render.compare_tables(summary, compare_records[0]["config"]), width=width)
        assert "Wilcoxon" in text
        for row in summary["methods"][1:]:
            versus = text[text.index("paired against") :].splitlines()
            line = next(line for line in versus if line.lstrip("│ ").startswith(row["method"]))
            assert render.cells.p_value(row["versus"]["p_wilcoxon"]) in line.split()


# --- narrow widths: the identifying columns stay, cells stay whole ------------------------------------------


@pytest.mark.parametrize("width", [60, 50, 40])
def test_compare_at_a_narrow_width_labels_every_row(compare_records, width):
    methods = ["analytic", "numeric", "alternate", "select"]
    summary = report.compare_summary(compare_records, methods)
    text = show(*render.compare_tables(summary, compare_records[0]["config"]), width=width)
    assert all(len(line) <= width for line in text.splitlines())
    assert not re.search(r"\w…", text), "a cell was cut short"
    for row in summary["methods"]:
        assert any(line.startswith(row["method"]) for line in text.splitlines()), row["method"]
        assert pm(row["accuracy"]) in " ".join(text.split())  # mean and half-width, perhaps wrapped between


@pytest.mark.parametrize("width", [60, 50])
@pytest.mark.parametrize("preset", ["alternate", "select"])
def test_a_paper_table_at_a_narrow_width_keeps_the_batch_and_whole_cells(preset, width):
    table = report.paper_table(
        preset, results.load(RESULTS / f"{preset}.jsonl"), report.settings_of(TrainConfig().to_dict())
    )
    text = show(*render.paper_table_rich(table), width=width)
    assert all(len(line) <= width for line in text.splitlines())
    assert not re.search(r"\w…", text), "a cell was cut short"
    for g in table["groups"]:
        for row in g["rows"]:
            assert f"B={g['batch']} {render.cells.row_label(row, preset)}" in text
            assert_whole(text, [pm(e) for e in render.cells.entries(row)])


@pytest.mark.parametrize(
    "lists, label",
    [
        ({"method": ["alternate"], "lr": [0.1, 0.2]}, "sweep lr"),
        ({"method": ["analytic", "select"], "fd_step": [1e-3, 1e-4], "lr": [0.1]}, "sweep method, fd-step"),
        ({"method": ["alternate"], "lr": [0.1]}, "sweep"),
        ({k: [1, 2] for k in ("method", "lr", "optimizer", "init", "activation")}, "sweep 5 options"),
    ],
)
def test_the_sweep_progress_label_names_the_swept_options(lists, label):
    assert render.sweep_label(lists) == label


def test_the_sweep_command_labels_its_progress_with_the_swept_option(runner, monkeypatch):
    from gradsel_cli.cli import commands as cli_module

    labels = []

    def run_grid(configs, results_file, grid, data_dir, err, label, *args):
        labels.append(label)
        raise ValueError("stopped before any run")

    monkeypatch.setattr(cli_module, "run_grid", run_grid)
    result = runner.invoke(cli_module.cli, ["sweep", "--lr", "0.1,0.2", "--seeds", "1"])
    assert result.exit_code == 2 and labels == ["sweep lr"]


@pytest.mark.parametrize("n, words", [(1, "1 run, 1 configuration"), (2, "2 runs, 1 configuration")])
def test_counts_agree_with_their_nouns(compare_records, n, words):
    records = [r for r in compare_records if r["config"]["method"] == "analytic"][:n]
    summary = report.runs_summary(records)
    assert words in show(*render.runs_table(summary, render.runs_title(summary)))
    summary = report.runs_summary(records, [])
    sweep = show(*render.runs_table(summary, render.sweep_title(summary, n)))
    assert f"1 cell × {n} seed{'s' if n > 1 else ''}" in sweep


@pytest.mark.parametrize(
    "value, cell",
    [
        (0.49660000000000004, "0.4966"),
        (0.1 + 0.2, "0.3"),
        (1e-05, "1e-05"),
        (float("nan"), ""),
        (None, ""),
        (3, "3"),
        (2.0, "2.0"),
        (0.0966666666666667, "0.0966666666666667"),
    ],
)
def test_csv_floats_are_rounded_to_fifteen_digits(value, cell):
    assert render.formats.csv_cell(value) == cell


def test_every_csv_is_written_by_the_csv_module_with_rounded_floats(compare_records):
    import csv

    methods = ["analytic", "numeric", "alternate", "select"]
    summary = report.compare_summary(compare_records, methods)
    summary["methods"][0]["method"] = 'a,"b"'  # a value with a comma and a quote stays one cell
    for text in (render.compare_csv(summary), render.runs_csv(report.runs_summary(compare_records))):
        rows = list(csv.reader(io.StringIO(text)))
        assert len({len(r) for r in rows}) == 1
        numbers = [c for r in rows[1:] for c in r if re.fullmatch(r"-?[\d.]+(e-?\d+)?", c)]
        digits = [re.sub(r"e.*|\D", "", c).lstrip("0") for c in numbers]
        assert digits and max(map(len, digits)) <= 15, "a float with more than 15 significant digits"
    assert list(csv.reader(io.StringIO(render.compare_csv(summary))))[1][0] == 'a,"b"'


def test_compare_says_its_t_tests_holm_adjusted_over_those_it_made(compare_records):
    summary = report.compare_summary(compare_records, ["analytic", "numeric", "alternate", "select"])
    tested = [r["versus"] for r in summary["methods"][1:] if r["versus"]["p_t"] is not None]
    made = {v["tests"] for r in summary["methods"][1:] for v in [r["versus"]]}
    assert made == {len(tested)}
    text = show(*render.compare_tables(summary, compare_records[0]["config"]), width=120)
    if tested:  # each adjusted p is at least the raw one, and the line names how many tests were made
        assert all(v["p_holm"] >= v["p_t"] for v in tested)
        assert f"Holm-adjusted over the {len(tested)} t-tests made" in text
    else:
        assert "Holm-adjusted" not in text


def test_the_exact_wilcoxon_floor_is_said_where_it_cannot_reach_005():
    """2 / 2^n: with 5 pairs every sign flip but the all-one-sign pair of patterns leaves p >= 0.0625."""
    from gradsel_cli.analysis.stats import paired

    for n, floor in ((5, "0.0625"), (4, "0.125")):
        assert paired(np.arange(n) + 1.0, np.zeros(n))["p_wilcoxon"] == pytest.approx(float(floor))
        summary = {"methods": [{"method": "numeric", "versus": {"n": n, "p_wilcoxon": 0.5}}]}
        assert render.tables.wilcoxon_floor(summary) == [
            f"Wilcoxon (exact): its smallest possible p is {floor} with {n} pairs, so it cannot reach 0.05 here"
        ]
    assert (
        render.tables.wilcoxon_floor({"methods": [{"method": "numeric", "versus": {"n": 6, "p_wilcoxon": 0.5}}]}) == []
    )
    identical = {"methods": [{"method": "numeric", "versus": {"n": 5, "p_wilcoxon": None}}]}  # no test, no floor
    assert render.tables.wilcoxon_floor(identical) == []


def test_bench_tables_fit_with_a_fourth_source(monkeypatch):
    """A column per source: with a fourth, the tables that would not fit 80 columns are one block per size, every
    header and value whole."""
    from gradsel_cli import sources

    exact = sources.get("analytic")
    sources.register(sources.Source("fourth-source", "x", "x", "#000000", 97, exact.gradient, exact.cost, "tests/"))
    try:
        rows = [
            {**r, "fourth-source": 2 * r["numeric"], "fourth-source_over_analytic": 12.5, "iter_fourth-source": 1.0}
            for r in BENCH_ROWS
        ]
        text = show(*render.bench_tables(rows, AUTO))
    finally:
        sources.unregister("fourth-source")
    assert_fits(text)
    assert "…" not in text and "fourth-source" in text and "12.5×" in text


def _footer(methods, **settings):
    from gradsel_cli.analysis.report import settings_of
    from gradsel_cli.render.cells import footer_lines

    s = settings_of(TrainConfig(**settings).to_dict())
    rows = [{"method": m} for m in methods]
    table = {"settings": s, "seeds": [0, 1], "groups": [{"rows": rows}], "mad_baseline": None}
    return footer_lines({**table, "missing_cells": 0, "avg_mismatches": [], "preset": "x"})


def test_a_paper_tables_footer_says_the_settings_of_the_sources_its_methods_compute():
    said = _footer(["analytic", "alternate"])
    assert said == [
        "seeds: 0, 1; settings: 10,000 iterations, SGD lr 0.1, subset first, init std 0.01, fd step 0.0001 (central)"
    ]
    assert _footer(["analytic"])[0].endswith("init std 0.01")  # no source with a step: none said
    assert _footer(["analytic", "complex-step"], cs_step=1e-30)[0].endswith("init std 0.01, cs step 1e-30")
    assert _footer(["numeric", "complex-step"])[0].endswith("fd step 0.0001 (central), cs step 1e-20")
    arithmetic = _footer(["numeric"], precision="float32", fd_arith="textbook", loss_epsilon=1e-7)[1]
    assert arithmetic == "arithmetic: float32, fd arith textbook, loss epsilon 1e-07"
    assert _footer(["analytic"], precision="float32")[1] == "arithmetic: float32, loss epsilon 0"
    assert len(_footer(["numeric"], fd_scheme="forward")) == 1  # the default arithmetic is not said


def test_a_bench_count_is_in_millions_or_as_it_is_when_small():
    from gradsel_cli.render.tables import _bench_cell

    assert [_bench_cell(v, "M") for v in (0, 800, 9_999, 10_000, 437_600)] == ["0", "800", "9,999", "0.01M", "0.44M"]
