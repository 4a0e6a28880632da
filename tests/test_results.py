"""The results store: run records are strict JSON, appended whole, loaded back."""

import dataclasses
import json

import numpy as np
import pytest

from gradsel_cli import results, training
from gradsel_cli.training import TrainConfig


@pytest.fixture(scope="module")
def run(mnist_raw):
    return training.train(TrainConfig(method="alternate", shots=2, batch=4, hidden=5, iters=450, test_limit=200),
                          raw=mnist_raw)


def strict_json(record) -> dict:
    """The record through strict JSON (no NaN or Infinity), as results.append writes it."""
    return json.loads(json.dumps(record, allow_nan=False))


def test_record_of_a_run(run):
    record = strict_json(results.run_record(run))
    assert record["config"] == run.config.to_dict()
    assert record["config_hash"] == results.config_hash(record["config"])
    assert record["accuracy"] == run.accuracy
    history = record["loss_history"]
    assert history["every"] == 3 and len(history["values"]) == 150  # 450 losses in windows of 3
    assert history["values"][0] == pytest.approx(run.loss_history[:3].mean(), rel=1e-15)


def test_thin_keeps_a_short_history_and_means_a_long_one():
    assert results.thin(np.arange(5.0)) == {"every": 1, "values": [0.0, 1.0, 2.0, 3.0, 4.0]}
    long = results.thin(np.arange(401.0), points=200)
    assert long["every"] == 3 and long["values"][:2] == [1.0, 4.0]
    assert long["values"][-1] == 399.5 and len(long["values"]) == 134  # the last, short window: 399, 400


def test_record_of_a_run_with_huge_finite_losses_is_strict_json(run):
    # A run with --lr 1e307 stays finite (the sigmoid bounds the hidden layer) but its losses are ~1e307:
    # the window means of the loss history overflow to inf, and the record cannot be written.
    # Reproduce: gradsel train --method analytic --hidden 5 --batch 4 --iters 3000 --lr 1e307 --out r.jsonl
    huge = dataclasses.replace(run, loss_history=np.full(run.iterations_done, 1.5e308))
    assert np.all(np.isfinite(huge.loss_history)) and not huge.diverged
    record = strict_json(results.run_record(huge))
    assert all(np.isfinite(record["loss_history"]["values"]))


def test_append_then_load_round_trips(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    record = results.run_record(run)
    results.append(path, record)
    results.append(path, record)
    assert path.read_bytes().count(b"\n") == 2
    loaded = results.load(path)
    assert len(loaded) == 2 and loaded[0] == strict_json(record)


def test_a_cut_off_last_line_is_skipped_and_the_next_append_starts_a_new_line(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    line = json.dumps(results.run_record(run), allow_nan=False)
    path.write_text(line + "\n" + line[: len(line) // 2])  # a crash in the middle of the second write
    with pytest.warns(UserWarning, match=":2:"):
        assert len(results.load(path)) == 1
    results.append(path, results.run_record(run))
    with pytest.warns(UserWarning, match=":2:"):
        assert len(results.load(path)) == 2


def test_a_record_whose_config_was_edited_is_skipped(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    record = strict_json(results.run_record(run))
    record["config"]["lr"] = 0.5
    path.write_text(json.dumps(record) + "\n")
    with pytest.warns(UserWarning, match="config_hash"):
        assert results.load(path) == []
