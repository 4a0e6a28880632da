"""Every TrainConfig field is a command-line option and every training option is a field; each reaches the run."""

import json
from dataclasses import fields

import click
import pytest

from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import POLICY_READS, TrainConfig
from helpers import invoke

FIELDS = {f.name: f for f in fields(TrainConfig)}
NOT_CONFIG = {"data_dir", "threads", "out", "save_model", "plot", "as_json", "quiet", "help"}


def non_default(f):
    """A valid value of field f other than its default."""
    m = f.metadata
    if m["choices"]:
        return next(c for c in m["choices"][::-1] if c != f.default)
    if f.type is bool:
        return not f.default
    if f.type is str:  # the sources alternate and select mix
        return ",".join(reversed(f.default.split(",")))
    if f.type is int:
        return f.default + 1 if m["high"] is None or f.default < m["high"] else f.default - 1
    return {"positive": f.default / 2, "nonneg": 1e-4, "fraction": 0.5 if f.default != 0.5 else 0.25}[m["kind"]]


@pytest.mark.parametrize("command", ["train", "compare", "tune", "table", "sweep"])
def test_every_field_is_an_option_and_every_option_a_field(command):
    params = {p.name for p in cli.commands[command].params}
    expected = set(FIELDS) - {"method", "seed"} if command in ("table", "compare", "sweep") else set(FIELDS)
    if command == "tune":
        expected -= {"lr", "weight_decay"}  # each trial draws its own from --lr-range and --weight-decay-range
    if command == "table":
        expected -= {"shots", "batch", "hidden", "sources"}  # the table's cells; its methods mix the papers' sources
    assert expected <= params, f"fields without an option: {expected - params}"
    extra = params - set(FIELDS) - NOT_CONFIG
    allowed = {
        "train": {"eval_every", "budget", "probe_every", "setting"},  # budget sets iters; the probe only reads
        "tune": {"trials", "lr_range", "weight_decay_range", "val_per_class", "results_file"},
        "compare": {
            "setting",
            "budget",
            "probe_every",
            "x_axis",
            "margin",
            "power_images",
            "timeout",
            "methods",
            "seeds",
            "workers",
            "executor",
            "scheduler",
            "results_file",
            "show_digits",
            "digits_from",
            "figure",
            "as_csv",
        },
        "table": {
            "setting",
            "margin",
            "power_images",
            "timeout",
            "preset",
            "run_missing",
            "seeds",
            "workers",
            "executor",
            "scheduler",
            "results_file",
            "fmt",
            "no_paper",
        },
        "sweep": {"timeout", "methods", "seeds", "workers", "executor", "scheduler", "results_file", "budget"},
    }[command]
    assert extra <= allowed, f"options that are no field: {extra - allowed}"


def test_option_defaults_and_help_come_from_the_fields():
    options = {p.name: p for p in cli.commands["train"].params if isinstance(p, click.Option)}
    for name, f in FIELDS.items():
        list_of_sources = f.type is str and not f.metadata["choices"]  # --sources: a list option, joined
        assert options[name].default == ([f.default] if list_of_sources else f.default), name
        assert options[name].help == f.metadata["help"], name


def _train_record(runner, values: dict) -> dict:
    args = ["train", "--json"]
    for name, v in values.items():
        flag = "--" + name.replace("_", "-")
        args += [flag if v else "--no-" + flag[2:]] if isinstance(v, bool) else [flag, str(v)]
    result = invoke(runner, *args)
    assert result.exit_code in (0, 1), result.output  # 1: a strange setting may diverge; the record is still there
    return json.loads(result.stdout)["config"]


