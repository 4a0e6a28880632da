"""One training run: ``TrainConfig`` in, ``RunResult`` out; progress through a callback.

All randomness of a run comes from named streams of its seed (seeding.py), so
for one seed every method sees the same initial weights, few-shot subset and
mini-batch sequence.
"""

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import data, network
from .data import load_mnist_raw
from .config import TrainConfig
from .methods import METHODS, Setting, Step
from .network import Params
from .optimizers import Optimizer
from .seeding import rng


@dataclass
class RunResult:
    """What one run produced."""

    config: TrainConfig
    accuracy: float                       # on the first test_limit test images (nan if diverged)
    final_loss: float                     # mean loss on the whole few-shot training set at the end
    loss_history: np.ndarray              # (iterations_done,) batch loss before each update
    wall_time: float                      # seconds, whole run including evaluation (and compile_time)
    train_time: float                     # seconds spent in the iterations (compilation excluded)
    iterations_done: int
    counts: dict[str, int]                # gradient evaluations of each source
    select_wins: dict[str, int] | None    # select: how often each update was kept
    rel_diff_mean: float | None           # mean ||g_num - g_ana|| / ||g_ana|| where both were computed
    diverged: bool
    params: Params
    predictions: np.ndarray               # (test_limit,) predicted digits
    running_mean: np.ndarray | None       # batch norm: running statistics used at test time
    running_var: np.ndarray | None
    sources: np.ndarray = field(repr=False, default=None)  # (iterations_done,) 1 where the kept update was numeric
    rel_diffs: np.ndarray = field(repr=False, default=None)  # (iterations_done,) each step's rel_diff, nan if none
    acc_curve: list[tuple[int, float]] = field(default_factory=list)  # (iteration, test accuracy): curve_iterations
    compile_time: float = 0.0             # seconds to compile or load the kernels before the first iteration

    @property
    def time_per_iter(self) -> float:
        return self.train_time / max(self.iterations_done, 1)

    @property
    def numeric_share(self) -> float:
        """Share of iterations whose kept update came from the numeric gradient."""
        return float(self.sources.mean()) if self.iterations_done else 0.0


