"""The forward gradient's kernels (kernels/tangent.py, kernels/forward_gradient.py): the directional derivative
of the tangent pass against backpropagation's gradient dotted with the direction (to 1e-12 relative), the step
against its NumPy twin on the same directions, and the mean over many directions against the gradient."""

import numpy as np
import pytest

import reference as ref
from gradsel_cli import seeding
from gradsel_cli.core import network
from gradsel_cli.kernels import forward_gradient, lit

ALONG_RTOL = 1e-12  # forward mode against backprop . v: both exact to rounding


def problem(n_in, H, K, B, seed, dtype=np.float64):
    """Weights [W1, b1, W2, b2], a batch x (MNIST-like exact zeros), y, and a dropout-like mask."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(size=(B, n_in)) * (gen.uniform(size=(B, n_in)) < 0.5)
    y = gen.integers(0, K, B)
    w = [gen.normal(0, 0.5, (n_in, H)), gen.normal(0, 0.5, H), gen.normal(0, 0.5, (H, K)), gen.normal(0, 0.5, K)]
    mask = (gen.uniform(size=(B, H)) > 0.2) / 0.8
    return [a.astype(dtype) for a in w], x.astype(dtype), y, mask.astype(dtype)


def flat(blocks):
    return np.concatenate([np.ravel(a) for a in blocks])


def words(n, seed=0):
    return seeding.draws(seed, "forward-test", 0, 1, n)[0]


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "leaky-relu", "mish"])
@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_the_directional_derivative_is_backprops_gradient_along_the_direction(act, loss):
    w, x, y, mask = problem(30, 7, 10, 5, seed=1)
    p = flat(w)
    codes = network.ACTIVATION_CODES[act], network.LOSS_CODES[loss]
    exact = flat(ref.analytic_gradient(w, x, y, act, mask, loss))
    for word in words(5, seed=2):
        v = ref.normal(word, p.size)
        got = forward_gradient._along(x, y, *lit._nonzero(x), p, 7, codes[0], mask, codes[1], v)
        want = np.dot(exact, v)
        assert got == pytest.approx(want, rel=ALONG_RTOL, abs=1e-14 * np.linalg.norm(exact) * np.linalg.norm(v))


def test_in_float32_it_is_backprops_to_float32_rounding():
    w, x, y, mask = problem(30, 7, 10, 5, seed=3, dtype=np.float32)
    p = flat(w)
    exact = flat(ref.analytic_gradient([a.astype(np.float64) for a in w], x.astype(np.float64), y, mask=mask))
    v = ref.normal(7, p.size)
    got = forward_gradient._along(x, y, *lit._nonzero(x), p, 7, 0, mask, 0, v.astype(np.float32))
    assert got == pytest.approx(np.dot(exact, v), rel=1e-5)


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_the_estimate_is_its_twins_on_the_same_directions(act):
    w, x, y, mask = problem(12, 3, 10, 4, seed=1)
    drawn = words(3, seed=2)
    p = flat(w)
    g = np.full_like(p, np.nan)  # every entry must be written
    code = network.ACTIVATION_CODES[act]
    knobs = np.array([3.0])
    value = forward_gradient._forward_gradient_step(x, y, *lit._nonzero(x), p, 3, code, mask, 0, 0.0, knobs, drawn, g)
    want = flat(ref.forward_gradient(w, x, y, drawn, act, mask))
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14 * np.abs(want).max())
    assert value == pytest.approx(ref.loss(w, x, y, act, mask), rel=1e-14)


def test_the_estimate_is_unbiased_and_its_error_falls_as_one_over_root_q():
    """With q directions the error's expected square is about |g|^2 (P + 1) / q (P weights): measured at q and
    16 q, each within a factor of 1.5 of sqrt(P / q)."""
    w, x, y, mask = problem(40, 2, 10, 3, seed=3)
    p = flat(w)
    exact = flat(ref.analytic_gradient(w, x, y, mask=mask))
    errors = {}
    for q in (2_000, 32_000):
        g = np.empty_like(p)
        knobs = np.array([float(q)])
        forward_gradient._forward_gradient_step(x, y, *lit._nonzero(x), p, 2, 0, mask, 0, 0.0, knobs, words(q, 4), g)
        errors[q] = np.linalg.norm(g - exact) / np.linalg.norm(exact)
        expected = np.sqrt(p.size / q)
        assert expected / 1.5 < errors[q] < 1.5 * expected, (q, errors[q], expected)
    assert 2.5 < errors[2_000] / errors[32_000] < 6.5
