"""Figures: learning-curve data, PNGs of the right size, --plot/--figure, and the error without matplotlib."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gradsel_cli import sources
from gradsel_cli.analysis import figures, report
from gradsel_cli.cli.commands import cli
from gradsel_cli.core import network
from gradsel_cli.numerics import gradcheck, training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import results
from gradsel_cli.runs.records import run_record, thin

mpimg = pytest.importorskip("matplotlib.image")

SMALL_TRAIN = ["train", "--shots", "2", "--batch", "4", "--hidden", "5", "--iters", "40", "--test-limit", "200"]
SMALL_COMPARE = [
    "compare",
    "--methods",
    "analytic,select",
    "--seeds",
    "2",
    "--iters",
    "40",
    "--hidden",
    "5",
    "--batch",
    "4",
    "--test-limit",
    "200",
    "--workers",
    "1",
]


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels, read back from the file."""
    image = mpimg.imread(path)
    return image.shape[1], image.shape[0]


def fake_record(method, seed, losses, acc=None, share=None, rel=None):
    return {
        "config": {"method": method, "seed": seed},
        "loss_history": {"every": 5, "values": losses},
        "acc_history": [],
        "acc_curve": acc or [],
        "share_history": None if share is None else {"numeric": {"every": 5, "values": share}},
        "rel_diff_history": None if rel is None else {"numeric": {"every": 5, "values": rel}},
    }


# --- what the training run records for the curves --------------------------------


@pytest.fixture(scope="module")
def select_runs(mnist_raw):
    config = TrainConfig(method="select", shots=2, batch=4, hidden=5, iters=60, test_limit=200)
    return training.train(config, data=mnist_raw), training.train(config, data=mnist_raw, eval_points=6)


def test_the_accuracy_curve_changes_nothing_else(select_runs):
    plain, curved = select_runs
    assert plain.acc_curve == []
    assert np.array_equal(plain.loss_history, curved.loss_history)
    assert np.array_equal(plain.params.flat, curved.params.flat)
    assert np.array_equal(plain.predictions, curved.predictions)
    a, b = run_record(plain), run_record(curved)
    assert a["config_hash"] == b["config_hash"] and a["config"] == b["config"]
    assert [t for t, _ in curved.acc_curve] == [0, 10, 20, 30, 40, 50, 60]
    assert curved.acc_curve[-1][1] == curved.accuracy
    assert b["acc_curve"] == [[t, acc] for t, acc in curved.acc_curve]


def test_curve_iterations():
    assert training.curve_iterations(100, 0) == set()
    assert training.curve_iterations(100, 4) == {0, 25, 50, 75, 100}
    assert training.curve_iterations(10, 20) == set(range(11))
    assert max(training.curve_iterations(103, 20)) == 103


def test_select_records_its_choices_and_errors_per_window(select_runs):
    run, _ = select_runs
    record = run_record(run)
    assert record["sources"] == ["analytic", "numeric"]
    assert record["share_history"] == {"numeric": thin(run.kept == 1)}
    assert record["rel_diff_history"] == {"numeric": thin(run.rel_diffs[:, 0])}
    assert np.all(np.isfinite(run.rel_diffs))
    assert record["rel_diff_mean"] == {"numeric": pytest.approx(run.rel_diffs.mean())}


def test_single_source_methods_record_no_choices(mnist_raw):
    run = training.train(
        TrainConfig(method="alternate", shots=2, batch=4, hidden=5, iters=10, test_limit=50), data=mnist_raw
    )
    record = run_record(run)
    assert record["share_history"] is None and record["rel_diff_history"] is None
    assert record["rel_diff_mean"] is None


