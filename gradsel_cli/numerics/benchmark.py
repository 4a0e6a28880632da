"""Timings of the loss, both gradients, the naive reference and one iteration of each method (in the
fused loop that training runs).

Each timing is the median of `repeat` calls after a warm-up, on a real MNIST
batch (the first B training images). The naive reference (perturb one weight,
full forward pass, restore) is timed on a random sample of weights and
extrapolated when the full call would take more than a few seconds. Its NumPy
runs on one BLAS thread (NAIVE_BLAS_THREADS, set here with threadpoolctl, whatever
the environment says), so its column does not swing with the machine's load.
"""

import contextlib
import statistics
import subprocess
import sys
import time

import numpy as np

from .. import data
from ..config import MAX_BATCH, MAX_HIDDEN, METHOD_NAMES, TrainConfig
from . import network
from .threads import get_threads, max_threads

NAIVE_FULL_LIMIT = 3.0  # seconds: above this the naive gradient is sampled and extrapolated
NAIVE_SAMPLE = 400  # weights timed when sampling
NAIVE_BLAS_THREADS = 1  # BLAS threads of the naive reference's NumPy (the textbook code's single thread)


# A busy loop that also ends by itself once its parent is gone (even a killed one).
_BUSY = (
    "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(1_000_000):\n        pass\n"
)


@contextlib.contextmanager
def background_load(n: int):
    """Keep `n` busy-loop processes running inside the block (a loaded machine); yields them.
    They are stopped on the way out, whatever ends the block (an error, Ctrl-C)."""
    procs = []
    try:
        for _ in range(n):
            # A session of their own: Ctrl-C at the terminal reaches only gradsel, which stops them (and speaks)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _BUSY],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (and compilation on the first call)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def exp_count(x: np.ndarray, y: np.ndarray, hidden: int, n_out: int = network.N_OUT) -> int:
    """Exponentials the numeric gradient evaluates (central differences, no dropout).

    W1 and b1: 2 x n_out per hidden unit and distinct (sample, value) pair, the
    bias counting as a pixel of value 1 — a value repeated within a sample, or
    a sample repeated in the batch, is evaluated once. W2 and b2: 2 per
    (hidden unit or bias, logit, sample).
    """
    seen, distinct = set(), 0
    for row, label in zip(x, y):
        key = (row.tobytes(), int(label))
        if key not in seen:
            seen.add(key)
            distinct += len(np.unique(np.append(row[row != 0], 1.0)))
    return 2 * n_out * hidden * distinct + 2 * (hidden + 1) * n_out * x.shape[0]


def dense_exp_count(x: np.ndarray, hidden: int, n_out: int = network.N_OUT) -> int:
    """The same without sharing: 2 x n_out per hidden unit and lit pixel of each sample (and bias)."""
    nnz = int(np.count_nonzero(x)) + x.shape[0]
    return 2 * n_out * hidden * nnz + 2 * (hidden + 1) * n_out * x.shape[0]


def bench_one(
    x: np.ndarray, y: np.ndarray, hidden: int, repeat: int = 5, seed: int = 0, precision: str = "float64"
) -> dict:
    """Every timing for one (hidden, batch) configuration, in seconds, with data, weights and arithmetic in
    `precision` (float64 or float32)."""
    params = network.init_params(hidden, seed, dtype=precision)
    x = np.asarray(x, dtype=precision)
    B = x.shape[0]
    out = {"hidden": hidden, "batch": B, "nonzero_pixels": int(np.count_nonzero(x)), "weights": params.flat.size}
    out["loss"] = median_time(lambda: network.loss(params, x, y), repeat)
    out["analytic"] = median_time(lambda: network.analytic_gradient(params, x, y), repeat)
    out["numeric"] = median_time(lambda: network.numeric_gradient(params, x, y), repeat)

    out.update(_naive_timing(params, x, y, repeat, seed))

    for name in METHOD_NAMES:  # as training runs them: the fused loop, FUSED_ITERS iterations per call
        out[f"iter_{name}"] = median_time(lambda name=name: fused_iterations(params, x, y, name), repeat) / FUSED_ITERS
    out["iteration_over_analytic"] = out["iter_analytic"] / out["analytic"]
    out["naive_over_numeric"] = out["naive"] / out["numeric"]
    out["numeric_over_analytic"] = out["numeric"] / out["analytic"]
    out["exponentials"] = exp_count(x, y, hidden)
    out["exponentials_unshared"] = dense_exp_count(x, hidden)
    out["ns_per_exponential"] = out["numeric"] / out["exponentials"] * 1e9
    return out


