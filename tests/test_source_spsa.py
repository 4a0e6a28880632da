"""The spsa source (sources/spsa.py): its checked estimate against the NumPy twin drawing the same directions
(tests/reference.py), unbiased over the iterations' draws, in the fused loop and through Python bitwise alike on
any thread count and in every policy, and its options' errors. Its kernel alone: tests/test_kernel_spsa.py."""

import json

import numpy as np
import pytest

import reference as ref
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network, threads
from gradsel_cli.numerics import loop, training
from gradsel_cli.sources import spsa
from helpers import as_blocks, config_settings, invoke, random_params

TWIN_RTOL = 1e-8  # each slope: a difference of two losses summed in another order, over 2 eps
SMALL = dict(shots=1, batch=4, hidden=6, iters=15, test_limit=200, lr=0.01)


def small_problem(seed=5):
    gen = np.random.default_rng(seed)
    x = np.where(gen.random((4, 12)) < 0.4, gen.random((4, 12)), 0.0)
    y = np.array([0, 3, 1, 3])
    return random_params(4, n_in=12, n_out=5, seed=2), x, y, gen


def words(settings, t0, n):
    return loop.words_of(settings, "spsa", t0, n)


@pytest.mark.parametrize("dist", spsa.ZO_DISTS)
@pytest.mark.parametrize("scheme", spsa.ZO_SCHEMES)
@pytest.mark.parametrize("act", ["sigmoid", "relu", "mish"])
def test_the_estimate_is_the_twins_on_the_same_directions(dist, scheme, act):
    params, x, y, gen = small_problem()
    mask = (gen.random((4, 4)) > 0.3) / 0.7
    s = config_settings(method="spsa", activation=act, zo_dist=dist, zo_scheme=scheme, directions=3)
    drawn = words(s, 7, 1)[0]
    assert drawn.shape == (3,)
    got, value = spsa.gradient(params, x, y, s, mask, drawn)
    want = ref.spsa_gradient(as_blocks(params), x, y, drawn, 1e-3, dist, act, mask, central=scheme == "central")
    flat = np.concatenate([w.ravel() for w in want])
    np.testing.assert_allclose(got.flat, flat, rtol=TWIN_RTOL, atol=1e-12 * np.abs(flat).max())
    assert value == network.loss(params, x, y, s, mask)


def test_weight_decay_is_added_exactly_not_estimated():
    params, x, y, _ = small_problem()
    plain, decayed = config_settings(method="spsa"), config_settings(method="spsa", weight_decay=1e-2)
    drawn = words(plain, 0, 1)[0]
    g0, _ = spsa.gradient(params, x, y, plain, None, drawn)
    g1, _ = spsa.gradient(params, x, y, decayed, None, drawn)
    np.testing.assert_allclose(g1.flat - g0.flat, 1e-2 * params.flat * params.weight_mask(), rtol=1e-12, atol=1e-15)


def test_the_mean_over_the_iterations_draws_is_the_gradient():
    """Unbiased: over n iterations' directions (q = 1 each) the mean estimate's relative error is about
    sqrt(P / n) (P weights), and within 2 x that of backprop's gradient; a tenth of the draws is further off."""
    params, x, y, _ = small_problem()
    s = config_settings(method="spsa")
    exact = network.analytic_gradient(params, x, y, s).flat
    drawn = words(s, 0, 20_000)
    errors = {}
    for n in (2_000, 20_000):
        mean = np.mean([spsa.gradient(params, x, y, s, None, w)[0].flat for w in drawn[:n]], axis=0)
        errors[n] = np.linalg.norm(mean - exact) / np.linalg.norm(exact)
        assert errors[n] < 2 * np.sqrt(params.flat.size / n), (n, errors[n])
    assert errors[20_000] < errors[2_000]


def test_each_iteration_draws_its_own_directions_and_a_seed_its_own():
    params, x, y, _ = small_problem()
    s, other = config_settings(method="spsa"), config_settings(method="spsa", seed=1)
    a, b = (spsa.gradient(params, x, y, s, None, w)[0].flat for w in words(s, 0, 2))
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, spsa.gradient(params, x, y, other, None, words(other, 0, 1)[0])[0].flat)


def test_it_refuses_batch_norm_and_missing_draws():
    params, x, y, _ = small_problem()
    s = config_settings(method="spsa")
    with pytest.raises(ValueError, match="draws 1 words an iteration"):
        spsa.gradient(params, x, y, s)
    bn = network.init_params(4, seed=0, batch_norm=True)
    with pytest.raises(ValueError, match="no batch-norm"):
        spsa.gradient(bn, np.zeros((2, 784)), np.array([0, 1]), s, None, words(s, 0, 1)[0])
    with pytest.raises(ValueError, match="no batch-norm"):
        TrainConfig(method="select", sources="analytic,spsa", batch_norm=True).validate()


@pytest.mark.parametrize(
    "method,extra",
    [
        ("spsa", {"directions": 3, "zo_dist": "rademacher"}),
        ("select", {"sources": "analytic,spsa"}),
        ("alternate", {"sources": "analytic,spsa", "zo_scheme": "forward"}),
    ],
)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_fused_loop_is_the_python_loop_bitwise_on_any_thread_count(mnist_raw, method, extra, precision):
    config = TrainConfig(method=method, precision=precision, **SMALL, **extra)
    assert loop.fusable(config)
    runs = []
    for n in (1, 2):
        threads.set_threads(n)
        try:
            runs += [training.train(config, mnist_raw), training.train(config, mnist_raw, fused=False)]
        finally:
            threads.set_threads(None)
    for other in runs[1:]:
        assert np.array_equal(runs[0].params.flat, other.params.flat)
        assert np.array_equal(runs[0].loss_history, other.loss_history)
        assert np.array_equal(runs[0].kept, other.kept)


def test_every_command_takes_it(runner):
    small = ["--hidden", "6", "--batch", "4", "--iters", "10", "--test-limit", "200", "--lr", "0.01"]
    for args in (
        ["train", "--method", "spsa", "--directions", "4", *small],
        ["train", "--method", "alternate", "--sources", "analytic,spsa", *small],
        ["train", "--method", "select", "--sources", "analytic,spsa", "--zo-dist", "sphere", *small],
        ["compare", "--methods", "analytic,spsa", "--seeds", "2", *small],
    ):
        result = invoke(runner, *args)
        assert result.exit_code == 0, (args, result.output)
        assert "spsa" in result.stdout
    out = invoke(runner, "train", "--method", "spsa", "--json", *small)
    record = json.loads(out.stdout)
    assert record["config"]["zo_eps"] == 1e-3 and record["counts"] == {"spsa": 10}


@pytest.mark.parametrize(
    "args, said",
    [
        (["--zo-eps", "0"], "--zo-eps"),
        (["--zo-dist", "uniform"], "--zo-dist"),
        (["--directions", "0"], "--directions"),
        (["--batch-norm"], "no batch-norm forward pass"),
    ],
)
def test_a_bad_option_is_one_line(runner, args, said):
    result = runner.invoke(cli, ["train", "--method", "spsa", *args])
    assert result.exit_code == 2 and not result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and said in lines[0], result.stderr
