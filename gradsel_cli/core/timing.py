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


def paired_ratio(fn, reference, repeat: int) -> float:
    """The median over `repeat` rounds of fn()'s seconds over reference()'s, each round timing the two back to
    back (after one warm-up call of each): a drift of the machine's speed moves both sides of a round alike."""
    fn()
    reference()
    ratios = []
    for _ in range(repeat):
        t = time.perf_counter()
        reference()
        unit = time.perf_counter() - t
        t = time.perf_counter()
        fn()
        ratios.append((time.perf_counter() - t) / unit)
    return statistics.median(ratios)
