"""The network core: the two-layer network's parameters, initialisation, checked batches, loss, exact gradient and
predictions, as checked wrappers over the kernels; below the gradient sources (sources/) and the training
(numerics/), and knowing neither (nor TrainConfig: a run's Settings are made by numerics/loop.py).

``Params`` keeps all weights in one flat vector with four views (W1, b1, W2,
b2), so optimizers update one array and gradients have the same layout as the
weights. The vector's dtype (float64, or float32) is the precision of
everything computed with it: the wrappers convert the data to it and the
kernels compute in it.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from ..choices import ACTIVATIONS, INITS, LOSSES, PRECISIONS
from ..kernels.activations import LEAKY_SLOPE
from ..kernels.backward import _analytic
from ..kernels.forward import BN_EPS, _forward, _loss, _predict
from ..kernels.fused import PLAIN, _norm
from ..kernels.lit import _nonzero
from ..seeding import rng
from . import kernel_cache  # noqa: F401  (guards every kernel's cache loader before the first call)
from .threads import run_parallel

N_IN = 784
N_OUT = 10

# The kernels' dispatch codes are the names' positions in choices.py (a test checks them).
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
LOSS_CODES = {name: code for code, name in enumerate(LOSSES)}


class Settings(NamedTuple):
    """What the wrappers and kernels need of a TrainConfig: made once per run by numerics/loop.settings(config)
    (which validates the config) and passed down as it is. The fields keep the config's names; a choice among
    more than two names is its kernel code (ACTIVATION_CODES, ...), a choice of two a boolean named after the
    field and the choice it is true for (select_on_train: select_on is "train"), as in the kernels' parameters.
    The defaults (DEFAULTS) are TrainConfig's where the network reads them (a test checks them), and a run of
    no sources."""

    policy: int = PLAIN  # PLAIN (the method is a source alone) or loop.POLICY_CODES
    sources: tuple[str, ...] = ()  # the gradient sources the run computes, in the order of --sources
    activation: int = 0  # ACTIVATION_CODES: sigmoid
    loss: int = 0  # LOSS_CODES: cross-entropy
    weight_decay: float = 0.0
    loss_epsilon: float = 0.0  # every loss evaluation; the analytic gradient ignores it
    alternate_every: int = 2  # alternate: every K-th iteration goes to the next of the other sources
    select_on_train: bool = False  # select_on == "train" (else the batch)
    lr: float = 0.1  # the fused loop's SGD step
    knobs: Mapping[str, tuple] = MappingProxyType({})  # every registered source's settings (Source.knobs), by name
    seed: int = 0  # the run seed: a source's per-iteration draws come from its "draws" stream (loop.words_of)


DEFAULTS = Settings()


@dataclass(frozen=True)
class Params:
    """Weights W1 (n_in, H), b1 (H,), W2 (H, K), b2 (K,), and with batch norm gamma, beta (H,):
    views into one flat vector."""

    flat: np.ndarray
    hidden: int
    n_in: int = N_IN
    n_out: int = N_OUT
    batch_norm: bool = False

    @classmethod
    def zeros(
        cls, hidden: int, n_in: int = N_IN, n_out: int = N_OUT, batch_norm: bool = False, dtype=np.float64
    ) -> "Params":
        size = n_in * hidden + hidden + hidden * n_out + n_out + (2 * hidden if batch_norm else 0)
        return cls(np.zeros(size, dtype=_float_dtype(dtype)), hidden, n_in, n_out, batch_norm)

    @classmethod
    def from_arrays(cls, W1, b1, W2, b2) -> "Params":
        """Params of W1's precision when it is float32, else float64."""
        W1 = np.asarray(W1)
        W1 = W1.astype(W1.dtype if W1.dtype == np.float32 else np.float64, copy=False)
        n_in, hidden = W1.shape
        n_out = np.shape(W2)[1]
        p = cls.zeros(hidden, n_in, n_out, dtype=W1.dtype)
        p.W1[...], p.b1[...], p.W2[...], p.b2[...] = W1, b1, W2, b2
        return p

    def _cuts(self):
        a = self.n_in * self.hidden
        b = a + self.hidden
        c = b + self.hidden * self.n_out
        return a, b, c

    @property
    def _bn_start(self) -> int:
        return self._cuts()[2] + self.n_out

    @property
    def gamma(self) -> np.ndarray:
        """Batch-norm scale (H,); only with batch_norm."""
        return self.flat[self._bn_start : self._bn_start + self.hidden]

    @property
    def beta(self) -> np.ndarray:
        """Batch-norm shift (H,); only with batch_norm."""
        return self.flat[self._bn_start + self.hidden : self._bn_start + 2 * self.hidden]

    @property
    def W1(self) -> np.ndarray:
        a, _, _ = self._cuts()
        return self.flat[:a].reshape(self.n_in, self.hidden)

    @property
    def b1(self) -> np.ndarray:
        a, b, _ = self._cuts()
        return self.flat[a:b]

    @property
    def W2(self) -> np.ndarray:
        _, b, c = self._cuts()
        return self.flat[b:c].reshape(self.hidden, self.n_out)

    @property
    def b2(self) -> np.ndarray:
        _, _, c = self._cuts()
        return self.flat[c : c + self.n_out]

    def __iter__(self):
        """W1, b1, W2, b2 (so that ``W1, b1, W2, b2 = params``); batch-norm gamma, beta are in blocks()."""
        return iter((self.W1, self.b1, self.W2, self.b2))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name} {tuple(a.shape)}" for name, a in self.blocks().items())
        return (
            f"Params({self.n_in}→{self.hidden}→{self.n_out}, {self.hidden} hidden units, "
            f"{'batch norm' if self.batch_norm else 'no batch norm'}, {self.flat.size:,} values: {shapes})"
        )

    def blocks(self) -> dict[str, np.ndarray]:
        out = {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}
        if self.batch_norm:
            out.update(gamma=self.gamma, beta=self.beta)
        return out

    @property
    def dtype(self) -> np.dtype:
        """The precision of the weights and of every computation with them."""
        return self.flat.dtype

    def with_flat(self, flat: np.ndarray) -> "Params":
        return Params(
            np.ascontiguousarray(flat, dtype=self.flat.dtype), self.hidden, self.n_in, self.n_out, self.batch_norm
        )

    def copy(self) -> "Params":
        return self.with_flat(self.flat.copy())

    def weight_mask(self) -> np.ndarray:
        """1 on the entries of W1 and W2, 0 on the biases (weight decay acts on weights only)."""
        m = np.zeros_like(self.flat)
        a, b, c = self._cuts()
        m[:a] = 1.0
        m[b:c] = 1.0
        return m


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.name not in PRECISIONS:
        raise ValueError(f"unknown precision {dtype.name!r}; choose one of: {', '.join(PRECISIONS)}")
    return dtype


