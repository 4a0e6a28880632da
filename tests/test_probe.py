"""The fidelity probe (numerics/probe.py): each source against backprop at the run's weights and batch, a
reading that changes nothing in the run; in records, train's summary and compare's figure."""

import json

import numpy as np
import pytest

from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import loop, methods, probe
from gradsel_cli.numerics.optimizers import Optimizer
from gradsel_cli.numerics.training import train
from gradsel_cli.runs.records import check_record, run_record

SMALL = dict(hidden=6, batch=3, shots=1, test_limit=50, lr=0.05)


def context(config):
    c = config
    return methods.StepContext(Optimizer(c.optimizer, lr=c.lr), loop.settings(c))


def test_the_probe_measures_each_source_against_backprop_with_that_iterations_draws(mnist_batch):
    x, y = mnist_batch
    config = TrainConfig(method="select", sources="analytic,numeric,spsa", **SMALL)
    s = context(config)
    params = network.init_params(config.hidden, 3)
    state = s.optimizer.init(params.flat.size, params.dtype)
    got = probe.probe(s, params, state, x[:3], y[:3], np.ones((3, 6)), 5)
    truth = network.analytic_gradient(params, x[:3], y[:3]).flat
    words = loop.words_of(s.settings, "spsa", 4, 1)[0]  # iteration 5's
    g = sources.get("spsa").gradient(params, x[:3], y[:3], s.settings, np.ones((3, 6)), words)[0].flat
    cosine = g @ truth / (np.linalg.norm(g) * np.linalg.norm(truth))
    assert got["cosine"]["spsa"] == pytest.approx(cosine, rel=1e-12)
    assert got["rel_error"]["spsa"] == pytest.approx(np.linalg.norm(g - truth) / np.linalg.norm(truth), rel=1e-12)
    assert got["cosine"]["numeric"] == pytest.approx(1.0, abs=1e-12) and got["rel_error"]["numeric"] < 1e-6
    assert "analytic" not in got["cosine"]  # the exact source against itself says nothing
    grads = [
        sources.get(n).gradient(params, x[:3], y[:3], s.settings, None, loop.words_of(s.settings, n, 4, 1)[0])[0]
        for n in ("analytic", "numeric", "spsa")
    ]
    _, losses = methods.candidate_losses(s, grads, params, state, x[:3], y[:3], np.ones((3, 6)))
    assert got["loss_gap"]["spsa"] == losses[2] - losses[0]
    assert set(got["loss_gap"]) == {"numeric", "spsa"} and abs(got["loss_gap"]["numeric"]) < 1e-9


def test_probing_changes_nothing_in_the_run_and_reads_every_k_iterations_from_0(mnist_raw):
    config = TrainConfig(method="alternate", sources="analytic,forward", iters=40, **SMALL)
    plain, probed = train(config, mnist_raw), train(config, mnist_raw, probe_every=15)
    assert np.array_equal(plain.loss_history, probed.loss_history)
    assert np.array_equal(plain.params.flat, probed.params.flat) and plain.probe is None
    assert probed.probe["iterations"] == [0, 15, 30] and probed.probe["every"] == 15
    assert set(probed.probe["cosine"]) == {"forward"} and len(probed.probe["rel_error"]["forward"]) == 3
    stepwise = train(config, mnist_raw, probe_every=15, fused=False)
    assert stepwise.probe == probed.probe  # the same readings, whichever loop ran


def test_a_record_carries_its_probe_and_a_bad_one_is_refused(mnist_raw):
    rec = run_record(train(TrainConfig(method="spsa", iters=10, **SMALL), mnist_raw, probe_every=5))
    assert check_record(rec) is None and rec["probe"]["iterations"] == [0, 5]
    assert "probe" in check_record({**rec, "probe": {**rec["probe"], "cosine": {"spsa": [0.1]}}})
    assert check_record({k: v for k, v in rec.items() if k != "probe"}) is None  # records without one


def test_train_shows_the_probe_and_compare_draws_it(runner, tmp_path):
    args = ["--hidden", "6", "--batch", "3", "--shots", "1", "--test-limit", "50", "--lr", "0.05"]
    shown = runner.invoke(cli, ["train", "--method", "spsa", "--iters", "20", "--probe-every", "10", *args])
    assert shown.exit_code == 0, shown.output
    assert "probe: cosine to backprop" in shown.stdout and "every 10" in shown.stdout
    png = tmp_path / "p.png"
    head = ["compare", "--methods", "analytic,spsa", "--iters", "20", "--seeds", "2", "--probe-every", "5"]
    got = runner.invoke(cli, [*head, *args, "--plot", str(png), "--json"])
    assert got.exit_code == 0, got.output
    runs = json.loads(got.stdout)["runs"]
    assert all(r["probe"]["iterations"] == [0, 5, 10, 15] for r in runs)
    assert png.stat().st_size > 0
