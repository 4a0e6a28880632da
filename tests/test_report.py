"""compare and table through the CLI: every output format parses back to the same numbers."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gradsel_cli import results
from gradsel_cli.cli import cli

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
    return json.loads(invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl",
                             "--format", "json"))


def json_cells(table):
    """(batch, method, hidden, shots) -> cell, from the JSON table."""
    return {(g["batch"], row["method"], row["hidden"], cell["shots"]): cell
            for g in table["groups"] for row in g["rows"] for cell in row["cells"]}


def test_csv_parses_back_to_the_json_numbers(preset, table_json):
    text = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    cells = json_cells(table_json)
    numbered = [r for r in rows if r["shots"].isdigit()]
    assert len(numbered) == len(cells)
    for r in numbered:
        cell = cells[(int(r["batch"]), r["method"], int(r["hidden"]), int(r["shots"]))]
        assert float(r["mean"]) == cell["mean"] and int(r["n"]) == cell["n"]
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
            shown = cells[-len(row["cells"]) - (preset == "select"):]
            for text_cell, cell in zip(shown, row["cells"] + ([row["avg"]] if "avg" in row else [])):
                assert f"{cell['mean']:.4f}" in text_cell, f"{fmt}: {text_cell!r} lacks {cell['mean']:.4f}"
                if cell["published"] is not None:
                    assert f"({cell['published']:.4f})" in text_cell
    latex = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "latex")
    assert latex.lstrip().startswith("\\begin{tabular}") and "\\end{tabular}" in latex


def test_no_paper_hides_the_published_numbers(preset):
    text = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "markdown",
                  "--no-paper")
    assert re.search(r"\d\.\d{4}", text) and not re.search(r"\(\d\.\d{4}\)", text)


def test_table_means_are_the_means_of_the_stored_runs(preset, table_json):
    records = results.load(RESULTS / f"{preset}.jsonl")
    for (batch, method, hidden, shots), cell in json_cells(table_json).items():
        accs = [r["accuracy"] for r in records
                if (r["config"]["batch"], r["config"]["method"], r["config"]["hidden"], r["config"]["shots"])
                == (batch, method, hidden, shots) and r["config"]["iters"] == table_json["settings"]["iters"]
                and r["config"]["subset"] == table_json["settings"]["subset"]]
        assert cell["n"] == len(accs)
        assert cell["mean"] == pytest.approx(np.mean(accs), abs=1e-12)


def test_table_names_missing_cells_for_an_empty_results_file(tmp_path):
    data = json.loads(invoke("table", "--results", tmp_path / "none.jsonl", "--format", "json"))
    assert data["missing_cells"] and all(c["n"] == 0 for c in json_cells(data).values())


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
        accs = [r["accuracy"] for r in sorted(records, key=lambda r: r["config"]["seed"])
                if r["config"]["method"] == method]
        assert entry["accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert entry["seeds"] == [0, 1, 2]


def test_compare_disagreement_is_the_share_of_differing_predictions(compared):
    summary, _, records = compared
    preds = {(r["config"]["method"], r["config"]["seed"]): r["predictions"] for r in records}
    for entry in summary["methods"]:
        if entry["method"] == "analytic":
            continue
        shares = [np.mean([a != b for a, b in zip(preds[(entry["method"], s)], preds[("analytic", s)])])
                  for s in range(3)]
        assert entry["versus"]["disagreement"] == pytest.approx(np.mean(shares), abs=1e-12)


def test_compare_csv_and_json_agree(compared):
    summary, table, _ = compared
    assert [r["method"] for r in table] == [m["method"] for m in summary["methods"]]
    for row, entry in zip(table, summary["methods"]):
        assert float(row["accuracy_mean"]) == entry["accuracy"]["mean"]
        assert int(row["seeds"]) == 3
        if entry["method"] == "analytic":
            assert row["diff_vs_baseline"] == ""
        else:
            assert float(row["diff_vs_baseline"]) == entry["versus"]["difference"]


def test_compare_select_win_rate_and_numeric_share(compared):
    summary, _, records = compared
    by_method = {m["method"]: m for m in summary["methods"]}
    assert by_method["analytic"]["numeric_share"] == 0
    assert by_method["alternate"]["numeric_share"] == pytest.approx(0.5)
    select = [r for r in records if r["config"]["method"] == "select"]
    assert 0 <= by_method["select"]["select_win_rate"] <= 1
    assert by_method["select"]["numeric_share"] == pytest.approx(np.mean([r["numeric_share"] for r in select]))


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
        assert float(row["tost_ci_lo"]) == e["ci"][0] and float(row["p_upper"]) == e["p_upper"]
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
    data = json.loads(invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl",
                             "--format", "json", "--margin", "0.01"))
    assert data["margin"] == 0.01
    parts = [p for v in data["verdicts"] for p in v["comparisons"] if p["outcome"] != "no data"]
    assert parts
    for part in parts:
        e = part["equivalence"]
        assert e["margin"] == 0.01 and e["difference"] == part["difference"]
        assert e["outcome"] in ("equivalent", "better", "worse", "inconclusive")
    text = invoke("table", "--preset", preset, "--results", RESULTS / f"{preset}.jsonl", "--format", "markdown")
    assert "(TOST)" in text and "p lower" in text and "p upper" in text
