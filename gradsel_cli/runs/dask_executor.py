"""Run a grid's trials on a Dask cluster: a LocalCluster here, or a running scheduler.

The same interface as local.LocalExecutor: ``run(configs)`` yields
(config, record) as trials finish, so run_grid, resume and the results file
behave exactly as with local workers. Workers only train and return records;
the client alone writes the file. A task depends on its config alone (the
record differs only in wall times), so Dask may safely run it again on another
worker when one dies, and ``retries`` covers a task that fails outright. Tasks
go in with ``pure=False``: each submission gets its own key, so a resubmitted
grid never picks up a stale future of an earlier client.

A scheduler given by address must answer within `timeout` seconds, and whenever
it has no worker, one must join within as long (said once through `notify`).
What ends a grid early (no worker, the scheduler gone, workers dying) is one
GridError; distributed's own log lines are not shown.

Workers need gradsel installed (the same version) and the MNIST files: the
shipped copy, $GRADSEL_DATA_DIR, or the client's --data-dir if that path exists
on the workers too.
"""

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

from ..config import DASK_TIMEOUT, MAX_DASK_TIMEOUT, TrainConfig, scheduler_address
from . import trial
from .processes import capped_workers, deaf_to_ctrl_c
from .trial import GridError

WORKER_CONFIG = Path(__file__).with_name("dask-gradsel.yaml")  # DASK_CONFIG for workers started by hand
RETRIES = 2  # a task that raises is tried this many more times
CONNECT_TIMEOUT = DASK_TIMEOUT  # seconds to reach a scheduler given by address and hear it answer as one
POLL = 1.0  # seconds between looks at a scheduler given by address while no run finishes
LOGGERS = ("distributed", "tornado")  # whose log lines a grid does not show: what ends it is one GridError

_RAW: dict[Any, Any] = {}  # data_dir -> MNIST, loaded once per worker process


class DaskMissing(ImportError):
    """dask.distributed is not installed."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise DaskMissing("the dask executor needs dask.distributed: pip install 'gradsel[dask]'") from None
    return distributed


def _task(config_dict: dict, data_dir, eval_points: int = 0, probe_every: int = 0) -> dict:
    """One trial on a worker, Numba on one thread (the worker's slot is one core)."""
    from ..core.threads import set_threads
    from ..data import load_mnist_raw

    set_threads(1)
    key = None if data_dir is None else str(data_dir)
    if key not in _RAW:
        _RAW[key] = load_mnist_raw(data_dir)
    config = TrainConfig.from_dict(config_dict)
    return trial.run_trial(config, raw=_RAW[key], eval_points=eval_points, probe_every=probe_every)


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect
    from distributed.security import Security

    # TLS settings (tls:// addresses) come from the Dask config, as distributed.Client takes them
    comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


def _unreachable(address: str, timeout: float) -> str | None:
    """Why no TCP connection to the scheduler's host and port opens within `timeout` seconds (None: one does).
    Dask's own connect retries a refused connection until its timeout, however long."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        host, port = parse_host_port(parse_address(address)[1])
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        return (
            f"no connection within {timeout:g} s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__}: {exc}".splitlines()[0]
        )
    return None


def identify_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise GridError unless a Dask scheduler at `address` answers within `timeout` seconds in all; a host
    and port that take no connection within CONNECT_TIMEOUT fail then, whatever `timeout`.

    distributed.Client bounds the connection but not the handshake after it: a
    port that accepts and never answers (or answers HTTP) would hang it forever.
    """
    _distributed()
    probe = min(timeout, CONNECT_TIMEOUT)
    if (why := _unreachable(address, probe)) is not None:
        raise GridError(
            f"no Dask scheduler at {address} ({why}); start one with `dask scheduler` or check the address",
            resume=False,
        )
    answer: Future[Any] = Future()

    def ask():  # in a loop of its own, also when the caller runs one (a notebook)
        try:
            answer.set_result(asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout)))
        except BaseException as exc:
            answer.set_exception(exc)

    # A daemon thread, left behind on Ctrl-C: joining it (as a thread pool does) would hold the interrupt
    # until the timeout.
    threading.Thread(target=ask, name="identify-scheduler", daemon=True).start()
    try:
        reply = answer.result()
    except TimeoutError:
        reply = f"no answer within {timeout:g} s"
    except Exception as exc:  # refused, closed mid-handshake, not Dask's wire format, a bad address
        reply = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        said = reply if isinstance(reply, str) else "it did not answer as one"
        raise GridError(
            f"no Dask scheduler at {address} ({said}); start one with `dask scheduler`, "
            "check the address, or raise --timeout",
            resume=False,
        )


