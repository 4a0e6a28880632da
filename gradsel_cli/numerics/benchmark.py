"""Timings of the loss, every gradient source, what each source measures of its own (the numeric
source: the textbook's naive loop and its exponentials) and one iteration of each method (in the fused
loop that training runs).

Each timing is the median of `repeat` calls after a warm-up, on a real MNIST
batch (the first B training images).
"""

import contextlib
import subprocess
import sys
import time

import numpy as np

from .. import data, sources
from ..config import MAX_BATCH, MAX_HIDDEN, METHOD_NAMES, TrainConfig
from ..core import network
from ..core.threads import get_threads, max_threads, one_thread
from ..core.timing import median_time, paired_ratio
from . import loop

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


def bench_one(
    x: np.ndarray, y: np.ndarray, hidden: int, repeat: int = 5, seed: int = 0, precision: str = "float64"
) -> dict:
    """Every timing for one (hidden, batch) configuration, in seconds, with data, weights and arithmetic in
    `precision` (float64 or float32): the loss, each source's gradient (and its time over the exact
    gradient's), what each source measures of its own (Source.bench), and an iteration of each method."""
    params = network.init_params(hidden, seed, dtype=precision)
    x = np.asarray(x, dtype=precision)
    B = x.shape[0]
    settings = loop.settings(TrainConfig())
    exact = sources.exact()
    out = {"hidden": hidden, "batch": B, "nonzero_pixels": int(np.count_nonzero(x)), "weights": params.flat.size}
    out["loss"] = median_time(lambda: network.loss(params, x, y), repeat)
    for name, source in sources.REGISTRY.items():
        words = loop.words_of(settings, name, 0, 1)[0]  # a random source's first iteration's
        out[name] = median_time(lambda s=source, w=words: s.gradient(params, x, y, settings, None, w), repeat)
    for name, source in sources.REGISTRY.items():
        if name != exact:
            out[f"{name}_over_{exact}"] = out[name] / out[exact]
        if source.bench is not None:
            out.update(source.bench.measure(params, x, y, settings, repeat, seed, out[name]))
    for name in METHOD_NAMES:  # as training runs them: the fused loop, FUSED_ITERS iterations per call
        config = TrainConfig(method=name, lr=0.1)
        if loop.fusable(config):
            t = median_time(lambda config=config: fused_iterations(params, x, y, config), repeat) / FUSED_ITERS
            out[f"iter_{name}"] = t
    out["iteration_over_exact"] = out[f"iter_{exact}"] / out[exact]
    return out


FUSED_ITERS = 20  # iterations of one timed fused-loop call (alternate: half of them numeric)


def fused_iterations(params: network.Params, x: np.ndarray, y: np.ndarray, config: TrainConfig) -> None:
    """FUSED_ITERS iterations of plain SGD with `config`'s method, on a copy of params, each on the whole batch."""
    batches = np.tile(np.arange(len(y)), (FUSED_ITERS, 1))
    loop.sgd_iterations(params.copy(), x, y, batches, 0, loop.settings(config))


def cost_keys() -> list[tuple[str, str, int]]:
    """(table key, source, q) of every cost the table holds (sources/costs.py): each source at its default
    options, and a source with random directions at q = COST_Q too."""
    from ..sources import costs

    keys = []
    for name, source in sources.REGISTRY.items():
        keys.append((costs.key(name), name, 1))
        if source.check.count is not None:
            keys.append((costs.key(name, costs.COST_Q), name, costs.COST_Q))
    return keys


