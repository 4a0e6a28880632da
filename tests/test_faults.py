"""Nothing is lost: a grid killed with SIGKILL at random moments and resumed, a Dask worker killed mid-grid,
broken results files, broken MNIST files."""

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import pytest
from click.testing import CliRunner

from gradsel_cli import data, experiments, results
from gradsel_cli.cli import cli
from gradsel_cli.training import TrainConfig

# 2 methods x 2 learning rates x 5 seeds = 20 runs of about 0.05 s each. One Numba thread: on a busy machine
# two threads of such tiny kernels wait on each other and each run takes ten times as long.
SWEEP = ["sweep", "--method", "analytic,alternate", "--lr", "0.1,0.2", "--seeds", "5", "--hidden", "5",
         "--batch", "4", "--iters", "200", "--test-limit", "200", "--workers", "1", "--threads", "1", "--json"]
RUNS = 20
KILLS = 5


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def start_sweep(path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "GRADSEL_DATA_DIR"}
    return subprocess.Popen([sys.executable, "-m", "gradsel_cli", *SWEEP, "--results", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


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
    assert all(b > a for a, b in zip([0] + seen, seen)), f"an attempt made no progress: {seen}"
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
    wanted = experiments.trials(TrainConfig(hidden=5, batch=4, iters=200, test_limit=200),
                                [dict(method=m, lr=lr) for m in ("analytic", "alternate") for lr in (0.1, 0.2)],
                                range(5))
    assert set(hashes) == {results.config_hash(c.to_dict()) for c in wanted}


def test_a_dask_worker_killed_mid_grid_is_replaced_and_every_run_is_done_once(tmp_path):
    distributed = pytest.importorskip("distributed")
    from gradsel_cli.dask_executor import DaskExecutor

    configs = experiments.trials(TrainConfig(method="alternate", hidden=5, batch=4, iters=1500, test_limit=200),
                                 [{}], range(12))
    path = tmp_path / "runs.jsonl"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)  # worker address -> pid
        victim = sorted(pids.values())[0]
        killed = []

        def progress(done, total, label):
            if done == 2 and not killed:  # a few runs in: the victim is in the middle of its next one
                os.kill(victim, signal.SIGKILL)
                killed.append(done)

        records = experiments.run_grid(configs, path, DaskExecutor(scheduler=cluster.scheduler_address),
                                       progress=progress)
        assert killed
        assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    assert [r["config"] for r in records] == [c.to_dict() for c in configs]
    stored = results.load(path)
    assert len(stored) == 12 and len({r["config_hash"] for r in stored}) == 12
    assert all(not r["diverged"] for r in stored)


# --- broken results files ---------------------------------------------------------

@pytest.fixture(scope="module")
def record(mnist_raw):
    return experiments.run_trial(TrainConfig(hidden=5, batch=4, iters=20, test_limit=200), raw=mnist_raw)


def test_every_bad_line_is_reported_by_number_the_rest_loaded_and_the_file_untouched(record, tmp_path):
    good = json.dumps(record, allow_nan=False)
    older = dict(record, format=0)
    mismatched = json.loads(good)
    mismatched["config"]["lr"] = 0.5
    lines = [
        good,                                       # 1
        "garbage \x00 {{{",                         # 2 not JSON
        json.dumps(older),                          # 3 an older record format
        json.dumps(mismatched),                     # 4 config edited after the hash was taken
        "[1, 2, 3]",                                # 5 JSON, not a record
        json.dumps(dict(record, config="lr=0.1")),  # 6 config not an object
        "[" * 100000,                               # 7 nested past Python's recursion limit
        good.replace(record["config_hash"], "0" * 16)[: len(good) // 2],  # 8 cut off by a crash
    ]
    path = tmp_path / "runs.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\xff\xfe\n" + good.encode())  # 8 also gets invalid UTF-8
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = results.load(path)
    assert loaded == [record, record]  # line 1 and line 9
    messages = [str(w.message) for w in caught]
    assert [m.split(":")[1] for m in messages] == ["2", "3", "4", "5", "6", "7", "8"], messages
    assert "format 0" in messages[1] and "config_hash" in messages[2]
    assert path.read_bytes() == before  # loading changes nothing

    results.append(path, record)
    assert path.read_bytes().startswith(before)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(results.load(path)) == 3


def test_a_cut_last_line_is_terminated_before_the_next_append(record, tmp_path):
    good = json.dumps(record, allow_nan=False)
    path = tmp_path / "runs.jsonl"
    path.write_text(good + "\n" + good[:100])
    results.append(path, record)
    assert path.read_text().splitlines()[1] == good[:100]  # kept for a person to see, on its own line
    with pytest.warns(UserWarning, match=":2: unreadable"):
        assert len(results.load(path)) == 2


def test_records_of_an_older_config_layout_still_count_as_done(record, tmp_path, mnist_raw):
    # Records written before a config field existed have no such key; resume fills in the default.
    old = json.loads(json.dumps(record))
    for key in ("batch_norm", "dropout", "weight_decay"):
        del old["config"][key]
    old["config_hash"] = results.config_hash(old["config"])
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(old) + "\n")

    class Refuse:
        def run(self, configs):
            assert not configs, "a stored run was redone"
            yield from ()

    got = experiments.run_grid([TrainConfig.from_dict(record["config"])], path, Refuse())
    assert got == [old]


# --- broken MNIST files: one line through the CLI, naming the file and the problem ---

STEMS = {key: stem for key, (stem, *_rest) in data.FILES.items()}


@pytest.fixture(scope="module")
def idx(mnist_raw):
    directory = data.find_data_dir()
    return {key: gzip.decompress((directory / f"{STEMS[key]}.gz").read_bytes())
            for key in ("train-labels", "test-labels", "test-images")}


def _patched(raw: bytes, offset: int, new: bytes) -> bytes:
    return raw[:offset] + new + raw[offset + len(new):]


BROKEN = {
    "truncated": ("test-labels", lambda b: b["test-labels"][:-100], "truncated"),
    "wrong magic number": ("test-labels", lambda b: _patched(b["test-labels"], 0, (1234).to_bytes(4, "big")), "magic"),
    "wrong image size": ("test-images", lambda b: _patched(b["test-images"], 8, (32).to_bytes(4, "big") * 2), "shape"),
    "labels out of range": ("test-labels", lambda b: _patched(b["test-labels"], 8 + 100, b"\x0c"), "out of range"),
    "images where labels belong": ("test-labels", lambda b: b["test-images"], "an images file"),
    "labels where images belong": ("test-images", lambda b: b["test-labels"], "a labels file"),
    "test labels where train labels belong": ("train-labels", lambda b: b["test-labels"], "shape (10000,)"),
    "one label changed": ("test-labels", lambda b: _patched(b["test-labels"], 8 + 5, bytes([(b["test-labels"][13] + 1) % 10])),
                          "SHA-256"),
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
