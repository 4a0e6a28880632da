"""Grids of paired trials: the trials of a grid, resume, progress, and safe concurrent appends to the results store."""

import json
import multiprocessing
import warnings

import pytest

from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import results
from gradsel_cli.runs.experiments import run_grid, trials
from gradsel_cli.runs.local import LocalExecutor
from gradsel_cli.runs.records import config_hash

BASE = TrainConfig(shots=1, batch=2, hidden=3, iters=6, test_limit=50)
CELLS = [dict(method=m) for m in ("analytic", "numeric", "alternate", "select")]


class CountingExecutor:
    """Runs trials in this process, remembers which, and can stop (like Ctrl-C) after `stop_after`."""

    def __init__(self, raw, stop_after=None):
        self.inner = LocalExecutor(1)
        self.raw, self.stop_after, self.ran = raw, stop_after, []

    def run(self, configs):
        from gradsel_cli.runs.trial import run_trial

        for config in configs:
            if self.stop_after is not None and len(self.ran) == self.stop_after:
                raise KeyboardInterrupt
            self.ran.append(config)
            yield config, run_trial(config, raw=self.raw)


def outcome(record) -> tuple:
    return record["config_hash"], record["accuracy"], record["final_loss"], record["predictions"]


def test_trials_are_every_cell_for_every_seed():
    configs = trials(BASE, CELLS, range(3))
    assert len(configs) == 12
    assert {(c.method, c.seed) for c in configs} == {(m["method"], s) for m in CELLS for s in range(3)}
    assert all(c.hidden == 3 and c.iters == 6 for c in configs)


def test_interrupted_grid_resumes_without_losing_or_duplicating(tmp_path, mnist_raw):
    path = tmp_path / "grid.jsonl"
    configs = trials(BASE, CELLS, range(2))
    with pytest.raises(KeyboardInterrupt):
        run_grid(configs, path, CountingExecutor(mnist_raw, stop_after=3))
    assert len(results.load(path)) == 3

    second = CountingExecutor(mnist_raw)
    records = run_grid(configs, path, second)
    assert len(second.ran) == len(configs) - 3
    stored = results.load(path)
    assert sorted(r["config_hash"] for r in stored) == sorted(config_hash(c.to_dict()) for c in configs)
    assert [r["config"] for r in records] == [c.to_dict() for c in configs]

    third = CountingExecutor(mnist_raw)
    assert [outcome(r) for r in run_grid(configs, path, third)] == [outcome(r) for r in records]
    assert third.ran == [] and len(results.load(path)) == len(configs)


def test_a_cut_line_is_redone_on_resume(tmp_path, mnist_raw):
    path = tmp_path / "grid.jsonl"
    configs = trials(BASE, CELLS[:2], range(1))
    run_grid(configs, path, CountingExecutor(mnist_raw))
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 40])  # a crash cut the second record short

    again = CountingExecutor(mnist_raw)
    with pytest.warns(UserWarning, match=r"grid.jsonl:2: cut-off line"):
        run_grid(configs, path, again)
    assert [c.method for c in again.ran] == [configs[1].method]
    with pytest.warns(UserWarning, match=r":2: "):  # the cut line stays, skipped; nothing is rewritten
        stored = results.load(path)
    assert sorted(r["config"]["method"] for r in stored) == sorted(c.method for c in configs)


def test_duplicate_configs_run_once(mnist_raw):
    configs = trials(BASE, CELLS[:1], [0, 0])
    executor = CountingExecutor(mnist_raw)
    records = run_grid(configs, None, executor)
    assert len(executor.ran) == 1 and records[0] is records[1]


def test_progress_reports_every_run(tmp_path, mnist_raw):
    configs = trials(BASE, CELLS[:2], range(2))
    run_grid(configs[:1], tmp_path / "g.jsonl", CountingExecutor(mnist_raw))
    calls = []
    run_grid(configs, tmp_path / "g.jsonl", CountingExecutor(mnist_raw), progress=lambda *a: calls.append(a))
    assert calls[0][:2] == (1, 4) and calls[0][2] == "resumed"
    assert [c[0] for c in calls] == [1, 2, 3, 4] and all(c[1] == 4 for c in calls)


def _append_many(path, tag, count):
    for i in range(count):
        results.append(path, {"tag": tag, "i": i, "padding": tag * 5000})


def test_two_processes_appending_never_interleave(tmp_path):
    path = tmp_path / "shared.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), tag, 150)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]  # every line whole JSON
    for tag in "ab":
        mine = [r for r in records if r["tag"] == tag]
        assert [r["i"] for r in mine] == list(range(150))
        assert all(r["padding"] == tag * 5000 for r in mine)


def test_loading_a_file_of_foreign_lines_warns_and_keeps_the_good_ones(tmp_path, mnist_raw):
    path = tmp_path / "mixed.jsonl"
    run_grid(trials(BASE, CELLS[:1], range(1)), path, CountingExecutor(mnist_raw))
    good = path.read_bytes()
    path.write_bytes(b"not json\n" + good + b'{"tag": 1}\n')
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stored = results.load(path)
    assert len(stored) == 1
    assert [str(w.message).split(": ")[0].rsplit(":", 1)[1] for w in caught] == ["1", "3"]
    assert path.read_bytes() == before


def test_a_runs_progress_label_names_what_differs_from_the_defaults():
    from gradsel_cli.runs.experiments import cell_label

    assert cell_label(TrainConfig()) == "alternate k=2 B=8 H=50 seed=0"
    lab_run = TrainConfig(method="numeric", subset="all", optimizer="adam", activation="relu", init="he", seed=2)
    assert cell_label(lab_run) == "numeric all images B=8 H=50 adam relu he seed=2"
    assert cell_label(TrainConfig(init_std=1.0)) == "alternate k=2 B=8 H=50 std 1 seed=0"
