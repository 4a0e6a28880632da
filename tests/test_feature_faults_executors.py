"""The executors when things go wrong: a Dask scheduler with no worker or one that dies, bad --scheduler
addresses, --workers beyond the machine, and Ctrl-C reaching worker processes. Every process a test
starts is in a session of its own and is killed at the end; every wait is bounded."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

from gradsel_cli.cli.commands import cli
from gradsel_cli.config import scheduler_address
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import experiments, local, processes, results, trial

TINY = ["sweep", "--hidden", "10", "--iters", "20", "--test-limit", "200", "--seeds", "2"]


def one_line_error(result) -> str:
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def env():
    return {k: v for k, v in os.environ.items() if k != "GRADSEL_DATA_DIR"}


def start(*args, **kwargs) -> subprocess.Popen:
    """A process in a session of its own (killed with its children by `stop`)."""
    return subprocess.Popen(list(args), env=env(), start_new_session=True, **kwargs)


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def dask_cli(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


@pytest.fixture
def scheduler():
    """(address, process) of a `dask scheduler` on a free port, with no worker."""
    proc = start(
        dask_cli("dask"),
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-dashboard",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        address = None
        while address is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"Scheduler at:\s+(tcp://[\d.]+:\d+)", proc.stderr.readline())
            address = found and found[1]
        assert address, "the scheduler did not start"
        yield address, proc
    finally:
        stop(proc)


def start_worker(address) -> subprocess.Popen:
    return start(
        dask_cli("dask"),
        "worker",
        address,
        "--nworkers",
        "1",
        "--nthreads",
        "1",
        "--no-dashboard",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- A1: a scheduler with no worker ----------------------------------------------------------


def test_a_scheduler_without_workers_waits_the_timeout_says_so_once_and_ends_in_one_line(scheduler):
    address, _ = scheduler
    proc = start(
        sys.executable,
        "-m",
        "gradsel_cli",
        *TINY,
        "--executor",
        "dask",
        "--scheduler",
        address,
        "--timeout",
        "2",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=90)  # a bound, not a speed claim: it used to wait forever
    finally:
        stop(proc)
    lines = [line for line in err.splitlines() if line.strip() and "Compiling" not in line]
    assert proc.returncode == 1 and out == ""
    assert len(lines) == 2, err
    assert lines[0].startswith("Waiting up to 2 s for a worker") and address in lines[0]
    assert lines[1].startswith(f"Error: the Dask scheduler at {address} has had no worker for 2 s")
    assert f"dask worker {address}" in lines[1]
    assert "--timeout" in lines[1]


def test_a_worker_that_joins_while_the_grid_waits_runs_it(scheduler, tmp_path):
    address, _ = scheduler
    notes, workers = [], []

    def notify(note):
        notes.append(note)
        workers.append(start_worker(address))

    configs = experiments.trials(TrainConfig(hidden=5, iters=20, test_limit=200), [{}], range(2))
    executor = experiments.make_executor("dask", None, address, timeout=60)
    executor.notify = notify
    # a bound: were the wait never said, a worker comes anyway after 20 s (it used to hang until one came)
    anyway = threading.Timer(20, lambda: notes or workers.append(start_worker(address)))
    anyway.start()
    try:
        records = experiments.run_grid(configs, tmp_path / "runs.jsonl", executor)
    finally:
        anyway.cancel()
        for proc in workers:
            stop(proc)
    assert len(notes) == 1 and "Waiting up to 60 s" in notes[0]
    assert [r["config"] for r in records] == [c.to_dict() for c in configs]


def test_workers_that_all_leave_mid_grid_end_it_after_the_timeout_with_what_was_stored(scheduler, tmp_path):
    address, _ = scheduler
    worker = start_worker(address)
    path = tmp_path / "runs.jsonl"
    configs = experiments.trials(TrainConfig(hidden=10, iters=1500, test_limit=200), [{}], range(6))
    notes = []

    def progress(done, total, label):
        if done == 1:
            os.killpg(worker.pid, signal.SIGKILL)  # the only worker, and its nanny

    executor = experiments.make_executor("dask", None, address, timeout=2)
    executor.notify = notes.append
    try:
        with pytest.raises(trial.GridError, match="has had no worker for 2 s") as caught:
            experiments.run_grid(configs, path, executor, progress=progress)  # it used to wait for ever
    finally:
        stop(worker)
    assert len(notes) == 1 and "Waiting up to 2 s for a worker" in notes[0]
    stored = len(results.load(path))
    said = re.search(r"(\d+) runs? stored in ", str(caught.value))
    assert said and int(said.group(1)) == stored, str(caught.value)  # the error counts what the file holds
    assert str(caught.value).endswith("run the same command again to resume")
    assert 0 < stored < len(configs)  # the kill after the first run left the grid unfinished


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_while_waiting_for_a_scheduler_to_answer_ends_at_once(sig):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(120)
    proc = start(
        sys.executable,
        "-m",
        "gradsel_cli",
        *TINY,
        "--executor",
        "dask",
        "--timeout",
        "600",
        "--scheduler",
        f"tcp://127.0.0.1:{server.getsockname()[1]}",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    conns = []
    try:
        # The first connection is gradsel's probe of the port (closed at once); the one that sends Dask's handshake
        # is the question, and gradsel now waits for an answer that never comes.
        while not conns or not conns[-1].recv(1):
            conns.append(server.accept()[0])
            conns[-1].settimeout(120)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)  # a bound well inside --timeout: it used to wait all of it
    finally:
        for conn in conns:
            conn.close()
        stop(proc)
        server.close()
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line.strip() and "Compiling" not in line] == [
        "Interrupted; none of the runs was stored (give --results FILE to keep them as they finish)."
    ]


# --- A5: the scheduler dies mid-grid ------------------------------------------------------------


@pytest.mark.parametrize("store", [True, False], ids=["results", "no-results"])
def test_a_scheduler_that_dies_mid_grid_is_one_error_with_what_was_stored(scheduler, tmp_path, capfd, store):
    address, scheduler_proc = scheduler
    worker = start_worker(address)
    path = tmp_path / "runs.jsonl" if store else None
    configs = experiments.trials(TrainConfig(hidden=10, iters=1500, test_limit=200), [{}], range(6))

    def progress(done, total, label):
        if done == 1:  # the first run is in: the scheduler dies with the others to do
            os.killpg(scheduler_proc.pid, signal.SIGKILL)

    try:
        capfd.readouterr()
        with pytest.raises(trial.GridError) as caught:
            experiments.run_grid(
                configs, path, experiments.make_executor("dask", None, address, timeout=10), progress=progress
            )
    finally:
        stop(worker)
    message = str(caught.value)
    assert message.startswith(f"lost the Dask scheduler at {address}")
    if store:  # a run that had reached the client as the scheduler died is stored too
        kept = re.search(
            rf"; (\d+) runs? stored in {re.escape(str(path))}: run the same command again to resume$", message
        )
        assert kept and int(kept[1]) == len(results.load(path)) >= 1, message
    else:
        assert re.search(r"; no run was stored \(\d+ finished; give --results FILE", message), message
    assert capfd.readouterr().err == ""  # none of distributed's log lines or tracebacks


def test_a_grid_error_says_what_was_stored_and_how_to_go_on(tmp_path, mnist_raw):
    class DiesAfterTwo:
        def run(self, configs):
            for config in configs[:2]:
                yield config, trial.run_trial(config, raw=mnist_raw)
            raise trial.GridError("a worker process died")

    configs = experiments.trials(TrainConfig(hidden=5, iters=5, test_limit=200), [{}], range(4))
    path = tmp_path / "runs.jsonl"
    experiments.run_grid(configs[:1], path, local.LocalExecutor(1))
    with pytest.raises(
        trial.GridError,
        match=r"^a worker process died; 3 runs stored in .*runs\.jsonl: run the "
        r"same command again to resume$",
    ):
        experiments.run_grid(configs, path, DiesAfterTwo())
    with pytest.raises(trial.GridError, match=r"no run was stored \(2 finished; give --results FILE"):
        experiments.run_grid(configs, None, DiesAfterTwo())


# --- A9: --scheduler ---------------------------------------------------------------------------

BAD_ADDRESSES = [
    "tcp://127.0.0.1:notaport",
    "bogus://",
    "bogus://127.0.0.1:8786",
    "127.0.0.1",
    "localhost",
    "tcp://[::1:8786",
    "tcp://::1:8786",
    "tcp://127.0.0.1:65536",
    "tcp://127.0.0.1:99999999999999999999",
    "tcp://127.0.0.1:0",
    "",
    " ",
    "tcp://",
    "tcp://:8786",
    "tcp://999.0.0.1:8786",
    "tcp://a..b:8786",
    "tcp://127.0.0.1:8786/x",
    "http://127.0.0.1:8786",
    "tcp://127.0.0.1:-1",
    "tcp://127.0.0.1:８７８６",
]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_malformed_scheduler_address_is_a_usage_error_naming_the_form(address, runner, monkeypatch):
    monkeypatch.setattr(experiments, "make_executor", lambda *a, **k: pytest.fail("an executor was made"))
    result = runner.invoke(cli, [*TINY, "--executor", "dask", "--scheduler", address, "--timeout", "1"])
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "--scheduler" in line and "tcp://HOST:PORT" in line


@pytest.mark.parametrize("address", ["", "bogus://", "127.0.0.1"])
def test_the_python_api_refuses_the_same_addresses(address):
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        experiments.make_executor("dask", 1, address)
    with pytest.raises(ValueError, match="--scheduler needs --executor dask"):
        experiments.make_executor("local", 1, address)


@pytest.mark.parametrize(
    "given, address",
    [
        ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("localhost:8786", "tcp://localhost:8786"),
        ("tls://scheduler.example.org:8786", "tls://scheduler.example.org:8786"),
        ("tcp://[::1]:8786", "tcp://[::1]:8786"),
        (" tcp://10.0.0.2:1 ", "tcp://10.0.0.2:1"),
    ],
)
def test_well_formed_addresses_are_taken(given, address):
    assert scheduler_address(given) == address


# --- A10: --workers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "workers, runs, used, said",
    [
        (1000, 50, 4, True),
        (10**20, 50, 4, True),
        (3, 50, 3, False),
        (1000, 3, 3, True),
        (1000, 1, 1, True),
        (4, 50, 4, False),
        (5, 2, 2, True),
    ],
)
def test_workers_are_capped_at_two_per_core_and_the_runs_and_a_count_past_the_cores_is_said(
    workers, runs, used, said, monkeypatch
):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    notes = []
    assert processes.capped_workers(workers, runs, notes.append) == used
    assert len(notes) == int(said)
    if said:
        assert f"--workers {workers}" in notes[0] and f"starting {used} worker process" in notes[0]


@pytest.mark.parametrize("workers", ["1000", "100000000000000000000"])
def test_a_huge_workers_count_runs_with_capped_processes_and_says_so_once(workers, runner, monkeypatch):
    started = []

    class Pool(local.ProcessPoolExecutor):
        def __init__(self, max_workers, *args, **kwargs):
            started.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(local, "ProcessPoolExecutor", Pool)
    result = runner.invoke(cli, [*TINY, "--seeds", "3", "--workers", workers, "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and started == [2]
    notes = [line for line in result.stderr.splitlines() if "--workers" in line]
    assert notes == [f"--workers {workers} is more than 2 per core; starting 2 worker processes (1 core here)"]


def test_a_local_cluster_gets_no_more_workers_than_runs_or_cores(monkeypatch):
    import distributed

    from gradsel_cli.runs.dask_executor import DaskExecutor

    asked = []

    def cluster(*args, n_workers, **kwargs):
        asked.append(n_workers)
        raise RuntimeError("stop here")

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(distributed, "LocalCluster", cluster)
    for workers, runs in ((1000, 50), (1000, 3)):
        with pytest.raises(RuntimeError, match="stop here"):
            next(DaskExecutor(workers).run([TrainConfig(hidden=5, iters=1, seed=s) for s in range(runs)]))
    assert asked == [4, 3]


def test_a_local_cluster_says_nothing_when_the_dashboard_port_is_taken(capfd):
    from gradsel_cli.runs.dask_executor import DaskExecutor

    with socket.socket() as held:
        with contextlib.suppress(OSError):  # taken already by another process: the same case
            held.bind(("", 8787))
            held.listen()
        capfd.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            done = list(DaskExecutor(1).run([TrainConfig(hidden=5, iters=5, test_limit=200)]))
    assert len(done) == 1
    assert [str(w.message) for w in caught if "8787" in str(w.message)] == []
    assert capfd.readouterr().err == ""


# --- A6: Ctrl-C ------------------------------------------------------------------------------------


def _alive(pids) -> list:
    import psutil

    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


def _sweep_of_two_workers(executor, path, iters, seeds):
    """A sweep on two workers of `executor`, storing into `path`; stderr piped."""
    args = ["--hidden", "10", "--iters", str(iters), "--test-limit", "200", "--seeds", str(seeds)]
    return start(
        sys.executable,
        "-m",
        "gradsel_cli",
        "sweep",
        *args,
        "--executor",
        executor,
        "--workers",
        "2",
        "--results",
        str(path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _workers_of(pid) -> list:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return [p for p in psutil.Process(pid).children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    return []


@pytest.mark.parametrize("executor", ["local", "dask"])
@pytest.mark.parametrize("moment", ["worker-starting", "worker-started", "running"])
def test_ctrl_c_is_the_parents_one_line_whatever_the_workers_were_doing(executor, moment, tmp_path):
    """The terminal sends Ctrl-C to the whole process group: here to the grid and every worker at once."""
    import psutil

    path = tmp_path / "runs.jsonl"
    proc = _sweep_of_two_workers(executor, path, iters=3000, seeds=8)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if moment == "running" and path.exists() and path.stat().st_size:
                break
            if moment != "running" and _workers_of(proc.pid):
                if moment == "worker-started":
                    time.sleep(1.0)
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read()
        group = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    lines = [line for line in err.splitlines() if line.strip() and "Compiling" not in line]
    assert proc.returncode == 130
    stored = path.exists() and path.stat().st_size > 0  # the note says what the file holds, whatever the moment
    kept = f"Interrupted; the finished runs are kept in {path}: run the same command again to resume."
    assert lines == [kept if stored else f"Interrupted before any of the runs finished; nothing was stored in {path}."]
    deadline = time.monotonic() + 30  # a bound: the workers end with their parent
    while _alive(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(group) == []


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_worker_processes_do_not_answer_ctrl_c_so_a_grid_whose_workers_get_one_goes_on(executor, tmp_path):
    """Only the grid's own process answers Ctrl-C. SIGINT sent to the workers alone, again and again from the
    moment they exist (while they start, load the data, run), neither stops them nor makes them speak."""
    import psutil

    path = tmp_path / "runs.jsonl"
    proc = _sweep_of_two_workers(executor, path, iters=300, seeds=4)
    try:
        deadline = time.monotonic() + 120
        while not _workers_of(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        hit = set()
        until = time.monotonic() + 3
        while proc.poll() is None and time.monotonic() < until:
            for worker in _workers_of(proc.pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    worker.send_signal(signal.SIGINT)
                    hit.add(worker.pid)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=120)
    finally:
        stop(proc)
    assert hit, "no worker was seen"
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Exception" not in err and "Interrupted" not in err, err
    assert len(results.load(path)) == 4


@pytest.mark.parametrize("timeout", ["1e300", "86401", "inf"])
def test_a_timeout_too_large_to_mean_anything_is_refused_in_one_line(timeout, runner):
    result = runner.invoke(cli, [*TINY, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--timeout", timeout])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "--timeout" in result.stderr
