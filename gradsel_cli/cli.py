"""The ``gradsel`` command: a Click group of thin commands (parse, build config, call, render).

Heavy modules (numba, the kernels, Rich) are imported inside the commands so
that ``gradsel --help`` and ``--version`` answer at once.
"""

import functools
import json
import math
import sys
from importlib import metadata
from pathlib import Path

import click

METHOD_NAMES = ("analytic", "numeric", "alternate", "select")  # methods.METHODS, without importing numba


class BadInput(click.ClickException):
    """A bad value found past parsing: one line, exit code 2."""

    exit_code = 2


class Group(click.Group):
    """Prints every error as one line ``Error: ...`` (no usage block, no traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Interrupted; finished runs are kept.", err=True)
            sys.exit(130)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


class Finite(click.ParamType):
    """A finite float, > 0 (positive) or >= 0."""

    name = "float"

    def __init__(self, positive: bool = True):
        self.positive = positive

    def convert(self, value, param, ctx):
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x) or x < 0 or (self.positive and x == 0):
            self.fail(f"{value!r} must be {'positive' if self.positive else 'zero or more'} and finite", param, ctx)
        return x


def library_errors(fn):
    """Turn the library's ValueError into a one-line error with exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    return wrapper


def _writable_file(ctx, param, value):
    if value is not None and not Path(value).resolve().parent.is_dir():
        raise click.BadParameter(f"directory {str(Path(value).parent)!r} does not exist; create it first", ctx, param)
    return value


