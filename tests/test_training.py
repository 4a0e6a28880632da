"""Training: paired randomness, a whole run, divergence, the fused loop, the run configuration."""

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from gradsel_cli import data, sources
from gradsel_cli.config import METHOD_NAMES
from gradsel_cli.core import network
from gradsel_cli.numerics import loop, training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs.records import run_record
from helpers import config_settings, small_config, spy_run

# --- pairing: one seed, the same randomness for every method -----------------


def test_batch_indices_depend_on_the_seed_only():
    base = small_config(iters=50)
    idx = training.batch_indices(base, 20)
    assert idx.shape == (50, 4)
    assert idx.min() >= 0 and idx.max() < 20
    for method in METHOD_NAMES:
        assert np.array_equal(training.batch_indices(base.replace(method=method, lr=0.5, hidden=9), 20), idx)
    assert not np.array_equal(training.batch_indices(base.replace(seed=4), 20), idx)


def test_batches_are_drawn_with_replacement():
    idx = training.batch_indices(small_config(iters=200, batch=8), 10)
    assert any(len(set(row)) < len(row) for row in idx)  # with replacement, repeats within a batch happen
    assert set(np.unique(idx)) == set(range(10))


def test_initial_weights_depend_on_the_seed_only():
    a, b = network.init_params(5, seed=3), network.init_params(5, seed=3)
    assert np.array_equal(a.flat, b.flat)
    assert not np.array_equal(network.init_params(5, seed=4).flat, a.flat)


def test_every_method_sees_the_same_weights_and_batches(monkeypatch, mnist_raw):
    config = small_config()
    x_few, y_few = data.few_shot(mnist_raw[0], mnist_raw[1], config.shots, config.subset, config.seed)
    idx = training.batch_indices(config, len(y_few))
    init = network.init_params(config.hidden, config.seed, config.init_std)
    seen = {}
    for method in METHOD_NAMES:
        _, steps, grads = spy_run(monkeypatch, mnist_raw, config.replace(method=method))
        assert [s["t"] for s in steps] == [1, 2, 3, 4, 5]
        assert np.array_equal(steps[0]["params"], init.flat)
        for s in steps:
            assert np.array_equal(s["x"], x_few[idx[s["t"] - 1]])
            assert np.array_equal(s["y"], y_few[idx[s["t"] - 1]])
            assert np.all(s["mask"] == 1.0)
        for g in grads:  # each gradient is taken on that iteration's batch
            assert np.array_equal(g["y"], y_few[idx[g["t"] - 1]])
        seen[method] = steps
    first = seen["analytic"]
    for method, steps in seen.items():
        for a, b in zip(first, steps):
            assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"]), method


# --- a whole run ------------------------------------------------------------------


