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


@pytest.mark.parametrize("command", ["compare", "tune"])
def test_ctrl_c_before_anything_finished_says_nothing_was_stored_and_after_that_it_is_kept(
    command, runner, monkeypatch, tmp_path
):
    from gradsel_cli.runs import tuning

    path = tmp_path / "cmp.jsonl"
    stop = {"after": 0}
    run = training.train

    def train(*args, **kwargs):  # Ctrl-C as the (stop["after"] + 1)-th run starts
        if stop["after"] == 0:
            raise KeyboardInterrupt
        stop["after"] -= 1
        return run(*args, **kwargs)

    monkeypatch.setattr(training, "train", train)
    monkeypatch.setattr(tuning, "train", train)
    args = [command, "--iters", "5", "--hidden", "3", "--test-limit", "50", "--results", str(path)]
    args += ["--seeds", "3", "--workers", "1"] if command == "compare" else ["--trials", "3"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 130
    what = "trials" if command == "tune" else "runs"
    said = first.stderr.strip().splitlines()[-1]
    assert said == f"Interrupted before any of the {what} finished; nothing was stored in {path}."
    assert not path.exists() or path.stat().st_size == 0
    stop["after"] = 1
    second = runner.invoke(cli, args)
    assert second.exit_code == 130 and path.stat().st_size > 0
    assert "are kept in" in second.stderr.strip().splitlines()[-1] and "resume" in second.stderr


def test_an_interrupt_a_callback_drops_prints_no_traceback_and_is_raised_at_the_next_check(capsys):
    # Python prints "Exception ignored in ..." with a traceback for an exception raised in a callback it cannot
    # propagate (a weakref callback of importlib, a ctypes callback of Numba's compiler): a signal landing there.
    import sys

    from gradsel_cli.cli.errors import signals_as_interrupt

    class Info:
        exc_type, exc_value, exc_traceback, err_msg, object = KeyboardInterrupt, KeyboardInterrupt(), None, None, None

    before = sys.unraisablehook
    try:
        with signals_as_interrupt():
            interrupts.note()
            sys.unraisablehook(Info())  # what the interpreter calls for the dropped exception
            with pytest.raises(KeyboardInterrupt):
                interrupts.check()
    finally:
        interrupts.clear()
    assert capsys.readouterr().err == ""
    assert sys.unraisablehook is before  # put back when the command ends


def test_an_interrupt_inside_a_c_extensions_import_is_the_one_line_not_its_import_error(runner, monkeypatch):
    """A signal landing while a C extension imports another (numba._dispatcher importing numba._devicearray):
    the extension prints the KeyboardInterrupt (PyErr_Print, through sys.excepthook) and raises an ImportError
    of its own. The command ends with the interrupt's one line and exit code 130, no traceback; an ImportError
    with no signal behind it is still an error."""
    import sys

    def importing(*args, **kwargs):  # as numba's C code does with a KeyboardInterrupt raised in its import
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            sys.excepthook(*sys.exc_info())  # PyErr_Print
        raise ImportError("numba._devicearray failed to import")

    monkeypatch.setattr(training, "_warm_up", importing)
    before = sys.excepthook
    result = runner.invoke(cli, ["train", "--iters", "200000", "--hidden", "5", "--test-limit", "100"])
    assert result.exit_code == 130 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Interrupted")
    assert sys.excepthook is before  # put back when the command ends
    interrupts.clear()

    def broken(*args, **kwargs):
        raise ImportError("a module that is not there")

    monkeypatch.setattr(training, "_warm_up", broken)
    with pytest.raises(ImportError, match="not there"):
        runner.invoke(cli, ["train", "--iters", "200", "--hidden", "5", "--test-limit", "100"], catch_exceptions=False)
