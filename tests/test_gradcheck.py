"""Gradient diagnostics: relative error and cosine of numeric vs analytic, against the NumPy reference twin."""

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

import reference as ref
from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import Notice, TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import gradcheck
from gradsel_cli.numerics.training import Dataset, batch_indices
from helpers import BLOCKS, as_blocks, rel_error

TRUNCATION_STEPS = (1e-1, 1e-2, 1e-3)  # truncation error dominates: both implementations agree on it
REL_ERROR_RTOL = 1e-3  # our relative error vs the reference's, at those steps


def test_compare_on_hand_made_vectors():
    a = np.array([3.0, 4.0])
    same = gradcheck.compare(a, a)
    assert same == {"rel_diff": 0.0, "cosine": pytest.approx(1.0), "one_minus_cosine": 0.0}
    scaled = gradcheck.compare(1.01 * a, a)
    assert scaled["rel_diff"] == pytest.approx(0.01) and scaled["one_minus_cosine"] == pytest.approx(0, abs=1e-16)
    perpendicular = gradcheck.compare(np.array([-4.0, 3.0]), a)
    assert perpendicular["cosine"] == pytest.approx(0.0, abs=1e-15)
    assert perpendicular["one_minus_cosine"] == pytest.approx(1.0)
    assert perpendicular["rel_diff"] == pytest.approx(np.sqrt(2))
    assert gradcheck.compare(a, np.zeros(2)) == {"rel_diff": None, "cosine": None, "one_minus_cosine": None}


def test_one_minus_cosine_keeps_its_digits_near_one():
    gen = np.random.default_rng(0)
    a = gen.standard_normal(1000)
    tilt = 1e-9 * gen.standard_normal(1000)
    tilt -= a * (tilt @ a) / (a @ a)  # perpendicular: 1 - cos = |tilt|^2 / (2 |a|^2) to leading order
    got = gradcheck.compare(a + tilt, a)["one_minus_cosine"]
    assert got == pytest.approx((tilt @ tilt) / (2 * (a @ a)), rel=1e-6)


@pytest.mark.parametrize("scheme", ["central", "forward"])
def test_check_steps_matches_the_reference_twin(make_problem, scheme):
    params, x, y = make_problem(hidden=4, batch=3, n_in=12, seed=2)
    rows = gradcheck.check_steps(params, x, y, TRUNCATION_STEPS, TrainConfig(fd_scheme=scheme), "numeric")
    weights = as_blocks(params)
    analytic = ref.analytic_gradient(weights, x, y)
    for row, h in zip(rows, TRUNCATION_STEPS):
        numeric = ref.numeric_gradient(weights, x, y, step=h, scheme=scheme)
        assert row["step"] == h
        for name, n, a in zip(BLOCKS, numeric, analytic):
            assert row["blocks"][name]["rel_diff"] == pytest.approx(rel_error(n, a), rel=REL_ERROR_RTOL), (h, name)
            cos = float(n.ravel() @ a.ravel() / (np.linalg.norm(n) * np.linalg.norm(a)))
            assert row["blocks"][name]["cosine"] == pytest.approx(cos, rel=1e-12)
        flat_n = np.concatenate([g.ravel() for g in numeric])
        flat_a = np.concatenate([g.ravel() for g in analytic])
        assert row["all"]["rel_diff"] == pytest.approx(rel_error(flat_n, flat_a), rel=REL_ERROR_RTOL)


def test_truncation_error_falls_as_h_squared_central_and_h_forward(mnist_batch):
    x, y = mnist_batch
    params = network.init_params(20, seed=0)
    for scheme, order in (("central", 2), ("forward", 1)):
        e = [
            r["all"]["rel_diff"]
            for r in gradcheck.check_steps(params, x, y, (1e-2, 1e-3), TrainConfig(fd_scheme=scheme), "numeric")
        ]
        assert e[0] / e[1] == pytest.approx(10.0**order, rel=0.05), scheme


