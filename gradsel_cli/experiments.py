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

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import results
from .training import TrainConfig

_RAW = None  # MNIST of this worker process, loaded once


class GridError(RuntimeError):
    """A grid stopped before its end (a worker or the scheduler died, no worker came); finished trials are kept.

    resume: the same command goes on where this one stopped (run_grid adds what was stored); False for
    a message that is complete as it is (nothing ran: a scheduler that is not there).
    """

    def __init__(self, message: str, resume: bool = True):
        super().__init__(message)
        self.resume = resume


def cell_label(config: TrainConfig) -> str:
    return f"{config.method} k={config.shots} B={config.batch} H={config.hidden} seed={config.seed}"


def trials(base: TrainConfig, cells: list[dict], seeds) -> list[TrainConfig]:
    """Every (cell, seed) as a full config: `base` with the cell's keys and the seed replaced."""
    return [base.replace(**cell, seed=int(seed)).validate() for cell in cells for seed in seeds]


# The options that only some methods read: for the others, any value gives the same run.
READ_BY = {"fd_step": ("numeric", "alternate", "select"), "fd_scheme": ("numeric", "alternate", "select"),
           "numeric_every": ("alternate",), "select_on": ("select",)}


def effective(config: TrainConfig) -> TrainConfig:
    """The run a config really is: the options its method does not read set to their defaults."""
    default = TrainConfig()
    return config.replace(**{k: getattr(default, k) for k, methods in READ_BY.items() if config.method not in methods})


def grid_cells(lists: dict[str, list]) -> list[dict]:
    """Every combination of the listed values, one dict per cell (the first key varies slowest)."""
    import itertools

    return [dict(zip(lists, combo)) for combo in itertools.product(*lists.values())]


def make_executor(name: str, workers: int | None, scheduler: str | None, data_dir=None, eval_points: int = 0,
                  timeout: float | None = None):
    """The executor of a grid: local worker processes, or a Dask cluster (ValueError when that cannot be)."""
    if scheduler is not None and name != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if name == "local":
        return LocalExecutor(workers or default_workers(), data_dir, eval_points)
    from .dask_executor import DaskExecutor, DaskMissing

    try:
        return DaskExecutor(workers or default_workers(), data_dir, scheduler, eval_points,
                            *(() if timeout is None else (timeout,)))
    except DaskMissing:
        raise ValueError("--executor dask needs dask.distributed; install it: pip install 'gradsel[dask]'") from None


def preset_trials(preset: str, base: TrainConfig, seeds) -> list[TrainConfig]:
    """The trials of a `table` preset: a paper's grid, or one of the studies (papers.CONDITIONS: every study
    method on papers.study_cells() under each condition; subsets: analytic on paper A's B = 1 cells, first-k
    and random subsets, one per seed)."""
    from . import papers

    if preset == "conditions":
        cells = [dict(method=m, **cell) for cell in papers.study_cells() for m in papers.STUDY_METHODS]
        return [t for changes in papers.CONDITIONS.values() for t in trials(base.replace(**changes), cells, seeds)]
    if preset == "subsets":
        cells = [dict(method="analytic", batch=1, hidden=h, shots=k) for h in (20, 50) for k in (1, 2, 3, 4)]
        return [t for subset in ("first", "random") for t in trials(base.replace(subset=subset), cells, seeds)]
    return trials(base, papers.layout(preset).cells(), seeds)


def run_trial(config: TrainConfig, raw=None, data_dir=None, eval_points: int = 0) -> dict:
    """Train one trial and return its record (with a test-accuracy curve of `eval_points` points)."""
    from .data import load_mnist_raw
    from .training import train

    return results.run_record(train(config, load_mnist_raw(data_dir) if raw is None else raw,
                                    eval_points=eval_points))


ORPHAN_POLL = 0.5  # seconds between a worker's checks that its parent is alive
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal sent to this process when its parent dies


def exit_with_parent(parent: int) -> None:
    """End this worker process promptly when `parent` dies, however it dies (SIGKILL included).

    On Linux the kernel sends SIGKILL at once (prctl PR_SET_PDEATHSIG); on
    every system a daemon thread polls os.getppid() and exits when the worker
    has been re-parented.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl here: the thread below does the work
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    def watch():
        while os.getppid() == parent:
            time.sleep(ORPHAN_POLL)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _quiet_resource_tracker() -> None:
    """If this process is killed (SIGKILL), multiprocessing's resource tracker outlives it by a moment
    and warns about the pool's semaphores, which the kernel frees anyway. The tracker takes its warning
    filters from this process's -W options, read when it starts: ignore that one warning there."""
    rule = "ignore:resource_tracker:UserWarning"
    if rule not in sys.warnoptions:
        sys.warnoptions.append(rule)


def _worker_init(data_dir, threads: int, parent: int):
    global _RAW
    from . import kernels
    from .data import load_mnist_raw

    exit_with_parent(parent)
    kernels.set_threads(threads)
    _RAW = load_mnist_raw(data_dir)


def _worker_run(config_dict: dict, eval_points: int) -> dict:
    return run_trial(TrainConfig.from_dict(config_dict), raw=_RAW, eval_points=eval_points)


def default_workers() -> int:
    return os.cpu_count() or 1


WORKERS_PER_CORE = 2  # at most this many worker processes per core: more only compete for the cores and memory


def capped_workers(workers: int, runs: int, notify=None) -> int:
    """The worker processes to start on this machine for `runs` trials: `workers`, but no more than the
    runs nor WORKERS_PER_CORE per core; notify(note) says so when the cores cap the number asked for."""
    cores = default_workers()
    limit = WORKERS_PER_CORE * cores
    if workers > limit and runs > limit and notify:
        notify(f"--workers {workers} is more than {WORKERS_PER_CORE} per core; starting {limit} worker processes "
               f"({cores} core{'' if cores == 1 else 's'} here)")
    return max(1, min(workers, limit, runs))


