"""The optimizers: three steps on a 2-vector against plain arithmetic, purity."""

import math

import numpy as np
import pytest

from gradsel_cli.numerics.optimizers import OPTIMIZERS, Optimizer

OPTIMIZER_RTOL = 1e-12  # the optimizers against plain scalar arithmetic: rounding only

# --- optimizers: three steps on a 2-vector against plain arithmetic ------------

P0 = (1.0, -2.0)
GRADS = ((0.5, -1.0), (0.25, 2.0), (-1.0, 0.5))
LR = 0.1


def by_hand(name):
    """The three iterates of each coordinate, in plain float arithmetic (the textbook formulas)."""
    iterates = []
    for i in range(2):
        p, v, h, m, s = P0[i], 0.0, 0.0, 0.0, 0.0
        path = []
        for t, grads in enumerate(GRADS, start=1):
            g = grads[i]
            if name == "sgd":
                p = p - LR * g
            elif name == "momentum":
                v = 0.9 * v - LR * g
                p = p + v
            elif name == "nesterov":
                v = 0.9 * v - LR * g
                p = p + 0.9 * 0.9 * v - (1 + 0.9) * LR * g
            elif name == "adagrad":
                h = h + g * g
                p = p - LR * g / (math.sqrt(h) + 1e-7)
            elif name == "rmsprop":
                h = 0.99 * h + (1 - 0.99) * g * g
                p = p - LR * g / (math.sqrt(h) + 1e-7)
            elif name == "adam":
                m = 0.9 * m + (1 - 0.9) * g
                s = 0.999 * s + (1 - 0.999) * g * g
                lr_t = LR * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
                p = p - lr_t * m / (math.sqrt(s) + 1e-7)
            path.append(p)
        iterates.append(path)
    return np.array(iterates).T  # (3 steps, 2 coordinates)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_first_three_steps(name):
    opt = Optimizer(name, lr=LR)
    p = np.array(P0)
    state = opt.init(2)
    want = by_hand(name)
    for t, g in enumerate(GRADS):
        p, state = opt.step(p, np.array(g), state)
        assert state["t"] == t + 1
        assert np.allclose(p, want[t], rtol=OPTIMIZER_RTOL, atol=0), f"{name} step {t + 1}: {p} != {want[t]}"


def test_optimizer_literal_values():
    # a few numbers worked out on paper, as a check on the check
    sgd, momentum = Optimizer("sgd", lr=0.1), Optimizer("momentum", lr=0.1)
    p, _ = sgd.step(np.array(P0), np.array(GRADS[0]), sgd.init(2))
    assert np.allclose(p, [0.95, -1.9], rtol=1e-15)
    p, s = momentum.step(np.array(P0), np.array(GRADS[0]), momentum.init(2))
    p, s = momentum.step(p, np.array(GRADS[1]), s)
    # v2 = 0.9 * v1 - 0.1 * g2: 0.9 * (-0.05) - 0.025 = -0.07 and 0.9 * 0.1 - 0.2 = -0.11
    assert np.allclose(p, [0.95 - 0.07, -1.9 - 0.11], rtol=1e-15)
    for name in ("adagrad", "adam"):  # the first step of both moves every weight by lr against its gradient's sign
        opt = Optimizer(name, lr=0.1)
        p, _ = opt.step(np.array(P0), np.array(GRADS[0]), opt.init(2))
        assert np.allclose(p, [0.9, -1.9], rtol=1e-6)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_step_does_not_mutate_its_inputs(name):
    opt = Optimizer(name, lr=LR)
    p, g = np.array(P0), np.array(GRADS[0])
    state = opt.step(p, g, opt.init(2))[1]
    frozen = {k: np.copy(v) for k, v in state.items()}
    opt.step(p, g, state)
    assert np.array_equal(p, P0) and np.array_equal(g, GRADS[0])
    for k, v in state.items():
        assert np.array_equal(v, frozen[k])


def test_unknown_optimizer_raises():
    with pytest.raises(ValueError, match="optimizer"):
        Optimizer("lbfgs")