def test_the_error_against_h_is_v_shaped(mnist_batch):
    x, y = mnist_batch
    params = network.init_params(20, seed=0)
    rows = gradcheck.check_steps(params, x, y, (1e-2, 1e-5, 1e-9))  # the first source that is not exact
    assert rows == gradcheck.check_steps(params, x, y, (1e-2, 1e-5, 1e-9), TrainConfig(), "numeric")
    big, mid, tiny = (r["all"]["rel_diff"] for r in rows)
    assert mid < big / 100 and mid < tiny / 10
    assert gradcheck.best_step(rows) == 1e-5
    assert all(r["all"]["cosine"] > 1 - 1e-9 for r in rows)


def test_check_steps_needs_a_step(make_problem):
    params, x, y = make_problem()
    with pytest.raises(ValueError, match="step"):
        gradcheck.check_steps(params, x, y, ())


@pytest.fixture
def doubled():
    """A source registered at run time: twice the exact gradient, and no step option."""
    exact = sources.get(sources.exact())

    def gradient(params, x, y, settings, mask=None, draws=None):
        g, loss = exact.gradient(params, x, y, settings, mask)
        return params.with_flat(2.0 * g.flat), loss

    sources.register(dataclasses.replace(exact, name="doubled", gradient=gradient, exact=False, fused=None))
    yield "doubled"
    sources.unregister("doubled")


def test_a_source_without_a_step_gets_one_row(make_problem, doubled):
    params, x, y = make_problem()
    rows = gradcheck.check_steps(params, x, y, (1e-3, 1e-5), TrainConfig(), doubled)
    assert len(rows) == 1 and rows[0]["step"] is None  # h does not apply to it
    assert rows[0]["all"]["rel_diff"] == pytest.approx(1.0, rel=1e-12)  # ||2g - g|| / ||g||
    assert all(rows[0]["blocks"][b]["cosine"] == pytest.approx(1.0, rel=1e-12) for b in BLOCKS)
    assert gradcheck.best_step(rows) is None


def test_gradcheck_checks_the_first_batch_at_init_and_after_training(mnist_raw):
    config = TrainConfig(hidden=5, batch=4, iters=30, test_limit=100)
    steps = (1e-3, 1e-5)
    check = gradcheck.gradcheck(config, steps, mnist_raw)
    assert check["config"]["method"] == "analytic" and check["steps"] == list(steps)
    assert check["exact"] == "analytic"
    init, trained = check["states"]
    assert (init["state"], init["iteration"], trained["state"], trained["iteration"]) == ("init", 0, "trained", 30)
    ds = Dataset.for_config(mnist_raw, config)
    idx = batch_indices(config, len(ds.y_train))[0]
    start = network.init_params(5, seed=0)
    others = [n for n in sources.names() if n != "analytic"]
    assert "numeric" in others and list(init["sources"]) == list(trained["sources"]) == others  # all but the exact
    a, b = init["sources"]["numeric"], trained["sources"]["numeric"]
    assert a["description"] == sources.get("numeric").description and a["step_option"] == "fd_step"
    assert a["rows"] == gradcheck.check_steps(start, ds.x_train[idx], ds.y_train[idx], steps, config, "numeric")
    assert init["loss"] == pytest.approx(network.loss(start, ds.x_train[idx], ds.y_train[idx]))
    assert b["rows"] != a["rows"] and trained["loss"] != init["loss"]  # training moved the weights
    assert a["best_step"] in steps and b["best_step"] in steps
    assert a["best_step"] == gradcheck.best_step(a["rows"])


def test_gradcheck_checks_the_sources_it_is_given(mnist_raw, doubled):
    config = TrainConfig(hidden=5, batch=4, iters=3, test_limit=100)
    every = gradcheck.gradcheck(config, (1e-4,), mnist_raw)
    assert list(every["states"][0]["sources"]) == [n for n in sources.names() if n != "analytic"]  # registry order
    assert list(every["states"][0]["sources"])[-1] == doubled  # registered last
    only = gradcheck.gradcheck(config, (1e-4,), mnist_raw, names=[doubled])
    for state in only["states"]:
        assert list(state["sources"]) == [doubled]
        entry = state["sources"][doubled]
        assert entry["step_option"] is None and [r["step"] for r in entry["rows"]] == [None]
        assert entry["rows"][0]["all"]["rel_diff"] == pytest.approx(1.0, rel=1e-12)


