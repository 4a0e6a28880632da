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

from .. import sources
from ..config import (
    CELL_KEYS,
    DASK_TIMEOUT,
    MARGIN,
    MAX_DASK_TIMEOUT,
    METHOD_NAMES,
    POLICY_READS,
    TrainConfig,
    scheduler_address,
    setting_keys,
)

FIELDS = {f.name: f for f in fields(TrainConfig)}
EXECUTOR_KEYS = ("workers", "executor", "scheduler")  # how a grid runs, not what it computes


class Finite(click.ParamType):
    """A finite float, > 0 (positive) or >= 0, and at most `high` where one is given."""

    name = "float"

    def __init__(self, positive: bool = True, high: float | None = None):
        self.positive = positive
        self.high = high

    def convert(self, value, param, ctx):
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x) or x < 0 or (self.positive and x == 0):
            self.fail(f"{value!r} must be {'positive' if self.positive else 'zero or more'} and finite", param, ctx)
        if self.high is not None and x > self.high:
            self.fail(f"{value!r} is more than {self.high:g}, the most it can be", param, ctx)
        return x


class Fraction(click.FloatRange):
    """A number in [0, 1) (not NaN, which click's range check lets through)."""

    def __init__(self):
        super().__init__(0, 1, max_open=True)

    def convert(self, value, param, ctx):
        x = super().convert(value, param, ctx)
        if math.isnan(x):
            self.fail(f"{value!r} is not in the range 0<=x<1.", param, ctx)
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
    return {"positive": Finite(), "nonneg": Finite(positive=False), "fraction": Fraction()}[m["kind"]]


def writable_file(ctx, param, value):
    """Callback: an output file whose directory exists and that may be written (checked before any work)."""
    from ..runs.results import check_output_path, readable
    from ..text import printable

    if value is not None and readable(value) != Path(value):
        return value  # results/NAME.jsonl outside a checkout: the shipped copy, to read (a --run makes results/)
    if value is not None:
        parent = os.path.dirname(value) or "."
        try:  # not Path.resolve(): a symlink loop or a name over the system's limit is said, not raised
            is_dir = stat.S_ISDIR(os.stat(parent).st_mode)
        except FileNotFoundError:
            is_dir = None
        except OSError as exc:
            raise click.BadParameter(
                f"{printable(value)!r}: {exc.strerror or exc}; give another path", ctx, param
            ) from None
        if not is_dir:
            raise click.BadParameter(
                f"directory {printable(parent)!r} "
                f"{'does not exist; create it first' if is_dir is None else 'is not a directory'}",
                ctx,
                param,
            )
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


def plot_option(what: str):
    """--plot FILE.png: write `what` there (a writable PNG path, checked before the work)."""
    return click.option(
        "--plot",
        type=click.Path(dir_okay=False),
        callback=png_file,
        default=None,
        help=f"Write {what} to FILE.png (needs matplotlib).",
    )


def _items(ctx, param, value, item_type, example: str) -> list:
    """The one parser of every list option: VALUE,VALUE,... (a repeated option's values joined), each item
    stripped of spaces around it and checked as the one-value option checks it (the same message); an
    empty list or an empty item is refused."""
    text = ",".join(value) if isinstance(value, (tuple, list)) else str(value)
    if not text.strip():
        raise click.BadParameter(f"give one or more values separated by commas, e.g. {example}", ctx, param)
    items = [v.strip() for v in text.split(",")]
    if not all(items):
        raise click.BadParameter(
            f"{text!r} has an empty item; give values separated by single commas, e.g. {example}", ctx, param
        )
    return [item_type.convert(v, param, ctx) for v in items]


def comma_list(item_type, example: str):
    """Callback: a comma list of `item_type` values (see _items), in the order given; a value given twice
    (also as 1e-3 and 0.001) is refused."""

    def convert(ctx, param, value):
        values = _items(ctx, param, value, item_type, example)
        for i, v in enumerate(values):
            if v in values[:i]:
                raise click.BadParameter(f"{v!r} is given twice; give each value once", ctx, param)
        return values

    return convert


def log_range(ctx, param, value):
    """Callback: LOW,HIGH with 0 < LOW <= HIGH, as a tuple of floats (items parsed as every list is)."""
    values = _items(ctx, param, value, Finite(), "1e-3,1")
    if len(values) != 2:
        raise click.BadParameter(f"{value!r}: give LOW,HIGH, e.g. 1e-3,1", ctx, param)
    lo, hi = values
    if lo > hi:
        raise click.BadParameter(f"{value!r}: need 0 < LOW <= HIGH (a log-uniform range)", ctx, param)
    return lo, hi


