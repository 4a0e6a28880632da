"""Paired multi-seed experiments: grids of trials, executors, resume.

A *trial* is one TrainConfig, seed included. For one seed every method gets
the same initial weights, few-shot subset and mini-batch sequence, so the
difference between two methods' trials is the difference of method alone.

Trials are independent: they run in worker processes, and only this process
(the client) writes the results file, one whole record per finished trial.
A trial whose config_hash is already in the file is not run again, so an
interrupted grid resumes where it stopped, losing and duplicating nothing.
An executor is anything with ``run(configs)`` yielding (config, record) as
trials finish: LocalExecutor here, DaskExecutor in dask_executor.py.
"""

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import results
from .config import canonical
from .training import TrainConfig

_RAW = None  # MNIST of this worker process, loaded once


class GridError(RuntimeError):
    """A grid stopped before its end (a worker died); finished trials are kept."""


def cell_label(config: TrainConfig) -> str:
    return f"{config.method} k={config.shots} B={config.batch} H={config.hidden} seed={config.seed}"


def trials(base: TrainConfig, cells: list[dict], seeds) -> list[TrainConfig]:
    """Every (cell, seed) as a full config: `base` with the cell's keys and the seed replaced."""
    return [base.replace(**cell, seed=int(seed)).validate() for cell in cells for seed in seeds]


def run_trial(config: TrainConfig, raw=None, data_dir=None, eval_points: int = 0) -> dict:
    """Train one trial and return its record (with a test-accuracy curve of `eval_points` points)."""
    from .training import train

    return results.run_record(train(config, raw=raw, data_dir=data_dir, eval_points=eval_points))


def _worker_init(data_dir, threads: int):
    global _RAW
    from . import kernels
    from .data import load_mnist_raw

    kernels.set_threads(threads)
    _RAW = load_mnist_raw(data_dir)


def _worker_run(config_dict: dict, eval_points: int) -> dict:
    return run_trial(TrainConfig.from_dict(config_dict), raw=_RAW, eval_points=eval_points)


def default_workers() -> int:
    return os.cpu_count() or 1


class LocalExecutor:
    """Runs trials in this process (workers = 1) or in a pool of spawned processes.

    With `eval_points` > 0 every trial also records a test-accuracy curve
    (outside the config: the records and their hashes are otherwise unchanged).
    """

    def __init__(self, workers: int = 1, data_dir=None, eval_points: int = 0):
        self.workers = workers
        self.data_dir = data_dir
        self.eval_points = eval_points

    def run(self, configs: list[TrainConfig]):
        """Yield (config, record) as trials finish."""
        if self.workers == 1:
            from .data import load_mnist_raw

            raw = load_mnist_raw(self.data_dir)
            for config in configs:
                yield config, run_trial(config, raw=raw, eval_points=self.eval_points)
            return
        ctx = multiprocessing.get_context("spawn")  # fork after OpenMP threads started is unsafe
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init,
                                   initargs=(self.data_dir, threads))
        try:
            pending = {pool.submit(_worker_run, c.to_dict(), self.eval_points): c for c in configs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    config = pending.pop(fut)
                    try:
                        record = fut.result()
                    except BrokenProcessPool:
                        raise GridError("a worker process died; finished runs are kept, run the same "
                                        "command again to resume") from None
                    yield config, record
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_grid(configs: list[TrainConfig], path=None, executor=None, progress=None) -> list[dict]:
    """Records of all `configs`, in their order: loaded from `path` when there, run otherwise.

    Each finished trial is appended to `path` at once. progress(done, total, label).
    """
    executor = executor or LocalExecutor()
    stored = {}
    if path is not None:
        for rec in results.load(path):
            stored.setdefault(results.config_hash(canonical(rec["config"])), rec)
    keys = [results.config_hash(c.to_dict()) for c in configs]
    todo, seen = [], set()
    for config, key in zip(configs, keys):
        if key not in stored and key not in seen:
            todo.append(config)
            seen.add(key)
    done = len(configs) - len(todo)
    if progress:
        progress(done, len(configs), "resumed" if done else "starting")
    for config, record in executor.run(todo):
        if path is not None:
            results.append(path, record)
        stored[results.config_hash(canonical(record["config"]))] = record
        done += 1
        if progress:
            progress(done, len(configs), cell_label(config))
    return [stored[k] for k in keys]
