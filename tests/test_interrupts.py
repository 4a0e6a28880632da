"""A stop signal whose KeyboardInterrupt a callback from C dropped (interrupts.py) still stops the command."""

import pytest

from gradsel_cli import interrupts
from gradsel_cli.cli.commands import cli
from gradsel_cli.numerics import training


def test_a_noted_signal_is_raised_at_the_next_check_and_only_until_cleared():
    interrupts.clear()
    interrupts.check()  # nothing pending: nothing raised
    interrupts.note()
    with pytest.raises(KeyboardInterrupt):
        interrupts.check()
    interrupts.clear()
    interrupts.check()


def test_a_dropped_interrupt_during_the_warm_up_stops_the_run_with_the_one_line(runner, monkeypatch):
    warm_up = training._warm_up

    def dropped(*args, **kwargs):  # as a ctypes callback of the compiler would: the signal noted, its raise lost
        interrupts.note()
        return warm_up(*args, **kwargs)

    monkeypatch.setattr(training, "_warm_up", dropped)
    result = runner.invoke(cli, ["train", "--iters", "200000", "--hidden", "5", "--test-limit", "100"])
    assert result.exit_code == 130 and "Interrupted" in result.stderr
    assert "test accuracy" not in result.stdout  # stopped before the run, not after it
    interrupts.clear()