def size_list(name: str, example: str):
    """Callback: a comma list of sizes with the range of TrainConfig field `name` (bench's --hidden, --batch)."""
    return comma_list(_param_type(FIELDS[name]), example)


def list_option(flag: str, default: str, callback, help: str, *aliases: str, dest: str | None = None):
    """An option of comma lists: the values of a repeated option are joined (--x 1 --x 2 is --x 1,2)."""
    return click.option(
        flag,
        *aliases,
        *((dest,) if dest else ()),
        default=[default],
        multiple=True,
        show_default=True,
        callback=callback,
        metavar="LIST",
        help=help,
    )


def scheduler_option(ctx, param, value):
    """Callback: a Dask scheduler's address (config.scheduler_address), or None."""
    try:
        return None if value is None else scheduler_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _apply(fn, opts):
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _example(f) -> str:
    """Two valid values of field f, comma-separated (for the messages of a listed option)."""
    m = f.metadata
    if m["choices"]:
        return ",".join(m["choices"][:2])
    if f.type is int:
        return f"{f.default},{f.default * 2}"
    return {"positive": f"{f.default:g},{f.default / 2:g}", "nonneg": "0,1e-4", "fraction": "0,0.5"}[m["kind"]]


def config_option(name: str, listed: bool = False, **override):
    """The option of TrainConfig field `name`: its type, default and help come from the field.
    listed: a comma list of values (sweep); override: another default or help for one command."""
    f = FIELDS[name]
    flag = "--" + name.replace("_", "-")
    former = [f"--{old.replace('_', '-')}" for old in f.metadata["formerly"]]  # its former names' flags, still taken
    default, help_ = override.get("default", f.default), override.get("help", f.metadata["help"])
    if f.type is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", default=default, show_default=True, help=help_)
    if f.type is str and not f.metadata["choices"]:  # the one free-text field: --sources, itself a list
        return list_option(flag, default, _joined(source_list_option(default)), help_)
    if listed:
        choices = f.metadata["choices"]
        return click.option(
            flag,
            *former,
            name,
            default=[str(default)],
            multiple=True,
            show_default=True,
            callback=comma_list(_param_type(f), _example(f)),
            metavar="LIST",
            help=f"{help_}{' One of: ' + ', '.join(choices) + '.' if choices else ''} "
            "Comma-separated to sweep several.",
        )
    return click.option(flag, *former, name, type=_param_type(f), default=default, show_default=True, help=help_)


def config_options(*names, **overrides):
    """Decorator: the options of these TrainConfig fields; overrides: {name: {"default": ...}}."""
    return lambda fn: _apply(fn, [config_option(n, **overrides.get(n, {})) for n in names])


def training_options(fn=None, *, without: tuple[str, ...] = (), preset: tuple[str, ...] = ()):
    """The cell and every setting of a run (all fields but method and seed), but those `without` (a command
    that sets them itself: tune's learning rate and weight decay); as @training_options or
    @training_options(without=...). `preset`: the fields a command's presets set (lab): their options default
    to None, the preset's value, and say so."""
    names = [n for n in (*CELL_KEYS, "sources", *setting_keys()) if n not in without]
    by_preset = {n: {"default": None, "help": f"{FIELDS[n].metadata['help']} [default: the preset's]"} for n in preset}
    decorate = config_options(*names, **by_preset)
    return decorate if fn is None else decorate(fn)


def listed_options(fn):
    """The cell and the one-value settings as comma lists (sweep); flags stay flags."""
    names = (*CELL_KEYS, "sources", *setting_keys())
    return _apply(fn, [config_option(n, listed=_listable(FIELDS[n])) for n in names])


def _listable(f) -> bool:
    """Whether a field's option takes a comma list of values to sweep: not a flag, and not itself a list."""
    return f.type is not bool and not (f.type is str and not f.metadata["choices"])


def machine_options(fn):
    """Where the data is and how many threads compute: these change no result."""
    return _apply(
        fn,
        [
            click.option(
                "--data-dir",
                type=click.Path(exists=True, file_okay=False),
                default=None,
                help="MNIST folder (default: $GRADSEL_DATA_DIR, then the copy shipped with gradsel).",
            ),
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                default=None,
                help="Numba threads for every kernel call (default: one thread for small calls, for large "
                "ones the faster of one and all cores, as measured).",
            ),
        ],
    )


