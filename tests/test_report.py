"""compare and table through the CLI: every output format parses back to the same numbers."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gradsel_cli import render
from gradsel_cli.analysis import report
from gradsel_cli.cli.commands import cli
from gradsel_cli.runs import results

RESULTS = Path(__file__).resolve().parent.parent / "results"
SMALL = ["--shots", "1", "--batch", "2", "--hidden", "4", "--iters", "30", "--test-limit", "300", "--workers", "1"]


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


# --- gradsel table ------------------------------------------------------------------


@pytest.fixture(scope="module", params=["alternate", "select"])
def preset(request):
    return request.param


@pytest.fixture(scope="module")
def table_json(preset):
    return json.loads(invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "json"))


def json_cells(table):
    """(batch, method, hidden, shots) -> cell, from the JSON table."""
    return {
        (g["batch"], row["method"], row["hidden"], cell["shots"]): cell
        for g in table["groups"]
        for row in g["rows"]
        for cell in row["cells"]
    }


def test_csv_parses_back_to_the_json_numbers(preset, table_json):
    text = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    cells = json_cells(table_json)
    numbered = [r for r in rows if r["shots"].isdigit()]
    assert len(numbered) == len(cells)
    for r in numbered:
        cell = cells[(int(r["batch"]), r["method"], int(r["hidden"]), int(r["shots"]))]
        assert float(r["mean"]) == pytest.approx(cell["mean"], rel=1e-14) and int(r["n"]) == cell["n"]
        assert len(r["mean"].lstrip("0.").replace("e-", "")) <= 15  # 0.4966, not 0.49660000000000004
        assert (float(r["published"]) if r["published"] else None) == cell["published"]
        assert bool(int(r["best"])) == cell["best"]


def test_markdown_and_latex_show_every_cell_with_its_published_number(preset, table_json):
    rows = [row for g in table_json["groups"] for row in g["rows"]]
    for fmt, sep in (("markdown", "|"), ("latex", "&")):
        text = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", fmt)
        body = [line for line in text.splitlines() if sep in line and re.search(r"\(\d\.\d{4}\)", line)]
        assert len(body) == len(rows), f"{fmt}: {len(body)} table rows, want {len(rows)}"
        for line, row in zip(body, rows):
            cells = [c.strip() for c in line.strip().strip("|").removesuffix("\\\\").split(sep)]
            shown = cells[-len(row["cells"]) - (preset == "select") :]
            for text_cell, cell in zip(shown, row["cells"] + ([row["avg"]] if "avg" in row else [])):
                assert f"{cell['mean']:.4f}" in text_cell, f"{fmt}: {text_cell!r} lacks {cell['mean']:.4f}"
                if cell["published"] is not None:
                    assert f"({cell['published']:.4f})" in text_cell
    latex = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "latex")
    assert latex.lstrip().startswith("\\begin{tabular}") and "\\end{tabular}" in latex


def test_no_paper_hides_the_published_numbers(preset):
    text = invoke(
        "table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "markdown", "--no-paper"
    )
    assert re.search(r"\d\.\d{4}", text) and not re.search(r"\(\d\.\d{4}\)", text)


def test_table_means_are_the_means_of_the_stored_runs(preset, table_json):
    records = results.load(RESULTS / f"{preset}.jsonl")
    for (batch, method, hidden, shots), cell in json_cells(table_json).items():
        accs = [
            r["accuracy"]
            for r in records
            if (r["config"]["batch"], r["config"]["method"], r["config"]["hidden"], r["config"]["shots"])
            == (batch, method, hidden, shots)
            and r["config"]["iters"] == table_json["settings"]["iters"]
            and r["config"]["subset"] == table_json["settings"]["subset"]
        ]
        assert cell["n"] == len(accs)
        assert cell["mean"] == pytest.approx(np.mean(accs), abs=1e-12)


def test_table_names_missing_cells_for_an_empty_results_file(tmp_path):
    (tmp_path / "none.jsonl").touch()  # an empty file; a missing one is an error
    data = json.loads(invoke("table", "--results", tmp_path / "none.jsonl", "--format", "json"))
    assert data["missing_cells"] and all(c["n"] == 0 for c in json_cells(data).values())


def test_table_says_on_stderr_which_cells_have_no_runs(tmp_path):
    (tmp_path / "none.jsonl").touch()
    result = CliRunner().invoke(cli, ["table", "--results", str(tmp_path / "none.jsonl")], catch_exceptions=False)
    assert result.exit_code == 0
    assert "every cell is empty" in result.stderr and "--run" in result.stderr


def test_missing_note_counts_the_empty_cells_and_is_quiet_after_run():
    table = {"groups": [{"rows": [{"cells": [{}, {}]}, {"cells": [{}]}]}], "missing_cells": 1}
    assert report.missing_note(table, "x.jsonl", ran=False) == (
        "1 of 3 cells has no stored runs in x.jsonl; --run computes them."
    )
    assert report.missing_note(table, "x.jsonl", ran=True) is None
    assert report.missing_note({**table, "missing_cells": 0}, "x.jsonl", ran=False) is None
    assert "every cell is empty" in report.missing_note({**table, "missing_cells": 3}, "x.jsonl", ran=True)


def test_a_study_refuses_the_formats_of_the_paper_tables(tmp_path):
    (tmp_path / "none.jsonl").touch()
    result = CliRunner().invoke(
        cli, ["table", "--preset", "conditions", "--results", str(tmp_path / "none.jsonl"), "--format", "csv"]
    )
    assert result.exit_code == 2
    assert "No stored runs of the conditions study" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: --format csv is for the paper tables; the conditions study prints rich, markdown or json"
    )


def test_study_markdown_is_its_tables_one_after_another():
    summary, note = report.study_summary("subsets", results.load(RESULTS / "subsets.jsonl"), 0.002, "subsets.jsonl")
    assert note is None and summary["rows"]
    text = render.study_output("subsets", summary, "markdown")
    parts = render.cells.study_parts("subsets", summary)
    heads = [f"**{title}**\n\n| {' | '.join(headers)} |" for title, headers, _ in parts]
    assert [text.index(h) for h in heads] == sorted(text.index(h) for h in heads)
    assert text.count("\n| ") == sum(len(rows) + 1 for _, _, rows in parts)
    assert json.loads(render.study_output("subsets", summary, "json")) == json.loads(json.dumps(summary))


# --- gradsel compare ----------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "runs.jsonl"
    args = ["compare", "--methods", "analytic,alternate,select", "--seeds", "3", *SMALL, "--results", path]
    summary = json.loads(invoke(*args, "--json"))
    table = list(csv.DictReader(io.StringIO(invoke(*args, "--csv"))))
    return summary, table, results.load(path)


def test_compare_json_summarises_the_stored_runs(compared):
    summary, _, records = compared
    assert len(records) == 9  # the --csv call resumed from the file: nothing ran twice
    by_method = {m["method"]: m for m in summary["methods"]}
    assert list(by_method) == ["analytic", "alternate", "select"]
    for method, entry in by_method.items():
        accs = [
            r["accuracy"] for r in sorted(records, key=lambda r: r["config"]["seed"]) if r["config"]["method"] == method
        ]
        assert entry["accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert entry["seeds"] == [0, 1, 2]


def test_compare_disagreement_is_the_share_of_differing_predictions(compared):
    summary, _, records = compared
    preds = {(r["config"]["method"], r["config"]["seed"]): r["predictions"] for r in records}
    for entry in summary["methods"]:
        if entry["method"] == "analytic":
            continue
        shares = [
            np.mean([a != b for a, b in zip(preds[(entry["method"], s)], preds[("analytic", s)])]) for s in range(3)
        ]
        assert entry["versus"]["disagreement"] == pytest.approx(np.mean(shares), abs=1e-12)


def test_compare_csv_and_json_agree(compared):
    summary, table, _ = compared
    assert [r["method"] for r in table] == [m["method"] for m in summary["methods"]]
    for row, entry in zip(table, summary["methods"]):
        assert float(row["accuracy_mean"]) == pytest.approx(entry["accuracy"]["mean"], rel=1e-14)
        assert int(row["seeds"]) == 3
        if entry["method"] == "analytic":
            assert row["diff_vs_baseline"] == ""
        else:
            assert float(row["diff_vs_baseline"]) == pytest.approx(entry["versus"]["difference"], rel=1e-14, abs=1e-300)


def test_compare_select_win_rate_and_numeric_share(compared):
    summary, _, records = compared
    by_method = {m["method"]: m for m in summary["methods"]}
    assert by_method["analytic"]["not_exact_share"] == 0
    assert by_method["alternate"]["not_exact_share"] == pytest.approx(0.5)
    select = [r for r in records if r["config"]["method"] == "select"]
    assert 0 <= by_method["select"]["select_win_rate"] <= 1
    assert by_method["select"]["not_exact_share"] == pytest.approx(np.mean([r["shares"]["numeric"] for r in select]))
    assert by_method["select"]["select_win_rate"] == pytest.approx(
        np.mean([r["select_wins"]["numeric"] / r["iterations_done"] for r in select])
    )


# --- bold: a strict best at the printed precision -----------------------------------------


def _column(*means):
    from types import SimpleNamespace

    from gradsel_cli.analysis.report import _mark_best

    rows = [{"hidden": 20, "cells": [{"mean": m}]} for m in means]
    _mark_best(rows, SimpleNamespace(shots=(1,), has_avg=False))
    return [r["cells"][0]["best"] for r in rows]


def test_means_that_print_the_same_are_a_tie():
    assert _column(0.62102, 0.6210199999999999, 0.5) == [False, False, False]
    assert _column(0.62106, 0.62102) == [True, False]  # 0.6211 against 0.6210: a best
    assert _column(None, 0.5) == [False, True]


def test_random_subset_table_does_not_bold_a_tie_with_analytic():
    # B=4, H=20, k=4: alternate equals analytic on every seed; the means differ in the last bit only
    from gradsel_cli.analysis.report import paper_table, settings_of
    from gradsel_cli.config import TrainConfig

    data = paper_table(
        "alternate",
        results.load(RESULTS / "alternate-random.jsonl"),
        settings_of(TrainConfig(subset="random").validate().to_dict()),
    )
    group = next(g for g in data["groups"] if g["batch"] == 4)
    analytic, alternate = (row["cells"][3] for row in group["rows"][:2])
    assert (analytic["mean"], alternate["mean"]) == (0.6210199999999999, 0.62102)
    assert not analytic["best"] and not alternate["best"]


# --- runs: a summary of any results file ------------------------------------------------------


def test_runs_summary_has_a_row_per_configuration():
    from gradsel_cli.analysis.report import runs_summary

    records = results.load(RESULTS / "compare.jsonl")
    summary = runs_summary(records)
    assert summary["runs"] == 20 and summary["varied"] == ["method"]
    assert [r["values"] for r in summary["rows"]] == [
        {"method": m} for m in ("analytic", "numeric", "alternate", "select")
    ]
    assert summary["fixed"]["hidden"] == 50 and "seed" not in summary["fixed"] and "method" not in summary["fixed"]
    for row in summary["rows"]:
        accs = [r["accuracy"] for r in records if r["config"]["method"] == row["values"]["method"]]
        assert row["runs"] == 5 and row["seeds"] == [0, 1, 2, 3, 4] and row["diverged"] == 0
        assert row["accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert row["accuracy"]["lo"] < row["accuracy"]["mean"] < row["accuracy"]["hi"]


def test_runs_summary_counts_diverged_runs_and_is_strict_json():
    from gradsel_cli.analysis.report import runs_summary

    records = results.load(RESULTS / "compare.jsonl")[:2]  # analytic seeds 0 and 1
    lone = json.loads(json.dumps(records[0]))
    lone["config"]["lr"] = 0.2  # a configuration of one run: no interval
    gone = json.loads(json.dumps(records[0]))
    gone["config"].update(lr=1e6, seed=3)
    gone.update(diverged=True, accuracy=None, final_loss=None)
    summary = runs_summary([*records, lone, gone])
    assert summary["varied"] == ["lr"]
    by_lr = {r["values"]["lr"]: r for r in summary["rows"]}
    assert by_lr[0.1]["runs"] == 2 and by_lr[0.2]["accuracy"]["lo"] is None
    assert by_lr[1e6]["diverged"] == 1 and by_lr[1e6]["accuracy"]["mean"] is None and by_lr[1e6]["final_loss"] is None
    json.dumps(summary, allow_nan=False)


def test_runs_summary_fills_fields_older_records_lack():
    from gradsel_cli.analysis.report import runs_summary

    old = results.load(RESULTS / "alternate.jsonl")[:1]
    assert "optimizer" not in old[0]["config"]
    new = json.loads(json.dumps(old[0]))
    new["config"]["optimizer"] = "sgd"  # the default: the same configuration
    assert len(runs_summary([*old, new])["rows"]) == 1


def test_runs_command_json_csv_and_table():
    path = RESULTS / "compare.jsonl"
    summary = json.loads(invoke("runs", path, "--json"))
    rows = list(csv.DictReader(io.StringIO(invoke("runs", path, "--csv"))))
    assert [r["method"] for r in rows] == [r["values"]["method"] for r in summary["rows"]]
    assert [float(r["accuracy_mean"]) for r in rows] == [r["accuracy"]["mean"] for r in summary["rows"]]
    table = invoke("runs", path)
    # the title wraps between its phrases where the path is long: compare the words
    assert "20 runs, 4 configurations" in " ".join(table.split()) and "select" in table
    result = CliRunner().invoke(cli, ["runs", str(path), "--json", "--csv"])
    assert result.exit_code == 2 and "choose one" in result.output


def test_compare_equivalence_in_json_csv_and_the_table(compared, tmp_path):
    summary, table, records = compared
    assert summary["margin"] == 0.002
    for row, entry in zip(table, summary["methods"]):
        if entry["method"] == "analytic":
            assert "equivalence" not in entry.get("versus", {}) and row["tost"] == ""
            continue
        e = entry["versus"]["equivalence"]
        assert e["outcome"] in ("equivalent", "better", "worse", "inconclusive")
        assert e["difference"] == entry["versus"]["difference"] and e["margin"] == 0.002
        assert row["tost"] == e["outcome"]
        assert float(row["tost_ci_lo"]) == e["ci"][0]
        assert row["p_upper"] == "" if e["p_upper"] is None else float(row["p_upper"]) == e["p_upper"]
    path = tmp_path / "runs.jsonl"
    for rec in records:
        results.append(path, rec)
    args = ["compare", "--methods", "analytic,alternate,select", "--seeds", "3", *SMALL, "--results", path]
    wide = json.loads(invoke(*args, "--margin", "0.5", "--json"))  # resumed: nothing runs
    assert wide["margin"] == 0.5
    assert all(m["versus"]["equivalence"]["margin"] == 0.5 for m in wide["methods"] if "versus" in m)
    text = invoke(*args, "--margin", "0.5")
    assert "TOST" in text and "within ±0.5" in text


def test_table_equivalence_for_every_comparison(preset):
    data = json.loads(
        invoke(
            "table",
            "--preset",
            preset,
            "--results",
            RESULTS / f"{preset}.jsonl",
            "--format",
            "json",
            "--margin",
            "0.01",
        )
    )
    assert data["margin"] == 0.01
    parts = [p for v in data["verdicts"] for p in v["comparisons"] if p["outcome"] != "no data"]
    assert parts
    for part in parts:
        e = part["equivalence"]
        assert e["margin"] == 0.01 and e["difference"] == part["difference"]
        assert e["outcome"] in ("equivalent", "better", "worse", "inconclusive")
    text = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "markdown")
    tost = [line for line in text.splitlines() if "(TOST" in line and "vs " in line]
    assert tost
    for line, part in zip(tost, parts):  # numbers where the pairs spread; where they do not, no p-value, said so
        spread = part["equivalence"]["reason"] is None
        assert ("p lower" in line and "p upper" in line) == spread
        assert ("no spread, so no p-value" in line) == (not spread)


# --- the conditions and subsets studies -------------------------------------------------------------------


def _study_record(
    condition: dict, method: str, cell: dict, seed: int, accuracy: float, predictions: str, share: float = 0.0
) -> dict:
    from gradsel_cli.numerics.training import TrainConfig

    config = TrainConfig(method=method, seed=seed, **cell, **condition).to_dict()
    return {
        "config": config,
        "accuracy": accuracy,
        "diverged": False,
        "predictions": predictions,
        "shares": {"analytic": 1.0 - share, "numeric": share} if method == "select" else {method: 1.0},
    }


def test_published_pattern_counts_the_papers_near_zero_differences():
    from gradsel_cli import papers

    pattern = {(p["paper"], p["method"]): p for p in papers.published_pattern()}
    a = pattern[("alternate", "alternate")]
    assert (a["n"], a["within"], a["exact_zero"], a["largest"]) == (32, 24, 12, -0.0161)
    b = [pattern[("select", m)] for m in ("numeric", "select")]
    assert sum(p["within"] for p in b) == 10 and sum(p["n"] for p in b) == 18
    assert pattern[("select", "numeric")]["largest"] == -0.0312
    assert papers.cross_paper_analytic() == {"batch": 2, "shots": 2, "difference": 0.0116}


def test_conditions_summary_pairs_each_method_with_analytic_in_its_own_condition():
    from gradsel_cli import papers
    from gradsel_cli.analysis import report

    cells = papers.study_cells()[:2]
    records = []
    for seed in range(4):
        for cell in cells:
            records.append(_study_record({}, "analytic", cell, seed, 0.5, "1111"))
            records.append(_study_record({}, "numeric", cell, seed, 0.5, "1111"))  # identical: no difference
            records.append(_study_record({}, "select", cell, seed, 0.5, "1111", share=0.9))
            f32 = {"precision": "float32"}
            records.append(_study_record(f32, "analytic", cell, seed, 0.5, "1111"))
            records.append(_study_record(f32, "numeric", cell, seed, 0.5 + 0.01 * (seed + 1), "1112"))
    s = report.conditions_summary(records, margin=0.002)
    rows = {(r["condition"], r["method"]): r for r in s["rows"]}
    same = rows[("float64 exact", "numeric")]
    assert same["predictions_differ"] == 0 and same["difference"] == 0 and same["tost"]["outcome"] == "equivalent"
    assert same["runs_within"] == 8 and same["cells_equivalent"] == 2 and same["largest"] == 0
    assert rows[("float64 exact", "select")]["numeric_share"] == pytest.approx(0.9)
    moved = rows[("float32 exact", "numeric")]
    assert moved["predictions_differ"] == 0.25 and moved["difference"] == pytest.approx(0.025)
    assert moved["tost"]["outcome"] == "better" and moved["runs_within"] == 0
    assert moved["largest"] == pytest.approx(0.04)
    assert ("float32 exact", "alternate") not in rows  # never run: no row


def test_conditions_summary_finds_analytic_by_what_it_reads_not_by_the_condition_its_config_names():
    from gradsel_cli import papers
    from gradsel_cli.analysis import report

    cells, forward = papers.study_cells()[:2], {"fd_scheme": "forward"}
    records = []
    for seed in range(3):
        for cell in cells:
            records.append(_study_record({}, "analytic", cell, seed, 0.5, "1111"))
            records.append(_study_record(forward, "numeric", cell, seed, 0.5 + 0.01 * seed, "1112"))
    with_own = records + [_study_record(forward, "analytic", c, s, 0.5, "1111") for s in range(3) for c in cells]
    rows = report.conditions_summary(records)["rows"]
    assert [(r["condition"], r["method"], r["pairs"]) for r in rows] == [("float64 forward", "numeric", 6)]
    assert report.conditions_summary(with_own)["rows"] == rows  # analytic reads no scheme: the same runs
    shifted = [_study_record({"loss_epsilon": 1e-7}, "analytic", c, s, 0.4, "1111") for s in range(3) for c in cells]
    assert report.conditions_summary(shifted + records[1::2])["rows"] == []  # another loss: not numeric's partner


def test_subsets_summary_places_the_published_baseline_among_random_subsets():
    from gradsel_cli.analysis import report

    records = [
        _study_record(
            {"subset": "random"}, "analytic", dict(batch=1, hidden=20, shots=3), seed, 0.50 + 0.01 * seed, "1"
        )
        for seed in range(10)
    ]
    records += [_study_record({}, "analytic", dict(batch=1, hidden=20, shots=3), seed, 0.6, "1") for seed in range(2)]
    (row,) = report.subsets_summary(records)["rows"]
    assert (row["hidden"], row["shots"], row["subsets"]) == (20, 3, 10)
    assert row["published"] == 0.5559 and row["published_percentile"] == 60.0  # above 0.50 ... 0.55
    assert row["first_k_mean"] == 0.6 and row["first_k_mean_percentile"] == 100.0


def test_conditions_markdown_has_every_condition_the_published_pattern_and_the_legend():
    from gradsel_cli import papers

    text = invoke("table", "--preset", "conditions", "--results", RESULTS / "conditions.jsonl", "--format", "markdown")
    for name in papers.CONDITIONS:
        assert f"**{name}: against analytic" in text
    assert "**Published: each method − analytic, single runs**" in text
    assert "by up to +0.0116 (B=2, k=2)" in text and "TOST margin ±0.002" in text


def test_holm_takes_back_what_the_tables_family_of_tests_cannot_carry():
    """Two claims supported at p 0.03 and 0.04 alone are not after Holm's adjustment over the two (0.06 both);
    one at 0.001 stays; a comparison without a p-value (no spread) is no test and counts in no family."""
    from gradsel_cli.analysis import stats

    def claim(p):
        return {"p_t": p, "outcome": "supported", "supported": True, "words": "supported: x"}

    parts = [claim(0.03), claim(0.04), claim(float("nan"))]
    report.holm_family(parts, "p_t", "claims")
    assert [p["outcome"] for p in parts] == ["not supported", "not supported", "supported"]
    assert parts[0]["p_holm"] == pytest.approx(0.06) and parts[0]["tests"] == 2 and parts[2]["tests"] == 2
    assert "not supported after correction" in parts[0]["words"] and "over the 2 claims" in parts[0]["words"]
    strong = [claim(0.001), claim(0.04)]
    report.holm_family(strong, "p_t", "claims")
    assert strong[0]["outcome"] == "supported" and strong[1]["outcome"] == "supported"  # 0.002, 0.04
    base = np.array([0.5, 0.51, 0.52, 0.5])
    shifted = base + np.array([1, -1, 1.5, -0.5]) * 0.0008 + 0.0005  # TOST p 0.036 alone
    tost = [stats.equivalence(stats.paired(shifted, base)) for _ in range(3)]
    assert all(e["outcome"] == "equivalent" and 0.0167 < e["p_tost"] < 0.05 for e in tost)
    report.holm_family(tost, "p_tost", "equivalence tests")
    assert all(
        e["outcome"] == "inconclusive" and "Holm-adjusted over the 3 equivalence tests" in e["numbers"] for e in tost
    )


def test_power_says_how_many_seeds_tell_a_difference_apart_or_why_it_cannot(tmp_path):
    data = json.loads(invoke("table", "--format", "json", "--power", "20"))
    powers = [p["power"] for v in data["verdicts"] for p in v["comparisons"] if "power" in p]
    assert powers and all(p["images"] == 20 and p["sd"] == 0 and p["seeds"] is None for p in powers)  # identical
    text = invoke("table", "--power", "20")
    assert "no spread in these pairs to go by" in " ".join(text.split())
    assert CliRunner().invoke(cli, ["table", "--preset", "conditions", "--power", "5"]).exit_code == 2
    diff = {"sd": 0.004}
    got = report.power_of(diff, 20, 10_000)
    assert got["seeds"] == report.stats.seeds_needed(0.002, 0.004) and got["seeds"] > 5
    assert f"{got['seeds']} seeds" in render.cells.power_text(got)
