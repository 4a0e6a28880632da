"""The command-line options: Click parameter types, the shared option groups, and the TrainConfig they build.

Every training option is made from its TrainConfig field (config.option), so
an option and its field cannot drift apart. Click only: importing this module
imports neither numba, the kernels nor Rich.
"""

import math
import os
import stat
from dataclasses import fields
from pathlib import Path

import click

from .config import CELL_KEYS, DASK_TIMEOUT, METHOD_NAMES, TrainConfig, setting_keys

FIELDS = {f.name: f for f in fields(TrainConfig)}
GRID_KEYS = ("workers", "executor", "scheduler")  # how a grid runs, not what it computes


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


class Whole(click.IntRange):
    """A whole number, also in e-notation (``--iters 1e4``)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
            try:
                x = float(value)
            except ValueError:
                x = None
            if x is not None and math.isfinite(x) and x.is_integer():
                value = int(x)
        return super().convert(value, param, ctx)


def _param_type(f):
    m = f.metadata
    if m["choices"]:
        return click.Choice(m["choices"])
    if f.type is int:
        return Whole(m["low"], m["high"])
    return {"positive": Finite(), "nonneg": Finite(positive=False),
            "fraction": click.FloatRange(0, 1, max_open=True)}[m["kind"]]


def writable_file(ctx, param, value):
    """Callback: an output file whose directory exists and that may be written (checked before any work)."""
    from .results import check_output_path, printable

    if value is not None:
        parent = os.path.dirname(value) or "."
        try:  # not Path.resolve(): a symlink loop or a name over the system's limit is said, not raised
            is_dir = stat.S_ISDIR(os.stat(parent).st_mode)
        except FileNotFoundError:
            is_dir = None
        except OSError as exc:
            raise click.BadParameter(f"{printable(value)!r}: {exc.strerror or exc}; give another path",
                                     ctx, param) from None
        if not is_dir:
            raise click.BadParameter(f"directory {printable(parent)!r} "
                                     f"{'does not exist; create it first' if is_dir is None else 'is not a directory'}",
                                     ctx, param)
    try:
        check_output_path(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def png_file(ctx, param, value):
    """Callback: a writable FILE.png."""
    if value is not None and Path(value).suffix.lower() != ".png":
        raise click.BadParameter(f"{value!r}: figures are written as PNG; give a FILE.png", ctx, param)
    return writable_file(ctx, param, value)


def _list_of(item_type):
    def convert(ctx, param, value):
        items = [v.strip() for v in str(value).split(",")]
        if not all(items):
            raise click.BadParameter(f"{value!r} has an empty item; give values separated by single commas",
                                     ctx, param)
        return list(dict.fromkeys(item_type.convert(v, param, ctx) for v in items))
    return convert


def log_range(ctx, param, value):
    """Callback: LOW,HIGH with 0 < LOW <= HIGH, as a tuple of floats."""
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give LOW,HIGH, e.g. 1e-3,1", ctx, param) from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise click.BadParameter(f"{value!r}: need 0 < LOW <= HIGH (a log-uniform range)", ctx, param)
    return lo, hi


def int_list(ctx, param, value):
    """Callback: a comma list of whole numbers >= 1."""
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of whole numbers, e.g. 20,50", ctx, param)
    if not items or min(items) < 1:
        raise click.BadParameter(f"{value!r}: give one or more whole numbers >= 1, e.g. 20,50", ctx, param)
    return items


def _apply(fn, opts):
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def config_option(name: str, listed: bool = False, **override):
    """The option of TrainConfig field `name`: its type, default and help come from the field.
    listed: a comma list of values (sweep); override: another default or help for one command."""
    f = FIELDS[name]
    flag = "--" + name.replace("_", "-")
    default, help_ = override.get("default", f.default), override.get("help", f.metadata["help"])
    if f.type is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", default=default, show_default=True, help=help_)
    if listed:
        choices = f.metadata["choices"]
        return click.option(flag, name, default=str(default), show_default=True, callback=_list_of(_param_type(f)),
                            metavar="LIST", help=f"{help_}{' One of: ' + ', '.join(choices) + '.' if choices else ''} "
                                                 "Comma-separated to sweep several.")
    return click.option(flag, type=_param_type(f), default=default, show_default=True, help=help_)


def config_options(*names, **overrides):
    """Decorator: the options of these TrainConfig fields; overrides: {name: {"default": ...}}."""
    return lambda fn: _apply(fn, [config_option(n, **overrides.get(n, {})) for n in names])


def training_options(fn):
    """The cell and every setting of a run (all fields but method and seed)."""
    return config_options(*CELL_KEYS, *setting_keys())(fn)


def listed_options(fn):
    """The cell and the one-value settings as comma lists (sweep); flags stay flags."""
    return _apply(fn, [config_option(n, listed=FIELDS[n].type is not bool) for n in (*CELL_KEYS, *setting_keys())])


def machine_options(fn):
    """Where the data is and how many threads compute: these change no result."""
    return _apply(fn, [
        click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="MNIST folder (default: $GRADSEL_DATA_DIR, then the copy shipped with gradsel)."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Numba threads for every kernel call (default: one thread for small calls, for large "
                          "ones the faster of one and all cores, as measured)."),
    ])


def output_options(what: str):
    """--json (print `what` as JSON on stdout) and -q (nothing on stderr)."""
    return lambda fn: _apply(fn, [
        click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout."),
        click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr."),
    ])


def method_list_option(default: str):
    """--methods (or --method): gradient sources, comma-separated."""
    return click.option("--methods", "--method", "methods", default=default, show_default=True,
                        callback=_list_of(click.Choice(METHOD_NAMES)),
                        help=f"Gradient sources, comma-separated: {', '.join(METHOD_NAMES)}.")


margin_option = click.option("--margin", type=Finite(), default=0.002, show_default=True,
                             help="Equivalence margin on test accuracy for the TOST verdicts (0.002: 20 of 10,000 "
                                  "test images).")


def grid_options(fn):
    """How a grid of trials runs: seeds, workers, executor, the results file."""
    return _apply(fn, [
        click.option("--seeds", type=Whole(1, 10000), default=5, show_default=True,
                     help="Seeds 0..N-1 per cell (each varies initial weights and batch order)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Parallel worker processes, here or in a Dask LocalCluster (default: the number of cores)."),
        click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     help="local: worker processes on this machine; dask: a Dask cluster (a LocalCluster of "
                          "--workers, or the one at --scheduler). Needs: pip install 'gradsel[dask]'."),
        click.option("--scheduler", metavar="ADDRESS", default=None,
                     help="With --executor dask: a running dask.distributed scheduler, e.g. tcp://127.0.0.1:8786."),
        click.option("--timeout", type=Finite(), default=DASK_TIMEOUT, show_default=True, expose_value=False,
                     callback=lambda ctx, param, value: ctx.meta.__setitem__("dask_timeout", value),
                     help="With --scheduler: seconds for the scheduler to answer before giving up."),
        click.option("--results", "results_file", type=click.Path(dir_okay=False), callback=writable_file, default=None,
                     help="JSON Lines file that stores the runs; runs already there are not redone."),
    ])


def config_from(opts: dict, **fixed) -> TrainConfig:
    """The TrainConfig of the options given (they are popped from `opts`), checked."""
    return TrainConfig(**{k: opts.pop(k) for k in list(opts) if k in FIELDS}, **fixed).validate()


def grid_from(opts: dict) -> dict:
    """How the grid runs (popped from `opts`): workers, executor, scheduler, and the --timeout of a Dask scheduler."""
    grid = {k: opts.pop(k) for k in GRID_KEYS}
    return {**grid, "timeout": click.get_current_context().meta.get("dask_timeout", DASK_TIMEOUT)}


def flags_from(opts: dict) -> dict:
    """The on/off options (popped from `opts`): a sweep does not list them."""
    return {k: opts.pop(k) for k in list(opts) if FIELDS[k].type is bool}
