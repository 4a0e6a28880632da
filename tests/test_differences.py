"""The differences comparison (`gradsel table --preset differences`): the published single-run differences
against each condition's paired runs, on made-up runs whose answer is known, and its trials and files."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradsel_cli import papers
from gradsel_cli.analysis.differences import differences_summary
from gradsel_cli.cli import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.runs.experiments import condition_config, preset_trials


def _published_difference(cell: dict) -> float:
    """The published accuracy of the cell's method less its paper's analytic one, in the same cell."""
    paper, lay = cell["paper"], papers.LAYOUTS[cell["paper"]]
    keys = (cell["batch"], cell["hidden"])
    return papers.published(paper, *keys, cell["method"], cell["shots"]) - papers.published(
        paper, *keys, lay.baseline, cell["shots"]
    )


def _records(name: str, difference, seeds=range(10), base: TrainConfig | None = None) -> list[dict]:
    """A condition's runs on its widest cells: analytic at 0.5 in every cell and seed, every other method at 0.5
    plus difference(cell, seed)."""
    out = []
    for cell in papers.difference_cells(papers.difference_scopes(name)[-1]):
        for seed in seeds:
            config = condition_config(base or TrainConfig(), name, cell, seed)
            exact = cell["method"] == papers.LAYOUTS[cell["paper"]].baseline
            out.append(
                {
                    "config": config.to_dict(),
                    "accuracy": round(0.5 + (0.0 if exact else difference(cell, seed)), 4),
                    "diverged": False,
                }
            )
    return out


def _rows(records) -> dict:
    return {(r["condition"], r["cells"]): r for r in differences_summary(records)["rows"]}


def test_runs_that_never_differ_are_rejected_and_runs_that_reproduce_the_papers_are_consistent():
    never = _records("float64 exact", lambda cell, seed: 0.0)
    same = _records("relu", lambda cell, seed: _published_difference(cell))
    rows = _rows(never + same)
    assert set(rows) == {("float64 exact", "study"), ("relu", "study")}
    r = rows[("float64 exact", "study")]
    assert r["zeros"]["condition"] == 1.0 and r["spread"]["condition"] == 0.0
    assert r["zeros"]["published"] == pytest.approx(9 / 24)  # 12 of paper A's 32 cells are 0, 9 of the 24 here
    assert r["verdict"] == "rejected" and set(r["rejected_by"]) == {"zeros", "spread"}
    assert r["location"] is None and r["signs"] is None  # no difference to place or sign: no test
    r = rows[("relu", "study")]
    assert r["verdict"] == "consistent" and r["pairs"] == 240 and r["seeds"] == 10 and r["strata"] == 24
    for test in ("zeros", "spread", "location", "signs"):
        assert r[test]["p"] == pytest.approx(1.0)
    assert r["baseline"]["cells"] == 19  # paper A's 14 analytic cells and paper B's 5 in the study's cells


def test_a_named_setting_is_compared_on_the_studys_cells_and_on_every_cell():
    rows = _rows(_records("relu-textbook", lambda cell, seed: 0.0001 * (seed % 3 - 1)))
    assert set(rows) == {("relu-textbook", "study"), ("relu-textbook", "all")}
    assert rows[("relu-textbook", "all")]["strata"] == 50  # paper A's 32 alternate cells, paper B's 9 × 2
    assert rows[("relu-textbook", "study")]["strata"] == 24


def test_a_condition_that_differs_far_more_than_the_papers_is_rejected_by_its_spread():
    far = _records("float32 exact", lambda cell, seed: 0.02 * (1 if seed % 2 else -1))
    r = _rows(far)[("float32 exact", "study")]
    assert r["spread"]["condition"] == pytest.approx(0.02)
    assert r["verdict"] == "rejected" and "spread" in r["rejected_by"] and "zeros" in r["rejected_by"]


def test_the_p_values_are_holm_adjusted_over_every_test_of_the_table():
    records = _records("float64 exact", lambda c, s: 0.0) + _records("relu", lambda c, s: _published_difference(c))
    summary = differences_summary(records)
    tests = [r[t] for r in summary["rows"] for t in ("zeros", "spread", "location", "signs") if r[t] is not None]
    assert summary["tests"] == len(tests) == 6
    smallest = min(t["p"] for t in tests)
    assert min(t["p_holm"] for t in tests) == pytest.approx(6 * smallest)


def test_runs_in_another_setting_are_not_the_comparisons():
    other = _records("relu", lambda c, s: 0.0, base=TrainConfig(iters=100))
    assert differences_summary(other)["rows"] == []
    assert _rows(other + _records("relu", lambda c, s: 0.0))[("relu", "study")]["pairs"] == 240


def test_a_missing_or_diverged_partner_drops_the_pair_not_the_cell():
    records = _records("relu", lambda c, s: 0.0, seeds=range(3))
    for r in records:  # paper A's alternate at B=1 H=20 k=1, seed 0: diverged
        c = r["config"]
        if (c["method"], c["batch"], c["hidden"], c["shots"], c["seed"]) == ("alternate", 1, 20, 1, 0):
            r["diverged"], r["accuracy"] = True, None
    r = _rows(records)[("relu", "study")]
    assert r["pairs"] == 24 * 3 - 1 and r["strata"] == 24


def test_every_run_of_the_comparison_is_a_run_of_the_conditions_study_or_the_relu_textbook_preset():
    """So `--run` computes nothing the shipped runs have."""
    base = TrainConfig()
    theirs = preset_trials("conditions", base, range(2)) + preset_trials(
        "relu-textbook", base.replace(**papers.NAMED_SETTINGS["relu-textbook"]), range(2)
    )
    mine = preset_trials("differences", base, range(2))
    # a seed: 38 runs a study condition (paper B's analytic cells are paper A's), float64 forward's 14 analytic
    # runs float64 exact's (analytic reads no difference scheme), and relu-textbook's 82
    assert len(mine) == 2 * (6 * 38 - 14 + 82)
    assert {t.effective() for t in mine} <= {t.effective() for t in theirs}


def test_the_preset_reads_the_shipped_runs_of_both_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["table", "--preset", "differences", "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {r["condition"] for r in summary["rows"]} == set(papers.DIFFERENCE_CONDITIONS)
    assert "(conditions)" in result.stderr and "(relu-textbook)" in result.stderr
    result = CliRunner().invoke(cli, ["table", "--preset", "differences", "--format", "markdown"])
    assert result.exit_code == 0 and "| published | 50 |" in result.stdout and "Holm-adjusted over the" in result.stdout
    for table in result.stdout.split("\n\n"):  # every line of a Markdown table has its header's columns
        rows = [line for line in table.splitlines() if line.startswith("|")]
        assert len({len(re.split(r"(?<!\\)\|", line)) for line in rows}) <= 1, table


def test_no_runs_says_how_to_make_them(tmp_path):
    empty = tmp_path / "other.jsonl"  # a run of another preset: none of the comparison's
    empty.write_text(
        (Path(__file__).resolve().parent.parent / "results" / "alternate.jsonl").read_text().splitlines()[0] + "\n"
    )
    result = CliRunner().invoke(cli, ["table", "--preset", "differences", "--results", str(empty)])
    assert result.exit_code == 0
    assert "No stored runs of the differences study" in result.stderr


def test_a_condition_is_its_own_network_whatever_the_base():
    base = TrainConfig(activation="relu", precision="float32", pixels="float32", loss_epsilon=1e-7)
    cell = {"paper": "alternate", "method": "analytic", "batch": 1, "hidden": 20, "shots": 2}
    assert condition_config(base, "float64 exact", cell, 3) == condition_config(TrainConfig(), "float64 exact", cell, 3)


@pytest.mark.parametrize("options", [["--setting", "relu-textbook"], ["--activation", "relu"], ["--fd-arith", "exact"]])
def test_options_that_would_change_the_conditions_are_refused(options):
    result = CliRunner().invoke(cli, ["table", "--preset", "differences", *options])
    assert result.exit_code == 2
    assert "sets each condition's network and arithmetic itself: drop " + options[0] in result.output
