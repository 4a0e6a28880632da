"""Run a grid's trials on a Dask cluster: a LocalCluster here, or a running scheduler.

The same interface as experiments.LocalExecutor: ``run(configs)`` yields
(config, record) as trials finish, so run_grid, resume and the results file
behave exactly as with local workers. Workers only train and return records;
the client alone writes the file. A task depends on its config alone (the
record differs only in wall times), so Dask may safely run it again on another
worker when one dies, and ``retries`` covers a task that fails outright. Tasks
go in with ``pure=False``: each submission gets its own key, so a resubmitted
grid never picks up a stale future of an earlier client.

Workers need gradsel installed (the same version) and the MNIST files: the
shipped copy, $GRADSEL_DATA_DIR, or the client's --data-dir if that path exists
on the workers too.
"""

import asyncio
import logging
import os
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

from . import experiments
from .config import DASK_TIMEOUT, TrainConfig

WORKER_CONFIG = Path(__file__).with_name("dask-gradsel.yaml")  # DASK_CONFIG for workers started by hand
RETRIES = 2        # a task that raises is tried this many more times
CONNECT_TIMEOUT = DASK_TIMEOUT  # seconds to reach a scheduler given by address and hear it answer as one

_RAW = {}  # data_dir -> MNIST, loaded once per worker process


class DaskMissing(ImportError):
    """dask.distributed is not installed."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise DaskMissing("the dask executor needs dask.distributed: pip install 'gradsel[dask]'") from None
    return distributed


def _task(config_dict: dict, data_dir, eval_points: int = 0) -> dict:
    """One trial on a worker, Numba on one thread (the worker's slot is one core)."""
    from . import kernels
    from .data import load_mnist_raw

    kernels.set_threads(1)
    key = None if data_dir is None else str(data_dir)
    if key not in _RAW:
        _RAW[key] = load_mnist_raw(data_dir)
    return experiments.run_trial(TrainConfig.from_dict(config_dict), raw=_RAW[key], eval_points=eval_points)


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


def identify_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise GridError unless a Dask scheduler at `address` answers within `timeout` seconds in all.

    distributed.Client bounds the connection but not the handshake after it: a
    port that accepts and never answers (or answers HTTP) would hang it forever.
    """
    _distributed()
    try:
        with ThreadPoolExecutor(1) as thread:  # a loop of its own, also when the caller runs one (a notebook)
            reply = thread.submit(asyncio.run, asyncio.wait_for(_identity(address, timeout), timeout)).result()
    except (asyncio.TimeoutError, TimeoutError):
        reply = f"no answer within {timeout:g} s"
    except Exception as exc:  # refused, closed mid-handshake, not Dask's wire format, a bad address
        reply = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        said = reply if isinstance(reply, str) else "it did not answer as one"
        raise experiments.GridError(f"no Dask scheduler at {address} ({said}); start one with `dask scheduler`, "
                                    "check the address, or raise --timeout")


TRIM = "MALLOC_TRIM_THRESHOLD_"  # set to 65536 in workers by Dask's nanny; see DaskExecutor._connect


class DaskExecutor:
    """Runs trials on a dask.distributed cluster: `scheduler` (an address), or a LocalCluster of `workers`.
    With `eval_points` > 0 every trial also records a test-accuracy curve (as LocalExecutor)."""

    def __init__(self, workers: int = 1, data_dir=None, scheduler: str | None = None, eval_points: int = 0,
                 timeout: float = CONNECT_TIMEOUT):
        _distributed()
        self.workers = workers
        self.data_dir = data_dir
        self.scheduler = scheduler
        self.eval_points = eval_points
        self.timeout = timeout

    def _connect(self):
        """(client, cluster or None)."""
        distributed = _distributed()
        if self.scheduler:
            identify_scheduler(self.scheduler, self.timeout)
            try:
                return distributed.Client(self.scheduler, timeout=self.timeout), None
            except (OSError, TimeoutError) as exc:
                raise experiments.GridError(f"cannot reach the Dask scheduler at {self.scheduler} ({exc}); "
                                            "start it with `dask scheduler` or check the address") from None
        import dask

        from .data import load_mnist_raw

        load_mnist_raw(self.data_dir)  # bad data is one DataError here, not a flood of worker logs

        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; with it glibc returns memory to
        # the system on nearly every free, and a training run (small arrays allocated every iteration)
        # takes 1.6-2x as long. Workers here get glibc's default. The nanny also writes the variable into
        # this process's environment, which spawned workers inherit: a cluster made earlier in the same
        # process (a notebook) leaves it behind, so Dask's own value is lifted while ours spawn.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
        dask_value = str(environ.pop(TRIM, None))
        left_behind = os.environ.get(TRIM) == dask_value and os.environ.pop(TRIM)
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
                cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
                                                   env={"NUMBA_NUM_THREADS": "1"})
        finally:
            if left_behind:
                os.environ[TRIM] = left_behind
        return distributed.Client(cluster), cluster

    def run(self, configs: list[TrainConfig]):
        """Yield (config, record) as trials finish; on an interrupt the unfinished ones are cancelled."""
        if not configs:
            return
        distributed = _distributed()
        client, cluster = self._connect()
        futures = {}
        try:
            for config in configs:
                fut = client.submit(_task, config.to_dict(), self.data_dir, self.eval_points, pure=False,
                                    retries=RETRIES)
                futures[fut] = config
            for fut in distributed.as_completed(futures):
                try:
                    record = fut.result()
                except distributed.KilledWorker as exc:
                    raise experiments.GridError(f"Dask gave up on a run after workers died running it ({exc}); "
                                                "finished runs are kept, run the same command again to resume") from None
                yield futures.pop(fut), record
        finally:
            if futures:
                client.cancel(list(futures), force=True)
            client.close()
            if cluster is not None:
                cluster.close()
