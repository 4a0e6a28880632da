"""gradsel sweep: comma lists of options, the grid, resume, divergence, and the local and Dask executors agreeing."""

import json
import sys

import pytest

from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import experiments, local, results
from helpers import invoke

TINY = ["sweep", "--hidden", "5", "--batch", "4", "--iters", "30", "--test-limit", "200", "--workers", "1"]


def sweep_json(runner, *args) -> list[dict]:
    result = invoke(runner, *TINY, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def outcome(rec: dict) -> tuple:
    """What must be bitwise the same wherever a run ran (wall times and versions may differ)."""
    return (
        rec["config_hash"],
        rec["accuracy"],
        rec["final_loss"],
        rec["loss_history"],
        rec["predictions"],
        rec["diverged"],
        rec["iterations_done"],
    )


def test_every_combination_of_the_lists_over_every_seed(runner):
    records = sweep_json(runner, "--method", "analytic,alternate", "--fd-step", "1e-3,1e-4,1e-5", "--seeds", "2")
    got = [(r["config"]["method"], r["config"]["fd_step"], r["config"]["seed"]) for r in records]
    # analytic never reads --fd-step: its one run per seed (at the default step) stands in each of its rows
    assert got == (
        [("analytic", 1e-4, s) for _ in range(3) for s in (0, 1)]
        + [("alternate", h, s) for h in (1e-3, 1e-4, 1e-5) for s in (0, 1)]
    )
    assert all(r["config"]["hidden"] == 5 and r["config"]["iters"] == 30 for r in records)


def test_an_option_a_method_does_not_read_runs_once_and_shows_in_each_row(runner, tmp_path):
    path = tmp_path / "runs.jsonl"
    result = invoke(
        runner, *TINY, "--method", "analytic,select", "--fd-step", "1e-3,1e-5", "--seeds", "1", "--results", str(path)
    )
    assert result.exit_code == 0, result.output
    stored = [(r["config"]["method"], r["config"]["fd_step"]) for r in results.load(path)]
    assert sorted(stored) == [("analytic", 1e-4), ("select", 1e-5), ("select", 1e-3)]
    rows = [line for line in result.stdout.splitlines() if line.startswith("analytic")]
    assert len(rows) == 2  # one row per --fd-step value


def test_the_table_has_a_row_per_cell_with_the_varied_options(runner):
    result = invoke(runner, *TINY, "--lr", "0.1,0.5", "--optimizer", "sgd,adam", "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert "lr" in result.stdout and "optimizer" in result.stdout and "accuracy" in result.stdout
    assert "4 cells × 2 seeds" in result.stdout
    assert result.stdout.count("adam") == 2


def test_a_value_given_twice_is_refused_as_in_every_list(runner):
    """One rule for every list option: a repeated value (in any spelling) is a one-line usage error, before any run."""
    result = invoke(runner, *TINY, "--lr", "0.1,0.10,1e-1", "--seeds", "1")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == "Error: Invalid value for '--lr': 0.1 is given twice; give each value once"


@pytest.mark.parametrize(
    "args,option",
    [
        (["--lr", "0.1,abc"], "--lr"),
        (["--lr", "0.1,nan"], "--lr"),
        (["--lr", "0.1,-1"], "--lr"),
        (["--hidden", "5,0"], "--hidden"),
        (["--hidden", "5,,3"], "--hidden"),
        (["--hidden", "2.5"], "--hidden"),
        (["--method", "analytic,bogus"], "--method"),
        (["--optimizer", "sgd,bogus"], "--optimizer"),
        (["--fd-scheme", "central,backward"], "--fd-scheme"),
        (["--dropout", "0.5,1"], "--dropout"),
        (["--test-limit", "100,10001"], "--test-limit"),
        (["--activation", "relu,"], "--activation"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
        (["--executor", "spark"], "--executor"),
    ],
)
def test_a_bad_item_is_one_line_naming_the_option(runner, args, option):
    result = invoke(runner, *TINY, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and option in lines[0], result.stderr


def test_an_invalid_combination_is_one_line(runner):
    no_batch = [
        a for i, a in enumerate(TINY) if "--batch" not in TINY[max(i - 1, 0) : i + 1]
    ]  # a repeated list adds up
    result = invoke(runner, *no_batch, "--batch", "1,4", "--batch-norm")
    assert result.exit_code == 2 and "batch norm" in result.stderr and "Traceback" not in result.output


def test_results_file_resumes_without_redoing_or_duplicating(runner, tmp_path):
    path = tmp_path / "runs.jsonl"
    first = sweep_json(runner, "--lr", "0.1,0.2", "--seeds", "2", "--results", str(path))
    before = path.read_bytes()
    assert before.count(b"\n") == 4
    more = sweep_json(runner, "--lr", "0.1,0.2,0.3", "--seeds", "2", "--results", str(path))
    assert path.read_bytes().startswith(before) and path.read_bytes().count(b"\n") == 6
    assert more[:2] == first[:2] and more[2:4] == first[2:4]  # the stored runs, not new ones


def test_a_diverging_setting_is_recorded_and_the_grid_goes_on(runner, tmp_path):
    # ReLU lets the logits grow without bound: lr 1e100 overflows in a few steps (the sigmoid stays finite).
    path = tmp_path / "runs.jsonl"
    records = sweep_json(
        runner,
        "--method",
        "analytic",
        "--activation",
        "relu",
        "--lr",
        "1e100,0.1",
        "--seeds",
        "2",
        "--results",
        str(path),
    )
    assert [r["diverged"] for r in records] == [True, True, False, False]
    assert records[0]["accuracy"] is None and records[0]["iterations_done"] < 30
    assert all(r["accuracy"] is not None for r in records[2:])
    assert len(results.load(path)) == 4
    table = invoke(
        runner,
        *TINY,
        "--method",
        "analytic",
        "--activation",
        "relu",
        "--lr",
        "1e100,0.1",
        "--seeds",
        "2",
        "--results",
        str(path),
    )
    assert table.exit_code == 0
    row = next(line for line in table.stdout.splitlines() if "1e+100" in line)
    assert "—" in row and row.rstrip("│ ").endswith("2")  # no accuracy, 2 diverged


def test_without_distributed_the_dask_executor_is_a_one_line_error_with_the_install_command(runner, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    result = invoke(runner, *TINY, "--executor", "dask")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert "pip install 'gradsel[dask]'" in result.stderr


def test_an_unreachable_scheduler_is_a_one_line_error(runner, monkeypatch):
    from gradsel_cli.runs import dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 1)
    result = invoke(runner, *TINY, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "scheduler" in result.stderr


GRID = experiments.trials(
    TrainConfig(hidden=5, batch=4, iters=40, test_limit=300),
    [dict(method=m, lr=lr) for m in ("analytic", "alternate") for lr in (0.1, 0.3)],
    range(3),
)


def test_local_and_dask_with_one_or_many_workers_give_bitwise_the_same_records(tmp_path):
    from gradsel_cli.runs.dask_executor import DaskExecutor

    runs = {
        "local 1": local.LocalExecutor(1),
        "local 2": local.LocalExecutor(2),
        "dask 1": DaskExecutor(1),
        "dask 2": DaskExecutor(2),
    }
    got = {}
    for name, executor in runs.items():
        path = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        records = experiments.run_grid(GRID, path, executor)
        assert [r["config"] for r in records] == [c.to_dict() for c in GRID]
        assert sorted(map(outcome, results.load(path))) == sorted(map(outcome, records))  # the file: each run once
        got[name] = [outcome(r) for r in records]
    reference = got.pop("local 1")
    for name, outcomes in got.items():
        assert outcomes == reference, f"{name} differs from local 1"
