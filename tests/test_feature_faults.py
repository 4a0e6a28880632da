"""Nothing is lost: a grid killed with SIGKILL at random moments and resumed, a Dask worker killed mid-grid,
broken results files, broken MNIST files."""

import errno
import gzip
import importlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from gradsel_cli import data
from gradsel_cli.cli.commands import cli
from gradsel_cli.numerics import training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import experiments, processes, results, trial
from gradsel_cli.runs.records import config_hash

# 2 methods x 2 learning rates x 5 seeds = 20 runs of about 0.05 s each. One Numba thread: on a busy machine
# two threads of such tiny kernels wait on each other and each run takes ten times as long.
SWEEP = [
    "sweep",
    "--method",
    "analytic,alternate",
    "--lr",
    "0.1,0.2",
    "--seeds",
    "5",
    "--hidden",
    "5",
    "--batch",
    "4",
    "--iters",
    "200",
    "--test-limit",
    "200",
    "--workers",
    "1",
    "--threads",
    "1",
    "--json",
]
RUNS = 20
KILLS = 5


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def start_sweep(path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "GRADSEL_DATA_DIR"}
    return subprocess.Popen(
        [sys.executable, "-m", "gradsel_cli", *SWEEP, "--results", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_a_grid_killed_at_random_moments_resumes_to_every_run_exactly_once(tmp_path):
    path = tmp_path / "runs.jsonl"
    gen = random.Random(7)
    seen = []  # lines in the file at each kill
    for _ in range(KILLS):
        before = len(lines_of(path))
        proc = start_sweep(path)
        deadline = time.monotonic() + 60
        while len(lines_of(path)) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # wait for this attempt's first record, then kill at a random moment after it
        time.sleep(gen.uniform(0, 0.1))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        seen.append(len(lines_of(path)))
    assert seen[-1] < RUNS, f"the grid finished before the last kill ({seen}); make the runs longer"
    assert all(b > a for a, b in zip([0, *seen], seen)), f"an attempt made no progress: {seen}"
    proc = start_sweep(path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()

    raw = lines_of(path)
    assert len(raw) == RUNS
    records = [json.loads(line) for line in raw]  # every line whole, strict JSON
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert results.load(path) == records
    hashes = [r["config_hash"] for r in records]
    assert len(set(hashes)) == RUNS
    wanted = experiments.trials(
        TrainConfig(hidden=5, batch=4, iters=200, test_limit=200),
        [dict(method=m, lr=lr) for m in ("analytic", "alternate") for lr in (0.1, 0.2)],
        range(5),
    )
    assert set(hashes) == {config_hash(c.to_dict()) for c in wanted}


def test_a_dask_worker_killed_mid_grid_is_replaced_and_every_run_is_done_once(tmp_path):
    import distributed

    from gradsel_cli.runs.dask_executor import DaskExecutor

    configs = experiments.trials(
        TrainConfig(method="alternate", hidden=5, batch=4, iters=1500, test_limit=200), [{}], range(12)
    )
    path = tmp_path / "runs.jsonl"
    # one client at a time in this process: a second one open beside the executor's can bind a future's
    # event to the other client's loop when a worker dies ("bound to a different event loop")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)  # worker address -> pid
        victim = sorted(pids.values())[0]
        killed = []

        def progress(done, total, label):
            if done == 2 and not killed:  # a few runs in: the victim is in the middle of its next one
                os.kill(victim, signal.SIGKILL)
                killed.append(done)

        records = experiments.run_grid(
            configs, path, DaskExecutor(scheduler=cluster.scheduler_address), progress=progress
        )
        assert killed
        with distributed.Client(cluster) as client:
            assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    assert [r["config"] for r in records] == [c.to_dict() for c in configs]
    stored = results.load(path)
    assert len(stored) == 12 and len({r["config_hash"] for r in stored}) == 12
    assert all(not r["diverged"] for r in stored)


# --- broken results files ---------------------------------------------------------


@pytest.fixture(scope="module")
def record(mnist_raw):
    return trial.run_trial(TrainConfig(hidden=5, batch=4, iters=20, test_limit=200), raw=mnist_raw)


def another(record: dict, seed: int) -> dict:
    """`record` as the run of another seed (each run is stored and loaded once)."""
    config = dict(record["config"], seed=seed)
    return dict(record, config=config, config_hash=config_hash(config))


def test_every_bad_line_is_reported_by_number_the_rest_loaded_and_the_file_untouched(record, tmp_path):
    good = json.dumps(record, allow_nan=False)
    older = dict(record, format=0)
    mismatched = json.loads(good)
    mismatched["config"]["lr"] = 0.5
    lines = [
        good,  # 1
        "garbage \x00 {{{",  # 2 not JSON
        json.dumps(older),  # 3 an older record format
        json.dumps(mismatched),  # 4 config edited after the hash was taken
        "[1, 2, 3]",  # 5 JSON, not a record
        json.dumps(dict(record, config="lr=0.1")),  # 6 config not an object
        "[" * 100000,  # 7 nested past Python's recursion limit
        good.replace(record["config_hash"], "0" * 16)[: len(good) // 2],  # 8 cut off by a crash
    ]
    path = tmp_path / "runs.jsonl"
    last = json.dumps(another(record, 1))
    path.write_bytes("\n".join(lines).encode() + b"\xff\xfe\n" + last.encode())  # 8 also gets invalid UTF-8
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = results.load(path)
    assert loaded == [record, another(record, 1)]  # line 1 and line 9
    messages = [str(w.message) for w in caught]
    assert [m.split(":")[1] for m in messages] == ["2", "3", "4", "5", "6", "7", "8"], messages
    assert "format 0" in messages[1] and "config_hash" in messages[2]
    assert path.read_bytes() == before  # loading changes nothing

    results.append(path, another(record, 2))
    assert path.read_bytes().startswith(before)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(results.load(path)) == 3


def test_a_cut_last_line_is_terminated_before_the_next_append(record, tmp_path):
    good = json.dumps(record, allow_nan=False)
    path = tmp_path / "runs.jsonl"
    path.write_text(good + "\n" + good[:100])
    results.append(path, another(record, 1))
    assert path.read_text().splitlines()[1] == good[:100]  # kept for a person to see, on its own line
    with pytest.warns(UserWarning, match=":2: unreadable"):
        assert len(results.load(path)) == 2


class Refuse:
    """An executor for grids whose every run is already stored: running anything fails the test."""

    def run(self, configs):
        assert not configs, "a stored run was redone"
        yield from ()


def test_records_of_an_older_config_layout_still_count_as_done(record, tmp_path, mnist_raw):
    # Records written before a config field existed have no such key; resume fills in the default.
    old = json.loads(json.dumps(record))
    for key in ("batch_norm", "dropout", "weight_decay"):
        del old["config"][key]
    old["config_hash"] = config_hash(old["config"])
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(old) + "\n")

    got = experiments.run_grid([TrainConfig.from_dict(record["config"])], path, Refuse())
    assert got == [old]


def test_records_with_a_retired_config_field_still_count_as_done(record, tmp_path):
    # eval_every was a config field until the accuracy curve left the configuration: stored runs hold it
    old = json.loads(json.dumps(record))
    old["config"]["eval_every"] = 0
    old["config_hash"] = config_hash(old["config"])
    old["acc_history"] = []
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(old) + "\n")

    assert experiments.run_grid([TrainConfig.from_dict(record["config"])], path, Refuse()) == [old]


# --- broken MNIST files: one line through the CLI, naming the file and the problem ---

STEMS = {key: stem for key, (stem, *_rest) in data.FILES.items()}


@pytest.fixture(scope="module")
def idx(mnist_raw):
    directory = data.find_data_dir()
    return {
        key: gzip.decompress((directory / f"{STEMS[key]}.gz").read_bytes())
        for key in ("train-labels", "test-labels", "test-images")
    }


def _patched(raw: bytes, offset: int, new: bytes) -> bytes:
    return raw[:offset] + new + raw[offset + len(new) :]


BROKEN = {
    "truncated": ("test-labels", lambda b: b["test-labels"][:-100], "truncated"),
    "wrong magic number": ("test-labels", lambda b: _patched(b["test-labels"], 0, (1234).to_bytes(4, "big")), "magic"),
    "wrong image size": ("test-images", lambda b: _patched(b["test-images"], 8, (32).to_bytes(4, "big") * 2), "shape"),
    "labels out of range": ("test-labels", lambda b: _patched(b["test-labels"], 8 + 100, b"\x0c"), "out of range"),
    "images where labels belong": ("test-labels", lambda b: b["test-images"], "an images file"),
    "labels where images belong": ("test-images", lambda b: b["test-labels"], "a labels file"),
    "test labels where train labels belong": ("train-labels", lambda b: b["test-labels"], "shape (10000,)"),
    "one label changed": (
        "test-labels",
        lambda b: _patched(b["test-labels"], 8 + 5, bytes([(b["test-labels"][13] + 1) % 10])),
        "SHA-256",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_mnist_file_is_one_line_through_the_cli(name, idx, tmp_path, monkeypatch):
    monkeypatch.delenv("GRADSEL_DATA_DIR", raising=False)
    key, make, says = BROKEN[name]
    shipped = data.find_data_dir()
    for other, stem in STEMS.items():
        if other != key:
            os.symlink(shipped / f"{stem}.gz", tmp_path / f"{stem}.gz")
    (tmp_path / STEMS[key]).write_bytes(make(idx))
    result = CliRunner().invoke(cli, ["train", "--hidden", "5", "--iters", "1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    assert STEMS[key] in lines[0] and says in lines[0], lines[0]


# --- the fault suite of issue #12: one test (or a parametrized set) per cause --------
# Hostile files, full disks and devices for the results store itself are in test_results.py.

SMALL = ["--shots", "2", "--batch", "4", "--hidden", "5", "--iters", "20", "--test-limit", "200"]
LONG_NAME = "x" * 300 + ".jsonl"  # ENAMETOOLONG on every common file system


def one_line_error(result, *says):
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error:"), result.stderr
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for word in says:
        assert word in errors[0], errors[0]
    return errors[0]


def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("trained before every output was checked")

    # tuning binds training.train at import: import it before patching, so that it binds the real one
    importlib.import_module("gradsel_cli.runs.tuning")
    monkeypatch.setattr("gradsel_cli.numerics.training.train", refuse)
    monkeypatch.setattr("gradsel_cli.runs.tuning.train", refuse)  # patched where it is looked up
    monkeypatch.setattr("gradsel_cli.runs.trial.run_trial", refuse)


@pytest.mark.parametrize("option", ["--out", "--save-model", "--plot"])
def test_1_an_output_that_cannot_be_written_is_one_line_before_any_training(option, runner, tmp_path, monkeypatch):
    no_training(monkeypatch)
    name = LONG_NAME[:-6] + (".png" if option == "--plot" else ".npz")
    result = runner.invoke(cli, ["train", *SMALL, option, str(tmp_path / name)])
    assert result.exit_code == 2
    one_line_error(result, "File name too long")


@pytest.mark.parametrize(
    "command",
    [
        ["sweep", "--seeds", "1", "--hidden", "5"],
        ["compare", "--methods", "analytic", "--seeds", "1", "--hidden", "5"],
        ["table", "--run", "--seeds", "1"],
        ["tune", "--trials", "1", "--hidden", "5"],
    ],
)
def test_1_a_results_file_that_cannot_be_created_is_one_line_before_the_first_run(
    command, runner, tmp_path, monkeypatch
):
    no_training(monkeypatch)
    workers = ["--workers", "1"] if command[0] != "tune" else []
    result = runner.invoke(cli, [*command, "--iters", "20", *workers, "--results", str(tmp_path / LONG_NAME)])
    assert result.exit_code == 2, result.output
    one_line_error(result, "File name too long")


def _disk_breaks(monkeypatch):
    """Every write of a record fails with EIO from now on: a disk that breaks after the up-front checks."""

    def fails(fd, data):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(results, "_write_all", fails)


def test_1_a_write_that_fails_after_training_is_named_and_the_other_outputs_are_written(runner, tmp_path, monkeypatch):
    model, out = tmp_path / "model.npz", tmp_path / "runs.jsonl"
    _disk_breaks(monkeypatch)
    result = runner.invoke(cli, ["train", *SMALL, "--out", str(out), "--save-model", str(model)])
    assert result.exit_code == 2
    one_line_error(result, str(out), "Input/output error", "other outputs were written")
    assert set(np.load(model)) >= {"W1", "b1", "W2", "b2"}  # the model is still saved
    assert not out.exists() or out.read_bytes() == b""  # and no half record


def test_1_a_grid_whose_results_file_fails_mid_run_stops_with_one_line(runner, tmp_path, monkeypatch):
    out = tmp_path / "runs.jsonl"
    _disk_breaks(monkeypatch)
    result = runner.invoke(cli, ["sweep", "--seeds", "2", *SMALL, "--workers", "1", "--results", str(out)])
    assert result.exit_code == 2
    one_line_error(result, str(out), "resume")


def test_1_a_file_that_is_not_results_is_refused_before_any_run(runner, monkeypatch):
    no_training(monkeypatch)  # /proc/version: it opens for writing, and holds a line of text, no run record
    for command in (["train", *SMALL, "--out"], ["sweep", "--seeds", "2", *SMALL, "--workers", "1", "--results"]):
        result = runner.invoke(cli, [*command, "/proc/version"])
        assert result.exit_code == 2
        one_line_error(result, "/proc/version", "holds no run record")


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full", "/dev/zero", "fifo"])
def test_7_results_on_a_device_or_pipe_is_refused_before_any_run(device, runner, tmp_path, monkeypatch):
    no_training(monkeypatch)
    if device == "fifo":
        device = str(tmp_path / "pipe")
        os.mkfifo(device)
    result = runner.invoke(cli, ["compare", "--methods", "analytic", "--seeds", "1", *SMALL, "--results", device])
    assert result.exit_code == 2
    one_line_error(result, "not a regular file")


def test_3_a_stored_record_with_bad_values_is_skipped_with_a_warning_and_its_run_redone(record, tmp_path):
    bad = json.loads(json.dumps(record))
    bad["accuracy"] = "x"
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(bad) + "\n")
    ran = []

    class Record:
        def run(self, configs):
            for config in configs:
                ran.append(config)
                yield config, record

    with pytest.warns(UserWarning, match="'accuracy' must be"):
        got = experiments.run_grid([TrainConfig.from_dict(record["config"])], path, Record())
    assert len(ran) == 1 and got == [record]


@pytest.mark.parametrize(
    "bad",
    [
        "accuracy string",
        "accuracy missing",
        "diverged yes",
        "loss_history nope",
        "accuracy -5",
        "accuracy 1e308",
        "seed string",
    ],
)
def test_3_4_table_and_compare_skip_a_bad_record_instead_of_crashing_or_averaging_it(
    bad, record, runner, tmp_path, monkeypatch
):
    no_training(monkeypatch)
    changed = json.loads(json.dumps(record))
    key, value = {
        "accuracy string": ("accuracy", "x"),
        "accuracy missing": ("accuracy", None),
        "diverged yes": ("diverged", "yes"),
        "loss_history nope": ("loss_history", "nope"),
        "accuracy -5": ("accuracy", -5),
        "accuracy 1e308": ("accuracy", 1e308),
        "seed string": ("seed", "\x1b[31m0"),
    }[bad]
    if key == "seed":
        changed["config"]["seed"] = value
        changed["config_hash"] = config_hash(changed["config"])
    elif value is None:
        del changed[key]
    else:
        changed[key] = value
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(changed) + "\n")
    result = runner.invoke(cli, ["table", "--results", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_cells"] > 0
    assert "\x1b" not in result.stderr and result.stderr.count("Warning:") == 1, result.stderr


def test_6_a_run_another_process_stored_meanwhile_is_not_appended_again(record, tmp_path):
    path = tmp_path / "runs.jsonl"

    class OtherWriterFirst:  # a second identical command stores each run just before this one finishes it
        def run(self, configs):
            for config in configs:
                results.append(path, record)
                yield config, record

    experiments.run_grid([TrainConfig.from_dict(record["config"])], path, OtherWriterFirst())
    assert len(lines_of(path)) == 1


def test_8_bad_data_with_several_workers_is_the_same_one_line_error_as_with_one(runner, tmp_path):
    empty = tmp_path / "mnist"
    empty.mkdir()
    for workers in ("1", "2"):
        result = runner.invoke(cli, ["sweep", "--seeds", "2", *SMALL, "--workers", workers, "--data-dir", str(empty)])
        assert result.exit_code == 2, result.output
        one_line_error(result, "missing", "train-images")


def test_9_compare_with_a_diverged_run_prints_the_table_with_it_counted(runner, tmp_path, mnist_raw):
    configs = experiments.trials(
        TrainConfig(hidden=5, batch=4, iters=20, test_limit=200),
        [dict(method="analytic"), dict(method="alternate")],
        range(3),
    )
    records = [trial.run_trial(c, raw=mnist_raw) for c in configs]
    diverged = records[4]  # alternate, seed 1
    diverged.update(diverged=True, accuracy=None, final_loss=None, iterations_done=7, predictions="-" * 200)
    diverged.update(counts={"analytic": 4, "numeric": 3}, shares={"analytic": 4 / 7, "numeric": 3 / 7})
    path = tmp_path / "runs.jsonl"
    for rec in records:
        results.append(path, rec)
    args = [
        "compare",
        "--methods",
        "analytic,alternate",
        "--seeds",
        "3",
        *SMALL,
        "--workers",
        "1",
        "--results",
        str(path),
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "diverged (left out of the statistics): alternate 1 of 3" in " ".join(result.stdout.split())
    summary = json.loads(runner.invoke(cli, [*args, "--json"]).stdout)
    alternate = summary["methods"][1]
    assert alternate["diverged"] == 1 and alternate["accuracy"]["n"] == 2
    assert alternate["versus"]["n"] == 2 and alternate["versus"]["diverged_pairs"] == 1


def test_10_tune_says_no_setting_worked_when_every_trial_diverged(runner, tmp_path):
    result = runner.invoke(
        cli, ["tune", "--trials", "2", *SMALL, "--lr-range", "1,2", "--weight-decay-range", "1e20,1e21"]
    )
    assert result.exit_code != 0
    one_line_error(result, "no setting worked")
    assert "chosen" not in result.stdout


def _serve(handler):
    """A listener on localhost that hands each connection to `handler` in a thread; its address."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    held = []

    def accept():
        while True:
            conn, _ = server.accept()
            held.append(conn)
            handler(conn)

    threading.Thread(target=accept, daemon=True).start()
    return f"tcp://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["silent", "http"])
def test_11_a_scheduler_address_that_is_not_a_dask_scheduler_fails_within_the_timeout(kind):
    from gradsel_cli.runs.dask_executor import DaskExecutor

    def http(conn):
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    address = _serve(http if kind == "http" else lambda conn: None)
    executor = DaskExecutor(scheduler=address, timeout=1)
    with pytest.raises(trial.GridError, match="no Dask scheduler at"):
        next(executor.run([TrainConfig(hidden=5, iters=1)]))


@pytest.mark.parametrize("args", [["--hidden", "1000000000", "--batch", "1"], ["--hidden", "5", "--batch", "100000"]])
def test_13_bench_refuses_sizes_train_refuses_before_loading_anything(args, runner, monkeypatch):
    monkeypatch.setattr(data, "load_mnist_raw", lambda *a, **k: pytest.fail("bench started on a size beyond the limit"))
    result = runner.invoke(cli, ["bench", *args, "--repeat", "1"])
    assert result.exit_code == 2
    train = runner.invoke(cli, ["train", *args])  # each size is checked as train checks it, with its message
    one_line_error(result, "not in the range 1<=x<=10000")
    assert result.stderr.strip().splitlines()[-1] == train.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("step", [1e-300, 2e-15])
def test_14_a_finite_difference_step_below_float64_resolution_is_warned_about(mnist_raw, step):
    with pytest.warns(UserWarning, match="within 10 of float64's spacing"):
        training.train(
            TrainConfig(method="numeric", hidden=5, batch=4, iters=1, test_limit=200, fd_step=step), data=mnist_raw
        )


@pytest.mark.parametrize(
    ("precision", "step", "warned"), [("float64", 1e-13, False), ("float32", 1e-4, False), ("float32", 1e-6, True)]
)
def test_14_the_step_warning_is_for_the_runs_precision(mnist_raw, precision, step, warned):
    """The rounding floor is the precision's: float32's spacing is 1.2e-7, so 1e-6 is within 10 of it."""
    import warnings

    config = TrainConfig(
        method="numeric", hidden=5, batch=4, iters=1, test_limit=200, fd_step=step, precision=precision
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training.train(config, data=mnist_raw)
    assert any("spacing" in str(w.message) for w in caught) == warned


@pytest.mark.parametrize(
    "args, names, not_blamed",
    [
        (["--weight-decay", "1e20", "--lr", "1"], "--weight-decay", "--lr."),
        (["--lr", "1e308"], "--lr", "--weight-decay"),
    ],
)
def test_14_the_divergence_message_names_the_setting_at_fault(args, names, not_blamed, runner):
    result = runner.invoke(cli, ["train", "--method", "analytic", *SMALL, *args])
    assert result.exit_code == 1
    hint = result.stderr.split("not finite.")[1]
    assert names in hint
    assert not_blamed not in hint.replace(" ", "")


@pytest.mark.parametrize(
    "config, names",
    [
        (dict(method="numeric", fd_step=1e-300), "--fd-step 1e-300"),
        (dict(method="alternate", sources="analytic,numeric", fd_step=0.5), "--fd-step 0.5"),
        (dict(method="complex-step", cs_step=0.5), "--cs-step 0.5"),
        (dict(method="select", sources="analytic,complex-step", cs_step=0.5), "--cs-step 0.5"),
        (dict(method="complex-step"), "--lr"),  # its default step: nothing of its own to suspect
        (dict(method="select", sources="analytic,complex-step", fd_step=1e-300), "--lr"),  # numeric does not run
    ],
)
def test_14_the_divergence_hint_names_the_source_option_at_fault(config, names):
    hint = training.divergence_hint(TrainConfig(**config))
    assert names in hint
    assert ("--lr" in hint) is (names == "--lr")


def test_14_tune_blames_val_per_class_when_it_is_too_large(runner):
    result = runner.invoke(cli, ["tune", "--trials", "1", *SMALL, "--val-per-class", "6000"])
    assert result.exit_code == 2
    assert "--val-per-class" in one_line_error(result)


@pytest.mark.parametrize(
    "optimizer, diverges", [("sgd", True), ("nesterov", True), ("adam", False)]
)  # adam's step is bounded by lr whatever the gradient
def test_14_a_huge_weight_decay_diverges_without_a_numpy_warning(optimizer, diverges, mnist_raw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = training.train(
            TrainConfig(
                method="analytic", optimizer=optimizer, hidden=5, batch=4, iters=300, test_limit=200, weight_decay=1e23
            ),
            data=mnist_raw,
        )
    assert run.diverged == diverges
    if not diverges:
        assert math.isfinite(run.final_loss) and len(run.loss_history) > 0


def test_14_a_local_cluster_with_bad_data_is_one_data_error_and_no_worker_logs(tmp_path, capfd):
    from gradsel_cli.runs.dask_executor import DaskExecutor

    empty = tmp_path / "mnist"
    empty.mkdir()
    with pytest.raises(data.DataError, match="missing"):
        next(DaskExecutor(workers=1, data_dir=empty).run([TrainConfig(hidden=5, iters=1)]))
    assert capfd.readouterr().err == ""


# --- process-spawning faults (slow) ---------------------------------------------------


def _alive(pids) -> list[int]:
    import psutil

    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_5_workers_and_the_resource_tracker_exit_when_the_grid_process_dies(sig, tmp_path):
    import psutil

    path = tmp_path / "runs.jsonl"
    args = [a if a != "1" or prev != "--workers" else "2" for prev, a in zip(["", *SWEEP], SWEEP)]
    env = {**{k: v for k, v in os.environ.items() if k != "GRADSEL_DATA_DIR"}, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradsel_cli", *args, "--iters", "3000", "--results", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    children = []
    try:
        deadline = time.monotonic() + 120
        while not lines_of(path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the workers are up and running trials
        children = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(children) >= 2, children  # two workers (and the resource tracker)
        os.kill(proc.pid, sig)  # the parent only: nobody tells the workers
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30  # a bound, not a speed claim: orphans used to live on indefinitely
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _alive(children) == [], "workers outlived their parent"
    finally:
        for pid in _alive([proc.pid, *children]):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_6_two_identical_grids_at_once_store_every_run_once(tmp_path):
    path = tmp_path / "runs.jsonl"
    first, second = start_sweep(path), start_sweep(path)
    for proc in (first, second):
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()
    hashes = [json.loads(line)["config_hash"] for line in lines_of(path)]
    assert len(hashes) == RUNS and len(set(hashes)) == RUNS


def test_5_the_resource_tracker_of_a_killed_grid_stays_quiet(monkeypatch):
    """A SIGKILLed parent leaves the resource tracker to warn about leaked semaphores: the tracker
    inherits -W options from the parent's sys.warnoptions, so the rule must reach its command line."""
    from multiprocessing import util

    monkeypatch.setattr(sys, "warnoptions", [])
    processes.quiet_resource_tracker()
    processes.quiet_resource_tracker()  # once only
    assert sys.warnoptions == ["ignore:resource_tracker:UserWarning"]
    assert "-Wignore:resource_tracker:UserWarning" in util._args_from_interpreter_flags()
