"""The cost ledger (numerics/ledger.py) and --budget: what a run's gradients and select's comparisons cost in
forward-pass equivalents, the iterations a budget buys, and both in records, compare and curves."""

import json

import numpy as np
import pytest

from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import MAX_DRAWS, TrainConfig
from gradsel_cli.numerics import ledger, loop
from gradsel_cli.numerics.training import train
from gradsel_cli.runs.records import check_record, run_record

SMALL = dict(hidden=6, batch=2, shots=1, test_limit=50)


def per_gradient(config, name):
    s = loop.settings(config)
    return sources.get(name).cost(config.hidden, config.batch, sources.knobs_in(s, name))


def test_a_plain_run_costs_its_iterations_times_its_sources_measured_cost():
    config = TrainConfig(method="numeric", iters=7, **SMALL)
    got = ledger.ledger(config, {"numeric": 7}, 7)
    assert got["total"] == pytest.approx(7 * per_gradient(config, "numeric"))
    assert got["comparisons"] == 0 and got["by_source"] == {"numeric": got["total"]}


def test_alternate_counts_each_source_by_its_schedule_and_select_adds_a_loss_per_candidate():
    alt = TrainConfig(method="alternate", sources="analytic,numeric", alternate_every=3, iters=10, **SMALL)
    calls = dict(zip(alt.run_sources(), loop.iterations_of(loop.settings(alt), 0, 10)))
    assert calls == {"analytic": 7, "numeric": 3}
    expected = sum(n * per_gradient(alt, name) for name, n in calls.items())
    assert ledger.spent(alt, ledger.gradient_costs(alt), 0.0, 10) == pytest.approx(expected)
    sel = TrainConfig(method="select", sources="analytic,spsa", iters=10, **SMALL)
    assert ledger.comparison_cost(sel) == 2.0  # one forward pass of the batch for each candidate
    on_train = sel.replace(select_on="train")
    assert ledger.comparison_cost(on_train) == 2 * 10 / 2  # the 10 images of the few-shot set, B = 2
    got = ledger.ledger(sel, {"analytic": 10, "spsa": 10}, 10)
    assert got["total"] == pytest.approx(10 * (per_gradient(sel, "analytic") + per_gradient(sel, "spsa") + 2.0))


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(method="analytic", **SMALL),
        TrainConfig(method="alternate", sources="analytic,numeric", alternate_every=4, **SMALL),
        TrainConfig(method="select", sources="analytic,forward", **SMALL),
    ],
    ids=["plain", "alternate", "select"],
)
def test_a_budget_buys_the_most_iterations_whose_cost_stays_within_it(config):
    costs, comparisons = ledger.gradient_costs(config), ledger.comparison_cost(config)
    for budget in (500.0, 12_345.0):
        t = ledger.budget_iterations(config, budget)
        assert ledger.spent(config, costs, comparisons, t) <= budget < ledger.spent(config, costs, comparisons, t + 1)


def test_a_source_that_costs_more_gets_fewer_iterations_of_one_budget():
    base = TrainConfig(**SMALL)
    its = {m: ledger.budget_iterations(base.replace(method=m), 1e5) for m in ("analytic", "numeric", "spsa")}
    assert its["analytic"] > its["spsa"] and its["analytic"] > its["numeric"]
    more = ledger.budget_iterations(base.replace(method="spsa", directions=8), 1e5)
    assert more < its["spsa"]


def test_a_budget_below_one_iteration_or_beyond_what_a_run_holds_is_one_line():
    config = TrainConfig(method="numeric", **SMALL)
    with pytest.raises(ValueError, match=r"less than one iteration of numeric .*raise --budget"):
        ledger.budget_iterations(config, 1.0)
    with pytest.raises(ValueError, match=f"more than a run holds .{MAX_DRAWS:,}"):
        ledger.budget_iterations(TrainConfig(method="analytic", **SMALL), 1e12)


def test_a_run_records_its_ledger_and_a_record_without_one_stays_readable(mnist_raw):
    config = TrainConfig(method="alternate", sources="analytic,spsa", iters=9, lr=0.01, **SMALL)
    result = train(config, mnist_raw)
    assert result.ledger == ledger.ledger(config, result.counts, 9)
    rec = run_record(result)
    assert rec["ledger"]["total"] == pytest.approx(sum(rec["ledger"]["by_source"].values()))
    assert check_record(rec) is None
    assert check_record({k: v for k, v in rec.items() if k != "ledger"}) is None  # made before the ledger
    assert "ledger" in check_record({**rec, "ledger": {"total": -1}})
    assert ledger.spent_curve(rec, [0, 9])[-1] == pytest.approx(rec["ledger"]["total"])
    assert np.isnan(ledger.spent_curve({**rec, "ledger": None}, [3])).all()


def test_the_ledger_keeps_the_costs_it_was_made_with(mnist_raw, monkeypatch):
    config = TrainConfig(method="analytic", iters=4, **SMALL)
    rec = run_record(train(config, mnist_raw))
    before = ledger.spent_curve(rec, [4])[0]
    monkeypatch.setattr(ledger, "gradient_costs", lambda c: {"analytic": 1e6})  # a table measured anew
    assert ledger.spent_curve(rec, [4])[0] == before


def test_train_with_a_budget_runs_what_it_buys_and_refuses_iters_beside_it(runner):
    args = ["train", "--method", "analytic", "--hidden", "6", "--batch", "2", "--shots", "1", "--test-limit", "50"]
    got = runner.invoke(cli, [*args, "--budget", "300", "--json"])
    assert got.exit_code == 0, got.output
    rec = json.loads(got.stdout)
    config = TrainConfig(method="analytic", **SMALL)
    assert rec["config"]["iters"] == ledger.budget_iterations(config, 300) and rec["ledger"]["total"] <= 300
    refused = runner.invoke(cli, [*args, "--budget", "300", "--iters", "5"])
    assert refused.exit_code == 2 and "drop --iters" in refused.output
    tiny = runner.invoke(cli, [*args, "--budget", "1"])
    assert tiny.exit_code != 0 and "raise --budget" in tiny.output and "Traceback" not in tiny.output


def test_compare_with_a_budget_gives_each_method_its_iterations_and_draws_curves_against_it(runner, tmp_path):
    png = tmp_path / "c.png"
    args = ["compare", "--methods", "analytic,spsa", "--hidden", "6", "--batch", "2", "--shots", "1"]
    args += ["--test-limit", "50", "--seeds", "2", "--lr", "0.01", "--budget", "600"]
    got = runner.invoke(cli, [*args, "--json", "--plot", str(png), "--x-axis", "budget"])
    assert got.exit_code == 0, got.output
    summary = json.loads(got.stdout)
    rows = {r["method"]: r for r in summary["methods"]}
    assert summary["budget"] == 600 and rows["analytic"]["iterations"] > rows["spsa"]["iterations"]
    assert all(r["cost"] <= 600 for r in rows.values())
    assert png.stat().st_size > 0
    shown = runner.invoke(cli, args)
    assert "budget 600 forward-pass equiv." in shown.stdout and "cost" in shown.stdout
