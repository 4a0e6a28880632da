"""The two-layer network: parameters, initialisation, and checked wrappers over the kernels.

``Params`` keeps all weights in one flat float64 vector with four views
(W1, b1, W2, b2), so optimizers update one array and gradients have the same
layout as the weights.
"""

from dataclasses import dataclass

import numpy as np

from . import kernels
from .config import FD_SCHEMES, INITS
from .seeding import rng

N_IN = 784
N_OUT = 10

ACTIVATIONS = {
    "sigmoid": kernels.SIGMOID,
    "tanh": kernels.TANH,
    "relu": kernels.RELU,
    "leaky-relu": kernels.LEAKY_RELU,
    "mish": kernels.MISH,
}


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
    def zeros(cls, hidden: int, n_in: int = N_IN, n_out: int = N_OUT, batch_norm: bool = False) -> "Params":
        size = n_in * hidden + hidden + hidden * n_out + n_out + (2 * hidden if batch_norm else 0)
        return cls(np.zeros(size), hidden, n_in, n_out, batch_norm)

    @classmethod
    def from_arrays(cls, W1, b1, W2, b2) -> "Params":
        W1 = np.asarray(W1, dtype=np.float64)
        n_in, hidden = W1.shape
        n_out = np.shape(W2)[1]
        p = cls.zeros(hidden, n_in, n_out)
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
        return self.flat[self._bn_start:self._bn_start + self.hidden]

    @property
    def beta(self) -> np.ndarray:
        """Batch-norm shift (H,); only with batch_norm."""
        return self.flat[self._bn_start + self.hidden:self._bn_start + 2 * self.hidden]

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
        return self.flat[c:c + self.n_out]

    def blocks(self) -> dict[str, np.ndarray]:
        out = {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}
        if self.batch_norm:
            out.update(gamma=self.gamma, beta=self.beta)
        return out

    def with_flat(self, flat: np.ndarray) -> "Params":
        return Params(np.ascontiguousarray(flat, dtype=np.float64), self.hidden, self.n_in, self.n_out,
                      self.batch_norm)

    def copy(self) -> "Params":
        return self.with_flat(self.flat.copy())

    def weight_mask(self) -> np.ndarray:
        """1 on the entries of W1 and W2, 0 on the biases (weight decay acts on weights only)."""
        m = np.zeros_like(self.flat)
        a, b, c = self._cuts()
        m[:a] = 1.0
        m[b:c] = 1.0
        return m


def init_params(hidden: int, seed: int = 0, std: float = 0.01, init: str = "std",
                n_in: int = N_IN, n_out: int = N_OUT, batch_norm: bool = False) -> Params:
    """Initial weights: N(0, std^2) (`std`), Xavier sqrt(1/n_in) or He sqrt(2/n_in) per layer; biases 0;
    batch-norm gamma 1, beta 0."""
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
        s = {"std": std, "xavier": np.sqrt(1.0 / fan_in), "he": np.sqrt(2.0 / fan_in)}[init]
        W[...] = s * gen.standard_normal(W.shape)
    return p


def _activation_code(activation: str) -> int:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def _check_batch(params: Params, x, y, mask=None):
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != params.n_in:
        raise ValueError(f"x must have shape (B, {params.n_in}), got {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), got {y.shape}")
    if x.shape[0] < 1:
        raise ValueError("the batch is empty")
    if y.size and (y.min() < 0 or y.max() >= params.n_out):
        raise ValueError(f"labels must lie in 0..{params.n_out - 1}")
    if mask is None:
        mask = np.ones((x.shape[0], params.hidden))
    else:
        mask = np.ascontiguousarray(mask, dtype=np.float64)
        if mask.shape != (x.shape[0], params.hidden):
            raise ValueError(f"mask must have shape ({x.shape[0]}, {params.hidden}), got {mask.shape}")
    return x, y, mask


LOSSES = {"cross-entropy": kernels.CROSS_ENTROPY, "mse": kernels.MSE}


def _loss_code(loss: str) -> int:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[loss]


def _check_decay(weight_decay: float) -> float:
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight decay must be zero or more and finite, got {weight_decay}")
    return float(weight_decay)


def penalty(params: Params, weight_decay: float) -> float:
    """1/2 lambda (|W1|^2 + |W2|^2): the weight-decay part of the loss (biases are not decayed)."""
    if weight_decay == 0:
        return 0.0
    return 0.5 * weight_decay * (float(np.sum(params.W1 * params.W1)) + float(np.sum(params.W2 * params.W2)))


