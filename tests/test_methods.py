"""The gradient methods (methods.py): which source each iteration uses, and select's choice."""

import dataclasses

import numpy as np
import pytest

from gradsel_cli import sources
from gradsel_cli.core import network
from gradsel_cli.numerics import methods
from gradsel_cli.numerics.methods import StepContext
from gradsel_cli.numerics.optimizers import Optimizer
from gradsel_cli.sources import numeric as numeric_source
from helpers import CENTRAL_VS_ANALYTIC_RTOL, config_settings, small_config, spy_run

# --- the gradient methods -------------------------------------------------------


@pytest.mark.parametrize("every,iters,numeric_at", [(2, 6, [2, 4, 6]), (3, 7, [3, 6]), (1, 3, [1, 2, 3])])
def test_alternate_uses_numeric_on_every_kth_iteration(monkeypatch, mnist_raw, every, iters, numeric_at):
    config = small_config(method="alternate", alternate_every=every, iters=iters)
    result, _, grads = spy_run(monkeypatch, mnist_raw, config)
    want = [1 if t in numeric_at else 0 for t in range(1, iters + 1)]
    assert result.sources == ("analytic", "numeric")
    assert result.kept.tolist() == want
    assert [g["source"] for g in grads] == ["numeric" if w else "analytic" for w in want]
    assert result.counts == {"analytic": iters - len(numeric_at), "numeric": len(numeric_at)}
    assert result.select_wins is None
    assert result.rel_diff_mean is None and np.isnan(result.rel_diffs).all()
    assert result.shares == pytest.approx({"analytic": 1 - len(numeric_at) / iters, "numeric": len(numeric_at) / iters})


def test_alternate_takes_the_first_listed_source_and_the_other_every_kth(monkeypatch, mnist_raw):
    # --sources in the other order: numeric is the base source, analytic the one of every K-th iteration
    config = small_config(method="alternate", sources="numeric,analytic", alternate_every=2, iters=5)
    result, _, grads = spy_run(monkeypatch, mnist_raw, config)
    assert result.sources == ("numeric", "analytic")
    assert result.kept.tolist() == [0, 1, 0, 1, 0]
    assert [g["source"] for g in grads] == ["numeric", "analytic", "numeric", "analytic", "numeric"]
    assert result.counts == {"numeric": 3, "analytic": 2}
    assert result.shares == pytest.approx({"numeric": 0.6, "analytic": 0.4})


@pytest.fixture
def doubled():
    """A source registered at run time: twice the exact gradient (it steps through Python)."""
    exact = sources.get("analytic")

    def gradient(params, x, y, settings, mask=None, draws=None):
        g, loss = exact.gradient(params, x, y, settings, mask)
        return params.with_flat(2.0 * g.flat), loss

    sources.register(dataclasses.replace(exact, name="doubled", gradient=gradient, exact=False, fused=None))
    yield "doubled"
    sources.unregister("doubled")


def test_alternate_over_three_sources_takes_the_others_in_turn(monkeypatch, mnist_raw, doubled):
    config = small_config(method="alternate", sources=f"analytic,numeric,{doubled}", alternate_every=2, iters=9)
    result, _, grads = spy_run(monkeypatch, mnist_raw, config)
    assert result.sources == ("analytic", "numeric", doubled)
    want = [0, 1, 0, 2, 0, 1, 0, 2, 0]  # every 2nd iteration the next of the others: numeric, doubled, numeric...
    assert result.kept.tolist() == want
    assert [g["source"] for g in grads] == [result.sources[q] for q in want]
    assert result.counts == {"analytic": 5, "numeric": 2, doubled: 2}
    assert result.shares == pytest.approx({"analytic": 5 / 9, "numeric": 2 / 9, doubled: 2 / 9})
    assert result.rel_diffs.shape == (9, 2) and result.rel_diff_mean is None


def test_select_over_three_sources_computes_all_and_keeps_the_best(monkeypatch, mnist_raw, doubled):
    config = small_config(method="select", sources=f"analytic,numeric,{doubled}", iters=4)
    result, _, grads = spy_run(monkeypatch, mnist_raw, config)
    assert [g["source"] for g in grads] == ["analytic", "numeric", doubled] * 4
    assert result.counts == {"analytic": 4, "numeric": 4, doubled: 4}
    assert sum(result.select_wins.values()) == 4
    assert result.select_wins == {n: int((result.kept == q).sum()) for q, n in enumerate(result.sources)}
    assert result.rel_diffs.shape == (4, 2)
    assert np.all(result.rel_diffs[:, 0] < CENTRAL_VS_ANALYTIC_RTOL)  # numeric against analytic
    assert result.rel_diffs[:, 1] == pytest.approx(1.0, rel=1e-12)  # ||2g - g|| / ||g||
    assert set(result.rel_diff_mean) == {"numeric", doubled}


