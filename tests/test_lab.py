"""gradsel lab: the chapter-6 presets' runs (paired, valid, stored once), their summary, the command and its figure."""

import itertools
import json

import numpy as np
import pytest

import reference
from gradsel_cli import lab, seeding
from gradsel_cli.analysis.report import lab_summary
from gradsel_cli.choices import ACTIVATIONS, OPTIMIZERS
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import activity
from gradsel_cli.runs.experiments import trials
from gradsel_cli.runs.records import check_record
from gradsel_cli.runs.trial import run_trial

SMALL = ["--subset", "first", "--batch", "4", "--hidden", "5", "--iters", "20", "--test-limit", "100", "--workers", "1"]


def run_lab(runner, tmp_path, *args, name="lab"):
    files = ["--results", str(tmp_path / f"{name}.jsonl"), "--plot", str(tmp_path / f"{name}.png")]
    return runner.invoke(cli, ["lab", *SMALL, *args, *files])


@pytest.mark.parametrize("name", list(lab.PRESETS))
def test_every_preset_cell_is_a_valid_run_on_the_textbooks_training(name):
    p = lab.PRESETS[name]
    configs = trials(TrainConfig(**p.settings), list(p.cells), range(2))
    assert len(configs) == 2 * len(p.cells)
    for cell, config in zip([c for c in p.cells for _ in range(2)], configs):
        assert all(getattr(config, k) == v for k, v in {**p.settings, **cell}.items())
    assert p.panel is None or all(p.panel in cell for cell in p.cells)


def test_the_runs_of_one_seed_differ_only_in_what_the_preset_varies():
    """Paired: the same seed gives every cell the same weights' draw, subset and batches; only the cell's fields
    (optimizer and its rate) differ."""
    p = lab.PRESETS["optimizers"]
    configs = trials(TrainConfig(**p.settings), list(p.cells), [3])
    assert [c.optimizer for c in configs] == list(OPTIMIZERS)
    for c in configs:
        others = {k: v for k, v in c.to_dict().items() if k not in p.varies()}
        assert others == {k: v for k, v in configs[0].to_dict().items() if k not in p.varies()}
        assert c.seed == 3 and c.lr == lab.TEXTBOOK_RATES[c.optimizer]


def test_the_init_presets_cover_each_activation_and_initialisation():
    for name, inits in (("init", lab.INITS[1:]), ("init-histograms", lab.INITS)):
        cells = lab.PRESETS[name].cells
        assert {c["activation"] for c in cells} == set(lab.ACTIVATIONS) <= set(ACTIVATIONS)
        assert len(cells) == len(lab.ACTIVATIONS) * len(inits)
        assert [lab.cell_label(c) for c in cells[: len(inits)]] == [lab.cell_label(i) for i in inits]


def test_labels_name_the_optimizer_and_its_rate_or_the_initialisation():
    assert lab.cell_label(dict(optimizer="adam", lr=0.001)) == "adam (lr 0.001)"
    assert lab.cell_label(dict(init="std", init_std=0.01)) == "std 0.01"
    assert lab.cell_label(dict(init="he")) == "he"


def fake_record(config: TrainConfig, accuracy, loss=0.5) -> dict:
    return {
        "config": config.to_dict(),
        "accuracy": accuracy,
        "final_loss": loss,
        "loss_history": {"every": 1, "values": [2.0, loss]},
        "acc_curve": [[0, 0.1], [2, accuracy or 0.0]],
    }


def test_the_summary_groups_the_records_cell_by_cell_over_the_seeds():
    p = lab.PRESETS["init"]
    configs = trials(TrainConfig(**p.settings), list(p.cells), range(2))
    records = [fake_record(c, 0.5 + 0.01 * i + 0.001 * c.seed) for i, c in enumerate(configs)]
    records[3] = fake_record(configs[3], None, None)  # a diverged run: counted apart
    s = lab_summary("init", configs, records, 2)
    assert [c["label"] for c in s["cells"]] == [lab.cell_label(c) for c in p.cells]
    assert [c["panel"] for c in s["cells"]] == [c["activation"] for c in p.cells]
    first = s["cells"][0]
    assert first["accuracy"]["n"] == 2 and first["accuracy"]["mean"] == pytest.approx((0.5 + 0.511) / 2)
    assert s["cells"][1]["accuracy"]["diverged"] == 1 and s["cells"][1]["final_loss"] == 0.5
    assert first["loss"]["mean"] == [2.0, 0.5] and first["accuracy_curve"]["iterations"] == [0, 2]
    assert "activation" not in s["config"] and "seed" not in s["config"] and s["config"]["optimizer"] == "sgd"


