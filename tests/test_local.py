"""The local executor (runs/local.py): a pool of worker processes gives what one process gives, and a
worker killed mid-grid loses nothing on resume."""

import multiprocessing

import pytest

from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import results
from gradsel_cli.runs.experiments import cell_label, run_grid, trials
from gradsel_cli.runs.local import LocalExecutor
from gradsel_cli.runs.records import config_hash

BASE = TrainConfig(shots=1, batch=2, hidden=3, iters=6, test_limit=50)
CELLS = [dict(method=m) for m in ("analytic", "numeric", "alternate", "select")]


def outcome(record) -> tuple:
    return record["config_hash"], record["accuracy"], record["final_loss"], record["predictions"]


def test_worker_pool_gives_the_same_records_as_one_process(mnist_raw):
    configs = trials(BASE, CELLS, range(2))
    serial = run_grid(configs, None, LocalExecutor(1))
    pooled = run_grid(configs, None, LocalExecutor(2))
    assert [outcome(r) for r in pooled] == [outcome(r) for r in serial]


def test_a_worker_killed_mid_grid_loses_nothing_on_resume(tmp_path):
    import os
    import signal

    from gradsel_cli.runs.trial import GridError

    path = tmp_path / "grid.jsonl"
    configs = trials(BASE.replace(iters=300), CELLS, range(3))
    killed = []

    def kill_a_worker(done, total, info):
        if done >= 1 and not killed:
            worker = multiprocessing.active_children()[0]
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)

    with pytest.raises(GridError, match="resume"):
        run_grid(configs, path, LocalExecutor(2), progress=kill_a_worker)
    assert killed
    kept = {r["config_hash"] for r in results.load(path)}
    missing = [c for c in configs if config_hash(c.to_dict()) not in kept]
    assert kept and missing, "the kill should leave some runs finished and some not"

    calls = []
    records = run_grid(configs, path, LocalExecutor(2), progress=lambda *a: calls.append(a))
    assert calls[0] == (len(kept), len(configs), "resumed")
    assert sorted(label for _, _, label in calls[1:]) == sorted(cell_label(c) for c in missing)
    stored = results.load(path)
    hashes = [r["config_hash"] for r in stored]
    assert len(hashes) == len(set(hashes)) == len(configs)
    assert sorted(hashes) == sorted(r["config_hash"] for r in records)


def test_a_pool_readies_each_kind_of_kernel_once_in_this_process_before_its_workers_start(mnist_raw, monkeypatch):
    from gradsel_cli.numerics import training
    from gradsel_cli.runs import local, trial

    ran: list[TrainConfig] = []
    monkeypatch.setattr(training, "train", lambda config, raw: ran.append(config))
    configs = trials(BASE, CELLS, range(3)) + trials(BASE.replace(precision="float32"), CELLS[:1], range(2))
    trial.compile_for(configs, mnist_raw)
    assert [(c.method, c.precision, c.iters, c.test_limit) for c in ran] == [
        *((m["method"], "float64", 1, 1) for m in CELLS),
        ("analytic", "float32", 1, 1),
    ]  # one iteration of the first trial of each kind; seeds, sizes and rates make no other kernels

    class Started(Exception):
        pass

    def no_pool(*a, **k):
        raise Started

    readied: list[int] = []
    monkeypatch.setattr(trial, "compile_for", lambda configs, raw: readied.append(len(configs)))
    monkeypatch.setattr(local, "ProcessPoolExecutor", no_pool)
    with pytest.raises(Started):
        list(LocalExecutor(2).run(configs))
    assert readied == [len(configs)]  # before the pool