def test_every_option_reaches_the_run(runner):
    """Set every field to a value other than its default on the command line; the record holds each. Two runs,
    as --loss-epsilon belongs to the cross-entropy only, --select-on to select and --alternate-every to alternate;
    the second with batch norm, over the sources that take it."""
    values = {name: non_default(f) for name, f in FIELDS.items()}
    every_source = ",".join(reversed(sources.names()))  # a source's options are read (given) only when it runs
    values.update(method="select", sources=every_source, iters=3, shots=1, batch=2, hidden=3, test_limit=50)
    assert values["batch_norm"] is True
    with_bn = [n for n in reversed(sources.names()) if not sources.get(n).problem(TrainConfig(batch_norm=True))]
    assert len(with_bn) >= 2
    assert POLICY_READS["alternate_every"] == ("alternate",) and POLICY_READS["select_on"] == ("select",)
    first = {k: v for k, v in values.items() if k != "alternate_every"} | {"loss": "cross-entropy", "batch_norm": False}
    second = {k: v for k, v in values.items() if k != "select_on"} | {"method": "alternate", "loss_epsilon": 0.0}
    second["sources"] = ",".join(with_bn)
    second = {
        k: v
        for k, v in second.items()
        if not any(k in sources.get(n).options for n in values["sources"].split(",") if n not in with_bn)
    }
    seen = set()
    for run in (first, second):
        config = _train_record(runner, run)
        assert config == {**TrainConfig().to_dict(), **run}
        seen |= {n for n, f in FIELDS.items() if config[n] != f.default}
    assert seen == set(FIELDS)


def test_the_kernels_dispatch_codes_follow_the_registries():
    from gradsel_cli import choices, config
    from gradsel_cli.core import network
    from gradsel_cli.kernels import activations, forward, fused
    from gradsel_cli.numerics import loop, methods

    assert [network.ACTIVATION_CODES[n] for n in choices.ACTIVATIONS] == [
        activations.SIGMOID,
        activations.TANH,
        activations.RELU,
        activations.LEAKY_RELU,
        activations.MISH,
    ]
    assert [network.LOSS_CODES[n] for n in choices.LOSSES] == [forward.CROSS_ENTROPY, forward.MSE]
    assert set(methods.POLICIES) == set(config.POLICIES)
    assert loop.POLICY_CODES == {"alternate": fused.ALTERNATE, "select": fused.SELECT}
    assert fused.PLAIN not in loop.POLICY_CODES.values()
    # the network core's default Settings are the default config's where the network reads them
    defaults = loop.settings(config.TrainConfig())
    for name in ("activation", "loss", "weight_decay", "loss_epsilon", "alternate_every", "lr", "seed"):
        assert getattr(network.DEFAULTS, name) == getattr(defaults, name), name


def test_optimizer_defaults_are_the_configs():
    from gradsel_cli.numerics.optimizers import Optimizer

    d, o = TrainConfig(), Optimizer()
    assert (o.name, o.lr, o.momentum, o.rho, o.beta1, o.beta2, o.eps) == (
        d.optimizer,
        d.lr,
        d.momentum,
        d.rho,
        d.beta1,
        d.beta2,
        d.eps,
    )


@pytest.mark.parametrize("command", [["compare"], ["sweep"], ["table", "--run"]])
def test_the_grid_options_reach_the_executor(command, runner, monkeypatch, tmp_path):
    seen = []

    def make_executor(*args, **kwargs):
        seen.append((*args, kwargs))
        raise ValueError("stopped before any run")

    monkeypatch.setattr("gradsel_cli.runs.experiments.make_executor", make_executor)
    result = runner.invoke(
        cli,
        [
            *command,
            "--executor",
            "dask",
            "--workers",
            "3",
            "--scheduler",
            "tcp://h:1",
            "--timeout",
            "7",
            "--seeds",
            "1",
            "--results",
            str(tmp_path / "runs.jsonl"),
        ],
    )
    assert result.exit_code == 2 and result.stderr.splitlines()[-1] == "Error: stopped before any run"
    assert seen == [("dask", 3, "tcp://h:1", None, 0, 7.0, {"probe_every": 0})]


# --- comma lists: one parser, one set of rules, for every list option ----------------------------------------


def _list_options():
    """(command, flag, single): every option of comma lists, with the one-value option that checks its items."""
    out = []
    for name, command in sorted(cli.commands.items()):
        for p in command.params:
            if isinstance(p, click.Option) and p.metavar == "LIST":
                flag = p.opts[0]
                # the one-value option of train whose items are checked alike (--check: --sources's items)
                single = {
                    "--methods": "--method",
                    "--check": "--sources",
                    "--steps": "--fd-step",
                    "--optimizers": "--optimizer",
                }.get(flag, flag)
                out.append((name, flag, single))
    return out