def test_lab_stores_its_runs_once_and_redraws_the_figure_byte_for_byte(runner, tmp_path):
    first = run_lab(runner, tmp_path, "optimizers", "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert [c["label"] for c in summary["cells"]] == [lab.cell_label(c) for c in lab.PRESETS["optimizers"].cells]
    assert all(0 <= c["accuracy"]["mean"] <= 1 for c in summary["cells"])
    lines = (tmp_path / "lab.jsonl").read_text().splitlines()
    stored = [json.loads(line)["config"] for line in lines]
    assert [c["optimizer"] for c in stored] == list(OPTIMIZERS) and {c["subset"] for c in stored} == {"first"}
    png = (tmp_path / "lab.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    (tmp_path / "lab.png").unlink()
    again = run_lab(runner, tmp_path, "optimizers")
    assert again.exit_code == 0, again.output
    assert "already stored" in again.stderr
    assert (tmp_path / "lab.jsonl").read_text().splitlines() == lines  # nothing run or stored twice
    assert (tmp_path / "lab.png").read_bytes() == png
    assert "adam (lr 0.001)" in again.stdout


def test_lab_trains_with_the_gradient_of_any_source(runner, tmp_path):
    result = run_lab(runner, tmp_path, "init", "--method", "numeric", "--iters", "5", "--json")
    assert result.exit_code == 0, result.output
    stored = [json.loads(line) for line in (tmp_path / "lab.jsonl").read_text().splitlines()]
    assert len(stored) == 9 and {r["config"]["method"] for r in stored} == {"numeric"}
    assert {r["counts"]["numeric"] for r in stored} == {5}
    assert json.loads(result.stdout)["config"]["method"] == "numeric"


def test_defaults_write_the_results_and_figure_into_the_current_directory(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["lab", "optimizers", *SMALL, "--iters", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lab-optimizers.jsonl").exists() and (tmp_path / "lab-optimizers-analytic.png").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["optimizers", "--optimizer", "adam"], "--optimizer: the optimizers preset sets it per run"),
        (["optimizers", "--lr", "0.1"], "--lr: the optimizers preset sets it per run (0.01, 0.001)"),
        (["init", "--activation", "tanh"], "--activation: the init preset sets it per run (sigmoid, tanh, relu)"),
        (["init", "--fd-step", "1e-3"], "--fd-step is read only by numeric"),
        (["nonsense"], "'nonsense' is not one of"),
    ],
)
def test_an_option_the_preset_decides_is_refused_in_one_line(runner, args, said):
    result = runner.invoke(cli, ["lab", *args])
    assert result.exit_code == 2
    assert said in result.stderr and "Traceback" not in result.output


def test_an_option_given_overrides_the_presets_setting(runner, tmp_path):
    result = run_lab(runner, tmp_path, "init", "--optimizer", "momentum", "--iters", "2", "--json")
    assert result.exit_code == 0, result.output
    stored = [json.loads(line)["config"] for line in (tmp_path / "lab.jsonl").read_text().splitlines()]
    assert {c["optimizer"] for c in stored} == {"momentum"} and {c["hidden"] for c in stored} == {5}
    assert {c["iters"] for c in stored} == {2} and {c["lr"] for c in stored} == {lab.TEXTBOOK["lr"]}


def test_the_title_names_the_gradient_and_what_the_preset_keeps_fixed():
    p = lab.PRESETS["init"]
    config = TrainConfig(**p.settings, method="select")
    text = lab.title({"preset": "init", "config": config.to_dict(), "seeds": 3})
    assert text.startswith("gradsel lab init — select over analytic,numeric, all images, B=128, H=100")
    assert "optimizer sgd" in text and "lr 0.01" in text and "activation" not in text and text.endswith("seeds 0–2")
    assert np.isclose(lab.TEXTBOOK_RATES["adam"], 0.001)


# --- the hidden activations: the textbook's deep stack and a network's hidden layer --------------------------


@pytest.mark.parametrize("activation", lab.ACTIVATIONS)
@pytest.mark.parametrize("init", lab.INITS, ids=lab.cell_label)
def test_the_deep_stack_is_its_numpy_twin(activation, init):
    """The textbook's experiment through gradsel's hidden layer against plain NumPy on the same draws: the spread
    and mean of each layer to rounding, each bin's count up to the odd value that rounding moves over an edge."""
    std = init.get("init_std", 0.01)
    got = activity.deep_stack(activation, init["init"], std, seed=2, layers=5, nodes=100, samples=1000)
    gen = seeding.rng(2, "lab")
    x = gen.standard_normal((1000, 100))
    scale = {"std": std, "xavier": np.sqrt(1 / 100), "he": np.sqrt(2 / 100)}[init["init"]]
    weights = [scale * gen.standard_normal((100, 100)) for _ in range(5)]
    lo, hi = activity.value_range(activation)
    for layer, (g, z) in enumerate(zip(got, reference.deep_stack(x, weights, activation))):
        want = reference.histogram_stats(z, lo, hi, zeros_apart=activation == "relu")
        assert g["mean"] == pytest.approx(want["mean"], rel=1e-9, abs=1e-12), layer
        assert g["std"] == pytest.approx(want["std"], rel=1e-9, abs=1e-12), layer
        assert sum(abs(a - b) for a, b in zip(g["counts"], want["counts"])) <= 2, layer
        for k in ("zeros", "below", "above"):
            assert abs(g[k] - want[k]) <= 1, (layer, k)
        assert sum(g["counts"]) + g["zeros"] + g["below"] + g["above"] == 100_000


def test_the_deep_stack_shows_the_textbooks_effects():
    """The textbook's reading of its figures, as numbers: sigmoid with std 1 piles at 0 and 1, with std 0.01 at
    0.5; Xavier spreads between; ReLU with std 0.01 vanishes layer by layer while He keeps its spread."""
    spread = {
        (a, lab.cell_label(i)): [h["std"] for h in activity.deep_stack(a, i["init"], i.get("init_std", 0.01))]
        for a in ("sigmoid", "relu")
        for i in lab.INITS
    }
    ends = activity.deep_stack("sigmoid", "std", 1.0)[-1]
    assert ends["counts"][0] + ends["counts"][-1] > 0.5 * sum(ends["counts"])
    assert max(spread["sigmoid", "std 0.01"]) < 0.03 < 0.1 < min(spread["sigmoid", "xavier"])
    relu_small, relu_he = spread["relu", "std 0.01"], spread["relu", "he"]
    assert all(b < a / 5 for a, b in itertools.pairwise(relu_small))
    assert min(relu_he) > 0.5 * relu_he[0]


def test_a_histogram_counts_every_value_once():
    v = np.array([-2.0, 0.0, 0.0, 0.1, 0.5, 1.0, 3.0])
    relu = activity.histogram(v, "relu")
    assert relu["zeros"] == 2 and relu["below"] == 1 and relu["above"] == 1 and sum(relu["counts"]) == 3
    assert relu["counts"][-1] == 1  # the range's top value is in the last bin
    tanh = activity.histogram(v, "tanh")
    assert tanh["zeros"] == 0 and tanh["range"] == [-1.0, 1.0] and sum(tanh["counts"]) == 5
    assert tanh["mean"] == pytest.approx(v.mean()) and tanh["std"] == pytest.approx(v.std())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_hidden_layer_is_its_numpy_twin(mnist_raw, dtype):
    params = network.init_params(7, seed=1, init="he", dtype=dtype)
    params.b1[...] = np.linspace(-0.5, 0.5, 7)
    images = mnist_raw[2][:50]
    x = (images.astype(np.float64) / 255.0).astype(dtype)
    for act in ACTIVATIONS:
        want = reference.forward([params.W1, params.b1, params.W2, params.b2], x, act)[1]
        got = network.hidden(params, images, act)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=2e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        network.hidden(params, x[:, :10])


def test_a_run_records_its_hidden_activations_at_initialisation_and_trained(mnist_raw):
    config = TrainConfig(hidden=6, batch=4, iters=30, test_limit=300, activation="tanh", init="xavier", lr=0.5)
    record = run_trial(config, raw=mnist_raw)
    h = record["hidden_histograms"]
    assert check_record(json.loads(json.dumps(record))) is None
    initial = network.init_params(6, seed=0, init="xavier")
    images = mnist_raw[2][: activity.SAMPLE_IMAGES][:300]
    assert h["init"] == activity.histogram(network.hidden(initial, images, "tanh"), "tanh")
    assert sum(h["trained"]["counts"]) + h["trained"]["below"] + h["trained"]["above"] == 300 * 6
    assert h["trained"] != h["init"]
    diverged = run_trial(config.replace(lr=1e308, iters=20, activation="sigmoid"), raw=mnist_raw)
    assert diverged["diverged"] and diverged["hidden_histograms"]["trained"] is None
    assert check_record(json.loads(json.dumps(diverged))) is None


def test_a_record_without_or_with_a_bad_histogram(mnist_raw):
    record = json.loads(json.dumps(run_trial(TrainConfig(hidden=3, batch=2, iters=2, test_limit=20), raw=mnist_raw)))
    assert check_record({k: v for k, v in record.items() if k != "hidden_histograms"}) is None  # older records
    bad = {**record, "hidden_histograms": {"init": {**record["hidden_histograms"]["init"], "counts": [-1]}}}
    assert "hidden_histograms" in check_record(bad)


def test_the_histograms_preset_summarises_and_redraws_its_figure(runner, tmp_path):
    first = run_lab(runner, tmp_path, "init-histograms", "--json")
    assert first.exit_code == 0, first.output
    cells = json.loads(first.stdout)["cells"]
    assert [(c["panel"], c["label"]) for c in cells] == [
        (c["activation"], lab.cell_label(c)) for c in lab.PRESETS["init-histograms"].cells
    ]
    for c in cells:
        assert len(c["textbook"]) == 5 and c["network"]["init"]["range"] == list(activity.value_range(c["panel"]))
        assert (
            sum(c["network"]["init"]["counts"])
            + c["network"]["init"]["zeros"]
            + c["network"]["init"]["below"]
            + c["network"]["init"]["above"]
            == 100 * 5
        )
    png = (tmp_path / "lab.png").read_bytes()
    again = run_lab(runner, tmp_path, "init-histograms")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "lab.png").read_bytes() == png
    assert "layer 5" in again.stdout and "H trained" in again.stdout


def test_without_matplotlib_the_lab_prints_its_table_and_says_why_there_is_no_figure(runner, tmp_path, monkeypatch):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else find(name, *a))
    results = ["--results", str(tmp_path / "lab.jsonl")]
    result = runner.invoke(cli, ["lab", "optimizers", *SMALL, "--iters", "2", *results], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "no figure: plotting needs matplotlib" in result.stderr and "adam (lr 0.001)" in result.stdout
    assert not list(tmp_path.glob("*.png")) and (tmp_path / "lab.jsonl").exists()


# --- overfit: train against test accuracy per epoch ------------------------------------------------------------


def test_the_overfit_cells_are_plain_weight_decay_and_dropout_on_300_images():
    p = lab.PRESETS["overfit"]
    assert [lab.cell_label(c) for c in p.cells] == ["plain", "weight decay 0.1", "dropout 0.2"]
    config = TrainConfig(**p.settings)
    assert config.subset == "first" and 10 * config.shots == 300 and config.batch == 100
    assert lab.epoch(config.to_dict()) == 3 and p.points(config.to_dict()) == config.iters // 3 == 200
    assert p.points({**config.to_dict(), "iters": 30, "batch": 20}) == 2  # 300 images in 15 iterations an epoch


def test_overfit_records_both_curves_once_an_epoch_and_redraws_its_figure(runner, tmp_path):
    # 20 images in mini-batches of 4: an epoch is 5 iterations, so 20 iterations give 4 epochs
    first = run_lab(runner, tmp_path, "overfit", "--shots", "2", "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["epoch"] == 5
    for c in summary["cells"]:
        assert c["train_curve"]["iterations"] == c["accuracy_curve"]["iterations"] == [0, 5, 10, 15, 20]
        assert all(0 <= a <= 1 for a in c["train_curve"]["mean"])
    stored = [json.loads(line) for line in (tmp_path / "lab.jsonl").read_text().splitlines()]
    assert [(r["config"]["weight_decay"], r["config"]["dropout"]) for r in stored] == [(0, 0), (0.1, 0), (0, 0.2)]
    assert all(len(r["train_acc_curve"]) == 5 for r in stored)
    png = (tmp_path / "lab.png").read_bytes()
    again = run_lab(runner, tmp_path, "overfit", "--shots", "2")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "lab.png").read_bytes() == png and "train" in again.stdout and "dropout 0.2" in again.stdout


def test_overfit_refuses_the_regularisers_it_sets(runner):
    result = runner.invoke(cli, ["lab", "overfit", "--dropout", "0.5"])
    assert result.exit_code == 2 and "--dropout: the overfit preset sets it per run (0, 0.2)" in result.stderr


# --- batch-norm: 16 weight scales, with and without batch norm ---------------------------------------------------


def test_the_batch_norm_cells_are_the_textbooks_16_scales_with_and_without():
    p = lab.PRESETS["batch-norm"]
    assert np.allclose(lab.SCALES, np.logspace(0, -4, 16), rtol=1e-15, atol=0)
    assert [(c["init_std"], c["batch_norm"]) for c in p.cells] == [(w, b) for w in lab.SCALES for b in (True, False)]
    assert {lab.cell_label(c) for c in p.cells} == {"batch norm", "without"}
    config = TrainConfig(**p.settings).to_dict()
    assert 10 * config["shots"] == 1000 and lab.epoch(config) == 10 and p.points(config) == 20


def test_batch_norm_draws_a_panel_per_scale_from_its_stored_runs(runner, tmp_path):
    first = run_lab(runner, tmp_path, "batch-norm", "--shots", "2", "--iters", "10", "--json")
    assert first.exit_code == 0, first.output
    cells = json.loads(first.stdout)["cells"]
    assert len(cells) == 32 and [c["panel"] for c in cells[::2]] == list(lab.SCALES)
    assert all(c["train_curve"]["iterations"] == [0, 5, 10] for c in cells if c["train_curve"])
    stored = [json.loads(line)["config"] for line in (tmp_path / "lab.jsonl").read_text().splitlines()]
    assert [c["batch_norm"] for c in stored] == [True, False] * 16 and {c["init"] for c in stored} == {"std"}
    png = (tmp_path / "lab.png").read_bytes()
    again = run_lab(runner, tmp_path, "batch-norm", "--shots", "2", "--iters", "10")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "lab.png").read_bytes() == png and "init std" in again.stdout and "0.000631" in again.stdout


