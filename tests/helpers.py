"""Shared test helpers: random parameters, and norm-wise comparison of gradients block by block."""

import numpy as np

from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.core.network import Params
from gradsel_cli.numerics import loop

BLOCKS = ("W1", "b1", "W2", "b2")


def config_settings(**fields) -> network.Settings:
    """The wrappers' settings of a TrainConfig with these fields (the others at their defaults)."""
    return loop.settings(TrainConfig(**fields))


def rel_error(got, want) -> float:
    """||got - want|| / ||want||; 0 when both are exactly zero, inf when only want is."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    diff = np.linalg.norm(got - want)
    norm = np.linalg.norm(want)
    if norm == 0:
        return 0.0 if diff == 0 else np.inf
    return float(diff / norm)


def as_blocks(g) -> list:
    """A gradsel Params (or a list of arrays) as [W1, b1, W2, b2], with batch norm then [gamma, beta]."""
    if not hasattr(g, "W1"):
        return list(g)
    return [g.W1, g.b1, g.W2, g.b2] + ([g.gamma, g.beta] if g.batch_norm else [])


def assert_blocks_close(got, want, rtol, what="", floor=0.0):
    """Every block of `got` is within relative error `rtol` of `want`, norm-wise. With `floor` > 0 a
    block is measured against at least floor x the whole gradient's norm (a block that is ~0, as b1
    under batch norm, whose loss does not depend on it)."""
    got = [np.asarray(a, np.float64) for a in as_blocks(got)]
    want = [np.asarray(b, np.float64) for b in as_blocks(want)]
    whole = floor * np.sqrt(sum(np.sum(b * b) for b in want))
    errors = {}
    for name, a, b in zip((*BLOCKS, "gamma", "beta"), got, want):
        assert a.shape == b.shape, f"{what}: {name} shape {a.shape} != {b.shape}"
        diff, scale = np.linalg.norm(a - b), max(np.linalg.norm(b), whole)
        errors[name] = float(diff / scale) if scale > 0 else (0.0 if diff == 0 else np.inf)
    bad = {name: e for name, e in errors.items() if not e <= rtol}
    assert not bad, f"{what}: relative error above {rtol:g} in {bad} (all: {errors})"


def random_params(hidden, n_in=784, n_out=10, std=0.1, seed=0) -> Params:
    """Weights and biases all N(0, std^2) (non-zero biases exercise the bias gradients)."""
    gen = np.random.default_rng(seed)
    return Params.from_arrays(
        std * gen.standard_normal((n_in, hidden)),
        std * gen.standard_normal(hidden),
        std * gen.standard_normal((hidden, n_out)),
        std * gen.standard_normal(n_out),
    )


def invoke(runner, *args):
    """Run the gradsel command in-process; exceptions propagate (a traceback would fail the test)."""
    from gradsel_cli.cli.commands import cli

    return runner.invoke(cli, list(args), catch_exceptions=False)


CENTRAL_VS_ANALYTIC_RTOL = 1e-6  # as in test_kernels: what select's two gradients may differ by
SMALL = dict(shots=2, batch=4, hidden=5, iters=5, test_limit=200, seed=3)  # a short run on real images


def small_config(**changes):
    from gradsel_cli.numerics.training import TrainConfig

    return TrainConfig(**{**SMALL, **changes})


def spy_run(monkeypatch, raw, config):
    """Train step by step through methods.py (the fused loop gives bitwise the same run: test_training.py),
    recording per iteration the weights and batch the method received and the sources it computed."""
    from gradsel_cli.numerics import methods, training

    steps, grads = [], []
    original_step = methods.method(config.method)
    original_gradient = methods.gradient

    def step_spy(s, params, opt_state, x, y, mask, t):
        steps.append({"t": t, "params": params.flat.copy(), "x": x.copy(), "y": y.copy(), "mask": mask.copy()})
        return original_step(s, params, opt_state, x, y, mask, t)

    def gradient_spy(s, source, params, x, y, mask, t):
        grads.append({"t": steps[-1]["t"], "source": source, "x": x.copy(), "y": y.copy()})
        return original_gradient(s, source, params, x, y, mask, t)

    monkeypatch.setattr(methods, "method", lambda name: step_spy)
    monkeypatch.setattr(methods, "gradient", gradient_spy)
    return training.train(config, data=raw, fused=False), steps, grads


def step_blocks(step, x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, knobs) -> tuple[list, float]:
    """A source's step kernel (kernels/fused.step_signature) called on these arrays, as the public wrappers call it
    (loss_epsilon in the weights' precision): ([gW1, gb1, gW2, gb2], the loss it returns)."""
    from gradsel_cli.kernels import lit

    n_in, H = W1.shape
    flat = np.concatenate([W1.ravel(), b1, W2.ravel(), b2])
    g = np.zeros_like(flat)  # zero on entry, as step_signature says
    words = np.zeros(0, np.uint64)
    value = step(x, y, *lit._nonzero(x), flat, H, act, mask, loss, loss_epsilon, np.array(knobs, np.float64), words, g)
    row, out = n_in * H + H, n_in * H + H + W2.size
    return [g[: n_in * H].reshape(n_in, H), g[n_in * H : row], g[row:out].reshape(W2.shape), g[out:]], value


def numeric_blocks(x, y, W1, b1, W2, b2, act, mask, fd_step, fd_central, loss, fd_textbook, loss_epsilon) -> list:
    """[gW1, gb1, gW2, gb2] of the numeric kernel (kernels/differences._numeric_step) with these settings (fd_step
    and loss_epsilon in the weights' precision)."""
    from gradsel_cli.kernels import differences

    knobs = [fd_step, fd_central, fd_textbook]
    return step_blocks(differences._numeric_step, x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, knobs)[0]


def assert_fused_is_stepwise_on_any_thread_count(config, raw) -> None:
    """Training `config` fused and step by step through Python, on one thread and on two, gives bitwise the same
    weights, losses and kept sources."""
    from gradsel_cli.core import threads
    from gradsel_cli.numerics import loop, training

    assert loop.fusable(config)
    runs = []
    for n in (1, 2):
        threads.set_threads(n)
        try:
            runs += [training.train(config, raw), training.train(config, raw, fused=False)]
        finally:
            threads.set_threads(None)
    for other in runs[1:]:
        assert np.array_equal(runs[0].params.flat, other.params.flat)
        assert np.array_equal(runs[0].loss_history, other.loss_history)
        assert np.array_equal(runs[0].kept, other.kept)
