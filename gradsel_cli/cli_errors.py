"""How the ``gradsel`` command ends badly: errors as one line, Ctrl-C as one line and exit code 130, warnings.

The library raises ValueError; only the command line (through `library_errors`)
turns it into a one-line error with the remedy, never a traceback.
"""

import functools
import sys

import click


class BadInput(click.ClickException):
    """A bad value found past parsing: one line, exit code 2."""

    exit_code = 2


class Group(click.Group):
    """Prints every error as one line ``Error: ...`` (no usage block, no traceback); Ctrl-C is one line and
    exit code 130; bare ``gradsel`` prints the help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = sys.argv[1:] if args is None else list(args)
        quiet_warnings("-q" in args or "--quiet" in args)
        try:
            rv = super().main(args or ["--help"], prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            interrupted()
        except SystemError as exc:  # Ctrl-C inside a Numba kernel surfaces as a chain of SystemErrors
            if not caused_by_interrupt(exc):
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


_INTERRUPT_NOTE = ["Interrupted."]  # what Ctrl-C leaves behind; a command that writes as it goes says so


def on_interrupt(note: str) -> None:
    """What Ctrl-C prints from now on: what was kept, and how to go on."""
    _INTERRUPT_NOTE[0] = note


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
    click.echo(f"\n{_INTERRUPT_NOTE[0]}", err=True)
    sys.exit(130)


def quiet_warnings(quiet: bool) -> None:
    """Library warnings (a skipped line of a results file, say) as one line ``Warning: ...``, none with -q."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        if not quiet:
            from .results import printable  # control characters from a file never reach the terminal

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