@pytest.mark.parametrize("method,source", [("analytic", "analytic"), ("numeric", "numeric")])
def test_single_source_methods(monkeypatch, mnist_raw, method, source):
    result, _, grads = spy_run(monkeypatch, mnist_raw, small_config(method=method))
    assert [g["source"] for g in grads] == [source] * 5
    assert result.sources == (source,)
    assert result.counts == {source: 5}  # only the run's source is counted
    assert result.kept.tolist() == [0] * 5  # position 0 of the run's one source
    assert result.shares == {source: 1.0}
    assert result.select_wins is None
    assert result.rel_diff_mean is None
    assert result.rel_diffs.shape == (5, 0)


def test_select_counts_add_up(monkeypatch, mnist_raw):
    result, _, grads = spy_run(monkeypatch, mnist_raw, small_config(method="select", iters=12))
    assert result.counts == {"analytic": 12, "numeric": 12}
    assert sum(result.select_wins.values()) == 12
    assert int(result.kept.sum()) == result.select_wins["numeric"]
    assert result.shares == pytest.approx({name: n / 12 for name, n in result.select_wins.items()})
    assert sorted(g["source"] for g in grads) == ["analytic"] * 12 + ["numeric"] * 12
    assert result.rel_diffs.shape == (12, 1)
    assert np.all((result.rel_diffs > 0) & (result.rel_diffs < CENTRAL_VS_ANALYTIC_RTOL))
    assert set(result.rel_diff_mean) == {"numeric"}
    assert 0 < result.rel_diff_mean["numeric"] < CENTRAL_VS_ANALYTIC_RTOL
    assert result.rel_diff_mean["numeric"] == pytest.approx(result.rel_diffs[:, 0].mean(), rel=1e-12)


@pytest.fixture
def select_problem(few_shot_set):
    """(context, params, batch x, batch y, mask) for one select step at the default initial weights."""
    x, y = few_shot_set
    idx = np.random.default_rng(0).integers(0, len(y), 4)
    context = StepContext(Optimizer("sgd", lr=0.1), config_settings(), x_train=x, y_train=y)
    return context, network.init_params(5, seed=0), x[idx], y[idx], np.ones((4, 5))


def fake_numeric(monkeypatch, make):
    """Make the numeric gradient `make(params, x, y)` (a flat vector) for the next select steps."""

    def numeric(params, x, y, settings, mask):
        return params.with_flat(make(params, x, y)), network.loss(params, x, y, settings, mask)

    monkeypatch.setattr(numeric_source, "_numeric", numeric)


def computed_sources(monkeypatch):
    """The names of the sources methods.py computes a gradient of, in order (a list filled as steps run)."""
    computed, original = [], methods.gradient

    def gradient(s, source, params, x, y, mask, t):
        computed.append(source)
        return original(s, source, params, x, y, mask, t)

    monkeypatch.setattr(methods, "gradient", gradient)
    return computed


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
    assert context.settings.sources == ("analytic", "numeric")
    fake_numeric(monkeypatch, lambda p, xx, yy: scale * analytic_flat(p, xx, yy))
    la, ln = candidate_losses(context, params, scale * analytic_flat(params, x, y), x, y)["batch"]
    assert (ln < la) == (winner == "numeric")  # the set-up really makes `winner` the better update
    computed = computed_sources(monkeypatch)
    step = methods.select(context, params, context.optimizer.init(params.flat.size), x, y, mask, 1)
    assert context.settings.sources[step.source] == winner
    assert computed == ["analytic", "numeric"]
    assert len(step.rel_diffs) == 1  # numeric's, against analytic: ||(scale - 1) g|| / ||g||
    assert step.rel_diffs[0] == pytest.approx(abs(scale - 1.0), rel=1e-12)
    g = analytic_flat(params, x, y)
    kept = params.flat - 0.1 * (scale * g if winner == "numeric" else g)
    assert np.array_equal(step.params.flat, kept)
    assert step.loss == pytest.approx(network.loss(params, x, y), rel=1e-12)


def test_select_tie_goes_to_analytic(monkeypatch, select_problem):
    context, params, x, y, mask = select_problem
    fake_numeric(monkeypatch, analytic_flat)  # the same gradient: equal losses
    step = methods.select(context, params, context.optimizer.init(params.flat.size), x, y, mask, 1)
    assert step.source == 0 and context.settings.sources[0] == "analytic"
    assert step.rel_diffs == (0.0,)
    assert step.tied  # kept by list order: a tie, not a win