def init_params(
    hidden: int,
    seed: int = 0,
    std: float = 0.01,
    init: str = "std",
    n_in: int = N_IN,
    n_out: int = N_OUT,
    batch_norm: bool = False,
    dtype=np.float64,
) -> Params:
    """Initial weights: N(0, std^2) (`std`), Xavier sqrt(1/n_in) or He sqrt(2/n_in) per layer; biases 0;
    batch-norm gamma 1, beta 0. Drawn in float64 and rounded to `dtype`, so a float32 run starts from
    the float64 run's weights, rounded."""
    if hidden < 1:
        raise ValueError(f"hidden must be at least 1, got {hidden}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}")
    if not (np.isfinite(std) and std > 0):
        raise ValueError(f"init std must be positive and finite, got {std}")
    gen = rng(seed, "init")
    p = Params.zeros(hidden, n_in, n_out, batch_norm)
    if batch_norm:
        p.gamma[...] = 1.0
    for W, fan_in in ((p.W1, n_in), (p.W2, hidden)):
        W[...] = init_scale(init, std, fan_in) * gen.standard_normal(W.shape)
    if _float_dtype(dtype) == np.float64:
        return p
    return Params(p.flat.astype(dtype), p.hidden, p.n_in, p.n_out, p.batch_norm)