def test_run_result_fields(mnist_raw):
    calls = []
    config = small_config(method="alternate", iters=20)
    r = training.train(
        config, data=mnist_raw, progress=lambda done, total, loss: calls.append((done, total, loss)), eval_every=5
    )
    assert r.iterations_done == 20 and not r.diverged
    assert r.loss_history.shape == (20,) and np.all(np.isfinite(r.loss_history))
    assert r.predictions.shape == (200,)
    assert r.accuracy == pytest.approx(np.mean(r.predictions == mnist_raw[3][:200]))
    assert [t for t, _ in r.acc_curve] == [0, 5, 10, 15, 20]
    assert r.acc_curve[-1][1] == r.accuracy
    x_few, y_few = data.few_shot(mnist_raw[0], mnist_raw[1], 2)
    assert r.final_loss == pytest.approx(network.loss(r.params, x_few, y_few), rel=1e-12)
    assert calls[-1][:2] == (20, 20) and [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert r.params.W1.shape == (784, 5)


def test_training_lowers_the_loss(mnist_raw):
    r = training.train(small_config(method="analytic", iters=50, lr=0.5), data=mnist_raw)
    x_few, y_few = data.few_shot(mnist_raw[0], mnist_raw[1], 2)
    start = network.loss(network.init_params(5, seed=3), x_few, y_few)
    assert r.final_loss < start - 0.05


@pytest.mark.parametrize("method", list(METHOD_NAMES))
def test_divergence_is_reported_not_raised(mnist_raw, method):
    # the sigmoid keeps the loss finite for any finite weights: only an overflowing step size breaks it
    r = training.train(small_config(method=method, iters=20, lr=1e308), data=mnist_raw)
    assert r.diverged
    assert r.iterations_done < 20
    assert len(r.loss_history) == r.iterations_done
    # the iteration that broke is the last: its loss is not finite, or its update overflowed a weight (a random
    # direction's step, about sqrt(P) times the gradient's length, overflows at once)
    assert np.all(np.isfinite(r.loss_history[:-1]))
    assert math.isnan(r.accuracy) and math.isnan(r.final_loss)
    assert np.all(r.predictions == -1)
    assert np.all(np.isfinite(r.params.flat))  # the weights from before the step that broke
    record = run_record(r)
    json.dumps(record, allow_nan=False)  # the record stays strict JSON
    assert record["diverged"] is True and record["accuracy"] is None


# --- the fused loop: bitwise the steps of methods.py ----------------------------

FUSED_CASES = [
    dict(method="analytic"),
    dict(method="numeric"),
    dict(method="alternate"),
    dict(method="select"),
    dict(method="select", select_on="train"),
    dict(method="alternate", alternate_every=3),
    dict(method="alternate", precision="float32"),
    dict(method="select", precision="float32"),
    dict(method="numeric", fd_arith="textbook", loss_epsilon=1e-7),
    dict(method="numeric", fd_scheme="forward"),
    dict(method="alternate", activation="relu"),
    dict(method="select", loss="mse", activation="tanh"),
    dict(method="analytic", shots=1, batch=1, hidden=1),
    dict(method="alternate", sources="numeric,analytic"),  # the other order: numeric first
    dict(method="select", sources="numeric,analytic"),
    dict(method="complex-step"),
    dict(method="alternate", sources="analytic,numeric,complex-step"),  # the others in turn
    dict(method="select", sources="analytic,numeric,complex-step"),
    dict(method="select", sources="complex-step,analytic,numeric", precision="float32"),
]


def assert_same_run(a: training.RunResult, b: training.RunResult):
    assert a.iterations_done == b.iterations_done and a.diverged == b.diverged
    assert np.array_equal(a.params.flat, b.params.flat)
    assert np.array_equal(a.loss_history, b.loss_history, equal_nan=True)
    assert a.sources == b.sources
    assert a.kept.dtype == b.kept.dtype == np.int8 and np.array_equal(a.kept, b.kept)
    assert a.rel_diffs.shape == b.rel_diffs.shape == (a.iterations_done, len(a.sources) - 1)
    assert np.array_equal(a.rel_diffs, b.rel_diffs, equal_nan=True)
    assert a.counts == b.counts and a.select_wins == b.select_wins
    assert a.shares == b.shares and a.rel_diff_mean == b.rel_diff_mean
    assert np.array_equal(a.predictions, b.predictions)
    assert a.accuracy == b.accuracy or (math.isnan(a.accuracy) and math.isnan(b.accuracy))


@pytest.mark.parametrize("changes", FUSED_CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_fused_loop_gives_bitwise_the_stepwise_run(mnist_raw, changes):
    config = small_config(iters=12, **changes)
    assert loop.fusable(config)
    fused = training.train(config, data=mnist_raw)
    assert_same_run(fused, training.train(config, data=mnist_raw, fused=False))
    assert fused.final_loss == training.train(config, data=mnist_raw, fused=False).final_loss


@pytest.mark.parametrize("method", list(METHOD_NAMES))
def test_fused_loop_diverges_where_the_stepwise_one_does(mnist_raw, method):
    config = small_config(method=method, iters=20, lr=1e308)
    fused = training.train(config, data=mnist_raw)
    assert fused.diverged
    assert_same_run(fused, training.train(config, data=mnist_raw, fused=False))


def test_fused_loop_result_does_not_depend_on_where_it_stops(mnist_raw):
    # progress reports and accuracy-curve points split the loop into kernel calls at other iterations
    config = small_config(method="alternate", iters=30)
    whole = training.train(config, data=mnist_raw)
    split = training.train(config, data=mnist_raw, eval_every=7, progress=lambda *a: None)
    assert [t for t, _ in split.acc_curve] == [0, 7, 14, 21, 28, 30]
    assert_same_run(whole, split)


def test_a_fused_run_finds_its_training_sets_lit_pixels_once_not_per_call(mnist_raw, monkeypatch):
    made = []
    original = network.lit_pixels
    monkeypatch.setattr(network, "lit_pixels", lambda x: made.append(len(x)) or original(x))
    calls, run_parallel = [], loop.run_parallel

    def spy(kernel, work, *args, **kw):
        if kernel is loop._train_sgd:
            calls.append(args[4])  # the lit pixels' indices it was given
        return run_parallel(kernel, work, *args, **kw)

    monkeypatch.setattr(loop, "run_parallel", spy)
    config = small_config(method="analytic", shots=3, iters=40)
    training.train(config, data=mnist_raw, progress=lambda *a: None)  # a report, so a call, every iteration
    assert made == [30]  # the 3 x 10 few-shot images, once
    assert len(calls) > 1 and all(ptr is calls[0] for ptr in calls)


def test_fused_analytic_step_leaves_the_rows_of_unlit_pixels_alone(few_shot_set):
    x, y = few_shot_set
    params = network.init_params(5, seed=0)
    before = params.copy()
    batches = np.array([[0, 1, 2, 3]])
    losses, kept, rel_diffs = np.empty(1), np.zeros(1, np.int8), np.full((1, 0), np.nan)  # one source: no others
    done, diverged = loop.sgd_iterations(
        params, x, y, batches, 0, config_settings(method="analytic", lr=0.1), losses, kept, rel_diffs
    )
    assert (done, diverged) == (1, False)
    lit = x[batches[0]].any(axis=0)
    assert np.array_equal(params.W1[~lit], before.W1[~lit])
    assert np.all(params.W1[lit] != before.W1[lit])
    g, value = network.analytic_gradient(before, x[batches[0]], y[batches[0]], return_loss=True)
    assert np.array_equal(params.flat, before.flat - 0.1 * g.flat)
    assert losses[0] == value and kept[0] == 0 and rel_diffs.shape == (1, 0)


@pytest.mark.parametrize(
    "changes", [dict(optimizer="momentum"), dict(weight_decay=1e-4), dict(dropout=0.5), dict(batch_norm=True)]
)
def test_only_plain_sgd_runs_fused(changes):
    for method in METHOD_NAMES:
        assert loop.fusable(small_config(method=method))
        assert not loop.fusable(small_config(method=method, **changes))


def test_a_source_without_a_fused_step_runs_stepwise():
    analytic = sources.get("analytic")
    sources.register(dataclasses.replace(analytic, name="unfused", exact=False, fused=None))
    try:
        assert not loop.fusable(small_config(method="unfused"))
        assert not loop.fusable(small_config(method="select", sources="analytic,unfused"))
        assert loop.fusable(small_config(method="select"))
    finally:
        sources.unregister("unfused")


@given(st.integers(0, 700), st.sampled_from([np.float64, np.float32]), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_norm_sums_in_numpys_pairwise_order(n, dtype, seed):
    r = np.random.default_rng(seed)
    v = (r.standard_normal(n) * 10.0 ** r.uniform(-3, 3, n)).astype(dtype)
    want = float(dtype(math.sqrt(ref.pairwise_sum(v * v))))  # sqrt of a float32 sum, rounded to float32
    assert network.norm(v) == want


def test_norm_of_a_long_vector_splits_like_numpy():
    v = np.arange(1, 39_761, dtype=np.float64) * 1e-3  # a gradient's length at H = 50, many halvings
    assert network.norm(v) == math.sqrt(ref.pairwise_sum(v * v))


# --- TrainConfig ------------------------------------------------------------------

BAD_FIELDS = [
    ("method", "bogus"),
    ("shots", 0),
    ("batch", 0),
    ("batch", -1),
    ("hidden", 0),
    ("iters", 0),
    ("alternate_every", 0),
    ("lr", 0.0),
    ("lr", -1.0),
    ("lr", float("nan")),
    ("lr", float("inf")),
    ("fd_step", 0.0),
    ("fd_step", float("nan")),
    ("init_std", -1.0),
    ("init_std", float("inf")),
    ("subset", "bogus"),
    ("fd_scheme", "backward"),
    ("select_on", "test"),
    ("sources", "analytic,bogus"),
    ("sources", "analytic"),  # alternate and select mix two or more
    ("sources", "numeric,numeric"),
    ("hidden", 10_001),
    ("batch", 10_001),
    ("iters", 12_500_001),  # iters x batch (8) past 1e8: out of memory
    ("test_limit", 0),
    ("test_limit", 10001),
    ("lr", "0.1"),
]


@pytest.mark.parametrize("field,value", BAD_FIELDS, ids=[f"{f}={v!r}" for f, v in BAD_FIELDS])
def test_validate_rejects_bad_values(field, value):
    config = TrainConfig().replace(**{field: value})
    with pytest.raises(ValueError) as info:
        config.validate()
    words = lambda s: s.replace("_", " ").replace("-", " ")  # noqa: E731
    assert words(field) in words(str(info.value))


def test_validate_rejects_non_integer_counts_and_a_negative_seed():
    # The count fields are compared with `< 1` only, so NaN and fractions pass validate(); train() then
    # raises TypeError (iters, batch, hidden), or silently runs something else: with alternate_every=nan,
    # alternate never takes a numeric step. A negative seed fails later in NumPy, without naming the field.
    bad = {"iters": float("nan"), "batch": 2.5, "hidden": float("nan"), "alternate_every": float("nan"), "seed": -1}
    accepted = []
    for field, value in bad.items():
        try:
            TrainConfig().replace(**{field: value}).validate()
            accepted.append(f"{field}={value!r}")
        except ValueError:
            pass
    assert not accepted, f"validate() accepts {', '.join(accepted)}"


def test_validate_accepts_the_defaults_and_returns_the_config():
    config = TrainConfig()
    assert config.validate() is config
    assert small_config(method="select", subset="random", fd_scheme="forward", select_on="train").validate()


def test_config_round_trips_through_a_dict():
    config = small_config(method="select", lr=0.25)
    assert TrainConfig.from_dict({**config.to_dict(), "unknown": 1}) == config


def test_train_validates_before_doing_anything():
    with pytest.raises(ValueError, match="iters"):
        training.train(TrainConfig(iters=0), data=())


def test_the_textbook_loop_of_the_benchmark_does_the_work_of_gradsels_run(mnist_raw):
    """bench --textbook times gradsel against a plain NumPy loop: the same run, so the same weights (to summation
    order) from the same initial weights and batches."""
    from gradsel_cli import data
    from gradsel_cli.numerics import benchmark

    config = benchmark.TEXTBOOK.replace(hidden=10, iters=30, test_limit=200)
    x, y = data.to_float(mnist_raw[0]), mnist_raw[1].astype(np.int64)
    params = network.init_params(config.hidden, config.seed)
    losses = benchmark.textbook_loop(params, x, y, training.batch_indices(config, len(y)), config.lr)
    run = training.train(config, mnist_raw)
    np.testing.assert_allclose(params.flat, run.params.flat, rtol=0, atol=1e-12)
    np.testing.assert_allclose(losses, run.loss_history, rtol=1e-12)


@pytest.mark.parametrize("regulariser", [{}, {"dropout": 0.3}, {"weight_decay": 0.01}])
def test_the_train_accuracy_curve_is_the_accuracy_on_the_training_images(mnist_raw, regulariser):
    """At every point of the test curve the record also has the accuracy on the run's own training images, at test
    time (no dropout mask): checked at the start and the end against plain NumPy on the initial and final weights."""
    config = small_config(method="analytic", iters=40, lr=0.5, shots=3, init="xavier", **regulariser)
    r = training.train(config, data=mnist_raw, eval_points=4)
    assert [t for t, _ in r.train_acc_curve] == [t for t, _ in r.acc_curve] == [0, 10, 20, 30, 40]
    x, y = data.few_shot(mnist_raw[0], mnist_raw[1], 3)
    for params, (t, got) in (
        (network.init_params(5, seed=config.seed), r.train_acc_curve[0]),
        (r.params, r.train_acc_curve[-1]),
    ):
        want = float(np.mean(ref.predict([params.W1, params.b1, params.W2, params.b2], x) == y))
        assert got == want, t
    assert r.train_acc_curve[-1][1] > r.train_acc_curve[0][1]
    record = json.loads(json.dumps(run_record(r)))
    assert record["train_acc_curve"] == [list(p) for p in r.train_acc_curve]
    assert training.train(config, data=mnist_raw).train_acc_curve == []  # no curve asked for: none


def test_a_run_on_float32_pixels_is_the_run_on_those_pixels_given_as_float64_data(mnist_raw):
    """--pixels float32 is the pixels' rounding and nothing else: the same run as the default one on a dataset
    whose images are rounded to float32 by hand (NumPy), and not the default run on unrounded ones."""
    config = TrainConfig(method="alternate", shots=1, batch=2, hidden=6, iters=40, activation="relu", test_limit=300)
    x, y = data.few_shot(mnist_raw[0], mnist_raw[1], config.shots)
    by_hand = training.Dataset(
        x.astype(np.float32).astype(np.float64), y, (mnist_raw[2][:300] / 255.0).astype(np.float32), mnist_raw[3][:300]
    )
    rounded, twin = training.train(config.replace(pixels="float32"), data=mnist_raw), training.train(config, by_hand)
    assert rounded.params.flat.tobytes() == twin.params.flat.tobytes()
    assert rounded.predictions.tolist() == twin.predictions.tolist()
    assert rounded.params.flat.tobytes() != training.train(config, data=mnist_raw).params.flat.tobytes()
