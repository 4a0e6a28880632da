"""config.py: TrainConfig's checks follow its fields' option() metadata, the dict round trip, plurals, and the
Dask scheduler address."""

import dataclasses
import json
import math

import pytest

from gradsel_cli import config
from gradsel_cli.config import TrainConfig

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def test_the_defaults_validate_and_validate_returns_the_config():
    c = TrainConfig()
    assert c.validate() is c


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.metadata["choices"]])
def test_a_value_outside_a_fields_choices_is_refused_naming_the_value(name):
    for allowed in FIELDS[name].metadata["choices"]:
        TrainConfig(**{name: allowed}).validate()
    with pytest.raises(ValueError, match="'no-such-value'"):
        TrainConfig(**{name: "no-such-value"}).validate()


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.metadata["low"] is not None])
def test_a_whole_number_below_its_low_bound_is_refused_naming_the_field(name):
    low = FIELDS[name].metadata["low"]
    TrainConfig(**{name: low}).validate()
    with pytest.raises(ValueError, match=name):
        TrainConfig(**{name: low - 1}).validate()
    with pytest.raises(ValueError, match=name):
        TrainConfig(**{name: float(low)}).validate()  # a float is not a whole number, even 1.0


@pytest.mark.parametrize("name", ["batch", "hidden", "test_limit"])
def test_a_whole_number_above_its_high_bound_is_refused_naming_the_field(name):
    high = FIELDS[name].metadata["high"]
    TrainConfig(**{name: high}).validate()
    with pytest.raises(ValueError, match=name):
        TrainConfig(**{name: high + 1}).validate()


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.metadata["kind"]])
def test_a_real_number_outside_its_kind_is_refused_naming_the_field(name):
    kind = FIELDS[name].metadata["kind"]
    bad = {
        "positive": [0.0, -1.0, math.inf, math.nan],
        "nonneg": [-1e-9, math.inf, math.nan],
        "fraction": [-0.1, 1.0, math.nan],
    }[kind]
    good = {"positive": 1e-3, "nonneg": 0.0, "fraction": 0.5}[kind]
    TrainConfig(**{name: good}).validate()
    for value in bad:
        with pytest.raises(ValueError, match=name):
            TrainConfig(**{name: value}).validate()


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(loss="mse", loss_epsilon=1e-7), "cross-entropy only"),
        (dict(batch_norm=True, batch=1), "batch of at least 2"),
        (dict(batch_norm=1), "batch_norm must be true or false"),
        (dict(iters=config.MAX_DRAWS // 100 + 1, batch=100), "iters x batch"),
    ],
)
def test_combinations_the_fields_alone_allow_are_refused(changes, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**changes).validate()


def test_iters_times_batch_at_the_limit_is_allowed():
    TrainConfig(iters=config.MAX_DRAWS // 100, batch=100).validate()


def test_a_config_is_frozen_and_replace_makes_a_new_one():
    c = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.lr = 1.0
    d = c.replace(lr=0.5, method="numeric")
    assert (d.lr, d.method, c.lr, c.method) == (0.5, "numeric", 0.1, "alternate")
    assert d.replace(lr=0.1, method="alternate") == c


def test_to_dict_and_from_dict_round_trip_and_unknown_keys_are_dropped():
    c = TrainConfig(method="select", hidden=7, fd_step=1e-5, batch_norm=True)
    d = c.to_dict()
    assert list(d) == list(FIELDS)
    assert TrainConfig.from_dict(d) == c
    assert TrainConfig.from_dict({**d, "eval_every": 100, "no_such_field": 1}) == c


def test_canonical_fills_fields_an_older_record_lacks_and_drops_retired_ones():
    old = {"method": "numeric", "hidden": 9, "eval_every": 500}
    full = config.canonical(old)
    assert full == TrainConfig(method="numeric", hidden=9).to_dict()
    assert "eval_every" not in full


def test_setting_keys_are_every_field_but_method_seed_and_the_cell_keys():
    keys = config.setting_keys()
    assert set(keys) == set(FIELDS) - {"method", "sources", "seed", *config.CELL_KEYS}
    assert list(keys) == [n for n in FIELDS if n in keys]  # in field order


@pytest.mark.parametrize(
    "args, text",
    [
        ((1, "run"), "1 run"),
        ((0, "run"), "0 runs"),
        ((3, "run"), "3 runs"),
        ((2, "class"), "2 classes"),
        ((2, "match"), "2 matches"),
        ((1, "class"), "1 class"),
        ((12345, "run", ","), "12,345 runs"),
    ],
)
def test_counted_says_the_plural_unless_the_count_is_one(args, text):
    assert config.counted(*args) == text


@pytest.mark.parametrize(
    "text, address",
    [
        ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        (" tcp://scheduler.example.org:8786 ", "tcp://scheduler.example.org:8786"),
        ("tls://[::1]:08786", "tls://[::1]:8786"),
        ("node-7:1", "tcp://node-7:1"),
    ],
)
def test_a_scheduler_address_is_normalised(text, address):
    assert config.scheduler_address(text) == address


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "is not an address"),
        ("localhost", "is not an address"),
        ("http://host:80", "http:// is not a protocol"),
        ("host:0", "the port is not 1-65535"),
        ("host:65536", "the port is not 1-65535"),
        ("300.1.1.1:8786", "not a host name or IP address"),
        ("[::g]:8786", "not a host name or IP address"),
        ("-bad-:8786", "not a host name or IP address"),
    ],
)
def test_a_bad_scheduler_address_is_one_value_error_with_the_form(text, why):
    with pytest.raises(ValueError) as err:
        config.scheduler_address(text)
    message = str(err.value)
    assert why in message and config.SCHEDULER_FORM in message and "\n" not in message


def test_a_renamed_field_reads_its_former_name_from_stored_configs_and_the_command_line():
    """alternate_every was numeric_every: stored records that say it are the same runs (one key), and the flag is
    still taken."""
    from click.testing import CliRunner

    from gradsel_cli.cli.commands import cli
    from gradsel_cli.runs.records import run_key

    old = {**TrainConfig(method="alternate").to_dict(), "numeric_every": 3}
    del old["alternate_every"]
    assert TrainConfig.from_dict(old) == TrainConfig(method="alternate", alternate_every=3)
    new = TrainConfig(method="alternate", alternate_every=3).to_dict()
    assert run_key({"config": old}) == run_key({"config": new}) != run_key({"config": {**new, "alternate_every": 2}})
    runner = CliRunner()
    said = [
        json.loads(runner.invoke(cli, ["train", "--iters", "4", "--hidden", "3", flag, "3", "--json", "-q"]).stdout)
        for flag in ("--alternate-every", "--numeric-every")
    ]
    assert said[0]["config"] == said[1]["config"] and said[0]["config"]["alternate_every"] == 3
    assert said[0]["loss_history"] == said[1]["loss_history"]
