"""The registry of gradient sources (sources/__init__.py): what every source declares, a source added at run time,
and that no module outside sources/ names a source except as data."""

import ast
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import gradsel_cli
from gradsel_cli import config, sources
from gradsel_cli.config import TrainConfig
from gradsel_cli.numerics import network, training

PACKAGE = Path(gradsel_cli.__file__).parent
DATA = {"papers.py", "runs/records.py"}  # the papers' presets and format-1 records name what they compared


def test_every_source_declares_what_the_toolkit_reads():
    assert sources.names()[:2] == ("analytic", "numeric")  # the registry's order: the papers' two first
    assert [s for s in sources.REGISTRY.values() if s.exact] == [sources.get(sources.exact())]
    for name, s in sources.REGISTRY.items():
        assert s.name == name and s.description and s.label and s.colour.startswith("#")
        assert s.twin.startswith("tests/")
        assert s.cost(50, 8, 1200.0) > 0
        assert set(s.reads) <= set(s.options) and (s.step is None or s.step in s.options)
        assert set(s.options) <= {f.name for f in fields(TrainConfig)}  # each option is a field
        assert s.name in config.METHOD_NAMES


def test_a_source_list_is_checked_with_the_choices_named():
    assert sources.parse(" analytic , numeric") == ("analytic", "numeric")
    with pytest.raises(ValueError, match=r"unknown gradient source .foo.*choose from: analytic, numeric"):
        sources.parse("analytic,foo")
    with pytest.raises(ValueError, match="twice"):
        sources.parse("numeric,numeric")
    with pytest.raises(ValueError, match="one gradient source"):
        TrainConfig(method="select", sources="analytic").validate()


def test_a_config_reads_the_options_of_its_sources_and_policy_only():
    assert "fd_step" not in TrainConfig(method="analytic").read_options()
    assert {"fd_step", "sources", "numeric_every"} <= TrainConfig(method="alternate").read_options()
    assert "select_on" not in TrainConfig(method="alternate").read_options()
    plain = TrainConfig(method="analytic", fd_step=1e-3, sources="numeric,analytic", numeric_every=5).effective()
    assert (plain.fd_step, plain.sources, plain.numeric_every) == (1e-4, config.DEFAULT_SOURCES, 2)
    assert TrainConfig(method="select", sources="numeric,analytic").effective().sources == "numeric,analytic"


@pytest.fixture
def doubled():
    """A source registered at run time with no fused step: twice backprop's gradient (and backprop's loss)."""

    def gradient(params, x, y, settings, mask=None):
        g, value = network.analytic_gradient(params, x, y, settings, mask, return_loss=True)
        return params.with_flat(2 * g.flat), value

    source = sources.Source(
        name="doubled",
        description="twice the exact gradient",
        label="doubled",
        colour="#000000",
        order=99,
        gradient=gradient,
        cost=lambda hidden, batch, lit: 3.0,
        twin="tests/test_sources.py: twice analytic",
    )
    sources.register(source)
    yield source
    sources.unregister("doubled")


SMALL = dict(shots=1, batch=4, hidden=6, iters=12, test_limit=200)


def test_a_source_without_a_fused_step_runs_through_python_with_the_right_result(doubled, mnist_raw, monkeypatch):
    calls = []
    monkeypatch.setattr(network, "sgd_iterations", lambda *a, **k: calls.append(a) or (0, False))
    config = TrainConfig(method="doubled", **SMALL)
    assert not network.fusable(config)
    got = training.train(config, mnist_raw)
    assert calls == []  # never the fused kernel, which would have taken another source's branch
    # twice the gradient at lr is the exact gradient at 2 lr: bitwise, as 2 g and 2 lr scale exactly
    want = training.train(TrainConfig(method="analytic", **{**SMALL, "lr": 0.2}), mnist_raw, fused=False)
    assert np.array_equal(got.params.flat, want.params.flat)
    assert got.counts == {"doubled": SMALL["iters"]} and got.shares == {"doubled": 1.0}


