"""The registry of gradient sources (sources/__init__.py): what every source declares, a source added at run time,
and that no module outside sources/ names a source except as data."""

import ast
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import gradsel_cli
import reference as ref
from gradsel_cli import config, sources
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.kernels.backward import _analytic_step
from gradsel_cli.kernels.draws import _sign
from gradsel_cli.numerics import loop, training

PACKAGE = Path(gradsel_cli.__file__).parent
DATA = {"papers.py", "runs/records.py"}  # the papers' presets and format-1 records name what they compared


def test_every_source_declares_what_the_toolkit_reads():
    assert sources.names()[:2] == ("analytic", "numeric")  # the registry's order: the papers' two first
    assert [s for s in sources.REGISTRY.values() if s.exact] == [sources.get(sources.exact())]
    for name, s in sources.REGISTRY.items():
        assert s.name == name and s.description and s.label and s.colour.startswith("#")
        assert s.twin.startswith("tests/")
        assert s.cost(50, 8, sources.knobs_in(network.DEFAULTS, name)) > 0
        assert set(s.reads) <= set(sources.options()) and (s.step is None or s.step in s.options)  # may share
        assert set(s.options) <= {f.name for f in fields(TrainConfig)}  # each option is a field
        assert s.name in config.METHOD_NAMES


def test_every_method_draws_in_a_colour_of_its_own():
    from gradsel_cli.analysis.figures import POLICY_COLOURS

    colours = [s.colour for s in sources.REGISTRY.values()] + list(POLICY_COLOURS.values())
    assert len(set(colours)) == len(colours)  # a policy beside a source in one figure: two lines told apart


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
    assert {"fd_step", "sources", "alternate_every"} <= TrainConfig(method="alternate").read_options()
    assert "select_on" not in TrainConfig(method="alternate").read_options()
    plain = TrainConfig(method="analytic", fd_step=1e-3, sources="numeric,analytic", alternate_every=5).effective()
    assert (plain.fd_step, plain.sources, plain.alternate_every) == (1e-4, config.DEFAULT_SOURCES, 2)
    assert TrainConfig(method="select", sources="numeric,analytic").effective().sources == "numeric,analytic"


@pytest.fixture
def doubled():
    """A source registered at run time with no fused step: twice backprop's gradient (and backprop's loss)."""

    def gradient(params, x, y, settings, mask=None, draws=None):
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
    monkeypatch.setattr(loop, "sgd_iterations", lambda *a, **k: calls.append(a) or (0, False))
    config = TrainConfig(method="doubled", **SMALL)
    assert not loop.fusable(config)
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
    alternate = training.train(config.replace(method="alternate", alternate_every=3), mnist_raw)
    assert alternate.counts == {"analytic": 8, "doubled": 4}


def test_a_source_added_at_run_time_cannot_add_options():
    with pytest.raises(ValueError, match="cannot add options"):
        sources.register(
            sources.Source("x", "x", "x", "#000000", 9, lambda *a: None, lambda *a: 1.0, "tests/", options={"a": None})
        )


def _names(node, options: set[str]) -> str | None:
    """What `node` names of the sources: a source's name or one of their options as a string (a field or its
    command-line form), or an option as an attribute, keyword or variable."""
    flags = {f"--{o.replace('_', '-')}" for o in options} | {o.replace("_", "-") for o in options}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if node.value in {*sources.REGISTRY, *options, *flags} else None
    if isinstance(node, ast.Attribute):
        return f".{node.attr}" if node.attr in options else None
    if isinstance(node, ast.keyword):
        return f"{node.arg}=" if node.arg in options else None
    if isinstance(node, ast.Name):
        return node.id if node.id in options else None
    return None


def test_no_module_outside_sources_names_a_source_or_its_options_except_as_data():
    """The kernels are exempt for options: a kernel's parameters carry the config's names (kernels/__init__.py)."""
    named = []
    options = set(sources.options())
    assert {"fd_step", "cs_step"} <= options
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("sources/") or relative in DATA:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            said = _names(node, set() if relative.startswith("kernels/") else options)
            if said is not None:
                named.append(f"{relative}:{getattr(node, 'lineno', '?')} {said}")
    assert named == []


def test_the_guard_finds_a_source_or_an_option_in_each_form():
    options = set(sources.options())
    found = [
        _names(node, options)
        for text in ('x = "numeric"', 'f("--fd-step")', "c.fd_step", "f(fd_step=1)", "fd_step = 2", 'd["cs_step"]')
        for node in ast.walk(ast.parse(text))
    ]
    assert [f for f in found if f] == ["numeric", "--fd-step", ".fd_step", "fd_step=", "fd_step", "cs_step"]