def output_options(what: str):
    """--json (print `what` as JSON on stdout) and -q (nothing on stderr)."""
    return lambda fn: _apply(
        fn,
        [
            click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout."),
            click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr."),
        ],
    )


def source_list_option(example: str):
    """Callback: a comma list of registered gradient sources, by the rules of every list."""
    return comma_list(click.Choice(sources.names()), example)


def _joined(callback):
    """A list callback whose values are stored joined by commas (TrainConfig.sources is one string)."""
    return lambda ctx, param, value: ",".join(callback(ctx, param, value))


def method_list_option(default: str):
    """--methods (or --method): methods (a source alone, or a policy over --sources), comma-separated."""
    return click.option(
        "--methods",
        "--method",
        "methods",
        default=[default],
        multiple=True,
        show_default=True,
        metavar="LIST",
        callback=comma_list(click.Choice(METHOD_NAMES), "analytic,select"),
        help=f"Methods, comma-separated: a gradient source alone or a policy over --sources: "
        f"{', '.join(METHOD_NAMES)}.",
    )


margin_option = click.option(
    "--margin",
    type=Finite(),
    default=MARGIN,
    show_default=True,
    help=f"Equivalence margin on test accuracy for the TOST verdicts ({MARGIN:g}: "
    f"{MARGIN * 10_000:.0f} of 10,000 test images).",
)


budget_option = click.option(
    "--budget",
    type=Finite(),
    default=None,
    metavar="N",
    help="Instead of --iters: train each method until N forward-pass equivalents, at its gradients' measured "
    "costs (gradsel bench --costs); a method that costs more an iteration gets fewer iterations.",
)


probe_option = click.option(
    "--probe-every",
    type=Whole(min=0),
    default=0,
    show_default=True,
    metavar="K",
    help="Every K iterations, compare each source's gradient with backprop's at the run's weights and batch: "
    "cosine and relative error (and for select, each candidate's loss against the first's), in the record and "
    "the --plot. Changes nothing in the run (0: no probe).",
)


def budgeted(configs, budget):
    """The configs with the iterations --budget buys each (as they are without one); --iters given beside it is
    refused."""
    from ..numerics.ledger import within_budget

    if budget is None:
        return list(configs)
    if "iters" in given_options():
        raise click.UsageError(
            "--budget sets each method's iterations (what N forward-pass equivalents buy); drop --iters"
        )
    return [within_budget(c, budget) for c in configs]


power_option = click.option(
    "--power",
    "power_images",
    type=click.IntRange(min=1),
    default=None,
    metavar="IMAGES",
    help="Also say, for each comparison, how many seeds a paired t-test (0.05, 80% power) needs to tell a "
    "difference of IMAGES test images apart at the spread the pairs show.",
)


def grid_options(fn=None, *, seeds: int = 5):
    """How a grid of trials runs: seeds (`seeds` by default), workers, executor, the results file; as
    @grid_options or @grid_options(seeds=N)."""
    if fn is None:
        return lambda f: grid_options(f, seeds=seeds)
    return _apply(
        fn,
        [
            click.option(
                "--seeds",
                type=Whole(1, 10000),
                default=seeds,
                show_default=True,
                help="Seeds 0..N-1 per cell (each varies initial weights and batch order).",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=None,
                help="Parallel worker processes, here or in a Dask LocalCluster (default: the number of cores).",
            ),
            click.option(
                "--executor",
                type=click.Choice(["local", "dask"]),
                default="local",
                show_default=True,
                help="local: worker processes on this machine; dask: a Dask cluster (a LocalCluster of "
                "--workers, or the one at --scheduler). Needs: pip install 'gradsel[dask]'.",
            ),
            click.option(
                "--scheduler",
                metavar="ADDRESS",
                default=None,
                callback=scheduler_option,
                help="With --executor dask: a running dask.distributed scheduler, tcp://HOST:PORT, e.g. "
                "tcp://127.0.0.1:8786.",
            ),
            click.option(
                "--timeout",
                type=Finite(high=MAX_DASK_TIMEOUT),
                default=DASK_TIMEOUT,
                show_default=True,
                expose_value=False,
                callback=lambda ctx, param, value: ctx.meta.__setitem__("dask_timeout", value),
                help="With --scheduler: seconds for the scheduler to answer, and for a worker to join it "
                f"when it has none, before giving up (at most {MAX_DASK_TIMEOUT:g}: a day).",
            ),
            click.option(
                "--results",
                "results_file",
                type=click.Path(dir_okay=False),
                callback=writable_file,
                default=None,
                help="JSON Lines file that stores the runs; runs already there are not redone.",
            ),
        ],
    )