def test_a_policy_mixes_a_source_added_at_run_time(doubled, mnist_raw):
    config = TrainConfig(method="select", sources="analytic,doubled", **SMALL)
    result = training.train(config, mnist_raw)
    assert result.sources == ("analytic", "doubled")
    assert sum(result.select_wins.values()) == SMALL["iters"]
    assert result.rel_diff_mean == {"doubled": pytest.approx(1.0)}  # ||2g - g|| / ||g||
    alternate = training.train(config.replace(method="alternate", numeric_every=3), mnist_raw)
    assert alternate.counts == {"analytic": 8, "doubled": 4}


def test_a_source_added_at_run_time_cannot_add_options():
    with pytest.raises(ValueError, match="cannot add options"):
        sources.register(
            sources.Source("x", "x", "x", "#000000", 9, lambda *a: None, lambda *a: 1.0, "tests/", options={"a": None})
        )


def test_no_module_outside_sources_names_a_source_except_as_data():
    named = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("sources/") or relative in DATA:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in sources.REGISTRY:
                named.append(f"{relative}:{node.lineno} {node.value!r}")
    assert named == []


def _reads_x(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, g):
    """A fused step that reads the batch's pixels x and leaves the gradient 0: its loss is 1 when x is real."""
    total = 0.0
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            total += x[b, i]
    return 0.0 * total + 1.0


@pytest.mark.parametrize("dense", [True, False])
def test_a_fused_step_that_reads_x_gets_the_batch_only_when_it_says_so(mnist_raw, dense):
    """The trap of `dense`: a step that reads x but leaves dense False used to get uninitialised memory and train
    on it silently; it now gets NaN, so the run's loss is NaN and the run stops as diverged at its first iteration."""
    import numba

    step = numba.njit(cache=False)(_reads_x)

    def gradient(params, x, y, settings, mask=None):
        return params.with_flat(np.zeros_like(params.flat)), 1.0 + 0.0 * float(np.sum(x))

    sources.register(
        sources.Source(
            "reads-x",
            "reads x",
            "reads-x",
            "#000000",
            98,
            gradient,
            lambda *a: 1.0,
            "tests/",
            fused=lambda: step,
            dense=dense,
        )
    )
    try:
        config = TrainConfig(method="reads-x", **SMALL)
        assert network.fusable(config)
        fused, stepwise = training.train(config, mnist_raw), training.train(config, mnist_raw, fused=False)
    finally:
        sources.unregister("reads-x")
    assert not stepwise.diverged and stepwise.loss_history[0] == 1.0
    if dense:
        assert not fused.diverged and np.array_equal(fused.loss_history, stepwise.loss_history)
    else:
        assert fused.diverged and fused.iterations_done == 1 and np.isnan(fused.loss_history[0])


def test_select_over_more_sources_than_the_fused_loop_takes_says_so_and_gives_the_same_result(mnist_raw):
    """The fused loop takes STEPS sources; a fifth (here: copies of backprop, fused) steps through Python, said in
    one line, bitwise the same as the Python loop."""
    import warnings

    exact = sources.get("analytic")
    extra = [f"copy-{i}" for i in range(network.STEPS - 1)]
    for name in extra:
        sources.register(
            sources.Source(
                name,
                name,
                name,
                "#000000",
                97,
                exact.gradient,
                exact.cost,
                "tests/",
                fused=exact.fused,
                sparse=exact.sparse,
            )
        )
    try:
        config = TrainConfig(method="select", sources=",".join(["analytic", "numeric", *extra]), **SMALL)
        assert not network.fusable(config) and f"at most {network.STEPS}" in network.too_many_to_fuse(config)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = training.train(config, mnist_raw)
        assert any("steps through Python" in str(w.message) for w in caught)
        want = training.train(config, mnist_raw, fused=False)
        assert np.array_equal(got.params.flat, want.params.flat) and got.select_wins == want.select_wins
        four = config.replace(sources=",".join(["analytic", "numeric", *extra[:2]]))
        assert network.fusable(four) and network.too_many_to_fuse(four) is None
    finally:
        for name in extra:
            sources.unregister(name)
