"""One training run: ``TrainConfig`` in, ``RunResult`` out; progress through a callback.

All randomness of a run comes from named streams of its seed (seeding.py), so
for one seed every method sees the same initial weights, few-shot subset and
mini-batch sequence.
"""

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import data, interrupts, sources
from ..config import Notice, TrainConfig
from ..core import network
from ..core.network import Params
from ..data import load_mnist_raw
from ..seeding import rng
from . import activity, ledger, loop, methods, probe
from .methods import Step, StepContext
from .optimizers import Optimizer


@dataclass
class RunResult:
    """What one run produced."""

    config: TrainConfig
    accuracy: float  # on the first test_limit test images (nan if diverged)
    final_loss: float  # mean loss on the whole few-shot training set at the end
    loss_history: np.ndarray  # (iterations_done,) batch loss before each update
    wall_time: float  # seconds, whole run including evaluation (and compile_time)
    train_time: float  # seconds spent in the iterations (compilation excluded)
    iterations_done: int
    counts: dict[str, int]  # gradient evaluations of each of the run's sources
    select_wins: dict[str, int] | None  # select: how often each source's update was kept
    rel_diff_mean: dict[str, float] | None  # select: mean ||g_s - g_first|| / ||g_first|| of each other source
    diverged: bool
    params: Params
    predictions: np.ndarray  # (test_limit,) predicted digits
    running_mean: np.ndarray | None  # batch norm: running statistics used at test time
    running_var: np.ndarray | None
    # (iterations_done,) the position in config.run_sources() of each kept update's source
    kept: np.ndarray | None = field(repr=False, default=None)
    # (iterations_done, sources - 1) each step's relative difference of each other source, nan if none
    rel_diffs: np.ndarray | None = field(repr=False, default=None)
    acc_curve: list[tuple[int, float]] = field(default_factory=list)  # (iteration, test accuracy): curve_iterations
    # (iteration, accuracy on the run's own training images, the first TRAIN_CURVE_IMAGES) at the same iterations
    train_acc_curve: list[tuple[int, float]] = field(default_factory=list)
    compile_time: float = 0.0  # seconds to compile or load the kernels before the first iteration
    # the hidden activations on the first test images (activity.of_network): "init" and "trained" (None: diverged)
    hidden_histograms: dict | None = None
    # select: how many of each source's wins were ties (its loss bitwise equal to another candidate's: the first
    # listed of the tied candidates is kept); None for the other methods
    select_ties: dict[str, int] | None = None
    # what its gradients and select's comparisons cost, in forward-pass equivalents (numerics/ledger.py)
    ledger: dict | None = None
    # the fidelity probe (numerics/probe.py): each source's cosine and relative error to the exact gradient
    probe: dict | None = None

    @property
    def time_per_iter(self) -> float:
        return self.train_time / max(self.iterations_done, 1)

    @property
    def sources(self) -> tuple[str, ...]:
        """The gradient sources the run computed, in the order of --sources."""
        return self.config.run_sources()

    @property
    def shares(self) -> dict[str, float]:
        """Share of the iterations whose kept update came from each source."""
        assert self.kept is not None  # train always gives it
        n = self.iterations_done
        return {name: float((self.kept == q).mean()) if n else 0.0 for q, name in enumerate(self.sources)}


@dataclass
class Dataset:
    """What one run trains on (float64 or float32) and is evaluated on (uint8 or float)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @classmethod
    def for_config(cls, raw, config: TrainConfig) -> "Dataset":
        """The few-shot training set and the first test_limit test images, as the run computes on them
        (for_run)."""
        xtr, ytr, xte, yte = raw
        x, y = data.few_shot(xtr, ytr, config.shots, config.subset, config.seed)
        return cls(x, y, xte[: config.test_limit], yte[: config.test_limit]).for_run(config)

    def for_run(self, config: TrainConfig) -> "Dataset":
        """The training images in the config's precision, their pixels rounded to config.pixels first; the test
        images too when the pixels are float32 (else they stay as given: uint8 ones are scaled in float64 as
        they are evaluated). Scaled in float64, then rounded: for every grey level that is the float32
        division the textbook's loader makes (tests/test_data.py)."""
        x, x_test = self.x_train, self.x_test
        if config.pixels != "float64":
            x = x.astype(config.pixels, copy=False)
            x_test = data.to_float(x_test, config.pixels) if x_test.dtype == np.uint8 else x_test.astype(config.pixels)
        x = x.astype(config.precision, copy=False)
        return self if (x is self.x_train and x_test is self.x_test) else Dataset(x, self.y_train, x_test, self.y_test)


