"""The gradsel command, driven through click's CliRunner (and once as a real process)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gradsel_cli import __version__
from gradsel_cli.cli.commands import cli
from gradsel_cli.numerics import training
from gradsel_cli.runs import results
from gradsel_cli.runs.records import config_hash
from helpers import invoke

SMALL_RUN = ["train", "--shots", "2", "--batch", "4", "--hidden", "5", "--iters", "20", "--test-limit", "200"]
RECORD_KEYS = {
    "format",
    "config_hash",
    "config",
    "accuracy",
    "final_loss",
    "diverged",
    "iterations_done",
    "wall_time",
    "time_per_iter",
    "counts",
    "select_wins",
    "sources",
    "shares",
    "rel_diff_mean",
    "loss_history",
    "acc_curve",
    "rel_diff_history",
    "share_history",
    "predictions",
    "versions",
}


# --- help and version -------------------------------------------------------------


def test_group_help(runner):
    result = invoke(runner, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    for name in cli.commands:
        assert name in result.stdout
    assert "train" in cli.commands


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(runner, name):
    result = invoke(runner, name, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: cli {name} [OPTIONS]")
    assert "Example:" in result.stdout


def test_train_help_lists_its_options_with_defaults(runner):
    result = invoke(runner, "train", "--help")
    assert result.exit_code == 0
    for option in (
        "--method",
        "--shots",
        "--batch",
        "--hidden",
        "--iters",
        "--lr",
        "--subset",
        "--fd-step",
        "--fd-scheme",
        "--alternate-every",
        "--select-on",
        "--test-limit",
        "--data-dir",
        "--seed",
        "--out",
        "--save-model",
        "--json",
    ):
        assert option in result.stdout
    assert "[default: alternate]" in result.stdout


def test_version(runner):
    result = invoke(runner, "--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gradsel, version {__version__}"


def test_python_dash_m_answers_help():
    proc = subprocess.run([sys.executable, "-m", "gradsel_cli", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and "train" in proc.stdout


def test_importing_the_cli_does_not_import_numba():
    code = "import sys, gradsel_cli.cli.commands; print('numba' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_importing_the_cli_imports_no_heavy_module():
    heavy = ["numba", "numpy", "rich", "scipy", "matplotlib", "gradsel_cli.kernels"]
    code = f"import sys, gradsel_cli.cli.commands; print([m for m in {heavy!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- train ---------------------------------------------------------------------


def test_train_json_is_a_full_run_record(runner, mnist_raw):
    result = invoke(runner, *SMALL_RUN, "--method", "select", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) >= RECORD_KEYS
    config = record["config"]
    assert (
        config["method"],
        config["shots"],
        config["batch"],
        config["hidden"],
        config["iters"],
        config["test_limit"],
    ) == ("select", 2, 4, 5, 20, 200)
    assert record["config_hash"] == config_hash(config)
    assert record["iterations_done"] == 20 and record["diverged"] is False
    assert record["counts"] == {"analytic": 20, "numeric": 20}
    assert sum(record["select_wins"].values()) == 20
    predictions = np.array([int(c) for c in record["predictions"]])
    assert len(predictions) == 200
    assert record["accuracy"] == pytest.approx(np.mean(predictions == mnist_raw[3][:200]))
    assert {"gradsel", "numpy", "numba", "python"} <= set(record["versions"])
    # --json silences the messages, all but the compile note of a first run (which stdout never gets)
    assert all(line.startswith("Compiling Numba kernels") for line in result.stderr.splitlines())


def test_train_on_all_the_training_images_says_so_and_reads_no_shots(runner):
    args = ["train", "--subset", "all", "--iters", "5", "--batch", "100", "--hidden", "10", "--test-limit", "200"]
    shown = runner.invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert "gradsel train — alternate: all images, B=100, H=10" in shown.stdout
    one, other = (json.loads(invoke(runner, *args, "--shots", k, "--json").stdout) for k in ("1", "9"))
    assert one["predictions"] == other["predictions"] and one["loss_history"] == other["loss_history"]


def test_train_json_matches_the_python_api(runner, mnist_raw):
    result = invoke(runner, *SMALL_RUN, "--method", "alternate", "--seed", "4", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    api = training.train(training.TrainConfig.from_dict(record["config"]), data=mnist_raw)
    assert record["accuracy"] == api.accuracy
    assert record["predictions"] == "".join(str(p) for p in api.predictions)
    assert record["final_loss"] == api.final_loss


def test_train_prints_a_summary_by_default(runner):
    result = invoke(runner, *SMALL_RUN, "-q")
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_out_appends_one_json_line_per_run(runner, tmp_path):
    out = tmp_path / "runs.jsonl"
    for seed in ("0", "1"):
        result = invoke(runner, *SMALL_RUN, "-q", "--seed", seed, "--out", str(out))
        assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    assert [json.loads(line)["config"]["seed"] for line in lines] == [0, 1]
    assert len(results.load(out)) == 2


def test_save_model_writes_the_weights(runner, tmp_path, mnist_raw):
    path = tmp_path / "m.npz"
    result = invoke(runner, *SMALL_RUN, "-q", "--method", "analytic", "--save-model", str(path))
    assert result.exit_code == 0, result.output
    with np.load(path) as saved:
        assert {k: saved[k].shape for k in saved.files} == {"W1": (784, 5), "b1": (5,), "W2": (5, 10), "b2": (10,)}
        api = training.train(
            training.TrainConfig(method="analytic", shots=2, batch=4, hidden=5, iters=20, test_limit=200),
            data=mnist_raw,
        )
        assert np.array_equal(saved["W1"], api.params.W1) and np.array_equal(saved["b2"], api.params.b2)


def test_diverged_run_exits_1_with_a_strict_json_record(runner, tmp_path):
    out = tmp_path / "runs.jsonl"
    result = invoke(runner, *SMALL_RUN, "--lr", "1e308", "--json", "--out", str(out))
    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["diverged"] is True and record["accuracy"] is None
    json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_diverged_run_says_so_on_stderr(runner):
    result = invoke(runner, *SMALL_RUN, "--lr", "1e308")
    assert result.exit_code == 1
    assert "Diverged" in result.stderr and "--lr" in result.stderr


def test_eval_every_records_the_accuracy_curve_and_changes_nothing(runner):
    plain = json.loads(invoke(runner, *SMALL_RUN, "--json").stdout)
    curve = json.loads(invoke(runner, *SMALL_RUN, "--eval-every", "5", "--json").stdout)
    assert [t for t, _ in curve["acc_curve"]] == [0, 5, 10, 15, 20] and curve["acc_curve"][-1][1] == curve["accuracy"]
    assert curve["config"] == plain["config"] and curve["predictions"] == plain["predictions"]
    assert "eval_every" not in curve["config"] and "acc_history" not in curve
    assert "accuracy @ 20" in invoke(runner, *SMALL_RUN, "--eval-every", "5").stdout


def test_a_run_whose_loss_overshoots_is_warned_about_in_one_line(runner):
    big = invoke(runner, *SMALL_RUN, "--lr", "1e6")
    assert big.exit_code == 0  # every number stayed finite: not diverged
    (line,) = [w for w in big.stderr.splitlines() if w.startswith("Warning:")]
    assert "the batch loss rose to" in line and "--lr" in line
    assert "Warning:" not in invoke(runner, *SMALL_RUN).stderr  # the papers' learning rate: no warning


# --- bad input: exit code 2, one line "Error: ...", naming the option, no traceback ---

BAD_INPUTS = [
    (["--shots", "0"], "--shots"),
    (["--shots", "99999"], "--shots"),
    (["--batch", "0"], "--batch"),
    (["--hidden", "0"], "--hidden"),
    (["--iters", "0"], "--iters"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "fast"], "--lr"),
    (["--fd-step", "0"], "--fd-step"),
    (["--init-std", "-1"], "--init-std"),
    (["--method", "bogus"], "--method"),
    (["--subset", "bogus"], "--subset"),
    (["--fd-scheme", "bogus"], "--fd-scheme"),
    (["--select-on", "bogus"], "--select-on"),
    (["--alternate-every", "0"], "--alternate-every"),
    (["--test-limit", "0"], "--test-limit"),
    (["--test-limit", "10001"], "--test-limit"),
    (["--seed", "-1"], "--seed"),
    (["--data-dir", "/nonexistent"], "--data-dir"),
    (["--out", "/nonexistent/dir/file.jsonl"], "--out"),
    (["--save-model", "/nonexistent/dir/m.npz"], "--save-model"),
    (["--threads", "0"], "--threads"),
    (["--threads", "100000"], "--threads"),
]


@pytest.mark.parametrize("args,option", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_naming_the_option(runner, args, option):
    result = invoke(runner, *SMALL_RUN, *args)
    assert_one_line_error(result, option)


def test_empty_data_dir_is_one_line_naming_the_option(runner, tmp_path):
    result = invoke(runner, *SMALL_RUN, "--data-dir", str(tmp_path))
    assert_one_line_error(result, "--data-dir")
    assert "train-images" in result.stderr


def test_out_pointing_at_a_directory_is_refused(runner, tmp_path):
    assert_one_line_error(invoke(runner, *SMALL_RUN, "--out", str(tmp_path)), "--out")


def test_unknown_command_and_option(runner):
    assert_one_line_error(invoke(runner, "fly"), "fly")
    assert_one_line_error(invoke(runner, "train", "--speed", "3"), "--speed")


def assert_one_line_error(result, option):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:")
    assert option in lines[0]


# --- precision, finite-difference arithmetic, loss epsilon -----------------------------


@pytest.mark.parametrize(
    "option,value,key,stored",
    [
        ("--precision", "float32", "precision", "float32"),
        ("--fd-arith", "textbook", "fd_arith", "textbook"),
        ("--loss-epsilon", "1e-7", "loss_epsilon", 1e-7),
    ],
)
def test_each_new_option_is_read_back_from_the_json_record(runner, option, value, key, stored):
    result = invoke(runner, *SMALL_RUN, "--method", "select", "--iters", "4", option, value, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["config"][key] == stored
    assert record["config_hash"] == config_hash(record["config"])
    default = json.loads(invoke(runner, *SMALL_RUN, "--method", "select", "--iters", "4", "--json").stdout)
    assert default["config"][key] != stored


def test_loss_epsilon_help_says_backprop_ignores_it(runner):
    text = " ".join(invoke(runner, "train", "--help").output.split())
    assert "--loss-epsilon" in text and "-log(p + EPS)" in text
    assert "analytic gradient stays that of -log p" in text
    assert "--precision [float64|float32]" in text and "--fd-arith [exact|textbook]" in text


@pytest.mark.parametrize(
    "args,option",
    [
        (["--precision", "float16"], "--precision"),
        (["--fd-arith", "sloppy"], "--fd-arith"),
        (["--loss-epsilon", "-1"], "--loss-epsilon"),
        (["--loss-epsilon", "1e-7", "--loss", "mse"], "loss-epsilon"),
    ],
)
def test_new_options_bad_input_is_one_line(runner, args, option):
    assert_one_line_error(invoke(runner, *SMALL_RUN, *args), option)


BLAS_THREADS = (
    "import os; from gradsel_cli.__main__ import _one_blas_thread; _one_blas_thread(); import numpy; "
    "from threadpoolctl import threadpool_info; print(os.environ['OPENBLAS_NUM_THREADS'], "
    "max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))"
)


@pytest.mark.parametrize("told", [None, "3"])
def test_the_command_runs_blas_on_one_thread_unless_the_environment_says(told):
    import os

    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    }
    if told:
        env["OPENBLAS_NUM_THREADS"] = told
    done = subprocess.run([sys.executable, "-c", BLAS_THREADS], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    said, threads = done.stdout.split()
    if told:
        assert said == told  # the user's setting is left alone (BLAS may cap it to the cores)
    else:
        assert (said, threads) == ("1", "1")
