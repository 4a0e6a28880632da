"""Optimizers as pure functions over the flat parameter vector.

``step(params, grad, state) -> (new_params, new_state)`` never mutates its
inputs, so ``select`` can try two updates from the same state and keep one.
Formulas follow the textbook the papers cite; the defaults are TrainConfig's.
Every update is computed in the parameters' precision (float64 or float32):
the hyper-parameters are Python floats, which NumPy applies in the array's
dtype.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..choices import OPTIMIZERS
from ..config import TrainConfig

_DEFAULT = TrainConfig()  # the defaults live in one place: TrainConfig


@dataclass(frozen=True)
class Optimizer:
    name: str = _DEFAULT.optimizer
    lr: float = _DEFAULT.lr
    momentum: float = _DEFAULT.momentum  # momentum and nesterov
    rho: float = _DEFAULT.rho  # rmsprop decay
    beta1: float = _DEFAULT.beta1  # adam
    beta2: float = _DEFAULT.beta2  # adam
    eps: float = _DEFAULT.eps  # adagrad, rmsprop, adam

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; choose one of: {', '.join(OPTIMIZERS)}")

    def init(self, n: int, dtype=np.float64) -> dict:
        """The state before the first step, for a parameter vector of length n and this dtype."""
        if self.name == "sgd":
            return {"t": 0}
        if self.name == "adam":
            return {"t": 0, "m": np.zeros(n, dtype), "v": np.zeros(n, dtype)}
        return {"t": 0, "s": np.zeros(n, dtype)}  # velocity (momentum, nesterov) or squared sum (adagrad, rmsprop)

    def step(self, p: np.ndarray, g: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        t = state["t"] + 1
        lr = self.lr
        if self.name == "sgd":
            return p - lr * g, {"t": t}
        if self.name == "momentum":
            v = self.momentum * state["s"] - lr * g
            return p + v, {"t": t, "s": v}
        if self.name == "nesterov":
            mu = self.momentum
            v = mu * state["s"] - lr * g
            return p + mu * mu * v - (1.0 + mu) * lr * g, {"t": t, "s": v}
        if self.name == "adagrad":
            h = state["s"] + g * g
            return p - lr * g / (np.sqrt(h) + self.eps), {"t": t, "s": h}
        if self.name == "rmsprop":
            h = self.rho * state["s"] + (1.0 - self.rho) * g * g
            return p - lr * g / (np.sqrt(h) + self.eps), {"t": t, "s": h}
        # adam, bias-corrected through the step size as in the textbook
        m = state["m"] + (1.0 - self.beta1) * (g - state["m"])
        v = state["v"] + (1.0 - self.beta2) * (g * g - state["v"])
        lr_t = lr * math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)  # a Python float: keeps p's dtype
        return p - lr_t * m / (np.sqrt(v) + self.eps), {"t": t, "m": m, "v": v}
