"""Optimizer paths over 2-D surfaces (numerics/paths.py): the optimizers are the network's, the paths follow
their closed forms and recurrences, and each source's gradient of a function is what it should be."""

import numpy as np
import pytest

from gradsel_cli import sources
from gradsel_cli.config import TrainConfig
from gradsel_cli.numerics import paths
from gradsel_cli.numerics.optimizers import Optimizer

TEXTBOOK = paths.surface("textbook")
EXACT = sources.exact()


def usable() -> list[str]:
    return [n for n in sources.names() if sources.get(n).check.of_function is not None]


def gradient(method=EXACT, surface=TEXTBOOK, **options):
    return paths.gradient_of(TrainConfig(method=method, **options), surface)


def test_sgd_on_the_textbook_surface_is_its_closed_form():
    lr, steps = 0.95, 30
    got = paths.path(Optimizer("sgd", lr=lr), gradient(), TEXTBOOK.start, steps)
    t = np.arange(steps + 1)
    x0, y0 = TEXTBOOK.start
    np.testing.assert_allclose(got[:, 0], x0 * (1 - lr / 10) ** t, rtol=1e-13)
    np.testing.assert_allclose(got[:, 1], y0 * (1 - 2 * lr) ** t, rtol=1e-12, atol=1e-300)


def test_momentum_follows_its_recurrence():
    lr, mu, steps = 0.1, 0.9, 30
    got = paths.path(Optimizer("momentum", lr=lr, momentum=mu), gradient(), TEXTBOOK.start, steps)
    p, v = np.array(TEXTBOOK.start), np.zeros(2)
    for t in range(1, steps + 1):
        v = mu * v - lr * np.array([p[0] / 10, 2 * p[1]])
        p = p + v
        assert np.array_equal(got[t], p), t


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_a_path_is_the_networks_optimizer_stepped_on_the_same_gradients(name):
    """No second implementation: driving numerics/optimizers.Optimizer by hand with the gradients at the path's
    points gives the path's next points, bitwise."""
    s = paths.surface("two-minima")
    opt = Optimizer(name, lr=s.lrs[name])
    g = gradient(surface=s)
    got = paths.path(opt, g, s.start, 12)
    assert np.all(np.isfinite(got))
    state = opt.init(2)
    for t in range(12):
        nxt, state = opt.step(got[t].copy(), g(got[t]), state)
        assert np.array_equal(nxt, got[t + 1]), (name, t)


@pytest.mark.parametrize("name", list(paths.SURFACES))
def test_every_surfaces_closed_form_gradient_is_its_functions(name):
    s = paths.SURFACES[name]
    gen = np.random.default_rng(0)
    for p in gen.uniform(-2, 2, (20, 2)):
        z = [s.f(p + 1j * 1e-30 * e).imag / 1e-30 for e in np.eye(2)]  # complex step of f: exact to rounding
        np.testing.assert_allclose(s.df(p), z, rtol=1e-12, atol=1e-12)


def test_central_differences_follow_the_exact_path_on_a_quadratic_and_forward_ones_with_a_large_step_do_not():
    exact = paths.path(Optimizer("sgd", lr=0.95), gradient(), TEXTBOOK.start, 30)
    central = paths.path(Optimizer("sgd", lr=0.95), gradient("numeric", fd_step=0.5), TEXTBOOK.start, 30)
    np.testing.assert_allclose(central, exact, rtol=1e-9, atol=1e-12)  # exact on a quadratic, up to rounding
    forward = gradient("numeric", fd_step=0.5, fd_scheme="forward")
    away = paths.path(Optimizer("sgd", lr=0.95), forward, TEXTBOOK.start, 30)
    assert np.max(np.abs(away - exact)) > 0.1  # the forward difference's error h/2 f'' moves the path
    np.testing.assert_allclose(forward(np.zeros(2)), [0.5 / 20, 0.5])  # (f(h) - f(0)) / h at the minimum


@pytest.mark.parametrize("name", list(paths.SURFACES))
def test_every_source_that_works_from_a_function_is_close_to_the_closed_form(name):
    s = paths.SURFACES[name]
    p = np.array([0.7, -0.4])
    for method in usable():
        np.testing.assert_allclose(gradient(method, s)(p), s.df(p), rtol=1e-6, atol=1e-8, err_msg=method)


