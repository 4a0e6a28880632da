"""One store semantics for every reader and writer: a run is stored once and counted once, a record evaluated on
a validation split never stands for a test-set run, every JSON gradsel writes reads back, and the shipped
results are read-only reference data that ship with the package."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gradsel_cli.cli.commands import cli
from gradsel_cli.config import canonical
from gradsel_cli.numerics import training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.runs import experiments, records, results, trial, tuning
from gradsel_cli.runs.records import config_hash, run_key

TINY = ["--hidden", "5", "--batch", "4", "--iters", "20", "--test-limit", "200", "--threads", "1"]


@pytest.fixture(scope="module")
def record(mnist_raw):
    return trial.run_trial(TrainConfig(hidden=5, batch=4, iters=20, test_limit=200), raw=mnist_raw)


def with_config(record: dict, **changes) -> dict:
    """`record` as if run with these config changes: what depends on the run's sources made to fit them."""
    config = {**record["config"], **changes}
    names = TrainConfig.from_dict(config).run_sources()
    n = record["iterations_done"]
    return {
        **record,
        "config": config,
        "config_hash": config_hash(config),
        "predictions": record["predictions"][:1] * config["test_limit"],
        "sources": list(names),
        # consistent with the iterations: select computes every source each time, the others the first alone here
        "counts": {name: n if q == 0 or config["method"] == "select" else 0 for q, name in enumerate(names)},
        "select_wins": {name: n if q == 0 else 0 for q, name in enumerate(names)}
        if config["method"] == "select"
        else None,
        "shares": {name: 1.0 if q == 0 else 0.0 for q, name in enumerate(names)},
        "rel_diff_mean": None,
        "rel_diff_history": None,
        "share_history": None,
    }


