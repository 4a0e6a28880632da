"""The training toolkit in the kernels: every activation x loss x regulariser, against the NumPy twins.

For each combination, on small shapes: the package's loss equals the twin's,
its analytic gradient equals the twin's backprop, its fast numerical gradient
equals the twin's naive one (perturb, full forward, restore), and the two
package gradients agree with each other.
"""

import itertools

import numpy as np
import pytest
from click.testing import CliRunner

import reference as ref
from gradsel_cli.choices import ACTIVATIONS, LOSSES
from gradsel_cli.cli.commands import cli
from gradsel_cli.core import network
from gradsel_cli.core.network import Params
from gradsel_cli.numerics import training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.sources import numeric as numeric_source
from helpers import as_blocks, assert_blocks_close, config_settings

STEP = 1e-4
TWIN_RTOL = 1e-10  # the same formula in another order: rounding only
FD_RTOL = 1e-7  # fast vs naive finite differences: same differences, other rounding
ANALYTIC_VS_FD = 1e-6  # central differences vs backprop: O(h^2) truncation + rounding
REGULARISERS = ["none", "decay", "dropout", "batch-norm", "all"]


def problem(act, reg, seed=0, hidden=4, batch=5, n_in=14):
    """(Params, twin weights list, x, y, mask, weight_decay) for one combination."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(0.0, 1.0, (batch, n_in))
    x[gen.uniform(size=x.shape) < 0.4] = 0.0
    y = gen.integers(0, 10, batch)
    bn = reg in ("batch-norm", "all")
    params = Params.zeros(hidden, n_in, 10, batch_norm=bn)
    params.flat[...] = 0.5 * gen.standard_normal(params.flat.size)
    if bn:
        params.gamma[...] = 1.0 + 0.3 * gen.standard_normal(hidden)
    mask = None
    if reg in ("dropout", "all"):
        mask = (gen.uniform(size=(batch, hidden)) >= 0.3) / 0.7
    decay = 0.05 if reg in ("decay", "all") else 0.0
    weights = [params.W1, params.b1, params.W2, params.b2] + ([params.gamma, params.beta] if bn else [])
    return params, [w.copy() for w in weights], x, y, mask, decay


COMBOS = list(itertools.product(ACTIVATIONS, LOSSES, REGULARISERS))


@pytest.mark.parametrize("act,loss,reg", COMBOS)
def test_loss_matches_twin(act, loss, reg):
    params, weights, x, y, mask, decay = problem(act, reg)
    got = network.loss(params, x, y, config_settings(activation=act, loss=loss, weight_decay=decay), mask=mask)
    assert got == pytest.approx(ref.total_loss(weights, x, y, act, mask, loss, decay), rel=1e-12)


@pytest.mark.parametrize("act,loss,reg", COMBOS)
def test_analytic_matches_twin_backprop(act, loss, reg):
    params, weights, x, y, mask, decay = problem(act, reg)
    got = network.analytic_gradient(
        params, x, y, config_settings(activation=act, loss=loss, weight_decay=decay), mask=mask
    )
    want = ref.analytic_gradient(weights, x, y, act, mask, loss, decay)
    assert_blocks_close(as_blocks(got), want, TWIN_RTOL, f"{act}/{loss}/{reg}", floor=1e-3)


@pytest.mark.parametrize("act,loss,reg", COMBOS)
def test_fast_numeric_matches_twin_naive(act, loss, reg):
    params, weights, x, y, mask, decay = problem(act, reg)
    got = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, activation=act, loss=loss, weight_decay=decay), mask=mask
    )
    want = ref.numeric_gradient(weights, x, y, STEP, "central", act, mask, loss, decay)
    assert_blocks_close(as_blocks(got), want, FD_RTOL, f"{act}/{loss}/{reg}", floor=1e-3)


@pytest.mark.parametrize("act,loss,reg", COMBOS)
def test_numeric_agrees_with_analytic(act, loss, reg):
    params, _, x, y, mask, decay = problem(act, reg)
    s = config_settings(fd_step=STEP, activation=act, loss=loss, weight_decay=decay)
    analytic = network.analytic_gradient(params, x, y, s, mask)
    numeric = numeric_source.numeric_gradient(params, x, y, s, mask)
    assert_blocks_close(as_blocks(numeric), as_blocks(analytic), ANALYTIC_VS_FD, f"{act}/{loss}/{reg}", floor=1e-3)


@pytest.mark.parametrize("act", ["relu", "leaky-relu"])
def test_a_kink_inside_the_step_is_where_numeric_and_analytic_part(act):
    """One pre-activation within h of ReLU's kink: the central difference straddles it and
    differs from the one-sided derivative backprop takes; a smaller step removes the straddle."""
    params, _, x, y, _, _ = problem(act, "none", hidden=1, batch=1)
    a1 = float(x[0] @ params.W1[:, 0] + params.b1[0])
    params.b1[0] -= a1 + 0.3 * STEP  # a1 = -0.3 h: the kink is inside [a1 - h, a1 + h] for b1
    s = config_settings(fd_step=STEP, activation=act)
    analytic = network.analytic_gradient(params, x, y, s).b1[0]
    assert numeric_source.numeric_gradient(params, x, y, s).b1[0] != pytest.approx(analytic, rel=1e-3)
    assert numeric_source.numeric_gradient(params, x, y, config_settings(activation=act, fd_step=1e-6)).b1[
        0
    ] == pytest.approx(analytic, rel=1e-6)


def test_weight_decay_adds_lambda_w_to_weights_only():
    params, _, x, y, _, _ = problem("sigmoid", "none")
    plain = network.analytic_gradient(params, x, y)
    decayed = network.analytic_gradient(params, x, y, config_settings(weight_decay=0.1))
    np.testing.assert_allclose(decayed.W1 - plain.W1, 0.1 * params.W1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(decayed.W2 - plain.W2, 0.1 * params.W2, rtol=1e-12, atol=1e-15)
    assert np.array_equal(decayed.b1, plain.b1) and np.array_equal(decayed.b2, plain.b2)


def test_batch_norm_moves_the_whole_unit_when_a_weight_moves():
    """Perturbing W1[i, j] moves the batch mean and variance of unit j, so every sample's
    normalised value of that unit changes, not only those whose pixel i is non-zero."""
    params, weights, x, y, _, _ = problem("sigmoid", "batch-norm", batch=4)
    x[:, 0] = [0.0, 0.0, 0.0, 0.9]  # pixel 0 lights in one sample only
    before = ref.forward(weights, x)[0][:, 1]
    weights[0][0, 1] += 1e-3
    after = ref.forward(weights, x)[0][:, 1]
    assert np.all(after != before)
    numeric = numeric_source.numeric_gradient(params, x, y, config_settings(fd_step=STEP), mask=None)
    naive = ref.numeric_gradient([w.copy() for w in ref_weights(params)], x, y, STEP)
    assert numeric.W1[0, 1] == pytest.approx(naive[0][0, 1], rel=1e-7)


def ref_weights(params):
    return [params.W1, params.b1, params.W2, params.b2, params.gamma, params.beta]


# --- dropout masks and batch norm in training ----------------------------------------


def test_dropout_masks_are_the_same_for_every_method():
    config = TrainConfig(batch=4, hidden=6, dropout=0.3, seed=5)
    draws = {}
    for method in ("analytic", "numeric", "alternate", "select"):
        masks = training.DropoutMasks(config.replace(method=method))
        draws[method] = np.stack([masks.next() for _ in range(5)])
    first = draws["analytic"]
    assert set(np.unique(first)) == {0.0, 1.0 / 0.7}
    for method, d in draws.items():
        assert np.array_equal(d, first), method
    other = training.DropoutMasks(config.replace(seed=6))
    assert not np.array_equal(np.stack([other.next() for _ in range(5)]), first)


def test_dropout_mask_is_held_for_every_evaluation_of_an_iteration(monkeypatch, mnist_raw):
    from gradsel_cli.numerics import methods

    seen = []
    original = methods.gradient

    def spy(s, source, params, x, y, mask, t):
        seen.append(mask.copy())
        return original(s, source, params, x, y, mask, t)

    monkeypatch.setattr(methods, "gradient", spy)
    training.train(
        TrainConfig(method="select", shots=1, batch=4, hidden=5, iters=3, dropout=0.5, test_limit=50), data=mnist_raw
    )
    assert len(seen) == 6  # select: two gradients per iteration, same mask
    for t in range(3):
        assert np.array_equal(seen[2 * t], seen[2 * t + 1])
    assert not np.array_equal(seen[0], seen[2])


def test_batch_norm_network_folds_for_test_time():
    params, weights, x, _, _, _ = problem("tanh", "batch-norm")
    mean, var = network.batch_stats(params, x)
    folded = network.fold_batch_norm(params, mean, var)
    np.testing.assert_allclose(
        ref.forward([folded.W1, folded.b1, folded.W2, folded.b2], x)[2],
        ref.forward(weights, x)[2],
        rtol=1e-9,
        atol=1e-12,
    )


# --- through the command line ---------------------------------------------------------

RUN = ["train", "--shots", "1", "--batch", "2", "--hidden", "4", "--iters", "4", "--test-limit", "50", "--json", "-q"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--optimizer", "adam", "--lr", "0.001"],
        ["--activation", "relu", "--init", "he", "--weight-decay", "1e-4", "--dropout", "0.2"],
        ["--activation", "mish", "--loss", "mse", "--batch-norm", "--optimizer", "rmsprop"],
        ["--init", "xavier", "--activation", "leaky-relu", "--optimizer", "nesterov"],
    ],
)
@pytest.mark.parametrize("method", ["analytic", "numeric", "alternate", "select"])
def test_toolkit_runs_with_every_method(method, extra):
    result = CliRunner().invoke(cli, [*RUN, "--method", method, *extra])
    assert result.exit_code == 0, result.output
    assert '"diverged": false' in result.stdout


@pytest.mark.parametrize(
    "args,named",
    [
        (["--batch", "1", "--batch-norm"], "--batch-norm"),
        (["--dropout", "1"], "--dropout"),
        (["--dropout", "-0.1"], "--dropout"),
        (["--optimizer", "lbfgs"], "--optimizer"),
        (["--activation", "gelu"], "--activation"),
        (["--weight-decay", "-1"], "--weight-decay"),
        (["--beta1", "1"], "--beta1"),
        (["--init", "std", "--init-std", "0"], "--init-std"),
    ],
)
def test_toolkit_bad_values_are_one_line_errors(args, named):
    result = CliRunner().invoke(cli, [*RUN, *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.output, result.output