def test_a_source_that_needs_the_network_and_a_policy_are_refused_in_one_line(monkeypatch):
    import dataclasses

    network_only = dataclasses.replace(sources.get(EXACT), name="network-only", check=sources.Check())
    monkeypatch.setitem(sources.REGISTRY, "network-only", network_only)
    with pytest.raises(ValueError, match="needs the network"):
        paths.gradient_of(TrainConfig(method=EXACT).replace(method="network-only"), TEXTBOOK)
    with pytest.raises(ValueError, match="one gradient source"):
        paths.gradient_of(TrainConfig(method="alternate"), TEXTBOOK)


def test_the_command_line_offers_the_surfaces_there_are():
    from gradsel_cli.choices import SURFACES

    assert tuple(paths.SURFACES) == SURFACES  # config names them for --help, which loads no NumPy


def test_an_unknown_surface_names_the_choices():
    with pytest.raises(ValueError, match="textbook"):
        paths.surface("nowhere")


# --- gradsel paths ------------------------------------------------------------------------------------------


def run_cli(runner, *args):
    from gradsel_cli.cli.commands import cli

    return runner.invoke(cli, ["paths", *args])


def test_the_command_gives_every_point_of_every_path_as_json(runner):
    import json

    result = run_cli(runner, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert list(record["paths"]) == list(paths.OPTIMIZERS) and record["steps"] == TEXTBOOK.steps
    assert record["optimizer_settings"]["momentum"] == 0.9 and record["options"] == {}
    for name, run in record["paths"].items():
        assert run["lr"] == TEXTBOOK.lrs[name] and len(run["points"]) == len(run["f"]) == TEXTBOOK.steps + 1
        assert run["points"][0] == list(TEXTBOOK.start)
    sgd = np.array(record["paths"]["sgd"]["points"])
    np.testing.assert_allclose(sgd[-1, 0], -7 * (1 - 0.95 / 10) ** 30, rtol=1e-13)


def test_options_replace_the_surfaces_start_steps_and_rates(runner):
    import json

    args = ("--surface", "two-minima", "--start", "-1.5,1", "--steps", "5", "--lr", "sgd=0.01", "--json")
    record = json.loads(run_cli(runner, *args, "--optimizers", "sgd,adam").stdout)
    assert record["start"] == [-1.5, 1.0] and record["steps"] == 5 and list(record["paths"]) == ["sgd", "adam"]
    assert (
        record["paths"]["sgd"]["lr"] == 0.01
        and record["paths"]["adam"]["lr"] == paths.SURFACES["two-minima"].lrs["adam"]
    )
    same = json.loads(run_cli(runner, "--optimizers", "momentum,adam", "--lr", "0.05", "--steps", "3", "--json").stdout)
    assert {r["lr"] for r in same["paths"].values()} == {0.05}


def test_a_forward_difference_with_a_large_step_moves_the_path_and_the_table_says_where_each_ends(runner):
    import json

    exact = json.loads(run_cli(runner, "--json").stdout)
    forward = json.loads(
        run_cli(runner, "--method", "numeric", "--fd-scheme", "forward", "--fd-step", "0.5", "--json").stdout
    )
    assert forward["options"]["fd_step"] == 0.5
    assert all(forward["paths"][o]["points"][-1] != exact["paths"][o]["points"][-1] for o in paths.OPTIMIZERS)
    table = run_cli(runner)
    assert table.exit_code == 0 and "sgd" in table.stdout and "minimum" in table.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (("--fd-step", "0.1"), "--fd-step is read only by numeric"),
        (("--lr", "adamw=1"), "not an optimizer"),
        (("--lr", "rmsprop=0.1"), "--optimizers does not run"),
        (("--start", "1"), "X,Y"),
        (("--start", "1,nan"), "X,Y"),
        (("--surface", "flat"), "flat"),
        (("--plot", "paths.svg"), "PNG"),
    ],
)
def test_a_wrong_option_is_one_line(runner, args, says):
    result = run_cli(runner, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output and result.stdout == ""
    assert says in result.stderr, result.stderr


def test_a_diverging_path_is_said_in_the_table_and_is_none_in_the_record(runner):
    import json

    args = ("--surface", "saddle", "--optimizers", "sgd", "--lr", "2", "--steps", "2000")
    record = json.loads(run_cli(runner, *args, "--json").stdout)
    assert record["paths"]["sgd"]["points"][-1] is None and record["paths"]["sgd"]["points"][0] is not None
    assert "diverged" in run_cli(runner, *args).stdout


@pytest.mark.parametrize("name", list(paths.SURFACES))
def test_every_surface_draws(runner, tmp_path, name):
    pytest.importorskip("matplotlib")
    png = tmp_path / f"{name}.png"
    result = run_cli(runner, "--surface", name, "--plot", str(png), "-q")
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
