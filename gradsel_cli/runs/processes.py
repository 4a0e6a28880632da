"""Worker processes: how many, deaf to Ctrl-C, gone with their parent; SIGTERM as Ctrl-C in the parent."""

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

from .. import interrupts

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


def quiet_resource_tracker() -> None:
    """If this process is killed (SIGKILL), multiprocessing's resource tracker outlives it by a moment
    and warns about the pool's semaphores, which the kernel frees anyway. The tracker takes its warning
    filters from this process's -W options, read when it starts: ignore that one warning there."""
    rule = "ignore:resource_tracker:UserWarning"
    if rule not in sys.warnoptions:
        sys.warnoptions.append(rule)


def default_workers() -> int:
    return os.cpu_count() or 1


WORKERS_PER_CORE = 2  # at most this many worker processes per core: more only compete for the cores and memory


def capped_workers(workers: int, runs: int, notify=None) -> int:
    """The worker processes to start on this machine for `runs` trials: `workers`, but no more than the
    runs nor WORKERS_PER_CORE per core; notify(note) says so whenever the number asked for is past what the
    cores can honour (whatever the runs)."""
    cores = default_workers()
    limit = WORKERS_PER_CORE * cores
    used = max(1, min(workers, limit, runs))
    if workers > limit and notify:
        notify(
            f"--workers {workers} is more than {WORKERS_PER_CORE} per core; starting {used} worker "
            f"process{'' if used == 1 else 'es'} ({cores} core{'' if cores == 1 else 's'} here)"
        )
    return used


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
    handlers: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
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


@contextlib.contextmanager
def terminate_as_interrupt():
    """While inside, SIGTERM stops the grid as Ctrl-C does: workers are shut down, finished runs kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        interrupts.note()  # kept, should a callback from C (Numba's compiler) drop the KeyboardInterrupt
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        interrupts.clear()  # on its way up: acted on, not to be raised again by a later check
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