def _naive_timing(params, x, y, repeat: int, seed: int) -> dict:
    """The naive reference's time per call on NAIVE_BLAS_THREADS BLAS threads (sampled and extrapolated when the
    full call would take more than NAIVE_FULL_LIMIT), and whether it was extrapolated."""
    from threadpoolctl import threadpool_limits

    n = params.flat.size
    sample = np.random.default_rng(seed).choice(n, size=min(NAIVE_SAMPLE, n), replace=False)
    with threadpool_limits(limits=NAIVE_BLAS_THREADS, user_api="blas"):
        per_weight = median_time(
            lambda: network.naive_numeric_gradient(params, x, y, indices=sample), max(1, repeat // 2)
        ) / len(sample)
        if per_weight * n > NAIVE_FULL_LIMIT:
            return {"naive": per_weight * n, "naive_extrapolated": True}
        return {
            "naive": median_time(lambda: network.naive_numeric_gradient(params, x, y), max(1, repeat // 2)),
            "naive_extrapolated": False,
        }


FUSED_ITERS = 20  # iterations of one timed fused-loop call (alternate: half of them numeric)


def fused_iterations(params: network.Params, x: np.ndarray, y: np.ndarray, method: str) -> None:
    """FUSED_ITERS iterations of plain SGD (lr 0.1) with `method`, on a copy of params, each on the whole batch."""
    batches = np.tile(np.arange(len(y)), (FUSED_ITERS, 1))
    network.sgd_iterations(
        params.copy(),
        x,
        y,
        batches,
        0,
        network.settings(TrainConfig(method=method, lr=0.1)),
        np.empty(FUSED_ITERS),
        np.zeros(FUSED_ITERS, np.int8),
        np.empty(FUSED_ITERS),
    )


def check_sizes(hiddens, batches) -> None:
    """The same limits as a training run (config.MAX_HIDDEN, MAX_BATCH), before anything is allocated."""
    for name, values, limit in (("hidden", hiddens, MAX_HIDDEN), ("batch", batches, MAX_BATCH)):
        too_big = [v for v in values if v > limit]
        if too_big:
            raise ValueError(f"--{name} {too_big[0]:,} is more than the limit of {limit:,}; give sizes up to {limit:,}")


def run_bench(
    hiddens, batches, repeat: int = 5, data_dir=None, progress=None, precision: str = "float64"
) -> list[dict]:
    """bench_one over the grid hiddens x batches; progress(done, total, label)."""
    check_sizes(hiddens, batches)
    xtr, ytr, _, _ = data.load_mnist_raw(data_dir)
    rows: list[dict] = []
    total = len(hiddens) * len(batches)
    for h in hiddens:
        for b in batches:
            if progress:
                progress(len(rows), total, f"H={h} B={b}")
            rows.append(bench_one(data.to_float(xtr[:b]), ytr[:b], h, repeat, precision=precision))
    if progress:
        progress(total, total, "done")
    return rows


def bench_record(rows: list[dict], repeat: int, background: int, precision: str = "float64") -> dict:
    """The measurements with how they were taken: the thread setting (None: the automatic policy), the cores,
    the naive reference's BLAS threads, the timed calls per measurement, the busy processes beside them and
    the precision."""
    return {
        "threads": get_threads(),
        "max_threads": max_threads(),
        "naive_blas_threads": NAIVE_BLAS_THREADS,
        "background": background,
        "repeat": repeat,
        "precision": precision,
        "rows": rows,
    }
