"""The thread policy of the parallel kernels: how many threads each call runs on.

``set_threads`` / ``get_threads`` / ``max_threads``, and ``run_parallel``,
through which the wrappers of network.py call every parallel kernel. By default
a call runs on one thread unless its work is large, and then on the faster of
one thread and all of them, as measured on the last calls (on a busy machine
waking threads can cost far more than the work). The count is chosen per call
and only changes the speed: every kernel gives bitwise the same result on any
number of threads.
"""

import contextlib
import time
from typing import Any

import numba

PARALLEL_WORK = 500_000  # inner-loop operations (about 0.3 ms) below which a parallel kernel runs on one thread
_PROBE_FIRST, _PROBE_LAST = 16, 1024  # calls between re-measurements of the slower choice: first, at most

_fixed = None  # the count set by set_threads; None: the automatic policy


def max_threads() -> int:
    """Threads Numba can use in this process (NUMBA_NUM_THREADS, all cores by default)."""
    return numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # numba.config sets it at import, untyped


def set_threads(n: int | None) -> None:
    """Run every parallel kernel on `n` threads (1 to max_threads()); None: the automatic policy."""
    global _fixed
    if n is not None:
        if not 1 <= int(n) <= max_threads():
            raise ValueError(
                f"--threads {n}: between 1 and the {max_threads()} available; lower it or set NUMBA_NUM_THREADS"
            )
        n = int(n)
    _fixed = n


def get_threads() -> int | None:
    """The count set by set_threads, or None under the automatic policy."""
    return _fixed


class _Choice:
    """For one parallel kernel: seconds per unit of work on one thread and on all (a moving
    average of the measured calls) and the faster of the two; the slower is re-measured now
    and then, less often each time it loses again (on a busy machine one call on all threads
    can cost a scheduler time slice)."""

    def __init__(self):
        self.cost = {}
        self.best = 1
        self.since = 0
        self.interval = _PROBE_FIRST

    def pick(self, top: int) -> int:
        for n in (1, top):
            if n not in self.cost:
                return n
        self.since += 1
        if self.since >= self.interval:
            self.since = 0
            return top if self.best == 1 else 1
        return self.best

    def record(self, n: int, top: int, per_work: float) -> None:
        self.cost[n] = per_work if n not in self.cost else 0.5 * (self.cost[n] + per_work)
        if len(self.cost) < 2:
            return
        best = 1 if self.cost[1] <= self.cost[top] else top
        self.interval = min(2 * self.interval, _PROBE_LAST) if best == self.best else _PROBE_FIRST
        self.best = best


_choices: dict[Any, _Choice] = {}  # kernel -> _Choice


def threads_for(kernel, work: float) -> int:
    """The thread count the policy gives a call of `kernel` doing `work` inner-loop operations."""
    top = max_threads()
    if _fixed is not None:
        return _fixed
    if top == 1 or work < PARALLEL_WORK:
        return 1
    return _choices.setdefault(kernel, _Choice()).pick(top)


def run_parallel(kernel, work: float, *args, calls: int = 1):
    """kernel(*args) on the threads the policy gives `work` (of each of the `calls` parallel loops the
    call runs: the fused loop runs many); under the automatic policy a large call's time is recorded
    to choose the next ones' (not the first call: it may compile)."""
    n = threads_for(kernel, work)
    numba.set_num_threads(n)
    measure = _fixed is None and kernel in _choices and work >= PARALLEL_WORK and calls > 0 and bool(kernel.signatures)
    start = time.perf_counter()
    out = kernel(*args)
    if measure:
        _choices[kernel].record(n, max_threads(), (time.perf_counter() - start) / (work * calls))
    return out


@contextlib.contextmanager
def one_thread():
    """Numba's kernels on one thread inside the block (a kernel called directly, not through run_parallel: timed
    for its compute alone), the count before restored on the way out."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)
