"""The random-direction sources (spsa, forward): each checked against its NumPy twin on the same directions
(tests/reference.py), unbiased over the iterations' draws, in the fused loop and through Python bitwise alike on
any thread count and in every policy, and in every command. Their kernels alone: tests/test_kernel_spsa.py and
tests/test_kernel_forward_gradient.py."""

import json

import numpy as np
import pytest

import reference as ref
from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import loop
from helpers import as_blocks, assert_fused_is_stepwise_on_any_thread_count, config_settings, invoke, random_params

RANDOM = [name for name in sources.names() if sources.get(name).draws(sources.knobs_in(network.DEFAULTS, name))]
TWIN_RTOL = {"spsa": 1e-8, "forward": 1e-12}  # spsa's slope: two losses summed in another order, over 2 eps
SMALL = dict(shots=1, batch=4, hidden=6, iters=15, test_limit=200, lr=0.01)


def test_the_random_sources_are_these():
    assert RANDOM == ["spsa", "forward"]


def small_problem(seed=5):
    gen = np.random.default_rng(seed)
    x = np.where(gen.random((4, 12)) < 0.4, gen.random((4, 12)), 0.0)
    y = np.array([0, 3, 1, 3])
    return random_params(4, n_in=12, n_out=5, seed=2), x, y, gen


def twin(name, params, x, y, words, act, mask):
    blocks = as_blocks(params)
    if name == "spsa":
        return ref.spsa_gradient(blocks, x, y, words, 1e-3, "gaussian", act, mask)
    return ref.forward_gradient(blocks, x, y, words, act, mask)


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("act", ["sigmoid", "relu", "mish"])
def test_the_estimate_is_the_twins_on_the_iterations_directions(name, act):
    params, x, y, gen = small_problem()
    mask = (gen.random((4, 4)) > 0.3) / 0.7
    s = config_settings(method=name, activation=act, directions=3)
    drawn = loop.words_of(s, name, 7, 1)[0]
    assert drawn.shape == (3,)
    got, value = sources.get(name).gradient(params, x, y, s, mask, drawn)
    want = np.concatenate([w.ravel() for w in twin(name, params, x, y, drawn, act, mask)])
    np.testing.assert_allclose(got.flat, want, rtol=TWIN_RTOL[name], atol=1e-12 * np.abs(want).max())
    assert value == network.loss(params, x, y, s, mask)


@pytest.mark.parametrize("name", RANDOM)
def test_weight_decay_is_added_exactly_not_estimated(name):
    params, x, y, _ = small_problem()
    plain, decayed = config_settings(method=name), config_settings(method=name, weight_decay=1e-2)
    drawn = loop.words_of(plain, name, 0, 1)[0]
    g0, _ = sources.get(name).gradient(params, x, y, plain, None, drawn)
    g1, _ = sources.get(name).gradient(params, x, y, decayed, None, drawn)
    np.testing.assert_allclose(g1.flat - g0.flat, 1e-2 * params.flat * params.weight_mask(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", RANDOM)
def test_the_mean_over_the_iterations_draws_is_the_gradient(name):
    """Unbiased: over n iterations' directions (q = 1 each) the mean estimate's relative error is about
    sqrt(P / n) (P weights), and within 2 x that of backprop's gradient; a tenth of the draws is further off."""
    params, x, y, _ = small_problem()
    s = config_settings(method=name)
    exact = network.analytic_gradient(params, x, y, s).flat
    drawn = loop.words_of(s, name, 0, 20_000)
    errors = {}
    for n in (2_000, 20_000):
        mean = np.mean([sources.get(name).gradient(params, x, y, s, None, w)[0].flat for w in drawn[:n]], axis=0)
        errors[n] = np.linalg.norm(mean - exact) / np.linalg.norm(exact)
        assert errors[n] < 2 * np.sqrt(params.flat.size / n), (n, errors[n])
    assert errors[20_000] < errors[2_000]


@pytest.mark.parametrize("name", RANDOM)
def test_each_iteration_draws_its_own_directions_and_a_seed_its_own(name):
    params, x, y, _ = small_problem()
    s, other = config_settings(method=name), config_settings(method=name, seed=1)
    gradient = sources.get(name).gradient
    a, b = (gradient(params, x, y, s, None, w)[0].flat for w in loop.words_of(s, name, 0, 2))
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, gradient(params, x, y, other, None, loop.words_of(other, name, 0, 1)[0])[0].flat)


@pytest.mark.parametrize("name", RANDOM)
def test_it_refuses_batch_norm_and_missing_draws(name):
    params, x, y, _ = small_problem()
    s = config_settings(method=name)
    gradient = sources.get(name).gradient
    with pytest.raises(ValueError, match="draws 1 words an iteration"):
        gradient(params, x, y, s)
    bn = network.init_params(4, seed=0, batch_norm=True)
    with pytest.raises(ValueError, match="no batch-norm"):
        gradient(bn, np.zeros((2, 784)), np.array([0, 1]), s, None, loop.words_of(s, name, 0, 1)[0])
    with pytest.raises(ValueError, match="no batch-norm"):
        TrainConfig(method="select", sources=f"analytic,{name}", batch_norm=True).validate()


@pytest.mark.parametrize(
    "method,extra",
    [
        ("spsa", {"directions": 3, "zo_dist": "rademacher"}),
        ("forward", {"directions": 2}),
        ("select", {"sources": "analytic,spsa"}),
        ("select", {"sources": "forward,analytic,spsa", "directions": 2}),
        ("alternate", {"sources": "analytic,spsa", "zo_scheme": "forward"}),
        ("alternate", {"sources": "analytic,forward"}),
    ],
)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_fused_loop_is_the_python_loop_bitwise_on_any_thread_count(mnist_raw, method, extra, precision):
    config = TrainConfig(method=method, precision=precision, **SMALL, **extra)
    assert_fused_is_stepwise_on_any_thread_count(config, mnist_raw)


@pytest.mark.parametrize("name", RANDOM)
def test_every_command_takes_it(runner, name):
    small = ["--hidden", "6", "--batch", "4", "--iters", "10", "--test-limit", "200", "--lr", "0.01"]
    for args in (
        ["train", "--method", name, "--directions", "4", *small],
        ["train", "--method", "alternate", "--sources", f"analytic,{name}", *small],
        ["train", "--method", "select", "--sources", f"analytic,{name}", *small],
        ["compare", "--methods", f"analytic,{name}", "--seeds", "2", *small],
    ):
        result = invoke(runner, *args)
        assert result.exit_code == 0, (args, result.output)
        assert name in result.stdout
    record = json.loads(invoke(runner, "train", "--method", name, "--json", *small).stdout)
    assert record["config"]["directions"] == 1 and record["counts"] == {name: 10}


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("args, said", [(["--directions", "0"], "--directions"), (["--batch-norm"], "no batch-norm")])
def test_a_bad_option_is_one_line(runner, name, args, said):
    result = runner.invoke(cli, ["train", "--method", name, *args])
    assert result.exit_code == 2 and not result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and said in lines[0], result.stderr
