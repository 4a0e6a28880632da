"""The Dask executor (runs/dask_executor.py): the task a worker runs, the scheduler handshake, distributed's log
lines kept quiet, its worker configuration and the environment of its workers."""

import logging
import socket
import sys

import pytest

from gradsel_cli import data
from gradsel_cli.core import threads
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import dask_executor, trial
from gradsel_cli.runs.trial import GridError

TINY = TrainConfig(shots=1, batch=2, hidden=3, iters=6, test_limit=50)


@pytest.fixture
def automatic():
    """The automatic thread policy after the test (a worker's task sets one thread)."""
    yield
    threads.set_threads(None)


def same_outcome(a: dict, b: dict) -> bool:
    keys = ("config_hash", "accuracy", "final_loss", "loss_history", "predictions", "diverged")
    return all(a[k] == b[k] for k in keys)


def test_a_task_is_the_trial_on_one_thread_with_mnist_loaded_once(monkeypatch, mnist_raw, automatic):
    loads = []
    monkeypatch.setattr(dask_executor, "_RAW", {})
    monkeypatch.setattr(data, "load_mnist_raw", lambda data_dir=None: loads.append(data_dir) or mnist_raw)
    first = dask_executor._task(TINY.to_dict(), None)
    second = dask_executor._task(TINY.replace(seed=1).to_dict(), None)
    assert loads == [None]  # the worker keeps the images between tasks
    assert threads.get_threads() == 1
    assert same_outcome(first, trial.run_trial(TINY, raw=mnist_raw))
    assert same_outcome(second, trial.run_trial(TINY.replace(seed=1), raw=mnist_raw))


def test_without_distributed_the_error_is_an_import_error_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'gradsel\[dask\]'"):
        dask_executor.identify_scheduler("tcp://127.0.0.1:1")


def test_an_empty_grid_starts_no_cluster(monkeypatch):
    monkeypatch.setattr(dask_executor.DaskExecutor, "_connect", lambda *a: pytest.fail("connected"))
    assert list(dask_executor.DaskExecutor(2).run([])) == []


def test_a_port_that_accepts_and_never_answers_is_no_scheduler_within_the_timeout():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(GridError, match=r"no Dask scheduler at .*no answer within 0\.5 s") as err:
            dask_executor.identify_scheduler(address, timeout=0.5)
    assert not err.value.resume


def test_a_closed_port_is_no_scheduler_and_says_how_to_start_one():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    with pytest.raises(GridError, match="start one with `dask scheduler`"):
        dask_executor.identify_scheduler(f"tcp://127.0.0.1:{port}", timeout=2)


def test_a_closed_port_fails_at_once_whatever_the_timeout():
    # Dask's own connect retries a refused connection until the timeout: a day here, were it not probed first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    executor = dask_executor.DaskExecutor(scheduler=f"tcp://127.0.0.1:{port}", timeout=dask_executor.MAX_DASK_TIMEOUT)
    with pytest.raises(GridError, match="ConnectionRefusedError"):
        list(executor.run([TINY]))


@pytest.mark.parametrize("timeout", [0.0, -1.0, 86_401.0, 1e300, float("inf"), float("nan")])
def test_a_timeout_past_a_day_or_not_positive_is_refused(timeout):
    with pytest.raises(ValueError, match="timeout"):
        dask_executor.DaskExecutor(scheduler="tcp://127.0.0.1:8786", timeout=timeout)


def test_distributed_log_lines_are_silenced_inside_and_restored_after():
    logger = logging.getLogger("distributed.test-quiet")
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        with dask_executor.quiet_distributed():
            assert handler.level > logging.CRITICAL
        assert handler.level == logging.WARNING
    finally:
        logger.removeHandler(handler)


def test_the_dask_worker_configuration_the_readme_names_ships_in_the_package():
    text = dask_executor.WORKER_CONFIG.read_text()
    assert "MALLOC_TRIM_THRESHOLD_: null" in text and "pre-spawn-environ" in text


def test_local_dask_workers_keep_glibcs_default_memory_trimming(monkeypatch):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which makes a training run
    1.6-2x slower (memory returned to the system on nearly every free); ours are started without it."""
    import contextlib
    import os

    from gradsel_cli.runs import trial
    from gradsel_cli.runs.dask_executor import DaskExecutor

    readied: list[int] = []
    monkeypatch.setattr(trial, "compile_for", lambda configs, raw: readied.append(len(configs)))
    with contextlib.ExitStack() as closing:
        client = DaskExecutor(1)._connect([TrainConfig(iters=1)], closing)
        assert readied == [1]  # the kernels readied here, said by this process, before the cluster starts
        seen = client.run(lambda: (os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("NUMBA_NUM_THREADS")))
    assert list(seen.values()) == [(None, "1")]