def _reads_x(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
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

    def gradient(params, x, y, settings, mask=None, draws=None):
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
            fused=sources.Fused(lambda: step, dense=dense),
        )
    )
    try:
        config = TrainConfig(method="reads-x", **SMALL)
        assert loop.fusable(config)
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
    extra = [f"copy-{i}" for i in range(loop.STEPS - 1)]
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
            )
        )
    try:
        config = TrainConfig(method="select", sources=",".join(["analytic", "numeric", *extra]), **SMALL)
        assert not loop.fusable(config) and f"at most {loop.STEPS}" in loop.too_many_to_fuse(config)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = training.train(config, mnist_raw)
        assert any("steps through Python" in str(w.message) for w in caught)
        want = training.train(config, mnist_raw, fused=False)
        assert np.array_equal(got.params.flat, want.params.flat) and got.select_wins == want.select_wins
        four = config.replace(sources=",".join(["analytic", "numeric", *extra[:2]]))
        assert loop.fusable(four) and loop.too_many_to_fuse(four) is None
    finally:
        for name in extra:
            sources.unregister(name)


# A source with per-iteration random directions (what SPSA and forward gradients need): backprop's gradient g
# projected on Q Rademacher directions v_r made of its Q words of the iteration, (1/Q) sum_r (g . v_r) v_r.
Q = 2


def _projected(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    value = _analytic_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g)
    P, q = g.shape[0], draws.shape[0]
    along = np.zeros(q)
    for r in range(q):
        for i in range(P):
            along[r] += g[i] * _sign(draws[r], i)
    for i in range(P):
        total = 0.0
        for r in range(q):
            total += along[r] * _sign(draws[r], i)
        g[i] = total / q
    return value


@pytest.fixture
def projected():
    import numba

    step = numba.njit(cache=False)(_projected)

    def gradient(params, x, y, settings, mask=None, draws=None):
        x, y, mask = network.check_batch(params, x, y, mask)
        return network.step_gradient(step, 0.0, params, x, y, settings, mask, (), draws)

    source = sources.Source(
        "projected",
        "backprop's gradient on random directions",
        "projected",
        "#000000",
        96,
        gradient,
        lambda *a: 3.0,
        "tests/test_sources.py: analytic on reference.rademacher directions",
        fused=sources.Fused(lambda: step),
        draws=lambda knobs: Q,
    )
    sources.register(source)
    yield source
    sources.unregister("projected")


def test_a_random_direction_source_computes_its_estimate_from_its_draws(projected, mnist_raw):
    from gradsel_cli.kernels import draws as kernel_draws

    assert [kernel_draws._sign(np.uint64(w), i) for w in (0, 2**64 - 1, 12345) for i in range(40)] == [
        s for w in (0, 2**64 - 1, 12345) for s in ref.rademacher(w, 40)
    ]
    assert [kernel_draws._uniform(np.uint64(99), i) for i in range(40)] == list(ref.uniform(99, 40))
    config = TrainConfig(method="projected", **SMALL)
    settings = loop.settings(config)
    params = network.init_params(6, 1, dtype=np.float64)
    x, y = mnist_raw[0][:4].astype(np.float64) / 255.0, mnist_raw[1][:4].astype(np.int64)
    words = loop.words_of(settings, "projected", 4, 1)[0]  # iteration 5's
    got, value = projected.gradient(params, x, y, settings, None, words)
    exact, exact_value = network.analytic_gradient(params, x, y, settings, None, return_loss=True)
    g = np.concatenate([b.ravel() for b in ref.analytic_gradient(list(params), x, y)])
    v = [ref.rademacher(w, g.size) for w in words]
    want = sum(np.dot(g, d) * d for d in v) / Q
    np.testing.assert_allclose(got.flat, want, rtol=1e-9, atol=1e-12)
    assert value == exact_value and not np.allclose(got.flat, exact.flat)


@pytest.mark.parametrize(
    "method, extra",
    [
        ("projected", {}),
        ("alternate", {"sources": "analytic,projected", "alternate_every": 3}),
        ("select", {"sources": "analytic,projected"}),
        ("select", {"sources": "projected,analytic"}),
    ],
)
def test_a_random_direction_source_trains_fused_and_stepwise_bitwise_the_same(projected, mnist_raw, method, extra):
    config = TrainConfig(method=method, **{**SMALL, "iters": 40}, **extra)
    assert loop.fusable(config)
    fused, stepwise = training.train(config, mnist_raw), training.train(config, mnist_raw, fused=False)
    assert np.array_equal(fused.params.flat, stepwise.params.flat)
    assert np.array_equal(fused.loss_history, stepwise.loss_history) and np.array_equal(fused.kept, stepwise.kept)
    other_seed = training.train(config.replace(seed=config.seed + 1), mnist_raw)
    assert not np.array_equal(other_seed.params.flat, fused.params.flat)