def setting_option(fn):
    """--setting NAME: the fields of a named setting (papers.NAMED_SETTINGS), read by config_from."""
    from ..papers import NAMED_SETTINGS

    listed = "; ".join(
        f"{name}: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in fields.items())
        for name, fields in NAMED_SETTINGS.items()
    )
    return click.option(
        "--setting",
        type=click.Choice(tuple(NAMED_SETTINGS)),
        default=None,
        help=f"Several settings at once, each overridden by its own option when given. {listed}: the textbook's "
        "chapter-5 two-layer net (Deep Learning from Scratch) as its code trains it.",
    )(fn)


def config_from(opts: dict, **fixed) -> TrainConfig:
    """The TrainConfig of the options given (they are popped from `opts`), checked; a --setting's fields where
    their own options were not given."""
    if (name := opts.pop("setting", None)) is not None:
        from ..papers import NAMED_SETTINGS

        given = given_options()
        opts.update({k: v for k, v in NAMED_SETTINGS[name].items() if k not in given})
    return TrainConfig(**{k: opts.pop(k) for k in list(opts) if k in FIELDS}, **fixed).validate()


def not_offered(flag: str, remedy: str):
    """A hidden option that a command does not take: given, it is refused with `remedy` (said instead of
    Click's "no such option", which would suggest a look-alike)."""

    def refuse(ctx, param, value):
        if value is not None:
            raise click.UsageError(f"{flag}: {remedy}")

    return click.option(flag, hidden=True, expose_value=False, default=None, callback=refuse)


def given_options() -> set[str]:
    """The parameters of the current command given on its command line (or by environment), not left at their
    defaults."""
    ctx = click.get_current_context()
    return {k for k in ctx.params if ctx.get_parameter_source(k) not in (None, click.core.ParameterSource.DEFAULT)}


def refuse_unread(configs, chooser: str | None = "--method") -> None:
    """A policy's or a source's option given on the command line that none of `configs` (the runs of the
    command) reads is an error naming who reads it: accepted and then ignored, it would only mislead.
    `chooser`: the option that chose the runs (--method, gradcheck's --check; None: the command's own, as a
    table preset's), named in the remedy."""
    given = given_options()
    readers = {k: list(v) for k, v in POLICY_READS.items()}
    for s in sources.REGISTRY.values():
        for k in dict.fromkeys((*s.reads, *s.options)):
            readers.setdefault(k, []).append(s.name)
    read = set().union(*(c.read_options() for c in configs))
    methods = ",".join(sorted({c.method for c in configs}, key=METHOD_NAMES.index))
    for k in sorted(given & set(readers) - read):
        flag, who = "--" + k.replace("_", "-"), readers[k]
        if chooser is None:
            remedy, runs = "", f"the preset's methods: {methods.replace(',', ', ')}"
        elif chooser == "--check":
            remedy, runs = f" or add {' or '.join(who)} to --check", f"--check {methods}"
        elif k not in POLICY_READS and "sources" in read:
            remedy, runs = f" or add {' or '.join(who)} to --sources", f"--method {methods}"
        else:
            remedy, runs = f" or choose --method {' or '.join(who)}", f"--method {methods}"
        raise click.UsageError(
            f"{flag} is read only by {', '.join(who)}, and no run here uses "
            f"{'it' if len(who) == 1 else 'any of them'} ({runs}); drop {flag}{remedy}"
        )


def grid_from(opts: dict) -> dict:
    """How the grid runs (popped from `opts`): workers, executor, scheduler, and the --timeout of a Dask scheduler."""
    grid = {k: opts.pop(k) for k in EXECUTOR_KEYS}
    return {**grid, "timeout": click.get_current_context().meta.get("dask_timeout", DASK_TIMEOUT)}


def flags_from(opts: dict) -> dict:
    """The options a sweep does not list (popped from `opts`): the on/off ones, and --sources (itself a list)."""
    return {k: opts.pop(k) for k in list(opts) if k in FIELDS and not _listable(FIELDS[k])}