def test_gradcheck_refuses_dropout_and_batch_norm(mnist_raw):
    with pytest.raises(ValueError, match="dropout"):
        gradcheck.gradcheck(TrainConfig(hidden=5, batch=4, iters=2, dropout=0.5), (1e-4,), mnist_raw)


def test_gradcheck_command_json(monkeypatch):
    monkeypatch.delenv("GRADSEL_DATA_DIR", raising=False)
    result = CliRunner().invoke(
        cli,
        [
            "gradcheck",
            "--hidden",
            "5",
            "--batch",
            "4",
            "--iters",
            "20",
            "--steps",
            "1e-5",
            "--steps",
            "1e-3",
            "--check",
            "numeric",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["steps"] == [1e-3, 1e-5]  # largest first
    assert [s["state"] for s in data["states"]] == ["init", "trained"]
    assert data["exact"] == "analytic" and list(data["states"][0]["sources"]) == ["numeric"]
    row = data["states"][0]["sources"]["numeric"]["rows"][0]
    assert row["step"] == 1e-3
    assert set(row["blocks"]) == set(BLOCKS) and 0 < row["all"]["rel_diff"] < 1e-4


def test_gradcheck_command_table(monkeypatch):
    monkeypatch.delenv("GRADSEL_DATA_DIR", raising=False)
    result = CliRunner().invoke(
        cli, ["gradcheck", "--hidden", "5", "--batch", "4", "--iters", "20", "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "at initialisation" in result.stdout and "after 20 analytic iterations" in result.stdout
    for h in ("0.01", "1e-05", "1e-08"):
        assert h in result.stdout


def test_the_exact_gradient_is_not_a_source_to_check(mnist_raw, runner):
    config = TrainConfig(hidden=3, batch=2, iters=2, test_limit=50)
    with pytest.raises(ValueError, match=r"analytic is the exact gradient .* numeric"):
        gradcheck.gradcheck(config, (1e-4,), mnist_raw, names=["analytic", "numeric"])
    result = runner.invoke(cli, ["gradcheck", "--check", "analytic", "--iters", "2", "--hidden", "3"])
    assert result.exit_code != 0 and not result.stdout
    assert result.stderr.strip().startswith("Error: analytic is the exact gradient"), result.stderr


def test_each_source_is_checked_across_its_own_range_by_default(mnist_raw):
    config = TrainConfig(hidden=3, batch=2, iters=2, test_limit=50)
    check = gradcheck.gradcheck(config, None, mnist_raw)
    assert check["steps"] is None
    for name, entry in check["states"][0]["sources"].items():
        source = sources.get(name)
        steps = list(dict.fromkeys(r["step"] for r in entry["rows"]))  # a random source's: a row per q at each
        if source.step:
            assert steps == sorted(source.check.steps("float64"), reverse=True)
            assert getattr(config, source.step) in steps  # its default step is among them (complex-step's 1e-20)
            assert entry["refused_steps"] == []


def test_a_given_step_a_source_cannot_take_is_left_out_for_it_and_said(mnist_raw):
    config = TrainConfig(hidden=3, batch=2, iters=2, test_limit=50)
    with pytest.warns(Notice, match="complex-step is not checked at 1e-320"):
        check = gradcheck.gradcheck(config, (1e-2, 1e-320), mnist_raw)
    entries = check["states"][0]["sources"]
    assert [r["step"] for r in entries["numeric"]["rows"]] == [1e-2, 1e-320]  # a finite difference takes any h
    assert [r["step"] for r in entries["complex-step"]["rows"]] == [1e-2]
    assert entries["complex-step"]["refused_steps"] == [1e-320]
    with pytest.raises(ValueError, match="none of the steps given is one complex-step can take"):
        gradcheck.gradcheck(config, (1e-320,), mnist_raw, names=["complex-step"])


def test_each_source_takes_its_own_steps_under_its_own_option_over_steps(monkeypatch):
    monkeypatch.delenv("GRADSEL_DATA_DIR", raising=False)
    args = ["gradcheck", "--hidden", "5", "--batch", "4", "--iters", "2", "--json", "--check", "numeric,complex-step"]
    result = CliRunner().invoke(cli, [*args, "--steps", "1e-3", "--cs-step", "1e-20,1e-30"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["steps"] == {"numeric": [1e-3], "complex-step": [1e-20, 1e-30]}
    rows = {n: [r["step"] for r in s["rows"]] for n, s in data["states"][0]["sources"].items()}
    assert rows == {"numeric": [1e-3], "complex-step": [1e-20, 1e-30]}
    alone = json.loads(CliRunner().invoke(cli, [*args, "--fd-step", "1e-4"], catch_exceptions=False).stdout)
    own = sources.get("complex-step").check.steps("float64")
    assert alone["steps"] == {"numeric": [1e-4], "complex-step": None}  # no --steps: complex-step's own range
    assert [r["step"] for r in alone["states"][0]["sources"]["complex-step"]["rows"]] == sorted(own, reverse=True)


# --- the random sources: their error over many draws, against q and the number of weights ----------------------

RANDOM = [n for n in sources.names() if sources.get(n).check.count]


def test_a_random_source_is_checked_over_draws_and_its_error_falls_as_one_over_root_q(mnist_raw):
    """The 1/q variance law, measured: the rms error over 12 draws at q = 1, 16, 256 within 1.6x of sqrt(P / q)
    (at q = 1 a draw's error is a folded normal times sqrt(P), so 12 draws pin it to about 25%), slopes near
    -1/2 against q and +1/2 against the number of weights, the cosine growing with q."""
    config = TrainConfig(hidden=8, batch=4, iters=5, test_limit=50)
    check = gradcheck.gradcheck(config, None, mnist_raw, names=RANDOM, qs=(1, 16, 256), draws=12)
    assert RANDOM == ["spsa", "forward"]
    for state in check["states"]:
        for name in RANDOM:
            entry = state["sources"][name]
            rows = entry["rows"]
            assert [r["q"] for r in rows] == [1, 16, 256] and {r["draws"] for r in rows} == {12}
            assert entry["best_step"] is None
            for r in rows:
                assert r["expected"] / 1.6 < r["all"]["rel_diff"] < 1.6 * r["expected"], (name, r)
            assert -0.6 < entry["law"] < -0.4
            cosines = [r["all"]["cosine"] for r in rows]
            assert cosines == sorted(cosines) and cosines[0] > 0
        if state["iteration"] == 0:
            for name in RANDOM:
                sizes = state["sources"][name]["sizes"]
                assert [r["hidden"] for r in sizes] == sorted({*gradcheck.SIZES, 8})
                assert all(r["weights"] == 795 * r["hidden"] + 10 for r in sizes)
                assert 0.35 < state["sources"][name]["size_law"] < 0.65
        else:
            assert all("sizes" not in state["sources"][n] for n in RANDOM)
    again = gradcheck.gradcheck(config, None, mnist_raw, names=RANDOM, qs=(1, 16, 256), draws=12)
    assert json.dumps(again) == json.dumps(check)  # the draws are the run seed's: the same check twice


def test_the_slope_of_a_law_is_fitted_on_log_scales():
    assert gradcheck.slope([(1, 100.0), (100, 10.0), (10_000, 1.0)]) == pytest.approx(-0.5)
    assert gradcheck.slope([(1, 5.0), (4, None)]) is None  # one point with an error: no slope


def test_the_gradcheck_command_takes_the_numbers_of_directions_and_draws(runner):
    args = ["gradcheck", "--hidden", "5", "--batch", "4", "--iters", "3", "--check", ",".join(RANDOM)]
    result = runner.invoke(cli, [*args, "--directions", "1,4", "--draws", "3", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for name in RANDOM:
        assert [(r["q"], r["draws"]) for r in data["states"][0]["sources"][name]["rows"]] == [(1, 3), (4, 3)]
    table = runner.invoke(cli, [*args, "--directions", "1,4", "--draws", "3"], catch_exceptions=False)
    assert "√(P/q)" in table.stdout and "its error against the number of weights" in table.stdout
    for bad, said in ((["--directions", "0"], "--directions"), (["--draws", "1"], "--draws")):
        result = runner.invoke(cli, [*args, *bad])
        assert result.exit_code == 2 and not result.stdout and said in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