def loss(params: Params, x, y, activation: str = "sigmoid", mask=None, loss: str = "cross-entropy",
         weight_decay: float = 0.0) -> float:
    """Mean loss of the batch x (B, 784), y (B,), plus the weight-decay penalty."""
    x, y, mask = _check_batch(params, x, y, mask)
    if params.batch_norm:
        data_part = kernels._loss_bn(x, y, params.W1, params.b1, params.W2, params.b2, params.gamma, params.beta,
                                     _activation_code(activation), mask, _loss_code(loss))
    else:
        data_part = kernels._loss(x, y, params.W1, params.b1, params.W2, params.b2, _activation_code(activation),
                                  mask, _loss_code(loss))
    return float(data_part) + penalty(params, _check_decay(weight_decay))


def _as_params(like: Params, gW1, gb1, gW2, gb2, ggamma=None, gbeta=None) -> Params:
    g = Params.zeros(like.hidden, like.n_in, like.n_out, like.batch_norm)
    g.W1[...], g.b1[...], g.W2[...], g.b2[...] = gW1, gb1, gW2, gb2
    if like.batch_norm:
        g.gamma[...], g.beta[...] = ggamma, gbeta
    return g


def analytic_gradient(params: Params, x, y, activation: str = "sigmoid", mask=None, return_loss: bool = False,
                      loss: str = "cross-entropy", weight_decay: float = 0.0):
    """Exact gradient of the mean loss by backpropagation, as Params (and the loss)."""
    x, y, mask = _check_batch(params, x, y, mask)
    decay = _check_decay(weight_decay)
    if params.batch_norm:
        value, *g = kernels._analytic_bn(x, y, params.W1, params.b1, params.W2, params.b2, params.gamma,
                                         params.beta, _activation_code(activation), mask, _loss_code(loss))
        grad = _as_params(params, *g)
    else:
        value, flat = kernels._analytic(x, y, params.W1, params.b1, params.W2, params.b2,
                                        _activation_code(activation), mask, _loss_code(loss))
        grad = params.with_flat(flat)
    if decay:
        grad.flat[...] += decay * params.flat * params.weight_mask()
    return (grad, float(value) + penalty(params, decay)) if return_loss else grad


def _check_step(step: float, scheme: str):
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"fd step must be positive and finite, got {step}")
    if scheme not in FD_SCHEMES:
        raise ValueError(f"unknown fd scheme {scheme!r}; choose one of: {', '.join(FD_SCHEMES)}")


def numerical_gradient(params: Params, x, y, step: float = 1e-4, scheme: str = "central",
                       activation: str = "sigmoid", mask=None, loss: str = "cross-entropy",
                       weight_decay: float = 0.0) -> Params:
    """Finite-difference gradient, every perturbed loss re-evaluated incrementally (fast).

    The weight-decay term is part of the loss: its change under each
    perturbation, 1/2 lambda ((w + h)^2 - (w - h)^2), is differenced like the rest.
    """
    _check_step(step, scheme)
    x, y, mask = _check_batch(params, x, y, mask)
    decay = _check_decay(weight_decay)
    central = scheme == "central"
    if params.batch_norm:
        lit_columns = int(np.count_nonzero(x.any(axis=0))) + 1
        work = (2 if central else 1) * params.hidden * lit_columns * x.shape[0] * params.n_out
        g = kernels.run_parallel(kernels._numeric_bn, work, x, y, params.W1, params.b1, params.W2, params.b2,
                                 params.gamma, params.beta, _activation_code(activation), mask, float(step),
                                 central, _loss_code(loss))
    else:
        work = (2 if central else 1) * params.hidden * (np.count_nonzero(x) + x.shape[0]) * params.n_out
        g = kernels.run_parallel(kernels._numeric, work, x, y, params.W1, params.b1, params.W2, params.b2,
                                 _activation_code(activation), mask, float(step), central, _loss_code(loss))
    grad = _as_params(params, *g)
    if decay:
        w = params.flat
        lower = w - step if central else w
        change = 0.5 * decay * ((w + step) ** 2 - lower ** 2) / ((2 * step) if central else step)
        grad.flat[...] += change * params.weight_mask()
    return grad


_NUMPY_ACTIVATIONS = {
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "leaky-relu": lambda a: np.where(a > 0.0, a, kernels.LEAKY_SLOPE * a),
    "mish": lambda a: a * np.tanh(np.logaddexp(0.0, a)),
}