def init_scale(init: str, std: float, fan_in: int) -> float:
    """The std of a layer's initial weights: `std` itself, Xavier sqrt(1/fan_in) or He sqrt(2/fan_in)."""
    return {"std": std, "xavier": np.sqrt(1.0 / fan_in), "he": np.sqrt(2.0 / fan_in)}[init]


def _activation_code(activation: str) -> int:
    if activation not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATION_CODES)}")
    return ACTIVATION_CODES[activation]


def check_batch(params: Params, x, y, mask=None):
    """x, y and the mask (ones when None) as the kernels take them, checked against the network's shape."""
    x, y = check_images(params, x, y)
    if mask is None:
        mask = np.ones((x.shape[0], params.hidden), dtype=params.dtype)
    else:
        mask = np.ascontiguousarray(mask, dtype=params.dtype)
        if mask.shape != (x.shape[0], params.hidden):
            raise ValueError(f"mask must have shape ({x.shape[0]}, {params.hidden}), got {mask.shape}")
    return x, y, mask


def check_images(params: Params, x, y):
    """x and y as the kernels take them, checked against the network's shape (no mask: a training set's would
    be N x H)."""
    x = np.ascontiguousarray(x, dtype=params.dtype)
    y = np.ascontiguousarray(y, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != params.n_in:
        raise ValueError(f"x must have shape (B, {params.n_in}), got {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {y.shape}")
    if x.shape[0] < 1:
        raise ValueError("the batch is empty")
    if y.size and (y.min() < 0 or y.max() >= params.n_out):
        raise ValueError(f"labels must lie in 0..{params.n_out - 1}")
    return x, y


def penalty(params: Params, weight_decay: float) -> float:
    """1/2 lambda (|W1|^2 + |W2|^2): the weight-decay part of the loss (biases are not decayed)."""
    if weight_decay == 0:
        return 0.0
    return 0.5 * weight_decay * (float(np.sum(params.W1 * params.W1)) + float(np.sum(params.W2 * params.W2)))


def _in_precision(params: Params, data_part, penalty_part: float) -> float:
    """data_part + penalty_part, added in the precision of `params` (float64: as a Python float)."""
    t = params.dtype.type
    return float(t(data_part) + t(penalty_part))


def _gamma_beta(params: Params) -> tuple:
    """gamma, beta for the kernels; None, None without batch norm."""
    return (params.gamma, params.beta) if params.batch_norm else (None, None)


def _loss_args(params: Params, x, y, s: Settings, mask) -> tuple:
    """The arguments of the loss kernel and of backpropagation, in their order (the batch checked first)."""
    return (
        x,
        y,
        params.W1,
        params.b1,
        params.W2,
        params.b2,
        s.activation,
        mask,
        s.loss,
        params.dtype.type(s.loss_epsilon),
        *_gamma_beta(params),
    )


def loss(params: Params, x, y, settings: Settings = DEFAULTS, mask=None) -> float:
    """Mean loss of the batch x (B, 784), y (B,), plus the weight-decay penalty; the cross-entropy is
    -log(p + loss_epsilon) when loss_epsilon > 0. Computed in the precision of `params`."""
    s = settings
    x, y, mask = check_batch(params, x, y, mask)
    data_part = _loss(*_loss_args(params, x, y, s, mask))
    return _in_precision(params, data_part, penalty(params, s.weight_decay))


def as_params(like: Params, gW1, gb1, gW2, gb2, ggamma=None, gbeta=None) -> Params:
    g = Params.zeros(like.hidden, like.n_in, like.n_out, like.batch_norm, like.dtype)
    g.W1[...], g.b1[...], g.W2[...], g.b2[...] = gW1, gb1, gW2, gb2
    if like.batch_norm:
        g.gamma[...], g.beta[...] = ggamma, gbeta
    return g


def analytic_gradient(params: Params, x, y, settings: Settings = DEFAULTS, mask=None, return_loss: bool = False):
    """Exact gradient of the mean loss by backpropagation, as Params (and the loss).

    With loss_epsilon > 0 the returned loss is -log(p + loss_epsilon) but the
    gradient stays that of -log p, as in the textbook's backward pass.
    """
    s = settings
    x, y, mask = check_batch(params, x, y, mask)
    decay = s.weight_decay
    value, flat = _analytic(*_loss_args(params, x, y, s, mask))
    grad = params.with_flat(flat)
    if decay:
        grad.flat[...] += decay * params.flat * params.weight_mask()
    return (grad, _in_precision(params, value, penalty(params, decay))) if return_loss else grad


def norm(v: np.ndarray) -> float:
    """||v||, summed in NumPy's order (bitwise np.sqrt(np.sum(v * v))) without a BLAS call, whose
    spinning threads would starve the Numba threads of the next kernel."""
    return _norm(np.ascontiguousarray(v))


class LitPixels(NamedTuple):
    """The lit pixels of every image of a training set (kernels/lit._nonzero's CSR rows, a bias entry each):
    what the fused loop gathers each batch's from. A run makes them once (lit_pixels)."""

    idx: np.ndarray  # (nnz,) int64: the pixel of each entry (n_in: the bias)
    val: np.ndarray  # (nnz,) the images' dtype: its value
    ptr: np.ndarray  # (N + 1,) int64: image r's entries are ptr[r]:ptr[r + 1]


def lit_pixels(x_train) -> LitPixels:
    """The lit pixels of the images x_train (N, n_in), in their dtype."""
    return LitPixels(*_nonzero(np.ascontiguousarray(x_train)))


def step_gradient(step, work: float, params: Params, x, y, settings: Settings, mask, knobs, draws=None):
    """(gradient, batch loss) a source's step kernel (kernels/fused.step_signature) computes at `params` on the
    batch x, y, mask (as check_batch gives them), on the threads run_parallel gives `work`; knobs: the source's
    settings; draws: its words of this iteration (loop.words_of; None: none). The loss is the one the step
    returns, the weight-decay penalty added as `loss` adds it: no second forward pass."""
    grad = params.with_flat(np.zeros_like(params.flat))  # zero on entry, as the step's contract says
    eps = params.dtype.type(settings.loss_epsilon)
    lit = lit_pixels(x)
    words = np.zeros(0, np.uint64) if draws is None else np.ascontiguousarray(draws, np.uint64)
    args = (params.flat, params.hidden, settings.activation, mask, settings.loss, eps, np.array(knobs, np.float64))
    value = run_parallel(step, work, x, y, *lit, *args, words, grad.flat)
    return grad, _in_precision(params, value, penalty(params, settings.weight_decay))


_NUMPY_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "leaky-relu": lambda a: np.where(a > 0.0, a, LEAKY_SLOPE * a),
    "mish": lambda a: a * np.tanh(np.logaddexp(0.0, a)),
}


