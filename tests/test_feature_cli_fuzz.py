"""Any value of any numeric option either trains or is a clean error: never a traceback (Hypothesis)."""

import math

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradsel_cli import data
from gradsel_cli.cli.commands import cli

INT_OPTIONS = (
    "--shots",
    "--batch",
    "--hidden",
    "--iters",
    "--alternate-every",
    "--eval-every",
    "--test-limit",
    "--seed",
    "--threads",
)
FLOAT_OPTIONS = (
    "--lr",
    "--init-std",
    "--fd-step",
    "--eps",
    "--weight-decay",
    "--momentum",
    "--rho",
    "--beta1",
    "--beta2",
    "--dropout",
)
HUGE = [2**31, 2**63, 10**30, -(2**63)]

ints = st.one_of(st.integers(-3, 40), st.sampled_from([0, -1, *HUGE]), st.integers()).map(str)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            0.0,
            -0.0,
            -1.0,
            1e-320,
            5e-324,
            1e308,
            1.7976931348623157e308,
            0.999999999999,
            1.0,
            math.nan,
            math.inf,
            -math.inf,
        ]
    ),
).map(repr)
junk = st.sampled_from(["", "abc", "1,2", "0x10", "1e3", " 7", "--", "½"])


@st.composite
def option_values(draw):
    """One to three options, each with a value of its kind (now and then a string that is no number)."""
    names = draw(st.lists(st.sampled_from(INT_OPTIONS + FLOAT_OPTIONS), min_size=1, max_size=3, unique=True))
    args = []
    for name in names:
        value = draw(st.one_of(ints if name in INT_OPTIONS else floats, junk))
        if name == "--iters":  # the run must stay short: a huge valid count would just take long
            value = draw(st.one_of(st.integers(-2, 3).map(str), st.sampled_from(HUGE).map(str), junk))
        if (
            name in ("--hidden", "--batch", "--shots", "--test-limit")
            and value.lstrip("-").isdigit()
            and 200 < int(value) < 10**6
        ):
            value = "200"  # in range but slow (shots 5421 makes a 54,210-image training set): keep examples quick
        args += [name, value]
    return args


BASE = ["train", "--hidden", "3", "--batch", "2", "--iters", "2", "--test-limit", "50", "-q"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=option_values(), method=st.sampled_from(["analytic", "numeric", "alternate", "select"]))
def test_any_numeric_value_runs_or_is_a_clean_one_line_error(mnist_raw, args, method):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GRADSEL_DATA_DIR", raising=False)
        mp.setattr(data, "load_mnist_raw", lambda data_dir=None, verify=True: mnist_raw)  # load once, not per example
        result = CliRunner().invoke(cli, [*BASE, "--method", method, *args])
    shown = f"{args} -> exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), shown + repr(result.exception)
    assert "Traceback" not in result.output, shown
    assert result.exit_code in (0, 1, 2), shown
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), shown
    if result.exit_code == 1:
        assert "diverged" in result.stdout.lower(), shown  # exit 1 is a diverged run (-q keeps stderr quiet)
