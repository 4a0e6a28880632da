"""The sources study (sources_study.py, `gradsel table --preset sources`): its grid, its summary and its tables,
on a miniature of its settings (the shipped runs are read by the last test)."""

import json

import pytest

from gradsel_cli import sources, sources_study
from gradsel_cli.analysis.report import sources_summary
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.numerics import ledger
from gradsel_cli.runs import results
from gradsel_cli.runs.experiments import preset_trials


def test_the_grid_has_every_source_alone_and_mixed_with_the_exact_one_at_both_regimes_and_the_random_ones_long():
    cells = sources_study.methods()
    others = [n for n in sources.names() if n != sources.exact()]
    assert len(cells) == len(sources.names()) + 2 * len(others)
    runs = preset_trials("sources", TrainConfig(), [3])
    long = sources_study.long_cells()
    assert {c["method"] for c in long} == {n for n in sources.names() if sources.get(n).check.count is not None}
    assert len(long) == len(sources_study.SETTINGS) * len({c["method"] for c in long}) > 0
    assert len(runs) == len(sources_study.SETTINGS) * (len(cells) * 2) + len(long) and all(c.seed == 3 for c in runs)
    paired, longer = runs[: -len(long)], runs[-len(long) :]
    for plain, budgeted, budget in [(a, b, sources_study.BUDGET) for a, b in zip(paired[::2], paired[1::2])] + [
        (TrainConfig().replace(**cell, seed=3), run, sources_study.LONG_BUDGET) for cell, run in zip(long, longer)
    ]:
        assert plain.iters == sources_study.ITERS and budgeted.replace(iters=plain.iters) == plain
        costs, comparisons = ledger.gradient_costs(budgeted), ledger.comparison_cost(budgeted)
        assert ledger.spent(budgeted, costs, comparisons, budgeted.iters) <= budget
        assert ledger.spent(budgeted, costs, comparisons, budgeted.iters + 1) > budget
        assert plain.lr == (sources_study.RANDOM_LR if sources_study.random(plain) else sources_study.LR)


def test_a_stored_run_s_regime_comes_from_its_iterations_and_the_ledger_it_was_counted_with():
    def record(iters, total):
        return {"config": {"iters": iters}, "ledger": {"total": total}}

    at = sources_study.BUDGET
    assert sources_study.regime(record(sources_study.ITERS, 10 * at)) == "iterations"
    assert sources_study.regime(record(sources_study.ITERS + 1, at)) == "budget"
    assert sources_study.regime(record(sources_study.ITERS + 1, at * 1.001)) == "long"
    assert sources_study.regime({"config": {"iters": sources_study.ITERS + 1}}) == "budget"  # made before the ledger


@pytest.fixture
def miniature(monkeypatch):
    """The study at k = 1, B = 2, H = 4: 6 iterations, 400 forward-pass equivalents, or 1,000 (long)."""
    monkeypatch.setattr(sources_study, "SETTINGS", ({"shots": 1, "batch": 2, "hidden": 4},))
    monkeypatch.setattr(sources_study, "ITERS", 6)
    monkeypatch.setattr(sources_study, "BUDGET", 400.0)
    monkeypatch.setattr(sources_study, "LONG_BUDGET", 1000.0)
    monkeypatch.setattr(sources_study, "PROBE_EVERY", 2)
    monkeypatch.setattr(sources_study, "CURVE_POINTS", 2)


def test_table_runs_the_study_and_prints_each_regime_against_the_exact_source(runner, miniature, tmp_path):
    path = tmp_path / "sources.jsonl"
    args = ["table", "--preset", "sources", "--seeds", "2", "--results", str(path)]
    ran = runner.invoke(cli, [*args, "--run", "--workers", "1", "--test-limit", "100"])
    assert ran.exit_code == 0, ran.output
    stored = [json.loads(line) for line in path.read_text().splitlines()]
    random = [n for n in sources.names() if sources.get(n).check.count is not None]
    assert len(stored) == 2 * (len(sources_study.methods()) * 2 + len(random))
    assert all(r["probe"] is not None or r["config"]["method"] == sources.exact() for r in stored)
    summary = sources_summary(stored)
    assert [(g["regime"], len(g["methods"])) for g in summary["rows"]] == [
        ("iterations", len(sources_study.methods())),
        ("budget", len(sources_study.methods())),
        ("long", 1 + len(random)),
    ]
    _, budget, long = summary["rows"]
    assert budget["budget"] == 400.0 and all(r["cost"] <= 400.0 for r in budget["methods"])
    assert all(r["versus"]["baseline"] == sources.exact() for r in budget["methods"][1:] + long["methods"][1:])
    assert long["budget"] == 1000.0 and all(400.0 < r["cost"] <= 1000.0 for r in long["methods"][1:])
    # the long regime's baseline is the exact source's equal-compute run, the same record on each seed
    assert long["methods"][0] == budget["methods"][0]
    shorter = {r["method"]: r["iterations"] for r in budget["methods"]}
    assert all(r["iterations"] > shorter[r["method"]] for r in long["methods"][1:])
    assert all(r["rise"] is not None for g in summary["rows"] for r in g["methods"])
    shown = runner.invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert "equal compute: 400 forward-pass equivalents each" in shown.stdout
    assert "the probe against backprop" in shown.stdout and "sel. spsa" in shown.stdout
    markdown = runner.invoke(cli, [*args, "--format", "markdown"])
    assert markdown.stdout.count("| method |") == 6  # three regimes, each with its probe table
    assert "long: the random sources to 1,000 forward-pass equivalents" in markdown.stdout
    png = tmp_path / "s.png"
    drawn = runner.invoke(cli, [*args, "--plot", str(png)])
    assert drawn.exit_code == 0 and png.stat().st_size > 0
    refused = runner.invoke(cli, ["table", "--preset", "select", "--plot", str(png)])
    assert refused.exit_code == 2 and "drop --plot" in refused.output


def test_the_shipped_study_prints_ten_seeds_in_each_cell(runner):
    if results.shipped_path("sources") is None:
        pytest.fail("the sources study's runs are not shipped")
    shown = runner.invoke(cli, ["table", "--preset", "sources", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    groups = json.loads(shown.stdout)["rows"]
    assert [g["regime"] for g in groups] == list(sources_study.REGIMES) * len(sources_study.SETTINGS)
    assert all(len(r["seeds"]) == 10 for g in groups for r in g["methods"])
