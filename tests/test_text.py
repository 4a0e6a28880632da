"""text.py: the one control-character filter and the one JSON number writer."""

import json
import math

import pytest

from gradsel_cli.text import json_number, printable, strip_control


def test_printable_shows_every_c0_c1_and_del_character_as_its_code():
    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
    shown = printable("".join(controls))
    assert shown == "".join(f"\\x{ord(c):02x}" for c in controls)
    assert all(c not in shown for c in controls)


def test_printable_keeps_what_a_terminal_shows_as_it_is():
    text = "accuracy 0.5719 ± 0.0117 — k=2, µs, 中文"
    assert printable(text) == text


def test_strip_control_drops_an_escape_sequence_down_to_its_printable_rest():
    assert strip_control("seed=\x1b[31m0\x07\n") == "seed=[31m0"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None])
def test_a_number_json_cannot_hold_is_null(value):
    assert json_number(value) is None


@pytest.mark.parametrize("value", [0, 3, -0.0, 1e-308, 0.1 + 0.2, 1e308])
def test_a_finite_number_is_the_same_float_and_survives_json(value):
    got = json_number(value)
    assert type(got) is float and got == value
    assert json.loads(json.dumps(got, allow_nan=False)) == got