def batch_indices(config: TrainConfig, n_train: int) -> np.ndarray:
    """(iters, batch) indices into the few-shot set: the same for every method of one seed."""
    return rng(config.seed, "batches").integers(0, n_train, size=(config.iters, config.batch))


class RunningStats:
    """Running mean and variance of the batch-norm statistics, for test time (momentum 0.9)."""

    MOMENTUM = 0.9

    def __init__(self, hidden: int, dtype=np.float64):
        self.mean = np.zeros(hidden, dtype)
        self.var = np.zeros(hidden, dtype)

    def update(self, params: Params, x: np.ndarray) -> None:
        mean, var = network.batch_stats(params, x)
        self.mean = self.MOMENTUM * self.mean + (1 - self.MOMENTUM) * mean
        self.var = self.MOMENTUM * self.var + (1 - self.MOMENTUM) * var


class DropoutMasks:
    """The hidden-layer mask of each iteration, drawn once from the run's dropout stream.

    Inverted dropout: kept units are scaled by 1 / (1 - p). Without dropout
    every mask is ones and nothing is drawn.
    """

    def __init__(self, config: TrainConfig):
        self.p = config.dropout
        self.shape = (config.batch, config.hidden)
        self.dtype = np.dtype(config.precision)
        self.ones = np.ones(self.shape, self.dtype)
        self.gen = rng(config.seed, "dropout")

    def next(self) -> np.ndarray:
        if self.p == 0:
            return self.ones
        return ((self.gen.random(self.shape) >= self.p) / (1.0 - self.p)).astype(self.dtype, copy=False)