# --- hyperparameters: the random search on tune's machinery -------------------------------------------------------

SEARCH_SMALL = ["--shots", "2", "--batch", "4", "--hidden", "5", "--iters", "20"]


def test_the_search_preset_is_the_textbooks_random_search():
    p = lab.PRESETS["hyperparameters"]
    assert p.search is not None and p.cells == () and p.varies() == {"lr", "weight_decay"}
    assert (p.search.lr, p.search.weight_decay, p.search.trials, p.search.best) == ((1e-6, 1e-2), (1e-8, 1e-4), 100, 20)
    config = TrainConfig(**p.settings).to_dict()
    assert 10 * config["shots"] == 400 and 10 * p.search.val_per_class == 100  # the textbook's 500, 20% held out
    assert config["batch"] == 100 and lab.epoch(config) == 4 and p.points(config) == 50  # 50 epochs


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["hyperparameters", "--lr", "0.1"], "--lr: the hyperparameters preset draws it per trial, log-uniform in "),
        (["hyperparameters", "--weight-decay", "0.1"], "[1e-08, 0.0001]; drop --weight-decay"),
        (["hyperparameters", "--seeds", "3"], "--seeds: the hyperparameters preset runs one search"),
        (["hyperparameters", "--workers", "2"], "drop --workers (--trials sets how many)"),
        (["optimizers", "--trials", "5"], "--trials: only a search preset (hyperparameters) draws trials"),
    ],
)
def test_the_search_preset_refuses_what_it_draws_and_how_a_grid_runs(runner, args, said):
    result = runner.invoke(cli, ["lab", *args])
    assert result.exit_code == 2
    assert said in result.stderr and "Traceback" not in result.output


