"""TrainConfig, and the names of every choice a run can make.

No heavy imports here: the command line and the tables read configurations
without loading Numba.
"""

import math
from dataclasses import asdict, dataclass, fields

METHOD_NAMES = ("analytic", "numeric", "alternate", "select")
SUBSETS = ("first", "random")
FD_SCHEMES = ("central", "forward")
FD_ARITHS = ("exact", "textbook")  # how a finite difference subtracts the two perturbed losses
PRECISIONS = ("float64", "float32")
SELECT_ON = ("batch", "train")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
INITS = ("std", "xavier", "he")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky-relu", "mish")
LOSSES = ("cross-entropy", "mse")
DIGITS_FROM = ("first", "disagree", "random")  # which test images a digit picture shows
GRADCHECK_STEPS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)  # finite-difference steps gradcheck tries

# Limits that keep a run within memory: a bigger value would only end in a MemoryError mid-run.
MAX_HIDDEN = 10_000        # W1 alone is 784 x H float64 (63 MB at the limit), and the optimizer keeps copies
MAX_BATCH = 10_000         # each mini-batch is copied out as B x 784 float64 (63 MB at the limit)
MAX_DRAWS = 100_000_000    # iters x batch: all mini-batch indices are drawn up front, 8 bytes each


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
    optimizer: str = "sgd"        # sgd | momentum | nesterov | adagrad | rmsprop | adam
    momentum: float = 0.9         # momentum, nesterov
    rho: float = 0.99             # rmsprop decay
    beta1: float = 0.9            # adam
    beta2: float = 0.999          # adam
    eps: float = 1e-7             # adagrad, rmsprop, adam
    init: str = "std"             # std (init_std) | xavier sqrt(1/n_in) | he sqrt(2/n_in)
    activation: str = "sigmoid"   # hidden activation
    loss: str = "cross-entropy"   # cross-entropy | mse (1/2 squared error of the softmax output)
    weight_decay: float = 0.0     # adds 1/2 lambda (|W1|^2 + |W2|^2) to the loss
    dropout: float = 0.0          # inverted dropout on the hidden layer, mask held fixed per iteration
    batch_norm: bool = False      # batch normalisation of the hidden pre-activations
    precision: str = "float64"    # float64 | float32: data, weights and all arithmetic of the run
    fd_arith: str = "exact"       # exact: difference of per-sample losses | textbook: (L+ - L-) / 2h as numbers
    loss_epsilon: float = 0.0     # cross-entropy as -log(p + eps) (textbook: 1e-7); backprop ignores it

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field and its allowed values."""
        def positive_finite(name):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be positive and finite, got {v}")

        if self.method not in METHOD_NAMES:
            raise ValueError(f"unknown method {self.method!r}; choose one of: {', '.join(METHOD_NAMES)}")
        for name in ("shots", "batch", "hidden", "iters", "numeric_every", "eval_every", "test_limit", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name} must be a whole number, got {v!r}")
        for name in ("shots", "batch", "hidden", "iters", "numeric_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        for name, limit in (("hidden", MAX_HIDDEN), ("batch", MAX_BATCH)):
            if getattr(self, name) > limit:
                raise ValueError(f"{name} must be at most {limit:,}, got {getattr(self, name):,}")
        if self.iters * self.batch > MAX_DRAWS:
            raise ValueError(f"iters x batch must be at most {MAX_DRAWS:,} (the mini-batch indices are drawn up "
                             f"front), got {self.iters:,} x {self.batch:,}; lower iters or batch")
        for name in ("lr", "fd_step", "init_std"):
            positive_finite(name)
        if self.subset not in SUBSETS:
            raise ValueError(f"unknown subset {self.subset!r}; choose one of: {', '.join(SUBSETS)}")
        if self.fd_scheme not in FD_SCHEMES:
            raise ValueError(f"unknown fd scheme {self.fd_scheme!r}; choose one of: {', '.join(FD_SCHEMES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.fd_arith not in FD_ARITHS:
            raise ValueError(f"unknown fd arith {self.fd_arith!r}; choose one of: {', '.join(FD_ARITHS)}")
        if not (isinstance(self.loss_epsilon, (int, float)) and not isinstance(self.loss_epsilon, bool)
                and 0 <= self.loss_epsilon < 1):
            raise ValueError(f"loss_epsilon must be in [0, 1), got {self.loss_epsilon!r}")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"unknown select-on {self.select_on!r}; choose one of: {', '.join(SELECT_ON)}")
        for name, choices in (("optimizer", OPTIMIZERS), ("init", INITS), ("activation", ACTIVATIONS),
                              ("loss", LOSSES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of: {', '.join(choices)}")
        positive_finite("eps")
        for name in ("momentum", "rho", "beta1", "beta2", "dropout"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v < 1):
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be zero or more and finite, got {self.weight_decay}")
        if self.loss_epsilon and self.loss != "cross-entropy":
            raise ValueError(f"loss_epsilon applies to the cross-entropy only, not to {self.loss!r}; "
                             "drop --loss-epsilon or use --loss cross-entropy")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        if self.batch_norm and self.batch < 2:
            raise ValueError("batch norm needs a batch of at least 2 (the batch statistics of one sample are "
                             "degenerate); raise --batch or drop --batch-norm")
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


def canonical(config: dict) -> dict:
    """A stored config with every field, defaults filled in for fields added since it was written."""
    return TrainConfig.from_dict(config).to_dict()