def textbook_loss(params: Params, x, y, activation: str = "sigmoid", mask=None, loss: str = "cross-entropy",
                  weight_decay: float = 0.0) -> float:
    """The loss as the textbook computes it: dense NumPy, np.dot, no skipped zeros."""
    a1 = np.dot(x, params.W1) + params.b1
    if params.batch_norm:
        mu = a1.mean(axis=0)
        a1 = params.gamma * (a1 - mu) / np.sqrt(((a1 - mu) ** 2).mean(axis=0) + kernels.BN_EPS) + params.beta
    z1 = _NUMPY_ACTIVATIONS[activation](a1)
    if mask is not None:
        z1 = z1 * mask
    a2 = np.dot(z1, params.W2) + params.b2
    m = a2.max(axis=1, keepdims=True)
    e = np.exp(a2 - m)
    if loss == "mse":
        onehot = np.eye(a2.shape[1])[y]
        value = float(np.mean(0.5 * np.sum((e / e.sum(axis=1, keepdims=True) - onehot) ** 2, axis=1)))
    else:
        lse = m[:, 0] + np.log(e.sum(axis=1))
        value = float(np.mean(lse - a2[np.arange(len(y)), y]))
    return value + penalty(params, weight_decay)


def naive_numerical_gradient(params: Params, x, y, step: float = 1e-4, scheme: str = "central",
                             activation: str = "sigmoid", mask=None, indices=None, loss: str = "cross-entropy",
                             weight_decay: float = 0.0) -> Params:
    """The textbook method: perturb one weight, full NumPy forward pass, restore.

    Slow on purpose: the reference that tests and benchmarks compare against.
    With `indices` (positions in the flat vector) only those entries are
    computed; the rest of the result is NaN.
    """
    _check_step(step, scheme)
    _activation_code(activation)
    _loss_code(loss)
    decay = _check_decay(weight_decay)
    x, y, mask = _check_batch(params, x, y, mask)
    work = params.copy()
    f = lambda: textbook_loss(work, x, y, activation, mask, loss, decay)  # noqa: E731 (views see each perturbation)
    grad = np.full_like(work.flat, np.nan)
    base = f() if scheme == "forward" else None
    for n in (range(work.flat.size) if indices is None else indices):
        keep = work.flat[n]
        work.flat[n] = keep + step
        up = f()
        if scheme == "central":
            work.flat[n] = keep - step
            grad[n] = (up - f()) / (2 * step)
        else:
            grad[n] = (up - base) / step
        work.flat[n] = keep
    return params.with_flat(grad)


def batch_stats(params: Params, x) -> tuple[np.ndarray, np.ndarray]:
    """Batch mean and variance of the hidden pre-activations x W1 + b1 (for running statistics)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    a1 = np.dot(x, params.W1) + params.b1
    return a1.mean(axis=0), a1.var(axis=0)


def fold_batch_norm(params: Params, mean: np.ndarray, var: np.ndarray) -> Params:
    """A plain network equal to `params` with batch norm at test time (running mean and variance):
    u = gamma (a1 - mean) / sqrt(var + eps) + beta is an affine map of a1, folded into W1 and b1."""
    scale = params.gamma / np.sqrt(var + kernels.BN_EPS)
    return Params.from_arrays(params.W1 * scale, (params.b1 - mean) * scale + params.beta, params.W2, params.b2)


PREDICT_CHUNK = 2000  # uint8 images are converted to float64 this many at a time


def predict(params: Params, x, activation: str = "sigmoid") -> np.ndarray:
    """Predicted digit of every row of x (N, 784): float in [0, 1], or uint8 pixels (0-255)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != params.n_in:
        raise ValueError(f"x must have shape (N, {params.n_in}), got {x.shape}")
    act = _activation_code(activation)

    def run(chunk):  # work: about a fifth of MNIST's pixels are lit
        work = chunk.shape[0] * params.hidden * (chunk.shape[1] // 5 + params.n_out)
        return kernels.run_parallel(kernels._predict, work, chunk, params.W1, params.b1, params.W2, params.b2, act)

    if x.dtype == np.uint8:  # convert in chunks: the test set as float64 would be 63 MB
        return np.concatenate([run(np.ascontiguousarray(x[i:i + PREDICT_CHUNK], dtype=np.float64) / 255.0)
                               for i in range(0, len(x), PREDICT_CHUNK)])
    return run(np.ascontiguousarray(x, dtype=np.float64))


def accuracy(params: Params, x, y, activation: str = "sigmoid") -> float:
    """Share of rows of x whose predicted digit equals y."""
    return float(np.mean(predict(params, x, activation) == np.asarray(y)))