def test_curves_mean_and_band_over_seeds():
    recs = [
        fake_record(
            "select", 0, [4.0, 2.0, 1.0], acc=[[0, 0.1], [10, 0.5]], share=[1.0, 0.0, 1.0], rel=[1e-9, 2e-9, 3e-9]
        ),
        fake_record(
            "select", 1, [2.0, 2.0, None], acc=[[0, 0.3], [10, 0.7]], share=[0.0, 0.0, 1.0], rel=[3e-9, 2e-9, 1e-9]
        ),
    ]
    data = report.curves(recs, ["select", "analytic"])
    (row,) = data["methods"]  # analytic has no records
    assert row["seeds"] == [0, 1]
    assert row["loss"]["iterations"] == [3.0, 8.0, 13.0]  # centres of the 5-iteration windows
    assert row["loss"]["mean"] == [3.0, 2.0, 1.0]  # a missing value (null) is left out of the mean
    assert row["loss"]["lo"] == [2.0, 2.0, 1.0] and row["loss"]["hi"] == [4.0, 2.0, 1.0]
    assert row["accuracy"]["iterations"] == [0, 10] and row["accuracy"]["mean"] == pytest.approx([0.2, 0.6])
    assert row["shares"]["numeric"]["mean"] == [0.5, 0.0, 1.0]
    assert row["rel_diffs"]["numeric"]["mean"] == pytest.approx([2e-9, 2e-9, 2e-9])
    assert data["missing_accuracy"] == 0


def test_curves_of_stored_records_without_the_new_fields():
    # the shipped results were written before the curves existed: they still summarise
    stored = results.load(Path(__file__).resolve().parent.parent / "results" / "select.jsonl")[:6]
    data = report.curves(stored, ["analytic", "select"])
    assert data["missing_accuracy"] == 6
    for row in data["methods"]:
        assert row["loss"] and row["accuracy"] is None
        # format-1 records of select carry their numeric share per window, read as the numeric source's
        assert (row["method"] == "select") == bool(row["shares"]) and set(row["shares"]) <= {"numeric"}


# --- PNGs ---------------------------------------------------------------------------


def test_curves_png_has_the_fixed_size(tmp_path):
    recs = [
        fake_record(
            m,
            s,
            list(np.linspace(2.3, 0.1, 20) * (1 + s / 10)),
            acc=[[0, 0.1], [50, 0.4], [100, 0.5]],
            share=list(np.linspace(0, 1, 20)) if m == "select" else None,
            rel=[1e-9] * 20 if m == "select" else None,
        )
        for m in ("analytic", "select")
        for s in range(2)
    ]
    path = tmp_path / "curves.png"
    figures.curves_figure(path, report.curves(recs, ["analytic", "select"]), "test")
    assert path.stat().st_size > 10_000
    assert png_size(path) == (figures.CURVES_SIZE[0] * figures.DPI, figures.CURVES_SIZE[1] * figures.DPI)


def test_digits_png_size_follows_the_grid(tmp_path, mnist_raw):
    _, _, x_test, y_test = mnist_raw
    preds = {"analytic": y_test.copy(), "alternate": y_test.copy()}
    preds["alternate"][3] = (y_test[3] + 1) % 10
    path = tmp_path / "digits.png"
    figures.digits_figure(path, x_test, y_test, list(range(10)), preds, "test")
    w, h = figures.digits_size(10, 2)
    assert png_size(path) == (round(w * figures.DPI), round(h * figures.DPI))
    # the first image's ink is drawn dark on white: the figure has both
    image = mpimg.imread(path)
    assert image[..., :3].min() < 0.1 and image[..., :3].max() > 0.9


def test_gradcheck_png(tmp_path, mnist_batch):
    x, y = mnist_batch
    params, steps = network.init_params(5, seed=0), (1e-2, 1e-4, 1e-6, 1e-8)
    checked = {}
    for name in ("numeric", "complex-step"):
        rows = gradcheck.check_steps(params, x, y, steps, source=name)
        checked[name] = {"step_option": "h", "rows": rows, "best_step": gradcheck.best_step(rows)}
    check = {
        "config": TrainConfig().to_dict(),
        "exact": "analytic",
        "states": [{"state": "init", "iteration": 0, "sources": checked}],
    }
    path = tmp_path / "gc.png"
    figures.gradcheck_figure(path, check, "test")
    assert png_size(path) == (figures.GRADCHECK_SIZE[0] * figures.DPI, figures.GRADCHECK_SIZE[1] * figures.DPI)