def test_the_search_runs_tunes_trials_with_their_curves_and_redraws_its_figure(runner, tmp_path, mnist_raw):
    from gradsel_cli.runs import tuning

    files = ["--results", str(tmp_path / "hp.jsonl"), "--plot", str(tmp_path / "hp.png")]
    first = runner.invoke(cli, ["lab", "hyperparameters", *SEARCH_SMALL, "--trials", "22", "--json", *files])
    assert first.exit_code == 0, first.output
    s = json.loads(first.stdout)
    p = lab.PRESETS["hyperparameters"]
    scores = [t["val_accuracy"] for t in s["trials"]]
    assert len(scores) == 22 and scores == sorted(scores, reverse=True)
    assert all(1e-6 <= t["lr"] <= 1e-2 and 1e-8 <= t["weight_decay"] <= 1e-4 for t in s["trials"])
    assert [c["trial"] for c in s["curves"]] == [t["trial"] for t in s["trials"][:20]]  # the best 20
    for c in s["curves"]:  # 20 images in batches of 4: 5 iterations an epoch
        assert c["accuracy_curve"]["iterations"] == c["train_curve"]["iterations"] == [0, 5, 10, 15, 20]
        assert (
            c["accuracy_curve"]["mean"][-1] == c["val_accuracy"] and c["train_curve"]["mean"][-1] == c["train_accuracy"]
        )
    assert "validate on 10 further images per class" in s["split"] and "lr" not in s["config"]
    stored = (tmp_path / "hp.jsonl").read_text().splitlines()
    assert all("validation" in json.loads(line)["evaluated_on"] for line in stored)
    # tune's own search over the preset's ranges finds every trial stored: one search, not a second
    base = TrainConfig(**{**p.settings, "shots": 2, "batch": 4, "hidden": 5, "iters": 20, "method": "analytic"})
    searched = tuning.tune(
        base, 22, p.search.lr, p.search.weight_decay, p.search.val_per_class, mnist_raw, tmp_path / "hp.jsonl"
    )
    assert searched["stored_before"] == 22
    assert [t["trial"] for t in searched["trials"]] == [t["trial"] for t in s["trials"]]
    png = (tmp_path / "hp.png").read_bytes()
    (tmp_path / "hp.png").unlink()
    again = runner.invoke(cli, ["lab", "hyperparameters", *SEARCH_SMALL, "--trials", "22", *files])
    assert again.exit_code == 0, again.output
    assert "22 of the 22 trials were already stored" in again.stderr
    assert (tmp_path / "hp.jsonl").read_text().splitlines() == stored and (tmp_path / "hp.png").read_bytes() == png
    assert "val" in again.stdout and "accuracy" in again.stdout