@dataclass
class Dataset:
    """What one run trains on (float64 or float32) and is evaluated on (uint8 or float)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @classmethod
    def for_config(cls, raw, config: TrainConfig) -> "Dataset":
        """The few-shot training set (in the config's precision) and the first test_limit test images."""
        xtr, ytr, xte, yte = raw
        x, y = data.few_shot(xtr, ytr, config.shots, config.subset, config.seed)
        x = x.astype(config.precision, copy=False)  # scaled in float64, then rounded: float32 sees the same pixels
        return cls(x, y, xte[: config.test_limit], yte[: config.test_limit])  # test set stays uint8


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


def _test_time(params: Params, running: "RunningStats | None") -> Params:
    """The network as used at test time: batch norm with the running statistics, no dropout."""
    return params if running is None else network.fold_batch_norm(params, running.mean, running.var)


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
def train(config: TrainConfig, data=None, progress=None, eval_points: int = 0, eval_every: int = 0) -> RunResult:
    """Train one network. `data` is either MNIST as ``data.load_mnist_raw()`` gives it (loaded when
    omitted), from which the config's few-shot and test sets are taken, or a ready Dataset (e.g. a
    validation split).

    ``progress(done, total, loss)`` is called about 200 times during the run.
    With `eval_every` > 0 the test accuracy is also measured every that many
    iterations, or with `eval_points` > 0 at about that many evenly spaced ones
    (``acc_curve``, iteration 0 and the last included). This is not part of the
    config: it reads the weights and changes nothing in the run.
    """
    config.validate()
    if data is None:
        data = load_mnist_raw()
    ds = data if isinstance(data, Dataset) else Dataset.for_config(data, config)
    c = config
    if ds.x_train.dtype != np.dtype(c.precision):  # a given dataset (e.g. tune's split), rounded once here
        ds = Dataset(ds.x_train.astype(c.precision), ds.y_train, ds.x_test, ds.y_test)
    setting = Setting(
        optimizer=Optimizer(c.optimizer, lr=c.lr, momentum=c.momentum, rho=c.rho, beta1=c.beta1, beta2=c.beta2,
                            eps=c.eps),
        activation=c.activation, loss=c.loss, weight_decay=c.weight_decay,
        fd_step=c.fd_step, fd_scheme=c.fd_scheme, fd_arith=c.fd_arith, loss_epsilon=c.loss_epsilon,
        numeric_every=c.numeric_every, select_on=c.select_on, x_train=ds.x_train, y_train=ds.y_train,
    )
    step_fn = METHODS[c.method]
    params = network.init_params(c.hidden, c.seed, c.init_std, c.init, batch_norm=c.batch_norm, dtype=c.precision)
    if c.method != "analytic":
        warn_unresolved_step(c.fd_step, params.flat)
    running = RunningStats(c.hidden, params.dtype) if c.batch_norm else None
    opt_state = setting.optimizer.init(params.flat.size, params.dtype)
    batches = batch_indices(c, len(ds.y_train))
    masks = DropoutMasks(c)

    losses = np.empty(config.iters)
    sources = np.zeros(config.iters, dtype=np.int8)
    counts = {"analytic": 0, "numeric": 0}
    wins = {"analytic": 0, "numeric": 0}
    rel_diffs = np.full(config.iters, np.nan)
    curve_at = curve_iterations(config.iters, eval_points, eval_every)
    acc_curve = []
    if 0 in curve_at:
        acc_curve.append((0, network.accuracy(_test_time(params, running), ds.x_test, ds.y_test, c.activation)))
    report_every = max(1, config.iters // 200)
    diverged = False
    done = 0
    start = time.perf_counter()
    compile_time = _warm_up(setting, params, ds, batches[0], masks.ones, c)
    train_time = 0.0
    for t in range(1, config.iters + 1):
        tick = time.perf_counter()
        idx = batches[t - 1]
        if running is not None:
            running.update(params, ds.x_train[idx])
        step: Step = step_fn(setting, params, opt_state, ds.x_train[idx], ds.y_train[idx], masks.next(), t)
        train_time += time.perf_counter() - tick
        losses[t - 1] = step.loss
        if not (math.isfinite(step.loss) and np.all(np.isfinite(step.params.flat))):
            diverged = True
            done = t
            break
        params, opt_state = step.params, step.opt_state
        for s in step.computed:
            counts[s] += 1
        sources[t - 1] = step.source == "numeric"
        if len(step.computed) == 2:
            wins[step.source] += 1
        if step.rel_diff is not None:
            rel_diffs[t - 1] = step.rel_diff
        done = t
        if t in curve_at:
            acc_curve.append((t, network.accuracy(_test_time(params, running), ds.x_test, ds.y_test, c.activation)))
        if progress is not None and (t % report_every == 0 or t == config.iters):
            progress(t, config.iters, step.loss)

    if diverged:
        accuracy, final_loss = float("nan"), float("nan")
        predictions = np.full(len(ds.y_test), -1, dtype=np.int64)
    else:
        predictions = network.predict(_test_time(params, running), ds.x_test, c.activation)
        accuracy = float(np.mean(predictions == ds.y_test))
        final_loss = network.loss(params, ds.x_train, ds.y_train, c.activation, None, c.loss, c.weight_decay,
                                  c.loss_epsilon)
    return RunResult(
        config=config, accuracy=accuracy, final_loss=final_loss, loss_history=losses[:done],
        wall_time=time.perf_counter() - start, train_time=train_time,
        iterations_done=done, counts=counts, select_wins=wins if config.method == "select" else None,
        rel_diff_mean=_nanmean(rel_diffs[:done]), diverged=diverged,
        params=params, predictions=predictions, sources=sources[:done], rel_diffs=rel_diffs[:done], acc_curve=acc_curve,
        running_mean=None if running is None else running.mean, running_var=None if running is None else running.var,
        compile_time=compile_time,
    )


def _warm_up(s: Setting, params: Params, ds: Dataset, idx, ones, config: TrainConfig) -> float:
    """Seconds to compile (or load from Numba's cache) every kernel the run calls, so that the timings of the
    iterations exclude it. Only pure functions are called: the run itself is unchanged."""
    tick = time.perf_counter()
    x, y = ds.x_train[idx], ds.y_train[idx]
    if config.method != "numeric":
        network.analytic_gradient(params, x, y, s.activation, ones, loss=s.loss, weight_decay=s.weight_decay)
    if config.method != "analytic":
        network.numerical_gradient(params, x, y, s.fd_step, s.fd_scheme, s.activation, ones, s.loss, s.weight_decay)
    network.loss(params, x, y, s.activation, ones, s.loss, s.weight_decay)
    if config.batch_norm:
        network.batch_stats(params, x)
    network.predict(params, ds.x_test[:1], config.activation)
    return time.perf_counter() - tick


def _nanmean(values: np.ndarray) -> float | None:
    """Mean of the entries that were computed (not nan), None when there are none."""
    computed = values[~np.isnan(values)]
    return float(np.mean(computed)) if computed.size else None


def warn_unresolved_step(fd_step: float, weights: np.ndarray) -> None:
    """Warn when w + h rounds back to w at the scale of the weights: the numeric gradient would be noise or 0."""
    top = np.max(np.abs(weights)) if weights.size else weights.dtype.type(0)
    scale, resolution = float(top), float(np.spacing(top))  # the gap between numbers of the run's precision there
    if fd_step < resolution:
        warnings.warn(f"--fd-step {fd_step:g} is below what {weights.dtype} resolves at the weights' scale ({scale:.2g}, "
                      f"steps of {resolution:.1e}): w + h rounds to w and the numeric gradient is meaningless; "
                      "use a step near 1e-4", stacklevel=3)


def model_path(path) -> str:
    """The file np.savez writes for `path` (it adds .npz when the name lacks it)."""
    path = str(path)
    return path if path.endswith(".npz") else path + ".npz"


def write_model(path, result: RunResult) -> None:
    """Save the trained W1, b1, W2, b2 (and batch-norm gamma, beta, running statistics) to `path` (.npz)."""
    arrays = result.params.blocks()
    if result.running_mean is not None:
        arrays.update(running_mean=result.running_mean, running_var=result.running_var)
    np.savez(path, **arrays)


FD_SANE = (1e-10, 1e-1)  # finite-difference steps outside this range give a gradient of rounding or curvature


OVERSHOOT = 10.0  # a batch loss this many times the first one: the steps overshoot, though all stayed finite


def overshoot_warning(result: RunResult) -> str | None:
    """One line when a run that did not diverge still had its batch loss rise far above where it started
    (a learning rate so large that the weights jump, then saturate), else None."""
    losses = result.loss_history[:result.iterations_done]
    if result.diverged or len(losses) < 2 or not losses[0] > 0:
        return None
    t = int(np.argmax(losses))
    if not losses[t] > OVERSHOOT * losses[0]:
        return None
    return (f"the batch loss rose to {losses[t]:.3g} at iteration {t + 1} (from {losses[0]:.3g} at the start): "
            f"the steps overshoot, and the result is not a trained network to rely on. "
            f"{divergence_hint(result.config)}")


def divergence_hint(config: TrainConfig) -> str:
    """What to change after a run diverged: the setting most likely at fault, not always the learning rate."""
    c = config
    if c.weight_decay * c.lr >= 1:
        return (f"--weight-decay {c.weight_decay:g} times --lr {c.lr:g} is {c.weight_decay * c.lr:.3g} (at least 1: "
                "each step overshoots the decay of the weights); lower --weight-decay.")
    if c.method != "analytic" and not FD_SANE[0] <= c.fd_step <= FD_SANE[1]:
        return (f"The numeric gradient with --fd-step {c.fd_step:g} is mostly rounding or curvature error; "
                "use a step near 1e-4.")
    return "Try a smaller --lr."


def divergence_message(result: RunResult, config: TrainConfig) -> str:
    """The one line that reports a diverged run: where it diverged, and what to change."""
    return f"Diverged at iteration {result.iterations_done}: the loss is not finite. {divergence_hint(config)}"
