"""Both papers' tables in the textbook's setting (`--setting relu-textbook`, `gradsel table --preset
relu-textbook`): the grid, the table on a miniature, and the shipped runs."""

import json

import pytest

from gradsel_cli import papers
from gradsel_cli.analysis import report
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.render.cells import footer_lines
from gradsel_cli.runs import results
from gradsel_cli.runs.experiments import preset_trials
from gradsel_cli.runs.records import run_key

SETTING = papers.NAMED_SETTINGS["relu-textbook"]


def test_the_preset_runs_both_papers_grids_in_its_setting():
    base = TrainConfig().replace(**SETTING)
    runs = preset_trials("relu-textbook", base, [0, 1])
    expected = [c for p in ("alternate", "select") for c in preset_trials(p, base, [0, 1])]
    assert {c.effective() for c in runs} == {c.effective() for c in expected}  # paper B's analytic cells are A's:
    assert len({c.effective() for c in runs}) == len(runs) < len(expected)  # once
    assert len(runs) == 2 * (len(papers.layout("alternate").cells()) + len(papers.layout("select").cells()) - 9)
    assert all(all(getattr(c, k) == v for k, v in SETTING.items()) for c in runs)


def test_a_table_in_the_default_setting_says_no_network_line_and_one_in_the_setting_does():
    plain = report.paper_table("select", [], report.settings_of(TrainConfig().to_dict()))
    assert not any(line.startswith("network:") for line in footer_lines(plain))
    relu = report.paper_table(
        "select", [], report.settings_of(TrainConfig().replace(**SETTING).to_dict()), None, None, "relu-textbook"
    )
    assert "network: activation relu, pixels float32" in footer_lines(relu)
    assert any(line.endswith("`gradsel table --preset relu-textbook --run`") for line in footer_lines(relu))
    # a paper's own preset in another setting: the hint keeps the options that chose it
    varied = report.paper_table("select", [], report.settings_of(TrainConfig().replace(**SETTING).to_dict()))
    assert any(line.endswith("--run` with the same options") for line in footer_lines(varied))
    assert any(line.endswith("`gradsel table --preset select --run`") for line in footer_lines(plain))


def test_table_runs_the_preset_and_prints_both_papers_beside_the_default_setting(runner, tmp_path):
    path = tmp_path / "relu.jsonl"
    args = ["table", "--preset", "relu-textbook", "--results", str(path), "--iters", "2", "--test-limit", "50"]
    ran = runner.invoke(cli, [*args, "--run", "--seeds", "1", "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    assert stored and all(r["config"]["activation"] == "relu" and r["config"]["pixels"] == "float32" for r in stored)
    # paper B's analytic cells are paper A's analytic runs: stored once
    assert len(stored) == len({run_key(r) for r in stored}) == len(preset_trials("relu-textbook", TrainConfig(), [0]))
    shown = runner.invoke(cli, [*args, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    tables = json.loads(shown.stdout)["tables"]
    assert [t["preset"] for t in tables] == ["alternate", "select"]
    assert all(t["missing_cells"] == 0 and t["settings"]["activation"] == "relu" for t in tables)
    text = runner.invoke(cli, args).stdout
    assert "Deploying Analytic and Numerical Gradients" in text and "optimal parameter selection" in text
    assert text.count("network: activation relu, pixels float32") == 2


def test_the_shipped_runs_fill_both_papers_with_ten_seeds_beside_the_sigmoid_ones(runner):
    if results.shipped_path("relu-textbook") is None:
        pytest.fail("the relu-textbook runs are not shipped")
    shown = runner.invoke(cli, ["table", "--preset", "relu-textbook", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    for t in json.loads(shown.stdout)["tables"]:
        assert t["missing_cells"] == 0 and t["seeds"] == list(range(10))
        assert t["beside"]["seeds"] == list(range(5)) and t["beside"]["mad_all"] > 0