def test_the_gradcheck_figure_gives_random_sources_a_row_of_their_own(mnist_raw, tmp_path):
    config = TrainConfig(hidden=4, batch=2, iters=2, test_limit=50)
    random = [n for n in sources.names() if sources.get(n).check.count]
    check = gradcheck.gradcheck(config, (1e-4,), mnist_raw, names=["numeric", *random], qs=(1, 8), draws=3)
    path = tmp_path / "gc.png"
    figures.gradcheck_figure(path, check, "test")
    assert png_size(path) == (figures.GRADCHECK_SIZE[0] * figures.DPI, 2 * figures.GRADCHECK_SIZE[1] * figures.DPI)
    alone = {**check, "states": [{**s, "sources": {n: s["sources"][n] for n in random}} for s in check["states"]]}
    figures.gradcheck_figure(path, alone, "test")
    assert png_size(path) == (figures.GRADCHECK_SIZE[0] * figures.DPI, figures.GRADCHECK_SIZE[1] * figures.DPI)


def test_train_plot_writes_a_png_and_records_the_curve(runner, tmp_path):
    path = tmp_path / "train.png"
    result = runner.invoke(
        cli, [*SMALL_TRAIN, "--method", "select", "--plot", str(path), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert [t for t, _ in record["acc_curve"]] == [0, *range(2, 41, 2)]
    assert png_size(path) == (1200, 400)


def test_compare_plot_writes_a_png(runner, tmp_path):
    path = tmp_path / "compare.png"
    result = runner.invoke(cli, [*SMALL_COMPARE, "--plot", str(path), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert png_size(path) == (1200, 400)
    assert "loss (log scale)" in result.stdout  # the sparkline table


def test_compare_figure_writes_the_digits(runner, tmp_path):
    path = tmp_path / "fig2.png"
    result = runner.invoke(
        cli, [*SMALL_COMPARE, "--figure", str(path), "--digits-from", "random", "-q"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    w, h = figures.digits_size(16, 2)  # no --show-digits: 16 images
    assert png_size(path) == (round(w * figures.DPI), round(h * figures.DPI))


def test_a_figure_must_be_a_png(runner, tmp_path):
    result = runner.invoke(cli, [*SMALL_TRAIN, "--plot", str(tmp_path / "curves.pdf")])
    assert result.exit_code == 2 and "--plot" in result.stderr and "PNG" in result.stderr


# --- without matplotlib -------------------------------------------------------------


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Every import of matplotlib fails, as if it were not installed."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_require_says_how_to_install(no_matplotlib):
    with pytest.raises(ValueError, match=r'pip install "gradsel\[plot\]"'):
        figures.require()


@pytest.mark.parametrize(
    "args",
    [
        [*SMALL_TRAIN, "--plot", "{tmp}/a.png"],
        [*SMALL_COMPARE, "--plot", "{tmp}/a.png"],
        [*SMALL_COMPARE, "--figure", "{tmp}/a.png"],
        ["gradcheck", "--hidden", "5", "--plot", "{tmp}/a.png"],
    ],
    ids=["train --plot", "compare --plot", "compare --figure", "gradcheck --plot"],
)
def test_missing_matplotlib_is_a_one_line_error_before_any_training(runner, no_matplotlib, tmp_path, monkeypatch, args):
    def no_training(*a, **k):
        raise AssertionError("trained although the figure cannot be drawn")

    monkeypatch.setattr(training, "train", no_training)
    result = runner.invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and 'pip install "gradsel[plot]"' in lines[0]
    assert not list(tmp_path.iterdir())


def test_help_imports_neither_numba_nor_matplotlib():
    code = (
        "import sys; from click.testing import CliRunner; from gradsel_cli.cli.commands import cli; "
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0; "
        "print('numba' in sys.modules, 'matplotlib' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False False"


def test_a_figures_title_names_the_step_of_each_source_its_methods_compute():
    """Not numeric's h on every figure: each step option by its own name, only for sources the methods run."""
    from gradsel_cli.analysis.figures import figure_title
    from gradsel_cli.config import TrainConfig

    c = TrainConfig(shots=2, batch=8, hidden=50, fd_step=1e-3, cs_step=1e-25).to_dict()
    papers = figure_title("compare", c, range(5), ["analytic", "numeric", "alternate", "select"])
    assert "fd-step 0.001" in papers and "cs-step" not in papers and papers.endswith("seeds 0–4")
    assert "step" not in figure_title("train", {**c, "method": "analytic"}, [0])
    both = figure_title("compare", {**c, "sources": "analytic,complex-step"}, range(2), ["numeric", "select"])
    assert "fd-step 0.001" in both and "cs-step 1e-25" in both
