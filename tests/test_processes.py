"""runs/processes.py: worker processes deaf to Ctrl-C, SIGTERM as Ctrl-C, how many workers."""

import os
import signal

import pytest

from gradsel_cli import interrupts
from gradsel_cli.runs.processes import capped_workers, deaf_to_ctrl_c, default_workers, terminate_as_interrupt


def test_sigterm_inside_is_a_keyboard_interrupt_and_the_handler_is_put_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    interrupts.check()  # it went up as a KeyboardInterrupt: nothing left to raise again


def test_a_sigterm_whose_interrupt_a_callback_dropped_is_raised_at_the_next_check():
    with terminate_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            pass  # as a ctypes callback of Numba's compiler prints and drops it
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts.clear()


def test_sigint_is_blocked_inside_and_a_ctrl_c_that_came_is_answered_after():
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    with pytest.raises(KeyboardInterrupt):
        with deaf_to_ctrl_c():
            assert signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # what starts here inherits it
            os.kill(os.getpid(), signal.SIGINT)  # held: nothing is raised inside
            still_inside = True
        assert not still_inside  # not reached: the held Ctrl-C is answered when the block ends
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_workers_are_the_cores_by_default_and_never_more_than_the_runs():
    assert default_workers() == (os.cpu_count() or 1)
    assert capped_workers(4, 1) == 1
    assert capped_workers(1, 100) == 1
