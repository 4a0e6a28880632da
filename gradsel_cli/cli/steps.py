"""What every command does around its work: ready the kernels, run a grid with a progress bar, print the result.

Heavy modules (numba, the kernels, Rich) are imported inside the functions, so
that importing this module keeps ``gradsel --help`` instant.
"""

import contextlib
import os

import click

from .errors import CLOSED, STORED, kept_note, on_interrupt, stored


def prepare(threads, err, *figures) -> None:
    """Before any work: matplotlib when a figure is asked for, the thread count, the first-run notice."""
    from ..core import kernel_cache
    from ..core.threads import set_threads

    if any(figures):
        from ..analysis.figures import require

        require()
    set_threads(threads)
    note = _notes(err)
    said: list[str] = []

    def dropped(paths: list[str]) -> None:  # a damaged kernel found as it loads: one line, for the first
        if not said:
            said.append(paths[0])
            note.print(
                f"Numba's cache in {os.path.dirname(paths[0])} could not be loaded: dropped the damaged "
                "kernels' files, compiling them again…",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    kernel_cache.on_dropped = dropped
    kernel_cache.on_compile = _compiling(err)


_SHOWN: list = []  # the live progress displays' update functions: a compile shows in them (compiling_shown)


def _compiling(err):
    """on_compile for a command: the first compile of the process is said in one line on stderr (also under -q
    and --json: a minute of silence looks like a hang; stdout is untouched), each shows in the progress display."""
    said: list[str] = []

    def compiling(name: str) -> None:
        if not said:
            said.append(name)
            line = (
                f"Compiling Numba kernels, starting with {name} (once: later runs load them from the cache; "
                "a minute or more on a busy machine)…"
            )
            if err.quiet:
                click.echo(line, err=True)
            else:
                err.print(line, style="dim", markup=False, highlight=False, soft_wrap=True)
        for update in _SHOWN:
            update(None, info=f"compiling {name}…")

    return compiling


@contextlib.contextmanager
def compiling_shown(update):
    """While the progress display of `update` (render.progress_bar) is live, a kernel being compiled shows in it
    (its elapsed time runs on): never a frozen 0/N."""
    _SHOWN.append(update)
    try:
        yield update
    finally:
        _SHOWN.remove(update)


def _notes(err):
    """The console of notes that -q silences but --json does not (its err console is quiet): stderr is not
    what --json prints, and a minute of silence looks like a hang."""
    from ..render import consoles

    ctx = click.get_current_context(silent=True)
    quiet = err.quiet if ctx is None else bool(ctx.params.get("quiet"))
    return err if quiet == err.quiet else consoles(quiet)[1]


def emit(out, output) -> None:
    """Print a command's output: text as it is on stdout, or each Rich part of a list on the `out` console.
    A reader that has gone (a closed pipe) ends the command quietly; any other failed write is one line
    saying what was stored."""
    import signal
    import sys

    kept = f"stored: {', '.join(STORED)}" if STORED else "nothing was stored"
    if "stdout" in CLOSED:
        raise click.ClickException(f"could not write the output to stdout: it is closed ({kept})")
    try:
        if isinstance(output, str):
            click.echo(output, nl=False)
        else:
            for part in output:
                out.print(part)
        sys.stdout.flush()
    except BrokenPipeError:  # ended as a Unix tool that SIGPIPE ends: no message, exit status 128 + SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is still buffered goes nowhere
        sys.exit(128 + getattr(signal, "SIGPIPE", 13))  # 141; Windows has no SIGPIPE
    except OSError as exc:
        raise click.ClickException(f"could not write the output to stdout: {exc.strerror or exc} ({kept})") from None


def show(out, data, as_json: bool, parts) -> None:
    """The result of a command: `data` as JSON on stdout, or the Rich parts that `parts()` makes."""
    from ..render.formats import json_text

    emit(out, json_text(data) if as_json else parts())


def wrote(err, path) -> None:
    """Say on stderr that a file was written."""
    stored(path)
    err.print(f"Wrote {path}", markup=False, highlight=False)


def saying(err, path, write):
    """A writer for results.write_each: write(), then say on stderr that `path` was written."""

    def write_and_say():
        write()
        wrote(err, path)

    return write_and_say


def warn(err, note: str | None) -> None:
    """A note (a fallback, a missing piece) on stderr in yellow, unwrapped; nothing when there is none."""
    if note:
        err.print(note, style="yellow", markup=False, highlight=False, soft_wrap=True)


def say(err, note: str) -> None:
    """A note that matters also with --json (stdout is for the data): on stderr unless -q."""
    if not err.quiet:
        warn(err, note)
    elif not click.get_current_context().params.get("quiet"):
        click.echo(note, err=True)


def run_grid(configs, results_file, grid: dict, data_dir, err, label, eval_points=0, reference=(), probe_every=0):
    """Run (or resume) the trials with a progress bar over runs; the records in config order (the runs of the
    read-only `reference` files, as the shipped ones, are not run again)."""
    from .. import render
    from ..runs.experiments import GridError, make_executor
    from ..runs.experiments import run_grid as run

    executor = make_executor(
        grid["executor"],
        grid["workers"],
        grid["scheduler"],
        data_dir,
        eval_points,
        grid["timeout"],
        probe_every=probe_every,
    )
    executor.notify = lambda note: say(err, note)  # waiting for a Dask worker, --workers capped
    on_interrupt(kept_note(results_file, "runs"))
    stored(results_file)
    already = []
    with render.progress_bar(err, len(configs), label, unit="") as update, compiling_shown(update):

        def progress(done, total, info):
            if info == "resumed" and done == total:
                already.append(done)
            update(done, total, info=info)

        try:
            records = run(configs, results_file, executor, progress=progress, reference=reference)
        except GridError as exc:
            raise click.ClickException(str(exc)) from None
    if already:
        where = f"{results_file} or the runs shipped with gradsel" if reference else results_file
        these = "The run is" if already[0] == 1 else f"All {already[0]} runs are"
        err.print(f"{these} already stored in {where}; nothing was run.", markup=False)
    return records