def textbook_loss(params: Params, x, y, settings: Settings = DEFAULTS, mask=None) -> float:
    """The loss computed the textbook's way: dense NumPy, np.dot, no skipped zeros, in the precision
    of `params`. The cross-entropy is the textbook's -log(p + loss_epsilon) when loss_epsilon > 0
    (the textbook uses 1e-7), the stable log-sum-exp form when it is 0."""
    s = settings
    t = params.dtype.type
    x = np.asarray(x, dtype=params.dtype)
    a1 = np.dot(x, params.W1) + params.b1
    if params.batch_norm:
        mu = a1.mean(axis=0)
        a1 = params.gamma * (a1 - mu) / np.sqrt(((a1 - mu) ** 2).mean(axis=0) + t(BN_EPS)) + params.beta
    z1 = _NUMPY_ACTIVATIONS[ACTIVATIONS[s.activation]](a1)
    if mask is not None:
        z1 = z1 * np.asarray(mask, dtype=params.dtype)
    a2 = np.dot(z1, params.W2) + params.b2
    m = a2.max(axis=1, keepdims=True)
    e = np.exp(a2 - m)
    if s.loss == LOSS_CODES["mse"]:
        onehot = np.eye(a2.shape[1], dtype=params.dtype)[y]
        value = np.mean(t(0.5) * np.sum((e / e.sum(axis=1, keepdims=True) - onehot) ** 2, axis=1))
    elif s.loss_epsilon:
        p = e / e.sum(axis=1, keepdims=True)
        value = -np.sum(np.log(p[np.arange(len(y)), y] + t(s.loss_epsilon))) / t(len(y))
    else:
        lse = m[:, 0] + np.log(e.sum(axis=1))
        value = np.mean(lse - a2[np.arange(len(y)), y])
    return _in_precision(params, value, penalty(params, s.weight_decay))


