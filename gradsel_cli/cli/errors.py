"""How the ``gradsel`` command ends badly: errors as one line, Ctrl-C as one line and exit code 130, warnings.

The library raises ValueError; only the command line (through `library_errors`)
turns it into a one-line error with the remedy, never a traceback.
"""

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

import click

from .. import interrupts


class BadInput(click.ClickException):
    """A bad value found past parsing: one line, exit code 2."""

    exit_code = 2


class Group(click.Group):
    """Prints every error as one line ``Error: ...`` (no usage block, no traceback); Ctrl-C is one line and
    exit code 130; bare ``gradsel`` prints the help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        printable_streams()
        STORED.clear()
        args = sys.argv[1:] if args is None else list(args)
        quiet_warnings("-q" in args or "--quiet" in args)
        try:
            with signals_as_interrupt():
                rv = super().main(args or ["--help"], prog_name, complete_var, standalone_mode=False, **extra)
                interrupts.check()  # a signal whose KeyboardInterrupt a callback from C dropped
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            interrupted()
        except (SystemError, ImportError) as exc:
            # Ctrl-C inside a Numba kernel surfaces as a chain of SystemErrors; inside the import of a C extension
            # (numba._dispatcher importing numba._devicearray) as the extension's own ImportError, the interrupt
            # printed through sys.excepthook (silenced below) and dropped
            if not (caused_by_interrupt(exc) or interrupts.pending()):
                raise
            interrupted()
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EOFError as exc:  # click would make it an Abort, printed as Ctrl-C: "Interrupted" follows only a signal
            raise click.ClickException(f"a file ended before it should ({exc or 'end of file'})") from None


STORED: list[str] = []  # the files this command has written so far: said when stdout then fails


def stored(path) -> None:
    """Note that `path` was written (a failed stdout says it is kept)."""
    if path and str(path) not in STORED:
        STORED.append(str(path))


_INTERRUPT_NOTE: list[Any] = ["Interrupted."]  # what Ctrl-C leaves behind; a command that writes as it goes says so


def on_interrupt(note) -> None:
    """What Ctrl-C prints from now on: what was kept, and how to go on; a function is asked at that moment
    (what is kept depends on how far the command got)."""
    _INTERRUPT_NOTE[0] = note


def kept_note(path, what: str = "runs") -> Callable[[], str]:
    """The Ctrl-C note of a command that appends `what` to the file `path` as they finish: they are kept and the
    same command resumes, or, when none has been stored yet, that nothing was."""

    def note() -> str:
        try:
            has = path is not None and os.path.getsize(path) > 0
        except OSError:
            has = False
        if has:
            return f"Interrupted; the finished {what} are kept in {path}: run the same command again to resume."
        if path is not None:
            return f"Interrupted before any of the {what} finished; nothing was stored in {path}."
        return f"Interrupted; none of the {what} was stored (give --results FILE to keep them as they finish)."

    return note


def caused_by_interrupt(exc: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is anywhere in the chain of causes and contexts of `exc`."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def interrupted():
    """Ctrl-C: the interrupt note on stderr, exit code 130."""
    note = _INTERRUPT_NOTE[0]
    click.echo(f"\n{note() if callable(note) else note}", err=True)
    sys.exit(130)


@contextlib.contextmanager
def signals_as_interrupt():
    """While inside, SIGTERM stops the command as Ctrl-C does (the same one line, exit 130), and Ctrl-C is
    KeyboardInterrupt (the grid's own handler, installed later, ends its workers first). The handlers before
    are put back, but for the start-up's (``__main__``), which end the process at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        interrupts.note()  # kept, should a callback from C drop the KeyboardInterrupt
        raise KeyboardInterrupt

    unraisable = sys.unraisablehook

    def dropped(info):  # a KeyboardInterrupt a callback dropped ("Exception ignored in ..."): noted, raised later
        if not isinstance(info.exc_value, KeyboardInterrupt):
            unraisable(info)

    excepthook = sys.excepthook

    def printed(kind, value, tb):  # C code that prints an exception and drops it (PyErr_Print): noted, raised later
        if issubclass(kind, KeyboardInterrupt):
            interrupts.note()
        else:
            excepthook(kind, value, tb)

    interrupts.clear()
    previous = signal.signal(signal.SIGTERM, interrupt), signal.signal(signal.SIGINT, interrupt)
    sys.unraisablehook, sys.excepthook = dropped, printed
    try:
        yield
    finally:
        sys.unraisablehook, sys.excepthook = unraisable, excepthook
        for sig, handler in zip((signal.SIGTERM, signal.SIGINT), previous):
            if not getattr(handler, "at_start", False):
                signal.signal(sig, handler)


# What an encoding that is not Unicode (PYTHONIOENCODING=ascii, a Latin-1 locale) shows instead of the characters
# gradsel prints; anything else becomes "?". Rich draws its own boxes and bars in ASCII for such a stream.
ASCII_FOR = {
    "—": "-",
    "–": "-",
    "−": "-",
    "±": "+-",
    "…": "...",
    "×": "x",
    "µ": "u",
    "≤": "<=",
    "≥": ">=",
    "→": "->",
    "·": ".",
    "²": "^2",
    "√": "sqrt",
    "‖": "||",
    "∝": "~",
    "Δ": "d",
    "ε": "eps",
    "▀": "#",
    **dict(zip("▁▂▃▄▅▆▇█", "._-~=+*#")),
}


def _in_ascii(error: UnicodeEncodeError):
    text = error.object[error.start : error.end]
    return "".join(ASCII_FOR.get(ch, "?") for ch in text), error.end


CLOSED: list[str] = []  # the standard streams that were closed when the command started ("stdout", "stderr")


def printable_streams() -> None:
    """stdout and stderr print what their encoding cannot show in ASCII (see ASCII_FOR) instead of failing; a
    closed one (``>&-``: Python makes it None) writes to the null device, and is noted in CLOSED (what a
    command prints on it is then one line of error, as any failed write)."""
    import codecs

    CLOSED.clear()
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            CLOSED.append(name)
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (lives as long as the process)

    # typeshed wants a handler of any UnicodeError; this one is registered for encoding only
    codecs.register_error("gradsel-ascii", _in_ascii)  # type: ignore[arg-type]
    # Not only "strict": under the C locale without UTF-8 mode (LC_ALL=C PYTHONUTF8=0, minimal containers) Python
    # gives stdio ASCII with "surrogateescape", which fails on any other character just the same.
    for stream in (sys.stdout, sys.stderr):
        if (
            getattr(stream, "errors", None) in ("strict", "surrogateescape")
            and "utf" not in str(getattr(stream, "encoding", "")).lower()
        ):
            try:
                cast(Any, stream).reconfigure(errors="gradsel-ascii")  # not every stream has it: caught below
            except (AttributeError, ValueError, OSError):
                pass


def quiet_warnings(quiet: bool) -> None:
    """Library warnings (a skipped line of a results file, say) as one line ``Warning: ...``, none with -q, whatever
    the warnings filter (PYTHONWARNINGS=error must not turn them into a traceback, nor =ignore hide them)."""
    import warnings

    from ..config import Notice

    warnings.filterwarnings("always", category=Notice)

    def show(message, category, filename, lineno, file=None, line=None):
        if not quiet:
            from ..text import printable  # control characters from a file never reach the terminal

            click.echo(f"Warning: {printable(str(message))}", err=True)

    warnings.showwarning = show


def library_errors(fn):
    """Turn the library's ValueError into a one-line error with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise BadInput(str(exc)) from None

    return wrapper
