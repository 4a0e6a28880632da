"""The results store: run records are strict JSON, appended whole, loaded back."""

import dataclasses
import errno
import json
import os
import warnings

import numpy as np
import pytest

from gradsel_cli.numerics import training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import results
from gradsel_cli.runs.records import config_hash, run_record, thin


@pytest.fixture(scope="module")
def run(mnist_raw):
    return training.train(
        TrainConfig(method="alternate", shots=2, batch=4, hidden=5, iters=450, test_limit=200), data=mnist_raw
    )


def strict_json(record) -> dict:
    """The record through strict JSON (no NaN or Infinity), as results.append writes it."""
    return json.loads(json.dumps(record, allow_nan=False))


def test_record_of_a_run(run):
    record = strict_json(run_record(run))
    assert record["config"] == run.config.to_dict()
    assert record["config_hash"] == config_hash(record["config"])
    assert record["accuracy"] == run.accuracy
    history = record["loss_history"]
    assert history["every"] == 3 and len(history["values"]) == 150  # 450 losses in windows of 3
    assert history["values"][0] == pytest.approx(run.loss_history[:3].mean(), rel=1e-15)


def test_thin_keeps_a_short_history_and_means_a_long_one():
    assert thin(np.arange(5.0)) == {"every": 1, "values": [0.0, 1.0, 2.0, 3.0, 4.0]}
    long = thin(np.arange(401.0), points=200)
    assert long["every"] == 3 and long["values"][:2] == [1.0, 4.0]
    assert long["values"][-1] == 399.5 and len(long["values"]) == 134  # the last, short window: 399, 400


def test_record_of_a_run_with_huge_finite_losses_is_strict_json(run):
    # A run with --lr 1e307 stays finite (the sigmoid bounds the hidden layer) but its losses are ~1e307:
    # the window means of the loss history overflow to inf, and the record cannot be written.
    # Reproduce: gradsel train --method analytic --hidden 5 --batch 4 --iters 3000 --lr 1e307 --out r.jsonl
    huge = dataclasses.replace(run, loss_history=np.full(run.iterations_done, 1.5e308))
    assert np.all(np.isfinite(huge.loss_history)) and not huge.diverged
    record = strict_json(run_record(huge))
    assert all(np.isfinite(record["loss_history"]["values"]))