def batch_stats(params: Params, x) -> tuple[np.ndarray, np.ndarray]:
    """Batch mean and variance of the hidden pre-activations x W1 + b1 (for running statistics)."""
    x = np.ascontiguousarray(x, dtype=params.dtype)
    a1 = np.dot(x, params.W1) + params.b1
    return a1.mean(axis=0), a1.var(axis=0)


def fold_batch_norm(params: Params, mean: np.ndarray, var: np.ndarray) -> Params:
    """A plain network equal to `params` with batch norm at test time (running mean and variance):
    u = gamma (a1 - mean) / sqrt(var + eps) + beta is an affine map of a1, folded into W1 and b1."""
    scale = params.gamma / np.sqrt(var + params.dtype.type(BN_EPS))
    return Params.from_arrays(params.W1 * scale, (params.b1 - mean) * scale + params.beta, params.W2, params.b2)


PREDICT_CHUNK = 2000  # uint8 images are converted to float this many at a time


def predict(params: Params, x, activation: str = "sigmoid") -> np.ndarray:
    """Predicted digit of every row of x (N, 784): float in [0, 1], or uint8 pixels (0-255), computed in
    the precision of `params` (uint8 pixels are scaled in float64, then rounded to it, as data.to_float)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != params.n_in:
        raise ValueError(f"x must have shape (N, {params.n_in}), got {x.shape}")
    act = _activation_code(activation)

    def run(chunk):  # work: about a fifth of MNIST's pixels are lit
        work = chunk.shape[0] * params.hidden * (chunk.shape[1] // 5 + params.n_out)
        return run_parallel(_predict, work, chunk, params.W1, params.b1, params.W2, params.b2, act)

    if x.dtype == np.uint8:  # convert in chunks: the test set as float64 would be 63 MB
        return np.concatenate(
            [
                run(
                    (np.ascontiguousarray(x[i : i + PREDICT_CHUNK], dtype=np.float64) / 255.0).astype(
                        params.dtype, copy=False
                    )
                )
                for i in range(0, len(x), PREDICT_CHUNK)
            ]
        )
    return run(np.ascontiguousarray(x, dtype=params.dtype))


def hidden(params: Params, x, activation: str = "sigmoid") -> np.ndarray:
    """The hidden activations act(x W1 + b1) (N, H) of every row of x (N, n_in): float, or uint8 pixels scaled
    as predict scales them; test time (no dropout mask; a batch-norm network's statistics folded in first)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != params.n_in:
        raise ValueError(f"x must have shape (N, {params.n_in}), got {x.shape}")
    if x.dtype == np.uint8:
        x = (x.astype(np.float64) / 255.0).astype(params.dtype, copy=False)
    x = np.ascontiguousarray(x, dtype=params.dtype)
    ones = np.ones((len(x), params.hidden), params.dtype)
    act = _activation_code(activation)
    return _forward(x, params.W1, params.b1, params.W2, params.b2, act, ones, None, None)[2]


def accuracy(params: Params, x, y, activation: str = "sigmoid") -> float:
    """Share of rows of x whose predicted digit equals y."""
    return float(np.mean(predict(params, x, activation) == np.asarray(y)))
