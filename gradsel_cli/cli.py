"""The ``gradsel`` command: a Click group of thin commands (parse, build config, call, render).

Every training option is made from its TrainConfig field (config.option), so
an option and its field cannot drift apart. Heavy modules (numba, the kernels,
Rich) are imported inside the commands so that ``gradsel --help`` and
``--version`` answer at once.
"""

import functools
import json
import math
import sys
from dataclasses import fields
from importlib import metadata
from pathlib import Path

import click

from .config import CELL_KEYS, DASK_TIMEOUT, DIGITS_FROM, GRADCHECK_STEPS, METHOD_NAMES, STUDIES, TrainConfig, setting_keys

CURVE_POINTS = 20  # test-accuracy evaluations of a learning curve (--plot)
FIELDS = {f.name: f for f in fields(TrainConfig)}


# --- errors, Ctrl-C, warnings ---------------------------------------------------------------------------------

class BadInput(click.ClickException):
    """A bad value found past parsing: one line, exit code 2."""

    exit_code = 2


class Group(click.Group):
    """Prints every error as one line ``Error: ...`` (no usage block, no traceback); Ctrl-C is one line and
    exit code 130; bare ``gradsel`` prints the help."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = sys.argv[1:] if args is None else list(args)
        _quiet_warnings("-q" in args or "--quiet" in args)
        try:
            rv = super().main(args or ["--help"], prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _interrupted()
        except SystemError as exc:  # Ctrl-C inside a Numba kernel surfaces as a chain of SystemErrors
            if not _caused_by_interrupt(exc):
                raise
            _interrupted()
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


_INTERRUPT_NOTE = ["Interrupted."]  # what Ctrl-C leaves behind; a command that writes as it goes says so


def _on_interrupt(note: str) -> None:
    _INTERRUPT_NOTE[0] = note


def _caused_by_interrupt(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _interrupted():
    click.echo(f"\n{_INTERRUPT_NOTE[0]}", err=True)
    sys.exit(130)


def _quiet_warnings(quiet: bool) -> None:
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


# --- parameter types --------------------------------------------------------------------------------------------

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


def _writable_file(ctx, param, value):
    from .results import check_output_path

    if value is not None and not Path(value).resolve().parent.is_dir():
        raise click.BadParameter(f"directory {str(Path(value).parent)!r} does not exist; create it first", ctx, param)
    try:
        check_output_path(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def _png_file(ctx, param, value):
    if value is not None and Path(value).suffix.lower() != ".png":
        raise click.BadParameter(f"{value!r}: figures are written as PNG; give a FILE.png", ctx, param)
    return _writable_file(ctx, param, value)


def _list_of(item_type):
    def convert(ctx, param, value):
        items = [v.strip() for v in str(value).split(",")]
        if not all(items):
            raise click.BadParameter(f"{value!r} has an empty item; give values separated by single commas",
                                     ctx, param)
        return list(dict.fromkeys(item_type.convert(v, param, ctx) for v in items))
    return convert


def _range(ctx, param, value):
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give LOW,HIGH, e.g. 1e-3,1", ctx, param) from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise click.BadParameter(f"{value!r}: need 0 < LOW <= HIGH (a log-uniform range)", ctx, param)
    return lo, hi


# --- shared option groups ---------------------------------------------------------------------------------------

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
        click.option("--results", "results_file", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
                     help="JSON Lines file that stores the runs; runs already there are not redone."),
    ])


def _config(opts: dict, **fixed) -> TrainConfig:
    """The TrainConfig of the options given (they are popped from `opts`), checked."""
    return TrainConfig(**{k: opts.pop(k) for k in list(opts) if k in FIELDS}, **fixed).validate()


# --- what every command does around its work ----------------------------------------------------------------------

def _prepare(threads, err, *figures):
    """Before any work: matplotlib when a figure is asked for, the thread count, the first-run notice."""
    from . import kernels

    if any(figures):
        from .figures import require

        require()
    kernels.set_threads(threads)
    if not kernels.kernels_cached():
        err.print("[dim]Compiling the Numba kernels (first run only, about a minute)…[/]")


def _show(out, data, as_json: bool, parts) -> None:
    """The result of a command: `data` as JSON on stdout, or the Rich parts that `parts()` makes."""
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for part in parts():
            out.print(part)


def _wrote(err, path) -> None:
    err.print(f"Wrote {path}", markup=False, highlight=False)


def _run_grid(configs, results_file, grid: dict, data_dir, err, label, eval_points=0):
    """Run (or resume) the trials with a progress bar over runs; the records in config order."""
    from . import render
    from .experiments import GridError, make_executor, run_grid

    executor = make_executor(grid["executor"], grid["workers"], grid["scheduler"], data_dir, eval_points,
                             click.get_current_context().meta.get("dask_timeout", DASK_TIMEOUT))
    _on_interrupt(f"Interrupted; the finished runs are kept in {results_file}: run the same command again to resume."
                  if results_file else "Interrupted; no run was stored (give --results FILE to keep finished runs).")
    already = []
    with render.progress_bar(err, len(configs), label, unit="") as update:
        def progress(done, total, info):
            if info == "resumed" and done == total:
                already.append(done)
            update(done, total, info=info)
        try:
            records = run_grid(configs, results_file, executor, progress=progress)
        except GridError as exc:
            raise click.ClickException(str(exc)) from None
    if already:
        err.print(f"All {already[0]} runs are already stored in {results_file}; nothing was run.", markup=False)
    return records


# --- the commands -------------------------------------------------------------------------------------------------

@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(metadata.version("gradsel"), "-V", "--version", prog_name="gradsel")
def cli():
    """gradsel: where the gradient comes from in gradient descent.

    Trains a two-layer MNIST network from a few images per class with
    analytic (backprop), numeric (finite-difference), alternating or
    selected gradients, and reproduces the papers that proposed them.
    Shell completion: eval "$(_GRADSEL_COMPLETE=bash_source gradsel)".
    """


@cli.command()
@config_options("method")
@training_options
@config_options("seed")
@machine_options
@click.option("--out", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
              help="Append the run record as one JSON line to FILE.")
@click.option("--save-model", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
              help="Save the trained W1, b1, W2, b2 (and batch-norm gamma, beta, running statistics) to FILE.npz.")
@click.option("--plot", type=click.Path(dir_okay=False), callback=_png_file, default=None,
              help=f"Write learning curves (loss, test accuracy at {CURVE_POINTS} points) to FILE.png "
                   "(needs matplotlib).")
@output_options("the run record")
@library_errors
def train(data_dir, threads, out, save_model, plot, as_json, quiet, **opts):
    """Train one network and report its test accuracy.

    \b
    Example:
      gradsel train --shots 2 --batch 8 --hidden 50
      gradsel train --method select --iters 2000 --json > run.json
      gradsel train --method select --plot curves.png
    """
    from . import render, results
    from .data import load_mnist_raw
    from .training import divergence_hint, model_path, overshoot_warning, write_model
    from .training import train as run

    out_console, err = render.consoles(quiet or as_json)
    config = _config(opts)
    results.probe(plot, out, save_model and model_path(save_model))
    raw = load_mnist_raw(data_dir)
    _prepare(threads, err, plot)
    _on_interrupt("Interrupted; nothing was written (train writes its outputs when the run ends).")
    with render.progress_bar(err, config.iters, config.method) as update:
        result = run(config, raw=raw, progress=lambda d, t, loss: update(d, t, loss=loss),
                     eval_points=CURVE_POINTS if plot else 0)
    record = results.run_record(result)

    def write_plot():
        from .figures import curves_figure, figure_title
        from .report import curves

        curves_figure(plot, curves([record], [config.method]), figure_title("train", record["config"], [config.seed]))
        _wrote(err, plot)

    def write_npz():
        write_model(model_path(save_model), result)
        _wrote(err, model_path(save_model))

    failed = results.write_each([(plot, write_plot), (out, lambda: results.append(out, record)),
                                 (save_model, write_npz)])
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        out_console.print(render.train_summary(record))
    if failed:
        raise BadInput("; ".join(failed) + " (the other outputs were written)")
    if result.diverged:
        err.print(f"Diverged at iteration {result.iterations_done}: the loss is not finite. "
                  f"{divergence_hint(config)}", style="red", markup=False, soft_wrap=True)
        return 1
    if (overshoot := overshoot_warning(result)) is not None:
        err.print(f"Warning: {overshoot}", style="yellow", markup=False, soft_wrap=True)


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
@machine_options
@click.option("--background", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Busy-loop processes kept running while timing (a loaded machine); always stopped at the end.")
@output_options("the measurements")
@library_errors
def bench(hidden, batch, repeat, data_dir, threads, background, as_json, quiet):
    """Time the loss, both gradients, the naive reference and each method's iteration.

    \b
    Example:
      gradsel bench --hidden 50 --batch 8
      gradsel bench --hidden 50 --batch 8 --background 2   # beside two busy processes
      gradsel bench --json > bench.json
    """
    from . import benchmark, kernels, render

    out, err = render.consoles(quiet or as_json)
    _prepare(threads, err)
    with benchmark.background_load(background), \
            render.progress_bar(err, len(hidden) * len(batch), "bench", unit="") as update:
        rows = benchmark.run_bench(hidden, batch, repeat, data_dir,
                                   progress=lambda d, t, label: update(d, t, info=label))
    n_threads = kernels.get_threads()  # None: the automatic policy
    label = n_threads or f"auto (1 or {kernels.max_threads()})"
    if as_json:
        click.echo(json.dumps({"threads": n_threads, "max_threads": kernels.max_threads(), "background": background,
                               "repeat": repeat, "rows": rows}, indent=2))
    else:
        for table in render.bench_tables(rows, label):
            out.print(table)


@cli.command()
@method_list_option(",".join(METHOD_NAMES))
@training_options
@machine_options
@grid_options
@click.option("--plot", type=click.Path(dir_okay=False), callback=_png_file, default=None,
              help="Write learning curves (mean and band over seeds) and where select keeps the numeric update "
                   "to FILE.png (needs matplotlib).")
@click.option("--show-digits", type=click.IntRange(0, 10000), default=0, show_default=True,
              help="Show N test images with each method's prediction (seed 0; the paper's Figure 2).")
@click.option("--digits-from", type=click.Choice(DIGITS_FROM), default="first", show_default=True,
              help="Which test images: the first, where the methods' predictions differ, or random.")
@click.option("--figure", type=click.Path(dir_okay=False), callback=_png_file, default=None,
              help="Write the digits (--show-digits N, else 16) to FILE.png (needs matplotlib).")
@margin_option
@output_options("the summary")
@click.option("--csv", "as_csv", is_flag=True, help="Print the per-method summary as CSV on stdout.")
@library_errors
def compare(methods, data_dir, threads, seeds, results_file, plot, show_digits, digits_from, figure, margin, as_json,
            as_csv, quiet, **opts):
    """Run methods over seeds, paired, and compare them with the baseline.

    Every method gets the same initial weights, subset and batch order for a
    given seed, so differences are differences of method alone. Each method
    gets a verdict against the baseline from two one-sided tests (TOST) with
    --margin: EQUIVALENT (the 90% CI of the difference lies within the
    margin), BETTER or WORSE (a difference, not shown to be within it) or
    INCONCLUSIVE.

    \b
    Example:
      gradsel compare --shots 2 --batch 8 --hidden 50 --seeds 5
      gradsel compare --methods analytic,select --iters 2000 --json
      gradsel compare --methods analytic,alternate --seeds 1 --show-digits 16 --figure figure2.png
      gradsel compare --plot curves.png
    """
    from . import render, results
    from .experiments import trials
    from .report import compare_summary, curves

    if as_json and as_csv:
        raise BadInput("--json and --csv print different things to stdout; choose one")
    out, err = render.consoles(quiet or as_json or as_csv)
    grid = {k: opts.pop(k) for k in ("workers", "executor", "scheduler")}
    base = _config(opts)
    _prepare(threads, err, plot, figure)
    results.probe(plot, figure)
    configs = trials(base, [dict(method=m) for m in methods], range(seeds))
    records = _run_grid(configs, results_file, grid, data_dir, err, "runs", CURVE_POINTS if plot else 0)
    summary, curve_data = compare_summary(records, methods, margin), curves(records, methods)
    digits = _digits(records, methods, show_digits or 16, digits_from, data_dir, err) if show_digits or figure else None
    if as_json:
        from .report import digits_json

        click.echo(json.dumps({"config": base.to_dict(), **summary,
                               **({"digits": digits_json(digits)} if show_digits else {})}, indent=2))
    elif as_csv:
        click.echo(render.compare_csv(summary), nl=False)
    else:
        for part in render.compare_tables(summary, base.to_dict(), curve_data):
            out.print(part)
        if show_digits:
            out.print(render.digits_grid(digits["images"], digits["labels"], digits["indices"],
                                         digits["predictions"], digits["title"]))
    _compare_figures(err, figure, plot, digits, curve_data, base, seeds)


def _digits(records, methods, n, how, data_dir, err) -> dict:
    from .data import load_mnist_raw
    from .report import digits_view

    _, _, x_test, y_test = load_mnist_raw(data_dir)
    digits, note = digits_view(records, methods, n, how, x_test, y_test)
    if note:
        err.print(note, style="yellow", markup=False, soft_wrap=True)
    return digits


def _compare_figures(err, figure, plot, digits, curve_data, base, seeds) -> None:
    if figure:
        from .figures import digits_figure

        digits_figure(figure, digits["images"], digits["labels"], digits["indices"], digits["predictions"],
                      digits["title"])
        _wrote(err, figure)
    if plot:
        from .figures import curves_figure, figure_title

        if curve_data["missing_accuracy"]:
            err.print(f"{curve_data['missing_accuracy']} stored run(s) have no test-accuracy curve (made without "
                      "--plot); the accuracy panel is left empty", style="yellow", markup=False)
        curves_figure(plot, curve_data, figure_title("compare", base.to_dict(), range(seeds)))
        _wrote(err, plot)


@cli.command()
@method_list_option("alternate")
@listed_options
@machine_options
@grid_options
@output_options("the run records")
@library_errors
def sweep(methods, data_dir, threads, seeds, results_file, as_json, quiet, **opts):
    """Run a grid over any training options given as comma lists, over seeds.

    Every combination of the listed values is a cell; each cell runs seeds
    0..N-1. The table has one row per cell: the options that vary, accuracy
    mean ± 95% CI, final loss, runs and diverged runs. An option that a method
    does not read (--fd-step for analytic, say) gives that method one run,
    shown in each row. With --results FILE the runs are stored and an
    interrupted sweep resumes.

    \b
    Example:
      gradsel sweep --method analytic,alternate --fd-step 1e-3,1e-4,1e-5 --seeds 10
      gradsel sweep --lr 0.05,0.1,0.2 --iters 2000 --results lr.jsonl --json
      gradsel sweep --hidden 20,50 --executor dask --scheduler tcp://127.0.0.1:8786
    """
    from . import render
    from .experiments import effective, grid_cells, trials

    out, err = render.consoles(quiet or as_json)
    grid = {k: opts.pop(k) for k in ("workers", "executor", "scheduler")}
    flags = {k: opts.pop(k) for k in list(opts) if FIELDS[k].type is bool}
    lists = {"method": methods, **opts}
    _prepare(threads, err)
    configs = trials(TrainConfig(**flags), grid_cells(lists), range(seeds))
    records = _run_grid([effective(c) for c in configs], results_file, grid, data_dir, err, "sweep")
    if as_json:
        click.echo(json.dumps(records, indent=2))
    else:
        from .report import sweep_summary  # scipy: a second to import, not needed for --json

        shown = [{**r, "config": c.to_dict()} for r, c in zip(records, configs)]  # each row with its own values
        out.print(render.sweep_table(sweep_summary(shown, [k for k, v in lists.items() if len(v) > 1]), seeds))


@cli.command()
@click.option("--preset", type=click.Choice(["alternate", "select", *STUDIES]), default="alternate",
              show_default=True, help="alternate: paper A's Table 1; select: paper B's Table 1; conditions: when the "
                                      "gradient source matters (study); subsets: first-k against random subsets.")
@click.option("--run", "run_missing", is_flag=True, help="Run the missing cells first (resumable).")
@config_options(*setting_keys())
@margin_option
@machine_options
@grid_options
@click.option("--format", "fmt", type=click.Choice(["rich", "markdown", "csv", "json", "latex"]), default="rich",
              show_default=True, help="Output format (the studies: rich, markdown or json).")
@click.option("--no-paper", is_flag=True, help="Hide the published numbers.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def table(preset, run_missing, margin, data_dir, threads, seeds, results_file, fmt, no_paper, quiet, **opts):
    """Print a paper's Table 1 from stored runs, beside the published numbers, with verdicts.

    Cells are the mean ± 95% CI over seeds; the best method of each group is
    bold. Below the table, each claim of the paper is tested on the paired
    differences, and with two one-sided tests (TOST) against --margin:
    EQUIVALENT, BETTER, WORSE or INCONCLUSIVE. With --run, missing cells are computed first into
    results/<preset>.jsonl (or --results FILE); an interrupted run resumes.

    \b
    Example:
      gradsel table
      gradsel table --preset select --format markdown
      gradsel table --run --seeds 5 --workers 2
      gradsel table --run --subset random --results results/alternate-random.jsonl
      gradsel table --preset conditions
    """
    from . import render, results
    from .experiments import preset_trials
    from .report import paper_table, settings_of

    out, err = render.consoles(quiet)
    grid = {k: opts.pop(k) for k in ("workers", "executor", "scheduler")}
    base = _config(opts)
    path = Path(results_file) if results_file else results.default_path(preset, for_writing=run_missing)
    if run_missing:
        _prepare(threads, err)
        results.make_parent(path)
        _run_grid(preset_trials(preset, base, range(seeds)), path, grid, data_dir, err, preset)
    if preset in STUDIES:
        return _study(preset, results.load(path), margin, fmt, out, err, path)
    data = paper_table(preset, results.load(path), settings_of(base.to_dict()), margin)
    _say_missing(err, data, path, run_missing)
    if fmt == "rich":
        for part in render.paper_table_rich(data, not no_paper):
            out.print(part)
    elif fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(render.paper_table_csv(data), nl=False)
    else:
        click.echo((render.paper_table_markdown if fmt == "markdown" else render.paper_table_latex)(data, not no_paper))


def _study(preset, records, margin, fmt, out, err, path):
    from . import render
    from .report import conditions_summary, subsets_summary

    summary = conditions_summary(records, margin) if preset == "conditions" else subsets_summary(records)
    if not summary["rows"]:
        err.print(f"No stored runs of the {preset} study in {path}; run them with --run, or read another file with "
                  "--results FILE.", style="yellow", markup=False, soft_wrap=True)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))
    elif fmt in ("rich", "markdown"):
        for part in render.study_tables(preset, summary, markdown=fmt == "markdown"):
            if fmt == "rich":
                out.print(part)
            else:
                click.echo(part)
    else:
        raise BadInput(f"--format {fmt} is for the paper tables; the {preset} study prints rich, markdown or json")


def _say_missing(err, data, path, ran) -> None:
    """On stderr: which cells have no stored runs, and how to fill them (also when the output is piped)."""
    total = sum(len(row["cells"]) for g in data["groups"] for row in g["rows"])
    if data["missing_cells"] == total:
        err.print(f"No stored runs in {path} match these settings: every cell is empty. "
                  "Run them with --run, or read another file with --results FILE.", style="yellow", markup=False,
                  soft_wrap=True)
    elif data["missing_cells"] and not ran:
        err.print(f"{data['missing_cells']} of {total} cells have no stored runs in {path}; --run computes them.",
                  style="yellow", markup=False, soft_wrap=True)


@cli.command()
@config_options("method", method={"default": "analytic"})
@training_options
@config_options("seed", seed={"help": "Seed of the weights, subset, batches and the search itself."})
@machine_options
@click.option("--trials", type=Whole(1, 10000), default=20, show_default=True, help="Random settings tried.")
@click.option("--lr-range", default="1e-3,1", show_default=True, callback=_range,
              help="Learning rates, log-uniform between LOW,HIGH.")
@click.option("--weight-decay-range", default="1e-6,1e-2", show_default=True, callback=_range,
              help="Weight decays, log-uniform between LOW,HIGH.")
@click.option("--val-per-class", type=click.IntRange(min=0), default=0, show_default=True,
              help="0: hold one of the k few-shot images per class out for validation; N: validate on N "
                   "further training images per class.")
@click.option("--results", "results_file", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
              help="Append every trial's run record to this JSON Lines file.")
@output_options("the trials")
@library_errors
def tune(data_dir, threads, trials, lr_range, weight_decay_range, val_per_class, results_file, as_json, quiet, **opts):
    """Random search of learning rate and weight decay on a validation split.

    The test set is never looked at: the score is the accuracy on images held
    out of the training data.

    \b
    Example:
      gradsel tune --trials 20
      gradsel tune --method select --optimizer adam --lr-range 1e-4,1e-2 --iters 2000
    """
    from . import render
    from .data import load_mnist_raw
    from .tuning import nothing_worked
    from .tuning import tune as run_tune

    out, err = render.consoles(quiet or as_json)
    config = _config(opts)
    raw = load_mnist_raw(data_dir)
    _prepare(threads, err)
    _on_interrupt(f"Interrupted; the finished trials are kept in {results_file}." if results_file
                  else "Interrupted; no trial was stored (give --results FILE to keep them).")
    with render.progress_bar(err, trials, "tune", unit="") as update:
        summary = run_tune(config, trials, lr_range, weight_decay_range, val_per_class, raw, results_file,
                           progress=lambda d, t, info: update(d, t, info=info))
    _show(out, summary, as_json, lambda: render.tune_table(summary))
    if nothing_worked(summary):
        raise click.ClickException(nothing_worked(summary))


@cli.command()
@config_options(*CELL_KEYS)
@config_options("iters", "lr", iters={"default": 2000, "help": "Iterations of analytic training before the "
                                                                 "second check."})
@click.option("--fd-step", "steps", type=Finite(), multiple=True, default=GRADCHECK_STEPS, show_default=True,
              help="Finite-difference steps h to try (repeat the option for several).")
@config_options("fd_scheme", "subset", "init_std", "init", "activation", "seed", "precision", "fd_arith",
                "loss_epsilon")
@machine_options
@click.option("--plot", type=click.Path(dir_okay=False), callback=_png_file, default=None,
              help="Write the error-versus-step plot (log-log) to FILE.png (needs matplotlib).")
@output_options("the measurements")
@library_errors
def gradcheck(steps, data_dir, threads, plot, as_json, quiet, **opts):
    """Numeric against analytic gradient, per block and finite-difference step.

    On the first mini-batch of the run, at the initial weights and after
    --iters iterations of analytic training: the relative error
    ||g_num - g_ana|| / ||g_ana|| of W1, b1, W2, b2 and of all weights, and
    the cosine similarity, for each step h. Too large an h gives truncation
    error, too small an h rounding error: the error against h is V-shaped.

    \b
    Example:
      gradsel gradcheck --hidden 50 --batch 8
      gradsel gradcheck --fd-step 1e-3 --fd-step 1e-5 --fd-scheme forward --json
      gradsel gradcheck --plot gradcheck.png
    """
    from . import render
    from .data import load_mnist_raw
    from .gradcheck import gradcheck as run_check

    out, err = render.consoles(quiet or as_json)
    config = _config(opts, method="analytic", test_limit=1000)
    raw = load_mnist_raw(data_dir)
    _prepare(threads, err, plot)
    with render.progress_bar(err, config.iters, "analytic") as update:
        check = run_check(config, sorted(set(steps), reverse=True), raw,
                          progress=lambda d, t, loss: update(d, t, loss=loss))
    _show(out, check, as_json, lambda: render.gradcheck_tables(check))
    if plot:
        from .figures import gradcheck_figure

        c = check["config"]
        gradcheck_figure(plot, check, (f"gradsel gradcheck — numeric ({check['scheme']}) vs analytic gradient, "
                                       f"k={c['shots']}, B={c['batch']}, H={c['hidden']}, lr {c['lr']}, "
                                       f"seed {c['seed']}"))
        _wrote(err, plot)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the summary as CSV on stdout.")
@library_errors
def runs(file, as_json, as_csv):
    """Summarise a results file: one row per configuration.

    Reads any file written by train --out or compare / sweep / tune / table
    --results. Rows are the configurations (runs equal but for the seed): the
    options that vary across the file, runs, accuracy mean ± 95% CI, mean
    final loss and diverged runs; below, the options every run shares.

    \b
    Example:
      gradsel runs results/compare.jsonl
      gradsel runs lr.jsonl --csv > lr.csv
    """
    from . import render, results
    from .report import runs_summary

    if as_json and as_csv:
        raise BadInput("--json and --csv print different things to stdout; choose one")
    out, _ = render.consoles(as_json or as_csv)
    summary = runs_summary(results.load(file))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif as_csv:
        click.echo(render.runs_csv(summary), nl=False)
    else:
        for part in render.runs_table(summary, file):
            out.print(part)