def test_a_random_direction_source_draws_the_same_words_at_an_iteration_whatever_the_method(
    projected, mnist_raw, monkeypatch
):
    """The words the source's gradient receives, run by run (through Python, where they can be watched; the fused
    loop's are shown equal by the bitwise-equal runs above)."""
    import dataclasses

    received: list[bytes] = []

    def recording(params, x, y, settings, mask=None, draws=None):
        received.append(np.asarray(draws).tobytes())
        return projected.gradient(params, x, y, settings, mask, draws)

    monkeypatch.setitem(sources.REGISTRY, "projected", dataclasses.replace(projected, gradient=recording))
    runs = {
        "alone": TrainConfig(method="projected", **SMALL),
        "alternate": TrainConfig(method="alternate", sources="analytic,projected", alternate_every=3, **SMALL),
        "select": TrainConfig(method="select", sources="analytic,projected", **SMALL),
        "float32": TrainConfig(method="projected", precision="float32", **SMALL),
        "seed 2": TrainConfig(method="projected", **{**SMALL, "seed": 2}),
    }
    seen = {}
    for label, run in runs.items():
        received.clear()
        training.train(run, mnist_raw, fused=False)
        assert received[0] == received[1] or label == "alternate"  # the warm-up's call, before iteration 1: its words
        seen[label] = received[1:]
    alone = seen["alone"]
    assert len(alone) == SMALL["iters"] and len(set(alone)) == SMALL["iters"]  # new words every iteration
    assert len(alone[0]) == 8 * Q
    assert seen["alternate"] == [alone[t - 1] for t in (3, 6, 9, 12)]  # its iterations' words, not the first four
    assert seen["select"] == alone and seen["float32"] == alone
    assert all(a != b for a, b in zip(seen["seed 2"], alone))


def test_the_adding_a_source_page_documents_every_field_a_source_author_can_set():
    page = (PACKAGE.parent / "docs" / "adding-a-source.md").read_text()
    table = page[page.index("| field | what it is |") :]
    rows = [line.split(" | ")[0] for line in table.splitlines()[2:] if line.startswith("| ")]
    for part, prefix in (
        (sources.Source, ""),
        (sources.Fused, "Fused."),
        (sources.Check, "Check."),
        (sources.Bench, "Bench."),
    ):
        for f in fields(part):
            named = f"`{prefix}{f.name}" if prefix else f"`{f.name}"
            assert any(named in row for row in rows), f"{part.__name__}.{f.name} is not in the table"


def test_a_config_parses_its_sources_once_however_often_they_are_read(monkeypatch):
    parsed = []
    original = sources.parse
    monkeypatch.setattr(sources, "parse", lambda text: parsed.append(text) or original(text))
    config = TrainConfig(method="select", sources="analytic,numeric")
    for _ in range(5):
        assert config.validate().run_sources() == ("analytic", "numeric")
    loop.settings(config)
    assert parsed == ["analytic,numeric"]
    assert config.replace(sources="numeric,analytic").run_sources() == ("numeric", "analytic")  # a new config: anew
    assert TrainConfig(method="select") == TrainConfig(method="select").validate()  # the cache is no field


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_every_sources_loss_is_the_loss_to_the_bit(mnist_raw, precision):
    """The batch loss a source returns beside its gradient (its step kernel's, the penalty added) is network.loss's
    to the bit: with each activation family, both losses, a loss epsilon, weight decay and a dropout mask."""
    from gradsel_cli import data

    B, H = 6, 7
    x, y = data.to_float(mnist_raw[0][:B]).astype(precision), mnist_raw[1][:B]
    mask = (np.random.default_rng(1).random((B, H)) > 0.3).astype(precision) / np.asarray(0.7, precision)
    cases = [
        dict(),
        dict(activation="relu", loss="mse", weight_decay=1e-3),
        dict(activation="tanh", loss_epsilon=1e-7, weight_decay=1e-2),
    ]
    for fields_ in cases:
        config = TrainConfig(**fields_)
        settings = loop.settings(config)
        params = network.init_params(H, 2, std=0.3, dtype=precision)
        want = network.loss(params, x, y, settings, mask)
        for name, source in sources.REGISTRY.items():
            draws = loop.words_of(settings, name, 0, 1)[0]
            _, got = source.gradient(params, x, y, settings, mask, draws)
            assert got == want and type(got) is float, (name, fields_, got, want)
