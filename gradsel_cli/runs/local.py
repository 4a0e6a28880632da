"""The local executor: trials in this process, or in a pool of spawned worker processes."""

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..config import TrainConfig
from . import trial
from .processes import capped_workers, deaf_to_ctrl_c, default_workers, exit_with_parent, quiet_resource_tracker
from .trial import GridError

_RAW = None  # MNIST of this worker process, loaded once


def _worker_init(data_dir, threads: int, parent: int):
    global _RAW
    from ..core.threads import set_threads
    from ..data import load_mnist_raw

    exit_with_parent(parent)
    set_threads(threads)
    _RAW = load_mnist_raw(data_dir)


def _worker_run(config_dict: dict, eval_points: int, probe_every: int = 0) -> dict:
    return trial.run_trial(
        TrainConfig.from_dict(config_dict), raw=_RAW, eval_points=eval_points, probe_every=probe_every
    )


class LocalExecutor:
    """Runs trials in this process (workers = 1) or in a pool of spawned processes.

    With `eval_points` > 0 every trial also records a test-accuracy curve
    (outside the config: the records and their hashes are otherwise unchanged).
    """

    def __init__(self, workers: int = 1, data_dir=None, eval_points: int = 0, notify=None, probe_every: int = 0):
        self.workers = workers
        self.data_dir = data_dir
        self.eval_points = eval_points
        self.probe_every = probe_every  # every trial's fidelity probe (numerics/probe.py; 0: none)
        self.notify = notify  # notify(note): a one-line note for the user (the workers capped)

    def run(self, configs: list[TrainConfig]):
        """Yield (config, record) as trials finish."""
        from ..data import load_mnist_raw

        if not configs:
            return
        raw = load_mnist_raw(self.data_dir)  # here first: bad data is one DataError, not a dead worker
        workers = capped_workers(self.workers, len(configs), self.notify)
        if workers == 1:
            for config in configs:
                yield (
                    config,
                    trial.run_trial(config, raw=raw, eval_points=self.eval_points, probe_every=self.probe_every),
                )
            return
        trial.compile_for(configs, raw)  # here, said, once: not in every worker at the same time
        del raw
        quiet_resource_tracker()
        ctx = multiprocessing.get_context("spawn")  # fork after OpenMP threads started is unsafe
        threads = max(1, default_workers() // workers)
        with deaf_to_ctrl_c():
            pool = ProcessPoolExecutor(
                workers, mp_context=ctx, initializer=_worker_init, initargs=(self.data_dir, threads, os.getpid())
            )
        finished = False
        try:
            with deaf_to_ctrl_c():  # the pool starts its processes (and its manager thread) on submit
                pending = {
                    pool.submit(_worker_run, c.to_dict(), self.eval_points, self.probe_every): c for c in configs
                }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    config = pending.pop(fut)
                    try:
                        record = fut.result()
                    except BrokenProcessPool:
                        raise GridError("a worker process died") from None
                    yield config, record
            finished = True
        finally:
            if not finished:  # stopped early (an error, Ctrl-C, SIGTERM): end the runs in progress now
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
