"""The gradient methods (methods.py): which source each iteration uses, and select's choice."""

import numpy as np
import pytest

from gradsel_cli.numerics import methods, network
from gradsel_cli.numerics.methods import StepContext
from gradsel_cli.numerics.optimizers import Optimizer
from helpers import CENTRAL_VS_ANALYTIC_RTOL, config_settings, small_config, spy_run

# --- the gradient methods -------------------------------------------------------


@pytest.mark.parametrize("every,iters,numeric_at", [(2, 6, [2, 4, 6]), (3, 7, [3, 6]), (1, 3, [1, 2, 3])])
def test_alternate_uses_numeric_on_every_kth_iteration(monkeypatch, mnist_raw, every, iters, numeric_at):
    config = small_config(method="alternate", numeric_every=every, iters=iters)
    result, _, grads = spy_run(monkeypatch, mnist_raw, config)
    want = [1 if t in numeric_at else 0 for t in range(1, iters + 1)]
    assert result.sources.tolist() == want
    assert [g["source"] for g in grads] == ["numeric" if w else "analytic" for w in want]
    assert result.counts == {"analytic": iters - len(numeric_at), "numeric": len(numeric_at)}
    assert result.select_wins is None
    assert result.numeric_share == pytest.approx(len(numeric_at) / iters)


@pytest.mark.parametrize("method,source", [("analytic", "analytic"), ("numeric", "numeric")])
def test_single_source_methods(monkeypatch, mnist_raw, method, source):
    result, _, grads = spy_run(monkeypatch, mnist_raw, small_config(method=method))
    assert [g["source"] for g in grads] == [source] * 5
    assert result.counts == {"analytic": 5 * (source == "analytic"), "numeric": 5 * (source == "numeric")}
    assert result.sources.tolist() == [int(source == "numeric")] * 5
    assert result.rel_diff_mean is None


def test_select_counts_add_up(monkeypatch, mnist_raw):
    result, _, grads = spy_run(monkeypatch, mnist_raw, small_config(method="select", iters=12))
    assert result.counts == {"analytic": 12, "numeric": 12}
    assert sum(result.select_wins.values()) == 12
    assert int(result.sources.sum()) == result.select_wins["numeric"]
    assert sorted(g["source"] for g in grads) == ["analytic"] * 12 + ["numeric"] * 12
    assert 0 < result.rel_diff_mean < CENTRAL_VS_ANALYTIC_RTOL


@pytest.fixture
def select_problem(few_shot_set):
    """(context, params, batch x, batch y, mask) for one select step at the default initial weights."""
    x, y = few_shot_set
    idx = np.random.default_rng(0).integers(0, len(y), 4)
    context = StepContext(optimizer=Optimizer("sgd", lr=0.1), x_train=x, y_train=y)
    return context, network.init_params(5, seed=0), x[idx], y[idx], np.ones((4, 5))


def fake_numeric(monkeypatch, make):
    """Make the numeric gradient `make(params, x, y)` (a flat vector) for the next select steps."""

    def numeric_gradient(params, x, y, *args, **kwargs):
        return params.with_flat(make(params, x, y))

    monkeypatch.setattr(network, "numeric_gradient", numeric_gradient)


def analytic_flat(params, x, y):
    return network.analytic_gradient(params, x, y).flat


def candidate_losses(context, params, g_numeric, x, y):
    """Batch and train-set losses of the two SGD candidates, computed here independently."""
    lr = context.optimizer.lr
    wa = params.with_flat(params.flat - lr * analytic_flat(params, x, y))
    wn = params.with_flat(params.flat - lr * g_numeric)
    return {
        "batch": (network.loss(wa, x, y), network.loss(wn, x, y)),
        "train": (
            network.loss(wa, context.x_train, context.y_train),
            network.loss(wn, context.x_train, context.y_train),
        ),
        "wa": wa,
        "wn": wn,
    }


@pytest.mark.parametrize("scale,winner", [(2.0, "numeric"), (-1.0, "analytic"), (0.0, "analytic")])
def test_select_keeps_the_update_with_lower_batch_loss(monkeypatch, select_problem, scale, winner):
    context, params, x, y, mask = select_problem
    fake_numeric(monkeypatch, lambda p, xx, yy: scale * analytic_flat(p, xx, yy))
    la, ln = candidate_losses(context, params, scale * analytic_flat(params, x, y), x, y)["batch"]
    assert (ln < la) == (winner == "numeric")  # the set-up really makes `winner` the better update
    step = methods.select(context, params, context.optimizer.init(params.flat.size), x, y, mask, 1)
    assert step.source == winner
    assert step.computed == ("analytic", "numeric")
    g = analytic_flat(params, x, y)
    kept = params.flat - 0.1 * (scale * g if winner == "numeric" else g)
    assert np.array_equal(step.params.flat, kept)
    assert step.loss == pytest.approx(network.loss(params, x, y), rel=1e-12)


def test_select_tie_goes_to_analytic(monkeypatch, select_problem):
    context, params, x, y, mask = select_problem
    fake_numeric(monkeypatch, analytic_flat)  # the same gradient: equal losses
    step = methods.select(context, params, context.optimizer.init(params.flat.size), x, y, mask, 1)
    assert step.source == "analytic"
    assert step.rel_diff == 0.0


def test_select_on_train_compares_on_the_whole_training_set(monkeypatch, select_problem):
    context, params, x, y, mask = select_problem
    # numeric := the full-training-set gradient: worse on the batch, better on the training set
    g_train = analytic_flat(params, context.x_train, context.y_train)
    fake_numeric(monkeypatch, lambda p, xx, yy: g_train)
    losses = candidate_losses(context, params, g_train, x, y)
    assert losses["batch"][1] > losses["batch"][0] and losses["train"][1] < losses["train"][0]
    state = context.optimizer.init(params.flat.size)
    assert methods.select(context, params, state, x, y, mask, 1).source == "analytic"
    on_train = StepContext(
        optimizer=context.optimizer,
        settings=config_settings(select_on="train"),
        x_train=context.x_train,
        y_train=context.y_train,
    )
    step = methods.select(on_train, params, state, x, y, mask, 1)
    assert step.source == "numeric"
    assert np.array_equal(step.params.flat, losses["wn"].flat)


def test_select_keeps_the_optimizer_state_of_the_kept_update(monkeypatch, select_problem):
    _context, params, x, y, mask = select_problem
    momentum = StepContext(optimizer=Optimizer("momentum", lr=0.1))
    fake_numeric(monkeypatch, lambda p, xx, yy: 2.0 * analytic_flat(p, xx, yy))
    state = momentum.optimizer.init(params.flat.size)
    step = methods.select(momentum, params, state, x, y, mask, 1)
    assert step.source == "numeric"
    assert np.allclose(step.opt_state["s"], -0.1 * 2.0 * analytic_flat(params, x, y), rtol=1e-15, atol=0)
    assert np.all(state["s"] == 0.0)  # the state passed in is untouched