def measure_costs(hidden: int, x: np.ndarray, y: np.ndarray, repeat: int = 7, calls: int = 0) -> dict[str, float]:
    """Each cost_keys() entry's step time over a forward pass's (kernels/forward._loss_step) on the batch x, y:
    both kernels called directly on the same arguments, on one thread, each side of a round about COST_SECONDS of
    calls (`calls` forward passes, if given), the median of `repeat` rounds' ratios (core/timing.paired_ratio).
    Float64, the default activation and loss."""
    from ..kernels.forward import _loss_step

    params = network.init_params(hidden, 0)
    x = np.ascontiguousarray(x, np.float64)
    y = np.ascontiguousarray(y, np.int64)
    lit = network.lit_pixels(x)
    mask = np.ones((len(y), hidden))
    g = np.zeros_like(params.flat)  # written by the steps, read by none: zeroed on the way out
    none = np.zeros(0, np.uint64)

    def repeated(step, knobs, words, n):
        args = (x, y, *lit, params.flat, hidden, 0, mask, 0, 0.0, np.array(knobs, np.float64), words, g)
        return lambda: [step(*args) for _ in range(n)]

    out = {}
    with one_thread():
        n = calls_for(calls, lambda k: repeated(_loss_step, (), none, k))
        unit = repeated(_loss_step, (), none, n)
        for key, name, q in cost_keys():
            source = sources.get(name)
            if source.fused is None:
                raise ValueError(f"{name} has no fused step to time: its cost cannot be measured on the kernels")
            count = source.check.count
            settings = loop.settings(TrainConfig(method=name).replace(**({count: q} if count else {})))
            words = loop.words_of(settings, name, 0, 1)[0]
            words = none if words.size == 0 else np.ascontiguousarray(words, np.uint64)
            step = repeated(source.fused.step(), sources.knobs_in(settings, name), words, 1)
            m = calls_for(0, lambda k, s=step: lambda: [s() for _ in range(k)])
            out[key] = paired_ratio(lambda s=step, m=m: [s() for _ in range(m)], unit, repeat) * n / m
            g[:] = 0.0
    return out


COST_SECONDS = 5e-3  # measure_costs: each timed side of a round runs about this long


def calls_for(given: int, make) -> int:
    """`given`, or the number of calls of make(k)'s work that take about COST_SECONDS (timed on one call
    after a warm-up)."""
    if given:
        return given
    one = make(1)
    one()
    seconds = median_time(one, 3)
    return max(1, int(COST_SECONDS / max(seconds, 1e-7)))