def test_the_search_figure_draws_tied_best_and_diverged_trials_the_same_each_time(tmp_path):
    from gradsel_cli.analysis import figures

    curve = {"iterations": [0, 4, 8], "mean": [0.1, 0.5, 0.6], "low": [0.1, 0.5, 0.6], "high": [0.1, 0.5, 0.6]}
    rows = [
        {"trial": 0, "lr": 1e-3, "weight_decay": 1e-6, "val_accuracy": 0.6, "train_accuracy": 0.7, "final_loss": 1.0},
        {"trial": 2, "lr": 1e-2, "weight_decay": 1e-7, "val_accuracy": 0.6, "train_accuracy": 0.8, "final_loss": 0.9},
        {
            "trial": 1,
            "lr": 1e-5,
            "weight_decay": 1e-8,
            "val_accuracy": None,
            "train_accuracy": None,
            "final_loss": None,
        },
    ]
    summary = {
        "preset": "hyperparameters",
        "epoch": 4.0,
        "caption": "c",
        "split": "s",
        "trials": rows,
        "best": None,
        "tied": [0, 2],
        "curves": [{**r, "accuracy_curve": curve if r["val_accuracy"] else None, "train_curve": None} for r in rows],
    }
    for name in ("a.png", "b.png"):  # a diverged trial and tied best drawn, the same picture from the same data
        figures.lab_search_figure(tmp_path / name, summary, "title")
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