LIST_OPTIONS = _list_options()


ARGUMENTS = {"lab": ["optimizers"]}  # a command's required arguments, given before the options tried


def _with_arguments(args) -> list:
    return [args[0], *ARGUMENTS.get(args[0], []), *args[1:]] if args else []


def _error(runner, *args) -> str:
    result = runner.invoke(cli, _with_arguments(args))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: Invalid value for"), line
    return line.split("': ", 1)[1]  # without the option's name


def _parsed(command, *args):
    return cli.commands[command].make_context(command, [*ARGUMENTS.get(command, []), *args]).params


def _first_default(command, flag):
    p = next(p for p in cli.commands[command].params if p.opts[0] == flag)
    if not isinstance(p.default, (list, tuple)):  # no default list (gradcheck's steps: each source its own range)
        return "1e-3"
    return p.default[0].split(",")[0]


def test_the_list_options_are_found():
    flags = {(c, f) for c, f, _ in LIST_OPTIONS}
    assert {
        ("bench", "--hidden"),
        ("bench", "--batch"),
        ("gradcheck", "--steps"),
        ("gradcheck", "--check"),
        ("train", "--sources"),
        ("sweep", "--lr"),
        ("sweep", "--methods"),
        ("compare", "--methods"),
        ("sweep", "--optimizer"),
    } <= flags


@pytest.mark.parametrize("command,flag,single", LIST_OPTIONS)
def test_every_list_option_has_the_same_rules(command, flag, single, runner):
    v = _first_default(command, flag)
    for bad in (f"{v},,{v}", f",{v}", f"{v},", ","):
        assert "has an empty item" in _error(runner, command, flag, bad), bad
    assert "one or more values" in _error(runner, command, flag, "")
    assert "given twice" in _error(runner, command, flag, f"{v},{v}")
    dest = next(p.name for p in cli.commands[command].params if p.opts[0] == flag)
    assert _parsed(command, flag, f" {v} ")[dest] == _parsed(command, flag, v)[dest]
    # an item is checked as the one-value option checks it, with its message
    for item in ("bogus", "-1", "0", "nan", "1e999"):
        one = runner.invoke(cli, ["train", single, item])
        if one.exit_code == 2:
            single_message = one.stderr.strip().splitlines()[-1].split("': ", 1)[1]
            assert _error(runner, command, flag, f"{v},{item}") == single_message


def test_a_value_given_twice_in_another_spelling_is_refused(runner):
    assert "given twice" in _error(runner, "gradcheck", "--steps", "1e-3,0.001")
    assert "given twice" in _error(runner, "sweep", "--lr", "0.1,1e-1")
    assert "given twice" in _error(runner, "bench", "--hidden", "20,020")


def test_gradcheck_takes_a_comma_list_of_steps_or_the_option_repeated():
    assert _parsed("gradcheck", "--steps", "1e-3,1e-5")["steps"] == [1e-3, 1e-5]
    assert _parsed("gradcheck", "--steps", "1e-3", "--steps", "1e-5")["steps"] == [1e-3, 1e-5]
    assert _parsed("sweep", "--lr", "0.1", "--lr", "0.2")["lr"] == [0.1, 0.2]  # a repeated list option adds up
    assert _parsed("gradcheck")["steps"] is None  # each source across its own range


def test_bench_sizes_are_checked_as_trains(runner):
    assert _parsed("bench", "--hidden", "20, 50", "--batch", "1")["hidden"] == [20, 50]
    assert _error(runner, "bench", "--hidden", "20,x") == _error(runner, "train", "--hidden", "x")
    assert _error(runner, "bench", "--batch", "1,100000") == _error(runner, "train", "--batch", "100000")


@pytest.mark.parametrize(
    "bad,words",
    [
        ("1e-3,,1", "empty item"),
        ("1e-3", "give LOW,HIGH"),
        ("1,1e-3", "LOW <= HIGH"),
        ("0,1", "positive and finite"),
        ("1e-3,1,2", "give LOW,HIGH"),
    ],
)
def test_a_range_is_parsed_as_every_list(bad, words, runner):
    assert words in _error(runner, "tune", "--lr-range", bad)
    assert _parsed("tune", "--lr-range", " 1e-3 , 1 ")["lr_range"] == (1e-3, 1.0)


