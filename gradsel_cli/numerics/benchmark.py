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
from ..core.threads import get_threads, max_threads
from ..core.timing import median_time
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
