"""runs/tuning.py: the validation split never touches the test set nor the few-shot images it trains on, the
random search is reproducible and resumable, and ties choose nothing."""

import math

import numpy as np
import pytest

import reference as ref
from gradsel_cli import data
from gradsel_cli.numerics.training import TrainConfig, train
from gradsel_cli.runs import tuning

TINY = TrainConfig(shots=2, batch=4, hidden=3, iters=20, seed=1)


def rows_of(images: np.ndarray) -> set[bytes]:
    return {np.asarray(row).tobytes() for row in images}


def test_the_default_split_trains_on_the_few_shot_set_and_validates_on_further_images(mnist_raw):
    ds, described = tuning.validation_split(mnist_raw, TINY, val_per_class=3)
    x_few, y_few = data.few_shot(mnist_raw[0], mnist_raw[1], shots=2)
    assert np.array_equal(ds.x_train, x_few) and np.array_equal(ds.y_train, y_few)
    assert np.bincount(ds.y_test, minlength=10).tolist() == [3] * 10
    assert not rows_of(data.to_float(ds.x_test)) & rows_of(ds.x_train)  # disjoint images
    assert not rows_of(ds.x_test) & rows_of(mnist_raw[2])  # not from the test set
    assert described == "train on 2 per class, validate on 3 further images per class"


def test_holding_one_out_trains_on_k_minus_one_and_validates_on_the_last(mnist_raw):
    ds, described = tuning.validation_split(mnist_raw, TINY.replace(shots=3), val_per_class=0)
    idx = data.few_shot_indices(mnist_raw[1], 3, "first", 1).reshape(10, 3)
    assert np.array_equal(ds.y_train, mnist_raw[1][idx[:, :2].ravel()])
    assert np.array_equal(ds.x_test, mnist_raw[0][idx[:, 2]])
    assert "last of the 3 few-shot images" in described


def test_a_split_that_cannot_be_made_is_a_value_error_naming_the_remedy(mnist_raw):
    with pytest.raises(ValueError, match="--shots >= 2"):
        tuning.validation_split(mnist_raw, TINY.replace(shots=1), val_per_class=0)
    with pytest.raises(ValueError, match="lower --val-per-class"):
        tuning.validation_split(mnist_raw, TINY, val_per_class=6000)
    with pytest.raises(ValueError, match="leaves none to validate on"):
        tuning.validation_split(mnist_raw, TINY.replace(subset="all"))


def test_log_uniform_stays_within_its_range_and_spreads_over_the_decades():
    gen = np.random.default_rng(0)
    got = [tuning.log_uniform(gen, 1e-4, 1.0) for _ in range(2000)]
    assert all(1e-4 <= v <= 1.0 for v in got)
    per_decade = np.histogram(np.log10(got), bins=4, range=(-4, 0))[0]
    assert per_decade.min() > 400  # about 500 in each of the four decades
    assert math.isclose(tuning.log_uniform(gen, 0.3, 0.3), 0.3)


@pytest.mark.parametrize(
    "lr_range, wd_range", [((0.0, 1.0), (1e-5, 1e-3)), ((1.0, 0.1), (1e-5, 1e-3)), ((0.1, 1.0), (1e-5, math.inf))]
)
def test_a_bad_range_is_refused_before_any_work(lr_range, wd_range):
    with pytest.raises(ValueError, match="0 < LOW <= HIGH"):
        tuning.tune(TINY, 2, lr_range, wd_range, raw="never read")


def test_a_search_is_reproducible_sorted_best_first_and_resumes_from_its_file(mnist_raw, tmp_path):
    path = tmp_path / "tune.jsonl"
    args = (TINY, 3, (0.05, 0.5), (1e-6, 1e-4))
    first = tuning.tune(*args, val_per_class=5, raw=mnist_raw, results_path=path)
    assert first["stored_before"] == 0 and len(first["trials"]) == 3
    accuracies = [t["val_accuracy"] for t in first["trials"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert all(0.05 <= t["lr"] <= 0.5 and 1e-6 <= t["weight_decay"] <= 1e-4 for t in first["trials"])
    lines = path.read_bytes()
    again = tuning.tune(*args, val_per_class=5, raw=mnist_raw, results_path=path)
    assert again["stored_before"] == 3 and path.read_bytes() == lines  # nothing run or stored again
    assert again["trials"] == first["trials"]
    fresh = tuning.tune(*args, val_per_class=5, raw=mnist_raw)  # without the file: the same draws and results
    assert fresh["trials"] == first["trials"]


def summary(*accuracies, diverged=()):
    trials = [{"trial": n, "val_accuracy": a, "diverged": n in diverged} for n, a in enumerate(accuracies)]
    return {"trials": sorted(trials, key=lambda t: -t["val_accuracy"]), "best": None, "tied": []}


def test_the_tie_message_names_the_tied_trials_in_order_and_the_remedy():
    s = {**summary(0.5, 0.5, 0.3), "tied": [1, 0]}
    message = tuning.tie_message(s)
    assert message.startswith("trials 0, 1 tie at validation accuracy 0.5000: none is chosen")
    assert "--val-per-class" in message
    assert tuning.tie_message({**summary(0.5, 0.3), "best": {"trial": 0}}) is None


def test_nothing_worked_only_when_every_trial_diverged():
    s = summary(0.1, 0.1, diverged=(0, 1))
    assert tuning.nothing_worked(s) == (
        "no setting worked: all 2 trials diverged; lower --lr-range (and --weight-decay-range)"
    )
    assert tuning.nothing_worked({**s, "best": {"trial": 0}}) is None
    assert tuning.nothing_worked({**s, "tied": [0, 1]}) is None


def test_with_eval_points_each_trial_records_its_validation_and_training_accuracy_per_point(mnist_raw):
    """The curves of a trial are on its split: the validation curve ends at the trial's score, the training curve
    is the accuracy on the images it trains on, checked against plain NumPy on the final weights."""
    config = TINY.replace(iters=40, lr=0.3)
    summary = tuning.tune(config, 2, (0.05, 0.5), (1e-6, 1e-4), val_per_class=5, raw=mnist_raw, eval_points=4)
    ds, _ = tuning.validation_split(mnist_raw, config, 5)
    for row, record in zip(sorted(summary["trials"], key=lambda t: t["trial"]), summary["runs"]):
        assert [t for t, _ in record["acc_curve"]] == [t for t, _ in record["train_acc_curve"]] == [0, 10, 20, 30, 40]
        assert record["acc_curve"][-1][1] == row["val_accuracy"] == record["accuracy"]
        rerun = train(TrainConfig.from_dict(record["config"]), ds)
        p = rerun.params
        want = float(np.mean(ref.predict([p.W1, p.b1, p.W2, p.b2], ds.x_train) == ds.y_train))
        assert record["train_acc_curve"][-1][1] == want
    assert all(not r["acc_curve"] for r in tuning.tune(config, 1, (0.05, 0.5), (1e-6, 1e-4), 5, mnist_raw)["runs"])