def training_options(fn):
    """The options of one training run, shared by train, compare and table --run."""
    opts = [
        click.option("--shots", type=click.IntRange(1, 5421), default=2, show_default=True, help="Images per class (k)."),
        click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Mini-batch size (B)."),
        click.option("--hidden", type=click.IntRange(min=1), default=50, show_default=True, help="Hidden units (H)."),
        click.option("--iters", type=click.IntRange(min=1), default=10000, show_default=True, help="Iterations."),
        click.option("--lr", type=Finite(), default=0.1, show_default=True, help="Learning rate."),
        click.option("--subset", type=click.Choice(["first", "random"]), default="first", show_default=True,
                     help="Few-shot subset: first k per class in file order, or a seeded random draw."),
        click.option("--init-std", type=Finite(), default=0.01, show_default=True, help="Std of the initial weights."),
        click.option("--fd-step", type=Finite(), default=1e-4, show_default=True, help="Finite-difference step h."),
        click.option("--fd-scheme", type=click.Choice(["central", "forward"]), default="central", show_default=True,
                     help="Finite-difference scheme."),
        click.option("--numeric-every", type=click.IntRange(min=1), default=2, show_default=True,
                     help="alternate: every K-th iteration uses the numeric gradient."),
        click.option("--select-on", type=click.Choice(["batch", "train"]), default="batch", show_default=True,
                     help="select: compare the two candidate updates on the batch or the whole training set."),
        click.option("--eval-every", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Also record test accuracy every N iterations (0: only at the end)."),
        click.option("--test-limit", type=click.IntRange(1, 10000), default=10000, show_default=True,
                     help="Evaluate on the first N test images."),
        click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="MNIST folder (default: $GRADSEL_DATA_DIR, then the shipped copy)."),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="Numba threads (default: all cores)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


CONFIG_KEYS = ("shots", "batch", "hidden", "iters", "lr", "subset", "init_std", "fd_step", "fd_scheme",
               "numeric_every", "select_on", "eval_every", "test_limit")


def _set_threads(threads):
    if threads is None:
        return
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        raise BadInput(f"--threads {threads} is more than the {numba.config.NUMBA_NUM_THREADS} available; "
                       "lower it or set NUMBA_NUM_THREADS")
    numba.set_num_threads(threads)


def _kernels_cached() -> bool:
    """Whether Numba has compiled and cached the kernels on this machine before."""
    import importlib.util

    origin = Path(importlib.util.find_spec("gradsel_cli.kernels").origin)
    return any((origin.parent / "__pycache__").glob("kernels.*.nbi"))


def _compile_notice(err):
    if not _kernels_cached():
        err.print("[dim]Compiling the Numba kernels (first run only, about a minute)…[/]")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(metadata.version("gradsel"), "--version", prog_name="gradsel")
def cli():
    """gradsel: where the gradient comes from in gradient descent.

    Trains a two-layer MNIST network from a few images per class with
    analytic (backprop), numeric (finite-difference), alternating or
    selected gradients, and reproduces the papers that proposed them.
    """


@cli.command()
@click.option("--method", type=click.Choice(METHOD_NAMES), default="alternate", show_default=True,
              help="Gradient source.")
@training_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the initial weights, subset and batch order.")
@click.option("--out", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
              help="Append the run record as one JSON line to FILE.")
@click.option("--save-model", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
              help="Save the trained W1, b1, W2, b2 to FILE.npz.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def train(method, seed, data_dir, threads, out, save_model, as_json, quiet, **opts):
    """Train one network and report its test accuracy.

    \b
    Example:
      gradsel train --shots 2 --batch 8 --hidden 50
      gradsel train --method select --iters 2000 --json > run.json
    """
    import numpy as np

    from . import render, results
    from .data import load_mnist_raw
    from .training import TrainConfig, train as run

    out_console, err = render.consoles(quiet or as_json)
    config = TrainConfig(method=method, seed=seed, **{k: opts[k] for k in CONFIG_KEYS}).validate()
    raw = load_mnist_raw(data_dir)
    _set_threads(threads)
    _compile_notice(err)
    with render.progress_bar(err, config.iters, method) as update:
        result = run(config, raw=raw, progress=lambda d, t, loss: update(d, t, loss=loss))
    record = results.run_record(result)
    if out:
        results.append(out, record)
    if save_model:
        p = result.params
        np.savez(save_model, W1=p.W1, b1=p.b1, W2=p.W2, b2=p.b2)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        out_console.print(render.train_summary(record))
    if result.diverged:
        err.print(f"[red]Diverged at iteration {result.iterations_done}: the loss is not finite. Try a smaller --lr.")
        return 1


def _int_list(ctx, param, value):
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of whole numbers, e.g. 20,50", ctx, param)
    if not items or min(items) < 1:
        raise click.BadParameter(f"{value!r}: give one or more whole numbers >= 1, e.g. 20,50", ctx, param)
    return items


@cli.command()
@click.option("--hidden", default="20,50,100", show_default=True, callback=_int_list, help="Hidden sizes, comma-separated.")
@click.option("--batch", default="1,8,32", show_default=True, callback=_int_list, help="Batch sizes, comma-separated.")
@click.option("--repeat", type=click.IntRange(1, 1000), default=7, show_default=True, help="Timed calls per measurement (median).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None, help="MNIST folder.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Numba threads (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@library_errors
def bench(hidden, batch, repeat, data_dir, threads, as_json, quiet):
    """Time the loss, both gradients, the naive reference and each method's iteration.

    \b
    Example:
      gradsel bench --hidden 50 --batch 8
      gradsel bench --json > bench.json
    """
    import numba

    from . import render
    from .benchmark import run_bench

    out, err = render.consoles(quiet or as_json)
    _set_threads(threads)
    _compile_notice(err)
    with render.progress_bar(err, len(hidden) * len(batch), "bench", unit="") as update:
        rows = run_bench(hidden, batch, repeat, data_dir, progress=lambda d, t, label: update(d, t, info=label))
    n_threads = numba.get_num_threads()
    if as_json:
        click.echo(json.dumps({"threads": n_threads, "repeat": repeat, "rows": rows}, indent=2))
    else:
        for table in render.bench_tables(rows, n_threads):
            out.print(table)
