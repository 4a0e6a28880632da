"""One training run: ``TrainConfig`` in, ``RunResult`` out; progress through a callback.

All randomness of a run comes from named streams of its seed (seeding.py), so
for one seed every method sees the same initial weights, few-shot subset and
mini-batch sequence.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import data, network
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
    acc_history: list[tuple[int, float]]  # (iteration, test accuracy) every eval_every iterations
    wall_time: float                      # seconds, whole run including evaluation
    train_time: float                     # seconds spent in the iterations
    iterations_done: int
    counts: dict[str, int]                # gradient evaluations of each source
    select_wins: dict[str, int] | None    # select: how often each update was kept
    rel_diff_mean: float | None           # mean ||g_num - g_ana|| / ||g_ana|| where both were computed
    diverged: bool
    params: Params
    predictions: np.ndarray               # (test_limit,) predicted digits
    sources: np.ndarray = field(repr=False, default=None)  # (iterations_done,) 1 where the kept update was numeric

    @property
    def time_per_iter(self) -> float:
        return self.train_time / max(self.iterations_done, 1)

    @property
    def numeric_share(self) -> float:
        """Share of iterations whose kept update came from the numeric gradient."""
        return float(self.sources.mean()) if self.iterations_done else 0.0


class Dataset:
    """The few-shot training set (float64) and the (limited) test set (uint8) of one run."""

    def __init__(self, raw, config: TrainConfig):
        xtr, ytr, xte, yte = raw
        self.x_train, self.y_train = data.few_shot(xtr, ytr, config.shots, config.subset, config.seed)
        self.x_test = xte[: config.test_limit]  # uint8: network.predict converts it in chunks
        self.y_test = yte[: config.test_limit]


def batch_indices(config: TrainConfig, n_train: int) -> np.ndarray:
    """(iters, batch) indices into the few-shot set: the same for every method of one seed."""
    return rng(config.seed, "batches").integers(0, n_train, size=(config.iters, config.batch))


def train(config: TrainConfig, raw=None, data_dir=None, progress=None) -> RunResult:
    """Train one network. `raw` is ``data.load_mnist_raw()`` (loaded when omitted).

    ``progress(done, total, loss)`` is called about 200 times during the run.
    """
    config.validate()
    if raw is None:
        raw = data.load_mnist_raw(data_dir)
    ds = Dataset(raw, config)
    setting = Setting(
        optimizer=Optimizer("sgd", lr=config.lr), fd_step=config.fd_step, fd_scheme=config.fd_scheme,
        numeric_every=config.numeric_every, select_on=config.select_on,
        x_train=ds.x_train, y_train=ds.y_train,
    )
    step_fn = METHODS[config.method]
    params = network.init_params(config.hidden, config.seed, config.init_std)
    opt_state = setting.optimizer.init(params.flat.size)
    batches = batch_indices(config, len(ds.y_train))
    mask = np.ones((config.batch, config.hidden))

    losses = np.empty(config.iters)
    sources = np.zeros(config.iters, dtype=np.int8)
    counts = {"analytic": 0, "numeric": 0}
    wins = {"analytic": 0, "numeric": 0}
    rel_diffs = []
    acc_history = []
    report_every = max(1, config.iters // 200)
    diverged = False
    done = 0
    start = time.perf_counter()
    train_time = 0.0
    for t in range(1, config.iters + 1):
        tick = time.perf_counter()
        idx = batches[t - 1]
        step: Step = step_fn(setting, params, opt_state, ds.x_train[idx], ds.y_train[idx], mask, t)
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
            rel_diffs.append(step.rel_diff)
        done = t
        if config.eval_every and t % config.eval_every == 0:
            acc_history.append((t, network.accuracy(params, ds.x_test, ds.y_test)))
        if progress is not None and (t % report_every == 0 or t == config.iters):
            progress(t, config.iters, step.loss)

    if diverged:
        accuracy, final_loss = float("nan"), float("nan")
        predictions = np.full(len(ds.y_test), -1, dtype=np.int64)
    else:
        predictions = network.predict(params, ds.x_test)
        accuracy = float(np.mean(predictions == ds.y_test))
        final_loss = network.loss(params, ds.x_train, ds.y_train)
    return RunResult(
        config=config, accuracy=accuracy, final_loss=final_loss, loss_history=losses[:done],
        acc_history=acc_history, wall_time=time.perf_counter() - start, train_time=train_time,
        iterations_done=done, counts=counts, select_wins=wins if config.method == "select" else None,
        rel_diff_mean=float(np.mean(rel_diffs)) if rel_diffs else None, diverged=diverged,
        params=params, predictions=predictions, sources=sources[:done],
    )