def write_lines(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# --- a run is counted once ---------------------------------------------------------


def test_runs_counts_a_record_stored_twice_once_and_says_so(record, runner, tmp_path):
    once = [with_config(record, seed=s) for s in range(3)]
    write_lines(tmp_path / "f.jsonl", once)
    (tmp_path / "g.jsonl").write_text((tmp_path / "f.jsonl").read_text() * 2)  # cat f f > g
    single = runner.invoke(cli, ["runs", str(tmp_path / "f.jsonl"), "--json"])
    double = runner.invoke(cli, ["runs", str(tmp_path / "g.jsonl"), "--json"])
    assert double.exit_code == 0, double.output
    assert json.loads(double.stdout) == json.loads(single.stdout)
    assert json.loads(double.stdout)["rows"][0]["runs"] == 3
    assert "Warning:" in double.stderr and "3 duplicate records skipped" in double.stderr


def test_every_reader_loads_the_same_deduplicated_records(record, tmp_path):
    path = tmp_path / "g.jsonl"
    write_lines(path, [record, record, with_config(record, seed=1)])
    with pytest.warns(results.StoreWarning, match="1 duplicate record skipped"):
        loaded = results.load(path)
    assert [r["config"]["seed"] for r in loaded] == [0, 1]
    # the subsets study appended every record of a cell: a duplicate was another subset
    sub = with_config(record, method="analytic", batch=1, hidden=20, shots=1, subset="random")
    write_lines(path, [sub, sub])
    with pytest.warns(results.StoreWarning):
        from gradsel_cli.analysis.report import subsets_summary

        assert subsets_summary(results.load(path))["rows"][0]["subsets"] == 1


def test_train_out_of_the_same_configuration_twice_appends_once_and_says_so(runner, tmp_path):
    out = tmp_path / "runs.jsonl"
    first = runner.invoke(cli, ["train", *TINY, "--out", str(out)])
    second = runner.invoke(cli, ["train", *TINY, "--out", str(out)])
    assert first.exit_code == second.exit_code == 0, second.output
    assert out.read_text().count("\n") == 1
    assert "already holds this run" in second.stderr and "already" not in first.stderr
    other = runner.invoke(cli, ["train", *TINY, "--seed", "1", "--out", str(out)])
    assert other.exit_code == 0 and out.read_text().count("\n") == 2


def test_tune_again_with_the_same_results_runs_and_appends_nothing(runner, tmp_path, monkeypatch):
    path = tmp_path / "tune.jsonl"
    args = ["tune", "--trials", "3", *TINY, "--results", str(path), "--json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    stored = path.read_bytes()
    assert stored.count(b"\n") == 3

    def refuse(*a, **k):
        raise AssertionError("a stored trial was run again")

    monkeypatch.setattr(tuning, "train", refuse)
    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert path.read_bytes() == stored
    assert json.loads(again.stdout)["trials"] == json.loads(first.stdout)["trials"]
    said = runner.invoke(cli, args[:-1])  # messages are off with --json
    assert "3 of the 3 trials were already stored" in said.stderr and path.read_bytes() == stored
    monkeypatch.undo()
    more = runner.invoke(cli, ["tune", "--trials", "4", *TINY, "--results", str(path), "--json"])  # resumes
    assert more.exit_code == 0 and path.read_bytes().startswith(stored) and path.read_bytes().count(b"\n") == 4


# --- a run's identity is what it reads --------------------------------------------

CHANGED = {  # a value other than the default of every option some runs do not read
    "sources": "analytic,complex-step",
    "alternate_every": 3,
    "select_on": "train",
    "momentum": 0.5,
    "rho": 0.5,
    "beta1": 0.5,
    "beta2": 0.5,
    "eps": 1e-3,
    "init_std": 0.1,
    "shots": 3,
    "fd_step": 1e-3,
    "fd_scheme": "forward",
    "fd_arith": "textbook",
    "cs_step": 1e-10,
    "directions": 4,
    "zo_eps": 1e-2,
    "zo_dist": "sphere",
    "zo_scheme": "forward",
}
SMALL = dict(hidden=5, batch=4, iters=20, test_limit=200)


def _outcome(record: dict) -> tuple:
    return record["predictions"], record["final_loss"], record["loss_history"], record["accuracy"]


def _unread() -> list[tuple[str, dict]]:
    """(option, a config that does not read it): each setting's option under an optimizer or initialisation
    that ignores it, each policy's and source's option in a run of backprop alone."""
    from gradsel_cli.choices import INITS, OPTIMIZERS, SUBSETS
    from gradsel_cli.config import POLICY_READS, SETTING_READS
    from gradsel_cli.sources import REGISTRY

    choices = {"optimizer": OPTIMIZERS, "init": INITS, "subset": SUBSETS}
    out = []
    for option, (by, values) in SETTING_READS.items():
        other = next(v for v in choices[by] if v not in values)
        out.append((option, {by: other}))
    options = [*POLICY_READS, *(k for s in REGISTRY.values() for k in s.reads)]
    return out + [(option, {"method": "analytic"}) for option in options]


def test_every_option_a_run_may_not_read_has_a_changed_value_here():
    assert {option for option, _ in _unread()} == set(CHANGED)


@pytest.mark.parametrize("option, config", _unread(), ids=lambda v: v if isinstance(v, str) else "")
def test_an_option_a_run_does_not_read_changes_neither_its_result_nor_its_key(option, config, mnist_raw):
    plain = TrainConfig(**SMALL, **config)
    changed = plain.replace(**{option: CHANGED[option]}).validate()
    assert _outcome(trial.run_trial(changed, raw=mnist_raw)) == _outcome(trial.run_trial(plain, raw=mnist_raw))
    assert run_key({"config": changed.to_dict()}) == run_key({"config": plain.to_dict()})
    assert config_hash(changed.to_dict()) != config_hash(plain.to_dict())  # the stored hash is of the config as given


@pytest.mark.parametrize("option", ["momentum", "rho", "beta1", "beta2", "eps", "init_std", "shots"])
def test_a_setting_a_run_reads_changes_its_result_and_its_key(option, mnist_raw):
    from gradsel_cli.config import SETTING_READS

    by, values = SETTING_READS[option]
    plain = TrainConfig(**SMALL, **{by: values[0]})
    changed = plain.replace(**{option: CHANGED[option]})
    assert _outcome(trial.run_trial(changed, raw=mnist_raw)) != _outcome(trial.run_trial(plain, raw=mnist_raw))
    assert run_key({"config": changed.to_dict()}) != run_key({"config": plain.to_dict()})


def test_a_run_asked_for_again_with_an_unread_option_changed_is_not_run_stored_or_counted_again(
    record, runner, tmp_path, monkeypatch
):
    path = tmp_path / "r.jsonl"
    ran: list[str] = []

    def quick(config, raw=None, data_dir=None, eval_points=0, probe_every=0):
        ran.append(config.method)
        return with_config(record, **config.to_dict())

    monkeypatch.setattr(trial, "run_trial", quick)
    base = ["compare", "--methods", "analytic,numeric", "--seeds", "2", *TINY, "--workers", "1"]
    base += ["--results", str(path), "--json"]

    def compare(*more):
        ran.clear()
        got = runner.invoke(cli, [*base, *more])
        assert got.exit_code == 0, got.output
        return sorted(ran)

    assert compare() == ["analytic", "analytic", "numeric", "numeric"]
    assert compare("--fd-step", "1e-3") == ["numeric", "numeric"]  # analytic reads no step: its runs are stored
    assert compare("--momentum", "0.5") == []  # sgd reads no momentum
    assert compare("--optimizer", "momentum", "--momentum", "0.5") == ["analytic"] * 2 + ["numeric"] * 2
    assert path.read_text().count("\n") == 10
    counted = runner.invoke(cli, ["runs", str(path), "--json"])
    assert json.loads(counted.stdout)["runs"] == 10 and "duplicate" not in counted.stderr


def test_stored_records_that_differ_only_in_unread_options_count_once(record, runner, tmp_path):
    analytic = with_config(record, method="analytic")
    xavier = with_config(record, init="xavier")
    same = [
        with_config(analytic, fd_step=1e-3, fd_scheme="forward", sources="analytic,complex-step", momentum=0.5),
        with_config(xavier, init_std=0.5, beta1=0.5),
    ]
    other = [with_config(analytic, lr=0.2), with_config(record, fd_step=1e-3)]  # lr, and alternate's step: read
    write_lines(tmp_path / "r.jsonl", [analytic, xavier, *same, *other])
    got = runner.invoke(cli, ["runs", str(tmp_path / "r.jsonl"), "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["runs"] == 4
    assert "2 duplicate records skipped" in got.stderr
    assert [r["config"] for r in results.load(tmp_path / "r.jsonl", quiet=True)] == [
        r["config"] for r in (analytic, xavier, *other)
    ]  # the first record of a run is the one kept


def test_a_paper_table_takes_runs_whose_unread_options_differ_from_the_settings_asked_for(record):
    from gradsel_cli.analysis.report import matching, settings_of

    analytic = with_config(record, method="analytic", fd_step=1e-3, momentum=0.5)
    alternate = with_config(record, fd_step=1e-3)  # reads the step: another table's run
    settings = settings_of(TrainConfig(**SMALL).to_dict())
    assert matching([analytic, alternate, record], settings) == [analytic, record]
    assert matching([alternate], settings_of(alternate["config"])) == [alternate]


# --- a validation record is not a test-set run -------------------------------------


def test_a_tune_trial_never_stands_for_the_test_set_run_of_its_configuration(record, tmp_path, mnist_raw):
    trial = {**record, "accuracy": 0.999, "evaluated_on": "validation: train on 2 per class, validate on 50"}
    assert run_key(trial) != run_key(record)
    assert run_key(record) == config_hash(canonical(record["config"]))  # older records
    path = tmp_path / "runs.jsonl"
    write_lines(path, [trial])
    assert results.load(path) == [trial]  # kept (runs shows it), but ...
    assert records.test_set_runs(results.load(path)) == []
    config = TrainConfig.from_dict(record["config"])
    got = experiments.run_grid([config], path)  # ... a grid runs the test-set run
    assert got[0]["accuracy"] == record["accuracy"] and "evaluated_on" not in got[0]
    assert path.read_text().count("\n") == 2


def test_table_and_runs_keep_a_tune_trial_apart(record, runner, tmp_path):
    from gradsel_cli.analysis.report import paper_table, runs_summary, settings_of

    trial = {**record, "accuracy": 0.999, "evaluated_on": "validation: x"}
    summary = runs_summary(results.load_sources([_write(tmp_path, [trial, record])])[0])
    assert summary["runs"] == 1
    rows = runs_summary([record, trial])["rows"]
    assert len(rows) == 2 and sorted(r["values"]["evaluated_on"] for r in rows) == ["test", "validation: x"]
    settings = settings_of(record["config"])
    assert paper_table("select", [trial], settings)["seeds"] == []


def _write(tmp_path, recs):
    path = tmp_path / "mixed.jsonl"
    write_lines(path, recs)
    return path


# --- every JSON gradsel writes reads back ------------------------------------------


def test_runs_reads_what_train_sweep_compare_and_tune_json_print(runner, tmp_path):
    train = runner.invoke(cli, ["train", *TINY, "--json"])
    sweep = runner.invoke(cli, ["sweep", *TINY, "--lr", "0.2,0.3", "--seeds", "1", "--workers", "1", "--json"])
    compare = runner.invoke(cli, ["compare", *TINY, "--methods", "analytic,numeric", "--seeds", "2", "--json"])
    tune = runner.invoke(cli, ["tune", *TINY, "--trials", "2", "--json"])
    assert compare.exit_code == 0 and tune.exit_code == 0, compare.output + tune.output
    (tmp_path / "run.json").write_text(train.stdout)
    (tmp_path / "sweep.json").write_text(sweep.stdout)
    (tmp_path / "both.json").write_text(train.stdout + sweep.stdout)  # >> of two commands
    (tmp_path / "compare.json").write_text(compare.stdout)
    (tmp_path / "tune.json").write_text(tune.stdout)
    assert {m["method"] for m in json.loads(compare.stdout)["methods"]} == {"analytic", "numeric"}  # the summary too
    for name, runs in (("run.json", 1), ("sweep.json", 2), ("both.json", 3), ("compare.json", 4), ("tune.json", 2)):
        got = runner.invoke(cli, ["runs", str(tmp_path / name), "--json"])
        assert got.exit_code == 0, got.output
        assert json.loads(got.stdout)["runs"] == runs, name
        assert "Warning" not in got.stderr, got.stderr
    table = runner.invoke(cli, ["table", "--results", str(tmp_path / "sweep.json"), "--format", "json"])
    assert table.exit_code == 0 and "Warning" not in table.stderr, table.output


def test_a_summary_document_is_one_warning_not_one_per_line(record, runner, tmp_path):
    path = tmp_path / "compare.json"
    summary = {"config": {"method": "analytic"}, "methods": [{"method": "analytic"}] * 50}
    path.write_text(json.dumps([summary, record], indent=2))
    got = runner.invoke(cli, ["runs", str(path)])
    assert got.exit_code == 0
    warned = [line for line in got.stderr.splitlines() if line.startswith("Warning")]
    assert len(warned) == 1 and "no run record" in warned[0]


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b"garbage text\n" * 300, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, b'{"config": {}}\n'],
)
def test_a_file_with_no_readable_record_is_an_error_after_a_few_warnings(content, runner, tmp_path):
    path = tmp_path / "not-runs.png"
    path.write_bytes(content)
    got = runner.invoke(cli, ["runs", str(path)])
    assert got.exit_code == 2 and not got.stdout, got.output
    lines = got.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: {path} holds no run record"), lines
    assert len(lines) <= results.SAID_LINES + 2  # the first lines named, the rest counted in one
    if content.count(b"\n") > results.SAID_LINES:
        assert "in all" in lines[-2], lines


def test_readers_do_not_say_a_skipped_run_will_be_redone_but_a_grid_does(record, runner, tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(record) + "\n{cut\n")
    for command in (["runs", str(path)], ["table", "--results", str(path)]):
        got = runner.invoke(cli, command)
        assert "line skipped" in got.stderr and "redone" not in got.stderr, got.stderr
    grid = runner.invoke(cli, ["sweep", *TINY, "--seeds", "1", "--workers", "1", "--results", str(path)])
    assert grid.exit_code == 0 and "that run will be redone" in grid.stderr


def test_a_gzipped_results_file_reads_as_the_plain_one(record, tmp_path):
    plain = tmp_path / "r.jsonl"
    write_lines(plain, [record, with_config(record, seed=1)])
    packed = tmp_path / "r.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert results.load(packed) == results.load(plain)


def test_a_gzipped_results_file_with_a_bad_stream_is_one_store_error(record, runner, tmp_path):
    packed = bytearray(gzip.compress((json.dumps(record) + "\n").encode() * 20))
    for i in range(20, 60):
        packed[i] ^= 0xFF
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(results.StoreError, match="cannot read"):
        results.load(path)
    got = runner.invoke(cli, ["runs", str(path)])
    assert got.exit_code != 0 and got.stderr.strip().startswith("Error: cannot read"), got.output


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "--methods", "analytic", "--seeds", "1", "--results", "FILE"],
        ["sweep", "--seeds", "1", "--workers", "1", "--results", "FILE"],
        ["tune", "--trials", "1", "--results", "FILE"],
        ["train", "--out", "FILE"],
        ["table", "--results", "FILE"],
    ],
)
@pytest.mark.parametrize("content", [b"my notes\n", b"\x89PNG\r\n\x1a\n\x00\x01", b'{"config": {}, "methods": []}\n'])
def test_a_file_that_holds_no_run_record_is_neither_read_as_results_nor_appended_to(command, content, runner, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    small = [] if command[0] == "table" else TINY  # a table's cells are its preset's
    got = runner.invoke(cli, [*(str(path) if a == "FILE" else a for a in command), *small])
    assert got.exit_code == 2, got.output
    assert got.stderr.strip().splitlines()[-1].startswith(f"Error: {path} holds no run record"), got.stderr
    assert path.read_bytes() == content  # nothing appended


# --- warnings and half-written files -----------------------------------------------


@pytest.mark.parametrize("flag", ["error", "ignore"])
def test_the_skipped_line_warning_is_one_line_whatever_the_warnings_filter(flag, record, tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(record) + "\nnot json\n")
    env = {**os.environ, "PYTHONWARNINGS": flag}
    got = subprocess.run(
        [sys.executable, "-m", "gradsel_cli", "runs", str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert got.returncode == 0, got.stderr
    assert "Traceback" not in got.stderr
    assert [line for line in got.stderr.splitlines() if line.startswith("Warning:")] == [
        f"Warning: {path}:2: unreadable line skipped"
    ]


def test_a_failed_save_model_leaves_no_file_and_keeps_an_older_one(mnist_raw, tmp_path, monkeypatch):
    result = training.train(TrainConfig(hidden=5, batch=4, iters=5, test_limit=50), mnist_raw)
    model = tmp_path / "model.npz"
    real = np.savez

    def full_disk(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError):
        training.write_model(model, result)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(np, "savez", real)
    training.write_model(model, result)
    before = model.read_bytes()
    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError):
        training.write_model(model, result)
    assert model.read_bytes() == before and list(tmp_path.iterdir()) == [model]
    assert set(np.load(model)) >= {"W1", "b1", "W2", "b2"}


# --- tune scores on a real validation split, and says when trials tie ---------------


def test_tune_validates_by_default_on_further_images_disjoint_from_the_few_shot_set(mnist_raw):
    from gradsel_cli import data

    config = TrainConfig(shots=2)
    ds, described = tuning.validation_split(mnist_raw, config)
    shots = data.few_shot_indices(mnist_raw[1], 2, "first", 0)
    assert len(ds.y_test) == 10 * tuning.VAL_PER_CLASS and "further images" in described
    assert np.array_equal(np.sort(ds.x_train, axis=0), np.sort(data.to_float(mnist_raw[0][shots]), axis=0))
    train_rows = {row.tobytes() for row in mnist_raw[0][shots]}
    assert not {row.tobytes() for row in np.asarray(ds.x_test)} & train_rows  # disjoint from the few-shot set
    assert len(set(ds.y_test.tolist())) == 10


def test_tune_says_so_when_the_best_trials_tie_instead_of_choosing(runner, monkeypatch, mnist_raw):
    real = tuning.train
    monkeypatch.setattr(
        tuning, "train", lambda config, ds, **kw: real(config.replace(lr=1e-9), ds, **kw)
    )  # all untrained
    got = runner.invoke(cli, ["tune", "--trials", "3", *TINY, "--json"])
    assert got.exit_code == 0, got.output
    summary = json.loads(got.stdout)
    assert summary["best"] is None and summary["tied"] == [0, 1, 2]
    assert "tie at validation accuracy" in got.stderr and "none is chosen" in got.stderr
    table = runner.invoke(cli, ["tune", "--trials", "3", *TINY])
    assert "none chosen: trials 0, 1, 2 tie" in table.stdout and "chosen: --lr" not in table.stdout


def test_tune_with_the_default_split_does_not_score_every_trial_the_same(runner):
    got = runner.invoke(cli, ["tune", "--trials", "4", "--hidden", "10", "--iters", "300", "--threads", "1", "--json"])
    summary = json.loads(got.stdout)
    assert (
        f"validate on {tuning.VAL_PER_CLASS} further images per class" in summary["split"]
    )  # not the one held-out few-shot image
    assert len({t["val_accuracy"] for t in summary["trials"]}) > 1
    finished = [t for t in summary["trials"] if not t["diverged"]]
    top = max(t["val_accuracy"] for t in finished)
    at_top = sorted(t["trial"] for t in finished if t["val_accuracy"] == top)
    if len(at_top) == 1:
        assert summary["best"]["trial"] == at_top[0] and summary["tied"] == []
    else:
        assert summary["best"] is None and sorted(summary["tied"]) == at_top


# --- shipped results: with the package, read-only, beside the user's ---------------


def test_every_results_file_of_the_checkout_is_found_as_shipped():
    names = sorted(p.name[: -len(".jsonl")] for p in results.CHECKOUT.glob("*.jsonl"))
    assert {"alternate", "select", "conditions", "subsets", "compare"} <= set(names)
    for name in names:
        assert results.shipped_path(name) is not None


def test_the_wheel_build_hook_packs_every_results_file():
    text = (results.CHECKOUT.parent / "pyproject.toml").read_text()
    assert "[tool.hatch.build.targets.wheel.hooks.custom]" in text
    hook = (results.CHECKOUT.parent / "hatch_build.py").read_text()
    assert 'glob("*.jsonl")' in hook and "_results/" in hook


def test_help_examples_that_read_results_files_work_from_an_empty_directory(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = runner.invoke(cli, ["runs", "results/compare.jsonl", "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["runs"] > 0
    table = runner.invoke(
        cli, ["table", "--subset", "random", "--results", "results/alternate-random.jsonl", "--format", "json"]
    )
    assert table.exit_code == 0, table.output
    assert json.loads(table.stdout)["missing_cells"] == 0
    assert list(tmp_path.iterdir()) == []


def test_table_of_a_missing_results_file_is_one_line_error(runner, tmp_path):
    got = runner.invoke(cli, ["table", "--results", str(tmp_path / "missing.jsonl")])
    assert got.exit_code == 2 and got.stdout == ""
    assert got.stderr.strip().splitlines() == [got.stderr.strip()] and "does not exist" in got.stderr


def _quick_trial(template):
    def run(config, raw=None, data_dir=None, eval_points=0, probe_every=0):
        return with_config(template, **config.to_dict())

    return run


def test_a_quick_run_goes_to_the_users_file_and_the_shipped_table_still_prints(record, runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = results.shipped_path("select")
    before = shipped.read_bytes()
    plain = runner.invoke(cli, ["table", "--preset", "select"])
    monkeypatch.setattr(trial, "run_trial", _quick_trial(record))
    quick = runner.invoke(
        cli, ["table", "--preset", "select", "--run", "--seeds", "1", "--iters", "300", "--workers", "1"]
    )
    assert quick.exit_code == 0, quick.output
    assert shipped.read_bytes() == before  # the reference runs are never appended to
    mine = tmp_path / results.user_path("select")
    assert mine.read_text().count("\n") == 27
    assert "27 runs from gradsel-select.jsonl" in quick.stderr
    again = runner.invoke(cli, ["table", "--preset", "select"])
    assert again.stdout == plain.stdout and "— (" not in plain.stdout  # every cell filled, as before the run
    assert "135 runs shipped with gradsel and 0 runs from gradsel-select.jsonl" in again.stderr
    assert "Runs shown: 135 runs shipped with gradsel." in plain.stderr


def test_table_run_with_the_shipped_settings_runs_nothing(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refuse(*a, **k):
        raise AssertionError("a shipped run was run again")

    monkeypatch.setattr(trial, "run_trial", refuse)
    got = runner.invoke(cli, ["table", "--preset", "select", "--run", "--seeds", "5", "--workers", "1"])
    assert got.exit_code == 0, got.output
    assert "already stored" in got.stderr
