"""The commands at a real pseudo-terminal: the progress bar shows and updates, Ctrl-C is one line and exit 130.

CliRunner has no terminal, so these run ``python -m gradsel_cli`` as a child at
a pty (tests/terminal.py) and read what an 80-column screen shows.
"""

import re

import pytest

from terminal import run_at_terminal

SHORT = ["--shots", "1", "--batch", "4", "--hidden", "8", "--test-limit", "200"]


def counts_seen(text: str, total: int) -> set[int]:
    return {int(m) for m in re.findall(rf"(\d+)/{total}\b", text)}


def test_train_shows_a_progress_bar_that_updates_and_a_summary():
    screen = run_at_terminal(["train", *SHORT, "--iters", "3000"])
    assert screen.exit_code == 0, screen.text
    assert "Traceback" not in screen.text
    seen = counts_seen(screen.text, 3000)
    assert 3000 in seen and len(seen) >= 2, f"progress counts seen: {sorted(seen)}"
    assert "test accuracy" in screen.text


def test_ctrl_c_during_train_is_one_line_and_exit_130():
    screen = run_at_terminal(
        ["train", *SHORT, "--iters", "200000", "--method", "numeric"], interrupt_when="/200000 loss"
    )
    assert screen.exit_code == 130, screen.text
    assert "Traceback" not in screen.text and "Error" not in screen.text
    after = screen.text.split("^C", 1)[-1]
    lines = [line for line in after.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1 and lines[0].startswith("Interrupted"), lines


def test_compare_shows_progress_over_runs_and_its_table():
    screen = run_at_terminal(
        ["compare", *SHORT, "--iters", "50", "--seeds", "2", "--workers", "1", "--methods", "analytic,select"]
    )
    assert screen.exit_code == 0, screen.text
    assert "Traceback" not in screen.text
    assert 4 in counts_seen(screen.text, 4)
    assert "select" in screen.text and "analytic" in screen.text


@pytest.mark.parametrize("args", [["table"], ["gradcheck", *SHORT[:6], "--iters", "20", "--fd-step", "1e-4"]])
def test_other_commands_at_a_terminal_have_no_traceback(args):
    screen = run_at_terminal(args)
    assert screen.exit_code == 0, screen.text
    assert "Traceback" not in screen.text