def cost_table(hiddens, batches, repeat: int = 7, data_dir=None, progress=None) -> dict:
    """measure_costs over the grid hiddens x batches (each sorted, two sizes or more), on the first B training
    images, as sources/costs.json holds it (with when and where it was measured); progress(done, total, label)."""
    import datetime

    hiddens, batches = sorted(set(hiddens)), sorted(set(batches))
    if len(hiddens) < 2 or len(batches) < 2:
        raise ValueError("--costs needs two hidden sizes or more and two batch sizes or more (a grid to interpolate)")
    check_sizes(hiddens, batches)
    xtr, ytr, _, _ = data.load_mnist_raw(data_dir)
    grid: dict[str, list[list[float]]] = {key: [[0.0] * len(batches) for _ in hiddens] for key, _, _ in cost_keys()}
    total = len(hiddens) * len(batches)
    for i, h in enumerate(hiddens):
        for j, b in enumerate(batches):
            if progress:
                progress(i * len(batches) + j, total, f"H={h} B={b}")
            for key, value in measure_costs(h, data.to_float(xtr[:b]), ytr[:b], repeat).items():
                grid[key][i][j] = round(value, 3)
    if progress:
        progress(total, total, "done")
    return {
        "measured": f"{datetime.date.today().isoformat()}, {cpu_name()}, 1 thread",
        "hidden": hiddens,
        "batch": batches,
        "costs": grid,
    }


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what the platform module says."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cost_agreement(measured: dict, declared: dict, tolerance: float) -> list[dict]:
    """Each entry of the measured table beside the declared one's (sources/costs.py interpolates it) at the same
    sizes: their ratio, and whether it is within 1 +- tolerance."""
    from ..sources import costs

    rows = []
    for key, values in measured["costs"].items():
        for i, h in enumerate(measured["hidden"]):
            for j, b in enumerate(measured["batch"]):
                table = costs.measured(key, h, b, declared) if key in declared["costs"] else float("nan")
                ratio = values[i][j] / table
                rows.append(
                    {
                        "key": key,
                        "hidden": h,
                        "batch": b,
                        "measured": values[i][j],
                        "declared": table,
                        "ratio": ratio,
                        "agrees": abs(ratio - 1.0) <= tolerance,
                    }
                )
    return rows


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
    the timed calls per measurement, the busy processes beside them and
    the precision."""
    return {
        "threads": get_threads(),
        "max_threads": max_threads(),
        "background": background,
        "repeat": repeat,
        "precision": precision,
        "rows": rows,
    }


def textbook_loop(params: network.Params, x: np.ndarray, y: np.ndarray, batches: np.ndarray, lr: float) -> np.ndarray:
    """The textbook's chapter-4 training (ch04/train_neuralnet.py, TwoLayerNet.gradient) in plain NumPy: per
    iteration the batch's forward pass (np.dot, sigmoid, softmax), backprop, the SGD update, and the batch loss
    (of the forward pass the gradient used: gradsel's record, one forward pass per iteration). `params` is
    updated in place; the losses are returned. What gradsel's analytic run is timed against."""
    W1, b1, W2, b2 = params.W1, params.b1, params.W2, params.b2
    losses = np.empty(len(batches))
    for t, idx in enumerate(batches):
        xb, yb = x[idx], y[idx]
        B = len(idx)
        z1 = 1.0 / (1.0 + np.exp(-(np.dot(xb, W1) + b1)))
        a2 = np.dot(z1, W2) + b2
        a2 = a2 - a2.max(axis=1, keepdims=True)
        p = np.exp(a2)
        p /= p.sum(axis=1, keepdims=True)
        losses[t] = -np.mean(np.log(p[np.arange(B), yb]))
        dy = p
        dy[np.arange(B), yb] -= 1.0
        dy /= B
        gW2, gb2 = np.dot(z1.T, dy), dy.sum(axis=0)
        dz1 = np.dot(dy, W2.T) * (1.0 - z1) * z1
        gW1, gb1 = np.dot(xb.T, dz1), dz1.sum(axis=0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
    return losses


TEXTBOOK = TrainConfig(method=sources.exact(), subset="all", batch=100, hidden=50, lr=0.1)  # chapter 4's training


def textbook(iters: int, rounds: int, data_dir=None, progress=None) -> dict:
    """The textbook's chapter-4 training (TEXTBOOK, `iters` iterations): gradsel's train() against textbook_loop
    from the same initial weights and batches, on gradsel's current threads and one BLAS thread (threadpoolctl,
    when installed), in `rounds` interleaved rounds; progress(done, total, label). Seconds are each the best."""
    from .training import batch_indices, train

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then BLAS uses its own thread count: the record says so
        threadpool_limits = None
    config = TEXTBOOK.replace(iters=iters)
    raw = data.load_mnist_raw(data_dir)
    x, y = data.to_float(raw[0]), raw[1].astype(np.int64)
    batches = batch_indices(config, len(y))
    train(config.replace(iters=1), raw)  # kernels loaded
    whole, loop, numpy_loop, acc = [], [], [], {}
    for r in range(rounds):
        if progress:
            progress(2 * r, 2 * rounds, "gradsel")
        tick = time.perf_counter()
        run = train(config, raw)
        whole.append(time.perf_counter() - tick)
        loop.append(run.train_time)
        acc["gradsel"] = run.accuracy
        if progress:
            progress(2 * r + 1, 2 * rounds, "NumPy")
        params = network.init_params(config.hidden, config.seed)
        with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
            tick = time.perf_counter()
            textbook_loop(params, x, y, batches, config.lr)
            numpy_loop.append(time.perf_counter() - tick)
        acc["numpy"] = network.accuracy(params, raw[2], raw[3])
    if progress:
        progress(2 * rounds, 2 * rounds, "done")
    return {
        "config": config.to_dict(),
        "rounds": rounds,
        "threads": get_threads(),
        "blas_threads": 1 if threadpool_limits else None,
        "gradsel_seconds": min(whole),
        "gradsel_iterations_seconds": min(loop),
        "numpy_iterations_seconds": min(numpy_loop),
        "gradsel_accuracy": acc["gradsel"],
        "numpy_accuracy": acc["numpy"],
    }
