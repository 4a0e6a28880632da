"""One training run: ``TrainConfig`` in, ``RunResult`` out; progress through a callback.

All randomness of a run comes from named streams of its seed (seeding.py), so
for one seed every method sees the same initial weights, few-shot subset and
mini-batch sequence.
"""

import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import data, network
from .methods import METHODS, SELECT_ON, Setting, Step
from .network import Params
from .optimizers import Optimizer
from .seeding import rng


@dataclass(frozen=True)
class TrainConfig:
    """Everything that changes the outcome of a run (and nothing that does not)."""

    method: str = "alternate"     # analytic | numeric | alternate | select
    shots: int = 2                # images per class in the few-shot training set
    batch: int = 8                # mini-batch size (drawn with replacement)
    hidden: int = 50              # hidden units
    iters: int = 10000            # iterations, one mini-batch each
    lr: float = 0.1               # learning rate
    seed: int = 0                 # initial weights, subset (random), batch order
    subset: str = "first"         # first k per class in file order, or random
    init_std: float = 0.01        # std of the N(0, std^2) initial weights
    fd_step: float = 1e-4         # finite-difference step h
    fd_scheme: str = "central"    # central (L(w+h)-L(w-h))/2h or forward (L(w+h)-L(w))/h
    numeric_every: int = 2        # alternate: every K-th iteration is numeric
    select_on: str = "batch"      # select: compare the candidates on the batch or the whole train set
    eval_every: int = 0           # also record test accuracy every N iterations (0: only at the end)
    test_limit: int = 10000       # evaluate on the first N test images

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field and its allowed values."""
        def positive_finite(name):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive and finite, got {v}")

        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        for name in ("shots", "batch", "hidden", "iters", "numeric_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "fd_step", "init_std"):
            positive_finite(name)
        if self.subset not in data.SUBSETS:
            raise ValueError(f"unknown subset {self.subset!r}; choose one of: {', '.join(data.SUBSETS)}")
        if self.fd_scheme not in network.FD_SCHEMES:
            raise ValueError(f"unknown fd scheme {self.fd_scheme!r}; choose one of: {', '.join(network.FD_SCHEMES)}")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"unknown select-on {self.select_on!r}; choose one of: {', '.join(SELECT_ON)}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be 0 or more, got {self.eval_every}")
        if not 1 <= self.test_limit <= 10000:
            raise ValueError(f"test_limit must be between 1 and 10000, got {self.test_limit}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "TrainConfig":
        return TrainConfig(**{**self.to_dict(), **changes})


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
    """The few-shot training set and the (limited) test set of one run, as float64."""

    def __init__(self, raw, config: TrainConfig):
        xtr, ytr, xte, yte = raw
        self.x_train, self.y_train = data.few_shot(xtr, ytr, config.shots, config.subset, config.seed)
        self.x_test = data.to_float(xte[: config.test_limit])
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