def test_a_fraction_refuses_nan_at_the_option(runner):
    for flag in ("--momentum", "--dropout", "--loss-epsilon"):
        assert "not in the range" in _error(runner, "train", flag, "nan")


@pytest.mark.parametrize(
    "args, flag, remedy",
    [
        (["train", "--method", "analytic", "--sources", "analytic,numeric"], "--sources", "choose --method alternate"),
        (["train", "--method", "analytic", "--fd-step", "1e-3"], "--fd-step", "choose --method numeric"),
        (
            ["train", "--method", "select", "--sources", "analytic,complex-step", "--fd-step", "1e-3"],
            "--fd-step",
            "add numeric to --sources",
        ),
        (["train", "--method", "alternate", "--select-on", "train"], "--select-on", "choose --method select"),
        (["train", "--method", "select", "--alternate-every", "3"], "--alternate-every", "choose --method alternate"),
        (
            ["compare", "--methods", "analytic,numeric", "--cs-step", "1e-10"],
            "--cs-step",
            "choose --method complex-step",
        ),
        (["tune", "--method", "analytic", "--fd-step", "1e-3"], "--fd-step", "choose --method numeric"),
        (["gradcheck", "--check", "complex-step", "--fd-scheme", "forward"], "--fd-scheme", "add numeric to --check"),
        (["table", "--cs-step", "1e-10"], "--cs-step", "the preset's methods: analytic, alternate"),
        (["table", "--preset", "select", "--alternate-every", "3"], "--alternate-every", "drop --alternate-every"),
        (["tune", "--lr", "0.5"], "--lr", "--lr-range"),
        (["tune", "--weight-decay", "0.5"], "--weight-decay", "--weight-decay-range"),
    ],
)
def test_an_option_no_run_of_the_command_reads_is_refused_in_one_line(args, flag, remedy, runner):
    small = {"gradcheck": ["--iters", "2", "--hidden", "3"], "table": []}
    result = invoke(runner, *args, *small.get(args[0], ["--iters", "3", "--hidden", "3", "--test-limit", "50"]))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"Error: {flag}") and remedy in line, line
    assert not result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--method", "select", "--select-on", "batch", "--fd-step", "1e-3"],
        ["train", "--method", "alternate", "--sources", "analytic,complex-step", "--cs-step", "1e-10"],
        ["compare", "--methods", "analytic,numeric", "--fd-step", "1e-3", "--seeds", "1"],
    ],
)
def test_an_option_a_run_of_the_command_reads_is_taken(args, runner):
    result = invoke(runner, *args, "--iters", "3", "--hidden", "3", "--test-limit", "50", "--json")
    assert result.exit_code == 0, result.output


def test_a_named_setting_sets_its_fields_and_an_option_given_beside_it_wins(runner):
    from gradsel_cli.papers import NAMED_SETTINGS

    base = ["train", "--json", "--iters", "3", "--hidden", "3", "--test-limit", "10", "--method", "numeric"]
    bundled = json.loads(invoke(runner, *base, "--setting", "relu-textbook").stdout)["config"]
    assert NAMED_SETTINGS["relu-textbook"]["pixels"] == "float32"
    assert all(bundled[k] == v for k, v in NAMED_SETTINGS["relu-textbook"].items())
    overridden = json.loads(invoke(runner, *base, "--setting", "relu-textbook", "--activation", "tanh").stdout)
    assert overridden["config"]["activation"] == "tanh" and overridden["config"]["pixels"] == "float32"
    plain = json.loads(invoke(runner, *base).stdout)["config"]
    assert plain["activation"] == "sigmoid" and plain["pixels"] == "float64"
    # the setting's finite-difference arithmetic is no option given to analytic, which does not read it
    analytic = [a if a != "numeric" else "analytic" for a in base]
    assert json.loads(invoke(runner, *analytic, "--setting", "relu-textbook").stdout)["config"]["activation"] == "relu"
