"""Shared test helpers: random parameters, and norm-wise comparison of gradients block by block."""

import numpy as np

from gradsel_cli.network import Params

BLOCKS = ("W1", "b1", "W2", "b2")


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
    """A gradsel Params (or a list of four arrays) as [W1, b1, W2, b2]."""
    return [g.W1, g.b1, g.W2, g.b2] if hasattr(g, "W1") else list(g)


def assert_blocks_close(got, want, rtol, what=""):
    """Every block of `got` is within relative error `rtol` of `want`, norm-wise."""
    errors = {name: rel_error(a, b) for name, a, b in zip(BLOCKS, as_blocks(got), as_blocks(want))}
    bad = {name: e for name, e in errors.items() if not e <= rtol}
    assert not bad, f"{what}: relative error above {rtol:g} in {bad} (all: {errors})"


def random_params(hidden, n_in=784, n_out=10, std=0.1, seed=0) -> Params:
    """Weights and biases all N(0, std^2) (non-zero biases exercise the bias gradients)."""
    gen = np.random.default_rng(seed)
    return Params.from_arrays(std * gen.standard_normal((n_in, hidden)), std * gen.standard_normal(hidden),
                              std * gen.standard_normal((hidden, n_out)), std * gen.standard_normal(n_out))


def invoke(runner, *args):
    """Run the gradsel command in-process; exceptions propagate (a traceback would fail the test)."""
    from gradsel_cli.cli import cli

    return runner.invoke(cli, list(args), catch_exceptions=False)