@contextlib.contextmanager
def deaf_to_ctrl_c():
    """Worker processes started inside never see Ctrl-C: only this process answers it (one line, exit 130)
    and ends its workers itself.

    The terminal sends Ctrl-C to every process in its foreground group, and a worker interrupted while it
    starts or works prints its own traceback. Inside, SIGINT is blocked in this thread; processes and
    threads (which may start processes later, as Dask's nannies do) keep the mask they were started with.
    multiprocessing's resource tracker is started first: starting it unblocks SIGINT in the thread that
    does, whatever was blocked before. A Ctrl-C (or a SIGTERM that this process handles) that arrives
    inside, through another thread, is held and acted on when the block ends: what was started inside is
    whole then, and can be shut down.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    held = []
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    handlers = {sig: handler for sig, handler in handlers.items() if callable(handler)}
    for sig in handlers:
        signal.signal(sig, lambda signum, frame: held.append(signum))
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)  # a Ctrl-C pending on this thread is held first
        if held:
            handlers[held[0]](held[0], None)


class LocalExecutor:
    """Runs trials in this process (workers = 1) or in a pool of spawned processes.

    With `eval_points` > 0 every trial also records a test-accuracy curve
    (outside the config: the records and their hashes are otherwise unchanged).
    """

    def __init__(self, workers: int = 1, data_dir=None, eval_points: int = 0, notify=None):
        self.workers = workers
        self.data_dir = data_dir
        self.eval_points = eval_points
        self.notify = notify  # notify(note): a one-line note for the user (the workers capped)

    def run(self, configs: list[TrainConfig]):
        """Yield (config, record) as trials finish."""
        from .data import load_mnist_raw

        if not configs:
            return
        raw = load_mnist_raw(self.data_dir)  # here first: bad data is one DataError, not a dead worker
        workers = capped_workers(self.workers, len(configs), self.notify)
        if workers == 1:
            for config in configs:
                yield config, run_trial(config, raw=raw, eval_points=self.eval_points)
            return
        del raw
        _quiet_resource_tracker()
        ctx = multiprocessing.get_context("spawn")  # fork after OpenMP threads started is unsafe
        threads = max(1, default_workers() // workers)
        with deaf_to_ctrl_c():
            pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                       initargs=(self.data_dir, threads, os.getpid()))
        finished = False
        try:
            with deaf_to_ctrl_c():  # the pool starts its processes (and its manager thread) on submit
                pending = {pool.submit(_worker_run, c.to_dict(), self.eval_points): c for c in configs}
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


@contextlib.contextmanager
def terminate_as_interrupt():
    """While inside, SIGTERM stops the grid as Ctrl-C does: workers are shut down, finished runs kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def kept(done: int, ran: int, path) -> str:
    """What a grid that stopped early leaves: `done` runs stored in `path` (`ran` of them by this call);
    nothing to say when none is."""
    runs = f"{done} run{'' if done == 1 else 's'}"
    if done == 0:
        return ""
    if path is not None:
        return f"{runs} stored in {path}: run the same command again to resume"
    return f"no run was stored ({ran} finished; give --results FILE to keep finished runs)"


def _saying_what_is_kept(finished, done: int, path):
    """The executor's (config, record) pairs, each stored by the caller before the next; a GridError that
    stops them gets what was stored added: `done` runs before the first, and one more after each."""
    ran = 0
    with contextlib.closing(finished):
        try:
            for pair in finished:
                yield pair
                ran += 1
        except GridError as exc:
            if not exc.resume:
                raise
            note = kept(done + ran, ran, path)
            raise GridError(f"{exc}; {note}" if note else str(exc), resume=False) from None


def run_grid(configs: list[TrainConfig], path=None, executor=None, progress=None, reference=()) -> list[dict]:
    """Records of all `configs`, in their order: loaded from `path` (or the read-only `reference` files, such as
    the shipped runs) when there, run otherwise.

    Each finished trial is appended to `path` at once. progress(done, total, label).
    Only records of test-set runs count (a tune trial is not one).
    """
    executor = executor or LocalExecutor()
    stored = {}
    store = None
    for rec in (r for p in reference for r in results.load(p, quiet=True)):
        stored.setdefault(results.run_key(rec), rec)
    if path is not None:
        for rec in results.load(path, redo=True):
            stored.setdefault(results.run_key(rec), rec)
        store = results.Store(path)
    keys = [results.config_hash(c.to_dict()) for c in configs]
    todo, seen = [], set()
    for config, key in zip(configs, keys):
        if key not in stored and key not in seen:
            todo.append(config)
            seen.add(key)
    done = len(configs) - len(todo)
    if progress:
        progress(done, len(configs), "resumed" if done else "starting")
    if todo and path is not None:
        results.probe(path)  # before any run: a file that cannot be written is one line, not lost work
    with terminate_as_interrupt(), contextlib.closing(_saying_what_is_kept(executor.run(todo), done, path)) as finished:
        for config, record in finished:
            if store is not None:
                try:
                    store.append(record)  # not written again if another process stored this run meanwhile
                except results.StoreError as exc:
                    raise results.StoreError(f"{exc}; {done} run{'' if done == 1 else 's'} stored, run the same command again to "
                                             "resume") from None
            stored[results.run_key(record)] = record
            done += 1
            if progress:
                progress(done, len(configs), cell_label(config))
    return [stored[k] for k in keys]
