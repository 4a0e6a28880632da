"""The complex-step source (sources/complex_step.py): its checked gradient against backpropagation and against the
naive NumPy twin (tests/reference.py), in the fused loop and through Python bitwise alike on any thread count, and
in every command and policy. Its kernels alone: tests/test_kernel_complex_step.py."""

import json

import numpy as np
import pytest

import reference as ref
from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import loop
from gradsel_cli.sources import complex_step
from helpers import (
    as_blocks,
    assert_blocks_close,
    assert_fused_is_stepwise_on_any_thread_count,
    config_settings,
    invoke,
    random_params,
)

EXACT_RTOL = 1e-13  # against backprop in float64: the same to rounding
TWIN_RTOL = 1e-12
SMALL = dict(shots=1, batch=4, hidden=6, iters=15, test_limit=200)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "mish"])
@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
@pytest.mark.parametrize("extra", [{}, {"weight_decay": 1e-3}, {"batch_norm": True}], ids=["plain", "decay", "bn"])
def test_the_gradient_is_backprops_to_rounding(mnist_batch, act, loss, extra):
    x, y = mnist_batch
    params = network.init_params(20, seed=3, std=0.1, batch_norm=extra.get("batch_norm", False))
    s = config_settings(activation=act, loss=loss, **extra)
    got, value = complex_step.gradient(params, x, y, s)
    want = network.analytic_gradient(params, x, y, s)
    # b1 under batch norm does not move the loss: both are rounding noise around 0, measured against the whole
    assert_blocks_close(got, want, EXACT_RTOL, f"{act}/{loss}/{extra}", floor=1e-3 if extra else 0.0)
    assert value == network.loss(params, x, y, s)


@pytest.mark.parametrize("act", ["sigmoid", "relu", "leaky-relu", "mish"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_gradient_is_the_naive_twins(act, batch_norm):
    gen = np.random.default_rng(5)
    x = np.where(gen.random((4, 12)) < 0.4, gen.random((4, 12)), 0.0)
    x[1] = x[0] * 0.5 + 0.1  # at least three distinct samples: batch norm's gradient is then not cancellation
    y = np.array([0, 3, 1, 3])
    params = random_params(4, n_in=12, n_out=5, seed=2)
    if batch_norm:
        params = network.Params(np.concatenate([params.flat, 1 + 0.1 * gen.standard_normal(8)]), 4, 12, 5, True)
    mask = (gen.random((4, 4)) > 0.3) / 0.7
    s = config_settings(activation=act)
    got, _ = complex_step.gradient(params, x, y, s, mask)
    weights = as_blocks(params)
    assert_blocks_close(got, ref.complex_step_gradient(weights, x, y, act, mask), TWIN_RTOL, act, floor=1e-6)


@pytest.mark.parametrize("method,sources", [("complex-step", None), ("select", "analytic,numeric,complex-step")])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_fused_loop_is_the_python_loop_bitwise_on_any_thread_count(mnist_raw, method, sources, precision):
    config = TrainConfig(method=method, precision=precision, **SMALL, **({"sources": sources} if sources else {}))
    assert_fused_is_stepwise_on_any_thread_count(config, mnist_raw)


def test_select_over_three_sources_records_each_ones_wins(runner, tmp_path):
    out = tmp_path / "runs.jsonl"
    args = ["train", "--method", "select", "--sources", "analytic,numeric,complex-step", "--iters", "20"]
    result = invoke(runner, *args, "--hidden", "6", "--batch", "4", "--test-limit", "200", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "select wins" in result.stdout and "complex-step" in result.stdout
    record = json.loads(out.read_text())
    assert record["sources"] == ["analytic", "numeric", "complex-step"]
    assert sum(record["select_wins"].values()) == 20 == record["counts"]["complex-step"]
    assert set(record["rel_diff_mean"]) == {"numeric", "complex-step"}
    assert record["rel_diff_mean"]["complex-step"] < 1e-12 < record["rel_diff_mean"]["numeric"]


def test_every_command_takes_it(runner):
    small = ["--hidden", "6", "--batch", "4", "--iters", "10", "--test-limit", "200"]
    for args in (
        ["train", "--method", "complex-step", *small],
        ["train", "--method", "alternate", "--sources", "analytic,complex-step", *small],
        ["compare", "--methods", "analytic,numeric,complex-step", "--seeds", "2", *small],
    ):
        result = invoke(runner, *args)
        assert result.exit_code == 0, (args, result.output)
        assert "complex-step" in result.stdout
    args = ["gradcheck", "--iters", "5", "--hidden", "6", "--steps", "1e-3,1e-20", "--check", "numeric,complex-step"]
    check = invoke(runner, *args, "--json")
    states = json.loads(check.stdout)["states"]
    assert [list(s["sources"]) for s in states] == [["numeric", "complex-step"]] * 2
    rows = states[0]["sources"]["complex-step"]["rows"]
    assert rows[-1]["all"]["rel_diff"] < 1e-13  # h = 1e-20: backprop to rounding, where a finite difference is noise


@pytest.mark.parametrize(
    "precision, h, said",
    [
        ("float64", 1e-320, "below 1e-292"),  # subnormal: h times a gradient entry underflows
        ("float64", 1e300, "above 1"),  # no derivative: gradcheck's relative error was 1.0
        ("float32", 1e-50, "below 1e-31"),  # rounds to 0 in float32: every entry was NaN
        ("float32", 1e-33, "below 1e-31"),
    ],
)
def test_a_step_the_precision_cannot_carry_is_refused_before_any_run(precision, h, said, runner):
    config = TrainConfig(method="complex-step", precision=precision, cs_step=h)
    with pytest.raises(ValueError, match=said):
        config.validate()
    select = TrainConfig(method="select", sources="analytic,complex-step", precision=precision, cs_step=h)
    with pytest.raises(ValueError, match="--cs-step"):
        select.validate()
    result = runner.invoke(cli, ["train", "--method", "complex-step", "--precision", precision, "--cs-step", str(h)])
    assert result.exit_code == 2 and result.stderr.startswith("Error: --cs-step") and not result.stdout


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_its_default_step_and_its_whole_gradcheck_range_are_taken_in_either_precision(precision, mnist_batch):
    config = TrainConfig(method="complex-step", precision=precision).validate()
    source = sources.get("complex-step")
    steps = source.check.steps(precision)
    assert config.cs_step in steps and min(steps) <= 1e-30 and max(steps) >= 1e-1
    assert all(source.problem(config.replace(cs_step=h)) is None for h in steps)
    x, y = mnist_batch
    params = network.init_params(5, seed=0, dtype=precision)
    exact, _ = network.analytic_gradient(params, x.astype(precision), y, loop.settings(config), return_loss=True)
    tiny = config.replace(cs_step=min(steps))
    g, _ = source.gradient(params, x.astype(precision), y, loop.settings(tiny))
    assert np.all(np.isfinite(g.flat))
    assert np.linalg.norm(g.flat - exact.flat) <= 1e3 * np.finfo(precision).eps * np.linalg.norm(exact.flat)