def curve_iterations(iters: int, points: int = 0, every: int = 0) -> set[int]:
    """The iterations at which the accuracy curve evaluates: 0, every `every` iterations (or every
    iters // points, for about `points` points), and the last; none when both are 0."""
    if every <= 0 and points > 0:
        every = max(1, iters // points)
    if every <= 0:
        return set()
    return {0, *range(every, iters + 1, every), iters}


@np.errstate(over="ignore", invalid="ignore", divide="ignore")  # a non-finite loss or weight ends the run as diverged
def train(
    config: TrainConfig,
    data=None,
    progress=None,
    eval_points: int = 0,
    eval_every: int = 0,
    fused: bool = True,
    probe_every: int = 0,
) -> RunResult:
    """Train one network. `data` is either MNIST as ``data.load_mnist_raw()`` gives it (loaded when
    omitted), from which the config's few-shot and test sets are taken, or a ready Dataset (e.g. a
    validation split).

    ``progress(done, total, loss)`` is called about 200 times during the run.
    With `eval_every` > 0 the test accuracy is also measured every that many
    iterations, or with `eval_points` > 0 at about that many evenly spaced ones
    (``acc_curve``, iteration 0 and the last included), and at the same iterations
    the accuracy on the run's training images (``train_acc_curve``; the first
    TRAIN_CURVE_IMAGES of them). With `probe_every` > 0 the fidelity probe
    (numerics/probe.py) reads every that many iterations, from iteration 0.
    Neither is part of the config: they read the weights and change nothing
    in the run.

    Plain SGD without weight decay, dropout or batch norm runs its iterations
    inside kernel calls (loop.sgd_iterations) of up to CALL_SECONDS each, at
    most one per progress report; `fused=False` steps through methods.py one
    call at a time instead, with bitwise the same result.
    """
    config.validate()
    if data is None:
        data = load_mnist_raw()
    ds = data.for_run(config) if isinstance(data, Dataset) else Dataset.for_config(data, config)  # e.g. tune's split
    c = config
    context = StepContext(
        optimizer=Optimizer(
            c.optimizer, lr=c.lr, momentum=c.momentum, rho=c.rho, beta1=c.beta1, beta2=c.beta2, eps=c.eps
        ),
        settings=loop.settings(c),
        x_train=ds.x_train,
        y_train=ds.y_train,
    )
    params = network.init_params(c.hidden, c.seed, c.init_std, c.init, batch_norm=c.batch_norm, dtype=c.precision)
    for name in c.run_sources():  # each source's advice on its options at these weights (a step too small, say)
        if (said := sources.get(name).notice(c, params.flat)) is not None:
            warnings.warn(said, Notice, stacklevel=2)
    if fused and (said := loop.too_many_to_fuse(c)) is not None:
        warnings.warn(said, Notice, stacklevel=2)
    run = _Iterations(c, context, params, ds, fused and loop.fusable(c))
    curve_at = curve_iterations(c.iters, eval_points, eval_every)
    at_init = activity.of_network(run.test_time(), ds.x_test, c.activation)
    acc_curve: list[tuple[int, float]] = []
    train_acc_curve: list[tuple[int, float]] = []

    def evaluate(t: int) -> None:  # the accuracy curves' point at iteration t: test (or validation) and training images
        weights = run.test_time()
        acc_curve.append((t, network.accuracy(weights, ds.x_test, ds.y_test, c.activation)))
        seen = slice(0, TRAIN_CURVE_IMAGES)
        train_acc_curve.append((t, network.accuracy(weights, ds.x_train[seen], ds.y_train[seen], c.activation)))

    probe_at = set(probe.iterations(c.iters, probe_every))
    probed: list[tuple[int, dict]] = []

    def read_probe(t: int) -> None:  # the probe at the weights after t iterations, on iteration t + 1's batch
        idx = run.batches[t]
        x, y = ds.x_train[idx], ds.y_train[idx]
        probed.append((t, probe.probe(context, run.params, run.opt_state, x, y, run.masks.ones, t + 1)))

    if 0 in curve_at:
        evaluate(0)
    report_every = max(1, c.iters // 200)
    start = time.perf_counter()
    compile_time = _warm_up(context, params, ds, run.batches[0], run.masks.ones, c, run.lit)
    train_time = 0.0
    if 0 in probe_at:
        read_probe(0)
    for stop in sorted({*range(report_every, c.iters + 1, report_every), *curve_at, *probe_at, c.iters} - {0}):
        interrupts.check()  # a stop signal that a callback of Numba's compiler dropped: acted on between calls
        tick = time.perf_counter()
        run.until(stop)
        train_time += time.perf_counter() - tick
        if run.diverged:
            break
        if stop in curve_at:
            evaluate(stop)
        if stop in probe_at:
            read_probe(stop)
        if progress is not None and (stop % report_every == 0 or stop == c.iters):
            progress(stop, c.iters, float(run.losses[stop - 1]))

    params, done = run.params, run.done
    if run.diverged:
        accuracy, final_loss = float("nan"), float("nan")
        predictions = np.full(len(ds.y_test), -1, dtype=np.int64)
    else:
        predictions = network.predict(run.test_time(), ds.x_test, c.activation)
        accuracy = float(np.mean(predictions == ds.y_test))
        final_loss = network.loss(params, ds.x_train, ds.y_train, context.settings)
    trained = None if run.diverged else activity.of_network(run.test_time(), ds.x_test, c.activation)
    counts, wins, ties = run.counts()
    spent = ledger.ledger(c, counts, run.done - run.diverged)
    return RunResult(
        config=config,
        accuracy=accuracy,
        final_loss=final_loss,
        loss_history=run.losses[:done],
        wall_time=time.perf_counter() - start,
        train_time=train_time,
        iterations_done=done,
        counts=counts,
        select_wins=wins,
        select_ties=ties,
        rel_diff_mean=_rel_diff_means(config.run_sources(), run.rel_diffs[:done]),
        diverged=run.diverged,
        params=params,
        predictions=predictions,
        kept=run.kept[:done],
        rel_diffs=run.rel_diffs[:done],
        acc_curve=acc_curve,
        train_acc_curve=train_acc_curve,
        running_mean=None if run.running is None else run.running.mean,
        running_var=None if run.running is None else run.running.var,
        compile_time=compile_time,
        hidden_histograms={"init": at_init, "trained": trained},
        ledger=spent,
        probe=probe.series(probed, probe_every),
    )


TRAIN_CURVE_IMAGES = 10_000  # train_acc_curve: the accuracy on the first this many of a run's training images
CALL_SECONDS = 0.2  # the most a fused kernel call should run: Python handles Ctrl-C only between calls


class _Iterations:
    """The state of a run between iterations, and the two ways to advance it: kernel calls of many
    iterations each (fused) or one methods.py step per iteration."""

    def __init__(self, c: TrainConfig, context: StepContext, params: Params, ds: Dataset, fused: bool):
        self.config, self.context, self.ds, self.fused = c, context, ds, fused
        self.params = params.copy() if fused else params  # the fused loop updates its weights in place
        self.running = RunningStats(c.hidden, params.dtype) if c.batch_norm else None
        self.opt_state = context.optimizer.init(params.flat.size, params.dtype)
        self.batches = batch_indices(c, len(ds.y_train))
        self.masks = DropoutMasks(c)
        self.losses = np.empty(c.iters)
        self.kept = np.zeros(c.iters, dtype=np.int8)  # the position of each kept update's source
        self.rel_diffs = np.full((c.iters, len(c.run_sources()) - 1), np.nan)
        self.ties = np.zeros(c.iters, dtype=np.bool_)  # select: whether each kept update's loss tied another's
        self.done = 0
        self.diverged = False
        self.chunk = 1  # iterations of the next fused call: grows to about CALL_SECONDS of work
        self.lit = network.lit_pixels(ds.x_train) if fused else None  # once per run, not per call

    def test_time(self) -> Params:
        """The network as used at test time: batch norm with the running statistics, no dropout."""
        if self.running is None:
            return self.params
        return network.fold_batch_norm(self.params, self.running.mean, self.running.var)

    def until(self, stop: int) -> None:
        """Run iterations done + 1 ... stop, or up to the first that diverges."""
        if self.fused:
            self._fused_until(stop)
            return
        step_fn = methods.method(self.config.method)
        x_train, y_train = self.ds.x_train, self.ds.y_train
        for t in range(self.done + 1, stop + 1):
            idx = self.batches[t - 1]
            if self.running is not None:
                self.running.update(self.params, x_train[idx])
            step: Step = step_fn(
                self.context, self.params, self.opt_state, x_train[idx], y_train[idx], self.masks.next(), t
            )
            self.losses[t - 1] = step.loss
            self.done = t
            if not (math.isfinite(step.loss) and np.all(np.isfinite(step.params.flat))):
                self.diverged = True
                return
            self.params, self.opt_state = step.params, step.opt_state
            self.kept[t - 1] = step.source
            self.ties[t - 1] = step.tied
            if step.rel_diffs:
                self.rel_diffs[t - 1] = step.rel_diffs

    def _fused_until(self, stop: int) -> None:
        """until() in kernel calls of at most about CALL_SECONDS each (as timed on the last call), so that
        Ctrl-C, which Python sees between calls, is not kept waiting by a large configuration."""
        while self.done < stop and not self.diverged:
            todo = min(stop - self.done, self.chunk)
            tick = time.perf_counter()
            n, self.diverged = loop.sgd_iterations(
                self.params,
                self.ds.x_train,
                self.ds.y_train,
                self.batches[self.done : self.done + todo],
                self.done,
                self.context.settings,
                self.losses,
                self.kept,
                self.rel_diffs,
                self.lit,
                self.ties,
            )
            self.done += n
            per_iteration = max(time.perf_counter() - tick, 1e-9) / max(n, 1)
            self.chunk = max(1, int(CALL_SECONDS / per_iteration))

    def counts(self) -> tuple[dict[str, int], dict[str, int] | None, dict[str, int] | None]:
        """Gradient evaluations of each source and, for select, how often each one's update was kept and how
        many of those were ties, its loss bitwise equal to another candidate's (else None, None); over the
        iterations that completed (not one that diverged)."""
        n = self.done - self.diverged
        names = self.config.run_sources()
        kept = {name: int(np.count_nonzero(self.kept[:n] == q)) for q, name in enumerate(names)}
        if self.config.method == "select":
            tied = {name: int(np.count_nonzero((self.kept[:n] == q) & self.ties[:n])) for q, name in enumerate(names)}
            return {name: n for name in names}, kept, tied
        return kept, None, None


def _warm_up(
    s: StepContext, params: Params, ds: Dataset, idx, ones, config: TrainConfig, lit: network.LitPixels | None
) -> float:
    """Seconds to compile (or load from Numba's cache) every kernel the run calls, so that the timings of the
    iterations exclude it. Only pure functions are called (the fused loop, when the run is fused (`lit`: its
    training set's lit pixels), on a copy, for no iterations): the run itself is unchanged."""
    tick = time.perf_counter()
    x, y, c = ds.x_train[idx], ds.y_train[idx], config
    fused = lit is not None
    if fused:
        loop.sgd_iterations(
            params.copy(),
            ds.x_train,
            ds.y_train,
            np.empty((0, c.batch), np.int64),
            0,
            s.settings,
            np.empty(0),
            np.empty(0, np.int8),
            np.empty((0, len(s.settings.sources) - 1)),
            lit,
        )
    for name in s.settings.sources if not fused else ():
        sources.get(name).gradient(params, x, y, s.settings, ones, loop.words_of(s.settings, name, 0, 1)[0])
    network.loss(params, x, y, s.settings, ones)
    if c.batch_norm:
        network.batch_stats(params, x)
    network.predict(params, ds.x_test[:1], c.activation)
    return time.perf_counter() - tick


def _nanmean(values: np.ndarray) -> float | None:
    """Mean of the entries that were computed (not nan), None when there are none."""
    computed = values[~np.isnan(values)]
    return float(np.mean(computed)) if computed.size else None


def _rel_diff_means(names: tuple[str, ...], rel_diffs: np.ndarray) -> dict[str, float] | None:
    """Each other source's mean relative difference to the first where computed; None when none was."""
    means = {name: _nanmean(rel_diffs[:, q]) for q, name in enumerate(names[1:])}
    return None if all(m is None for m in means.values()) else {k: v for k, v in means.items() if v is not None}


def model_path(path) -> str:
    """The file np.savez writes for `path` (it adds .npz when the name lacks it)."""
    path = str(path)
    return path if path.endswith(".npz") else path + ".npz"


def write_model(path, result: RunResult) -> None:
    """Save the trained W1, b1, W2, b2 (and batch-norm gamma, beta, running statistics) to `path` (.npz).

    Written to a temporary file beside it, then renamed: a failed write (a full disk) leaves no half-written
    file, and a model already at `path` stays as it was.
    """
    import os
    import tempfile

    arrays: dict[str, Any] = result.params.blocks()
    if result.running_mean is not None:
        arrays.update(running_mean=result.running_mean, running_var=result.running_var)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".gradsel-", suffix=".npz.tmp", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


OVERSHOOT = 10.0  # a batch loss this many times the first one: the steps overshoot, though all stayed finite


def overshoot_warning(result: RunResult) -> str | None:
    """One line when a run that did not diverge still had its batch loss rise far above where it started
    (a learning rate so large that the weights jump, then saturate), else None."""
    losses = result.loss_history[: result.iterations_done]
    if result.diverged or len(losses) < 2 or not losses[0] > 0:
        return None
    t = int(np.argmax(losses))
    if not losses[t] > OVERSHOOT * losses[0]:
        return None
    return (
        f"the batch loss rose to {losses[t]:.3g} at iteration {t + 1} (from {losses[0]:.3g} at the start): "
        f"the steps overshoot, and the result is not a trained network to rely on. "
        f"{divergence_hint(result.config)}"
    )


def divergence_hint(config: TrainConfig) -> str:
    """What to change after a run diverged: the setting most likely at fault, not always the learning rate."""
    c = config
    if c.weight_decay * c.lr >= 1:
        return (
            f"--weight-decay {c.weight_decay:g} times --lr {c.lr:g} is {c.weight_decay * c.lr:.3g} (at least 1: "
            "each step overshoots the decay of the weights); lower --weight-decay."
        )
    for name in c.run_sources():  # a source's own option at fault (a step), as the source says
        if (hint := sources.get(name).hint(c)) is not None:
            return hint
    return "Try a smaller --lr."


def divergence_message(iterations_done: int, config: TrainConfig) -> str:
    """The one line that reports a diverged run (on stderr and in its table): where it diverged, and what to change."""
    return f"Diverged at iteration {iterations_done}: the loss is not finite. {divergence_hint(config)}"
