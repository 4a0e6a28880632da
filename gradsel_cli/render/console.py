"""The consoles and progress bars: stdout and stderr made in the entry point, progress that degrades to a no-op.

Output that is not a terminal is PIPE_WIDTH columns wide; every string that comes from data (a results file,
a config, a path) goes through ``clean`` before it is printed.
"""

import os
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from ..text import printable, strip_control
from .cells import fmt_loss

PIPE_WIDTH = 80  # columns of output that is not a terminal (unless $COLUMNS says otherwise)
MIN_WIDTH = 40  # columns laid out at the least, however narrow the terminal or $COLUMNS (the terminal wraps them)


def clean(value) -> str:
    """A string from data, safe to print: control characters shown as ``\\xNN`` (an escape
    sequence cannot restyle the terminal, a newline cannot break a row) and Rich markup escaped."""
    return escape(printable(str(value)))


def _reader_gone() -> None:
    """A closed pipe on stdout is the command's to end (cli/steps.emit: quietly, as SIGPIPE ends a Unix tool)."""
    raise BrokenPipeError


def consoles(quiet: bool = False) -> tuple[Console, Console]:
    """(stdout, stderr) consoles; stderr is silent when quiet. Output that is not a terminal is
    PIPE_WIDTH columns wide (or $COLUMNS), not a width guessed from whatever terminal is around; none
    is narrower than MIN_WIDTH."""
    out, err = Console(), Console(stderr=True, quiet=quiet)
    out.on_broken_pipe = _reader_gone  # type: ignore[method-assign]  # Rich's own exits with status 1
    for console in (out, err):
        if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            console.width = PIPE_WIDTH
        console.width = max(console.width, MIN_WIDTH)  # narrower, Rich cannot lay out a table (nor a bar)
    return out, err


def progress_enabled(err: Console) -> bool:
    return not err.quiet and err.is_terminal


class RateColumn(ProgressColumn):
    """Iterations per second; blank until there is a rate to show (Rich's speed is None at first)."""

    def __init__(self, unit: str, **kwargs):
        super().__init__(**kwargs)
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        scaled, prefix = next(
            ((speed / scale, prefix) for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if speed >= scale),
            (speed, ""),
        )
        return Text(f"{scaled:>5.{0 if scaled >= 10 else 1}f}{prefix} {self.unit}/s", style="progress.data.speed")


def progress_columns(unit: str = "it") -> list:
    """The columns of every progress bar: description, bar, done/total, info (e.g. the loss), rate, times.
    Every column but the bar keeps its whole text; the bar takes the width they leave, so the line
    fits 80 columns however large the numbers."""
    whole: dict[str, Any] = dict(table_column=Column(no_wrap=True))
    columns = [
        TextColumn("{task.description}", style="bold", markup=False, **whole),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        MofNCompleteColumn(**whole),
        TextColumn("{task.fields[info]}", markup=False, **whole),
    ]
    if unit:
        columns.append(RateColumn(unit, **whole))
    return [*columns, TimeElapsedColumn(**whole), TextColumn("ETA", **whole), TimeRemainingColumn(**whole)]


class _Progress(Progress):
    """A progress display as wide as the terminal up to PIPE_WIDTH columns (the bar takes what is left)."""

    def __init__(self, *columns, console: Console, **kwargs):
        self.line_width = min(console.width, PIPE_WIDTH)
        super().__init__(*columns, console=console, **kwargs)

    def make_tasks_table(self, tasks):
        table = super().make_tasks_table(tasks)
        table.width = self.line_width
        return table


@contextmanager
def progress_bar(err: Console, total: int, description: str, unit: str = "it"):
    """Yield ``update(done, total, loss=None, info=None)`` (done None: only the info changes); a no-op when stderr
    is quiet or not a terminal."""
    if not progress_enabled(err):
        yield lambda *a, **k: None
        return
    with _Progress(*progress_columns(unit), console=err, transient=False, expand=True) as bar:
        task = bar.add_task(strip_control(str(description)), total=total, info="")

        def update(done, total=total, loss=None, info=None):
            text = info if info is not None else (f"loss {fmt_loss(loss)}" if loss is not None else "")
            bar.update(task, completed=done, total=total, info=strip_control(str(text)))

        yield update
