"""The one timer of gradsel's measurements: the median of repeated calls after a warm-up."""

import statistics
import time


def median_time(fn, repeat: int) -> float:
    """The median seconds of `repeat` calls of fn(), after one call to warm up (and compile)."""
    fn()  # warm-up (and compilation on the first call)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