@contextlib.contextmanager
def quiet_distributed():
    """While inside, distributed's own log lines are not shown: a lost connection, its attempts to
    reconnect and the tracebacks under them. The executor ends the grid with one GridError instead."""
    manager = logging.Logger.manager
    handlers = {
        h: h.level
        for name, logger in list(manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and name.split(".")[0] in LOGGERS
        for h in logger.handlers
    }
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in handlers.items():
            handler.setLevel(level)


TRIM = "MALLOC_TRIM_THRESHOLD_"  # set to 65536 in workers by Dask's nanny; see DaskExecutor._connect


class DaskExecutor:
    """Runs trials on a dask.distributed cluster: `scheduler` (an address), or a LocalCluster of `workers`.
    With `eval_points` > 0 every trial also records a test-accuracy curve (as LocalExecutor)."""

    def __init__(
        self,
        workers: int = 1,
        data_dir=None,
        scheduler: str | None = None,
        eval_points: int = 0,
        timeout: float = CONNECT_TIMEOUT,
        notify=None,
        probe_every: int = 0,
    ):
        _distributed()
        if not 0 < timeout <= MAX_DASK_TIMEOUT:
            raise ValueError(f"timeout {timeout:g}: between 0 and {MAX_DASK_TIMEOUT:g} s (a day)")
        self.workers = workers
        self.data_dir = data_dir
        self.scheduler = None if scheduler is None else scheduler_address(scheduler)  # ValueError when malformed
        self.eval_points = eval_points
        self.probe_every = probe_every  # every trial's fidelity probe (numerics/probe.py; 0: none)
        self.timeout = timeout  # for a scheduler by address: to answer, and to have a worker when it has none
        self.notify = notify  # notify(note): a one-line note for the user (waiting for a worker, workers capped)

    def _connect(self, configs: list[TrainConfig], closing: contextlib.ExitStack):
        """The client; it, and a LocalCluster of no more workers than the runs of `configs` (their kernels compiled
        here first), are closed by `closing`."""
        distributed = _distributed()
        if self.scheduler:
            identify_scheduler(self.scheduler, self.timeout)
            try:
                client = distributed.Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise GridError(
                    f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); "
                    "start it with `dask scheduler` or check the address",
                    resume=False,
                ) from None
            closing.callback(client.close)
            return client
        import dask

        from ..data import load_mnist_raw

        raw = load_mnist_raw(self.data_dir)  # bad data is one DataError here, not a flood of worker logs
        trial.compile_for(configs, raw)  # here, said, once: the local workers load them
        del raw
        workers = capped_workers(self.workers, len(configs), self.notify)

        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; with it glibc returns memory to
        # the system on nearly every free, and a training run (small arrays allocated every iteration)
        # takes 1.6-2x as long. Workers here get glibc's default. The nanny also writes the variable into
        # this process's environment, which spawned workers inherit: a cluster made earlier in the same
        # process (a notebook) leaves it behind, so Dask's own value is lifted while ours spawn.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
        dask_value = str(environ.pop(TRIM, None))
        left_behind = os.environ.get(TRIM) == dask_value and os.environ.pop(TRIM)
        try:
            # The cluster's thread starts the worker processes, now and when a nanny restarts one: deaf to
            # Ctrl-C. One pressed meanwhile arrives when the closing of both is arranged.
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), deaf_to_ctrl_c():
                cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                    env={"NUMBA_NUM_THREADS": "1"},
                    # no dashboard; its HTTP server on a free port, not 8787
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
                closing.callback(cluster.close)
                client = distributed.Client(cluster)
                closing.callback(client.close)
        finally:
            if left_behind:
                os.environ[TRIM] = left_behind
        return client

    def _lost(self) -> GridError:
        return GridError(f"lost the Dask scheduler at {self.scheduler} (start it again, with its workers)")

    def _has_workers(self, client) -> bool:
        """Whether the scheduler has a running worker (GridError when the scheduler is gone)."""
        try:
            workers = client.scheduler_info(n_workers=-1)["workers"]
        except Exception:  # the connection is lost: OSError, CommClosedError, a cancelled call
            raise self._lost() from None
        return any(w.get("status", "running") == "running" for w in workers.values())

    def _finished(self, client, futures: dict):
        """Yield (config, record) as runs finish. With a scheduler by address, it is looked at whenever no run
        finished for POLL seconds: with no worker for `timeout` seconds (said once), or gone, the grid ends."""
        distributed = _distributed()
        by_address = self.scheduler is not None
        look, idle_since, said = by_address, None, False
        while futures:
            if look:
                if self._has_workers(client):
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                    if self.notify and not said:
                        self.notify(
                            f"Waiting up to {self.timeout:g} s for a worker to join the Dask scheduler at "
                            f"{self.scheduler} (start one with `dask worker {self.scheduler}`)…"
                        )
                        said = True
                elif time.monotonic() - idle_since > self.timeout:
                    raise GridError(
                        f"the Dask scheduler at {self.scheduler} has had no worker for {self.timeout:g} s; start "
                        f"one with `dask worker {self.scheduler}` or raise --timeout"
                    )
            try:
                with client.as_current():
                    done = distributed.wait(
                        list(futures), timeout=POLL if by_address else None, return_when="FIRST_COMPLETED"
                    ).done
            except TimeoutError:
                look = True
                continue
            except CancelledError:  # by the client when it lost the scheduler
                raise self._lost() from None
            look = False
            for fut in done:
                config = futures.pop(fut)
                try:
                    record = fut.result()
                except distributed.KilledWorker as exc:
                    raise GridError(f"Dask gave up on a run after workers died running it ({exc})") from None
                except CancelledError:  # by the client when it lost the scheduler
                    raise self._lost() from None
                yield config, record

    def run(self, configs: list[TrainConfig]):
        """Yield (config, record) as trials finish; on an interrupt the unfinished ones are cancelled."""
        if not configs:
            return
        with quiet_distributed(), contextlib.ExitStack() as closing:
            client = self._connect(configs, closing)
            futures: dict[Any, TrainConfig] = {}
            closing.callback(_cancel, client, futures)
            for config in configs:
                fut = client.submit(
                    _task,
                    config.to_dict(),
                    self.data_dir,
                    self.eval_points,
                    self.probe_every,
                    pure=False,
                    retries=RETRIES,
                )
                futures[fut] = config
            yield from self._finished(client, futures)


def _cancel(client, futures) -> None:
    """Cancel the runs not finished (none when the scheduler is gone: it takes no cancel)."""
    if futures and client.status == "running":
        with contextlib.suppress(Exception):
            client.cancel(list(futures), force=True)