def test_select_tie_goes_to_the_first_listed_source(monkeypatch, select_problem):
    context, params, x, y, mask = select_problem
    fake_numeric(monkeypatch, analytic_flat)  # the same gradient: equal losses
    reversed_order = StepContext(
        optimizer=context.optimizer, settings=config_settings(method="select", sources="numeric,analytic")
    )
    computed = computed_sources(monkeypatch)
    step = methods.select(reversed_order, params, context.optimizer.init(params.flat.size), x, y, mask, 1)
    assert computed == ["numeric", "analytic"]
    assert step.source == 0 and reversed_order.settings.sources[0] == "numeric"
    assert step.rel_diffs == (0.0,) and step.tied


def test_select_on_train_compares_on_the_whole_training_set(monkeypatch, select_problem):
    context, params, x, y, mask = select_problem
    # numeric := the full-training-set gradient: worse on the batch, better on the training set
    g_train = analytic_flat(params, context.x_train, context.y_train)
    fake_numeric(monkeypatch, lambda p, xx, yy: g_train)
    losses = candidate_losses(context, params, g_train, x, y)
    assert losses["batch"][1] > losses["batch"][0] and losses["train"][1] < losses["train"][0]
    state = context.optimizer.init(params.flat.size)
    assert context.settings.sources[methods.select(context, params, state, x, y, mask, 1).source] == "analytic"
    on_train = StepContext(
        optimizer=context.optimizer,
        settings=config_settings(method="select", select_on="train"),
        x_train=context.x_train,
        y_train=context.y_train,
    )
    step = methods.select(on_train, params, state, x, y, mask, 1)
    assert on_train.settings.sources[step.source] == "numeric"
    assert np.array_equal(step.params.flat, losses["wn"].flat)


def test_select_keeps_the_optimizer_state_of_the_kept_update(monkeypatch, select_problem):
    _context, params, x, y, mask = select_problem
    momentum = StepContext(Optimizer("momentum", lr=0.1), config_settings())
    fake_numeric(monkeypatch, lambda p, xx, yy: 2.0 * analytic_flat(p, xx, yy))
    state = momentum.optimizer.init(params.flat.size)
    step = methods.select(momentum, params, state, x, y, mask, 1)
    assert momentum.settings.sources[step.source] == "numeric"
    assert np.allclose(step.opt_state["s"], -0.1 * 2.0 * analytic_flat(params, x, y), rtol=1e-15, atol=0)
    assert np.all(state["s"] == 0.0)  # the state passed in is untouched


@pytest.mark.parametrize("order", ["analytic,complex-step", "complex-step,analytic"])
def test_select_over_two_exact_gradients_counts_its_ties_the_same_fused_and_stepwise(mnist_raw, order):
    """Backprop and the complex step give losses equal to the last bit in most iterations: those are ties (kept by
    list order), counted apart from the strict wins, and the fused kernel counts the same ones as the Python step,
    which compares the losses itself."""
    from gradsel_cli.numerics.training import train

    config = small_config(method="select", sources=order, iters=40, hidden=8, batch=8)
    fused, stepwise = train(config, mnist_raw), train(config, mnist_raw, fused=False)
    assert fused.select_ties == stepwise.select_ties and fused.select_wins == stepwise.select_wins
    first, second = order.split(",")
    assert fused.select_ties[second] == 0  # a tie is kept by the first listed
    assert 0 < fused.select_ties[first] <= fused.select_wins[first]
    assert sum(fused.select_ties.values()) > 40 // 2  # most iterations tie


def test_select_over_sources_that_differ_rarely_ties(mnist_raw):
    from gradsel_cli.numerics.training import train

    result = train(small_config(method="select", iters=30), mnist_raw)
    assert set(result.select_ties) == {"analytic", "numeric"} and sum(result.select_ties.values()) <= 3
    assert train(small_config(method="analytic", iters=5), mnist_raw).select_ties is None


@pytest.mark.parametrize("n, every", [(2, 1), (2, 3), (3, 2), (4, 5), (3, 2**70)])
def test_the_alternate_schedule_is_one_and_its_calls_are_counted_from_it(n, every):
    """methods.alternate and the fused loop follow loop.source_at; the fused loop's thread policy counts each
    source's calls of a stretch from the same schedule (loop.iterations_of), whatever the stretch."""
    from gradsel_cli.numerics.loop import POLICY_CODES, iterations_of, source_at

    s = network.DEFAULTS._replace(
        policy=POLICY_CODES["alternate"], sources=("a", "b", "c", "d")[:n], alternate_every=every
    )
    schedule = [source_at(s, t) for t in range(1, 41)]
    want = [0 if every > 40 or t % every else 1 + (t // every - 1) % (n - 1) for t in range(1, 41)]
    assert schedule == want
    for t0, T in ((0, 40), (0, 1), (7, 13), (39, 1), (5, 0)):
        assert iterations_of(s, t0, T) == [schedule[t0 : t0 + T].count(q) for q in range(n)]
    select = s._replace(policy=POLICY_CODES["select"])
    assert iterations_of(select, 3, 10) == [10] * n