def test_append_then_load_round_trips(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    record = run_record(run)
    results.append(path, record)
    results.append(path, record)
    assert path.read_bytes().count(b"\n") == 2  # append() writes what it is given; a Store skips stored runs
    with pytest.warns(results.StoreWarning, match="1 duplicate record skipped"):
        loaded = results.load(path)  # the run is counted once
    assert len(loaded) == 1 and loaded[0] == strict_json(record)


def test_a_cut_off_last_line_is_skipped_and_the_next_append_starts_a_new_line(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    line = json.dumps(run_record(run), allow_nan=False)
    path.write_text(line + "\n" + line[: len(line) // 2])  # a crash in the middle of the second write
    with pytest.warns(UserWarning, match=":2:"):
        assert len(results.load(path)) == 1
    results.append(path, run_record(dataclasses.replace(run, config=run.config.replace(seed=1))))
    with pytest.warns(UserWarning, match=":2:"):
        assert len(results.load(path)) == 2


def test_a_record_whose_config_was_edited_is_skipped(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    record = strict_json(run_record(run))
    record["config"]["lr"] = 0.5
    path.write_text(json.dumps(record) + "\n")
    with pytest.warns(UserWarning, match="config_hash"):
        assert results.load(path) == []


# --- faults: full disks, hostile files (the fault suite in the README counts these) ---


def test_a_short_write_is_continued_until_the_whole_record_is_written(run, tmp_path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    real_write = os.write
    monkeypatch.setattr(results.os, "write", lambda fd, data: real_write(fd, bytes(data[:1000])))  # 1000 at a time
    results.append(path, run_record(run))
    monkeypatch.undo()
    assert json.loads(path.read_bytes()) == strict_json(run_record(run))


def test_a_full_disk_mid_record_leaves_the_file_as_it_was_and_says_so(run, tmp_path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    results.append(path, run_record(run))
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def disk_fills(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:100]))  # the disk takes 100 bytes, then is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results.os, "write", disk_fills)
    with pytest.raises(results.StoreError, match="No space left on device"):
        results.append(path, run_record(run))
    monkeypatch.undo()
    assert path.read_bytes() == before  # the cut record is gone, the earlier one untouched


@pytest.mark.parametrize("device", ["/dev/full", "/dev/zero", "/dev/null", "fifo"])
def test_a_device_or_pipe_is_refused_for_reading_and_writing(run, device, tmp_path):
    if device == "fifo":
        device = tmp_path / "pipe"
        os.mkfifo(device)
    with pytest.raises(results.StoreError, match="not a regular file"):
        results.load(device)  # /dev/zero: one endless line; a FIFO: blocks until a writer comes
    with pytest.raises(results.StoreError, match="not a regular file"):
        results.append(device, run_record(run))


def test_a_line_longer_than_a_record_can_be_is_skipped_without_reading_it_whole(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    good = json.dumps(strict_json(run_record(run)))
    path.write_bytes(b'{"x": "' + b"9" * (results.MAX_LINE + 10) + b'"}\n' + good.encode() + b"\n")
    with pytest.warns(UserWarning, match=":1: line longer than"):
        assert results.load(path) == [json.loads(good)]


def test_probe_leaves_a_file_another_run_made_meanwhile(tmp_path, monkeypatch):
    # two identical grids at once: the other made the file between this one's look and its probe
    path = tmp_path / "runs.jsonl"
    path.write_text('{"config_hash": "other"}\n')
    monkeypatch.setattr(type(path), "exists", lambda self: False if self == path else os.path.lexists(self))
    results.probe(path)
    assert path.read_text() == '{"config_hash": "other"}\n'


def test_every_output_is_probed_and_a_new_one_left_absent(tmp_path):
    new = tmp_path / "new.jsonl"
    results.probe(new, None)
    assert not new.exists()
    with pytest.raises(results.StoreError, match="File name too long"):
        results.probe(tmp_path / ("x" * 300))
    with pytest.raises(results.StoreError, match="is not a regular file"):
        results.probe(tmp_path)


def _bad(record: dict, key: str, value) -> dict:
    bad = json.loads(json.dumps(record))
    if value is DELETE:
        del bad[key]
    else:
        bad[key] = value
    return bad


DELETE = object()
BAD_VALUES = {
    "accuracy a string": ("accuracy", "x"),
    "accuracy missing": ("accuracy", DELETE),
    "accuracy negative": ("accuracy", -5),
    "accuracy huge": ("accuracy", 1e308),
    "diverged a string": ("diverged", "yes"),
    "loss history a string": ("loss_history", "nope"),
    "final loss a string": ("final_loss", "low"),
    "predictions too short": ("predictions", "12"),
    "predictions not digits": ("predictions", "x" * 200),
    "counts not numbers": ("counts", {"analytic": "many", "numeric": 1}),
    "accuracy curve out of range": ("acc_curve", [[0, 7.0]]),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_a_record_with_a_bad_value_is_skipped_with_one_warning(run, name, tmp_path):
    key, value = BAD_VALUES[name]
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(_bad(strict_json(run_record(run)), key, value)) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert results.load(path) == []
    assert len(caught) == 1 and key in str(caught[0].message) and ":1:" in str(caught[0].message)


@pytest.mark.parametrize("seed", ["0", "\x1b[31mred", 1.5, -1, None])
def test_a_config_of_the_wrong_type_is_skipped_and_no_control_character_is_echoed(run, seed, tmp_path):
    record = strict_json(run_record(run))
    record["config"]["seed"] = seed
    record["config_hash"] = config_hash(record["config"])  # a consistent hash: only the type is wrong
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert results.load(path) == []
    message = str(caught[0].message)
    assert "seed" in message and "\x1b" not in message


def test_printable_escapes_every_control_character():
    assert results.printable("a\x1b[31mb\nc\x9bd\x7f") == "a\\x1b[31mb\\x0ac\\x9bd\\x7f"


def test_the_store_appends_a_run_once_even_after_other_writers_and_an_overlong_line(run, tmp_path):
    path = tmp_path / "runs.jsonl"
    record = run_record(run)
    first, second = results.Store(path), results.Store(path)  # two processes on one file
    assert first.append(record) is True
    with path.open("ab") as fh:
        fh.write(b"9" * (results.MAX_LINE + 10) + b"\n")  # a hostile line in between
    assert second.append(record) is False
    other = dict(record, config={**record["config"], "seed": 1})
    other["config_hash"] = config_hash(other["config"])
    assert second.append(other) is True and first.append(other) is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [r["config"]["seed"] for r in results.load(path)] == [0, 1]
