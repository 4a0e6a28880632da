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

from .config import (ACTIVATIONS, DIGITS_FROM, GRADCHECK_STEPS, INITS, LOSSES, MAX_BATCH, MAX_HIDDEN,
                     METHOD_NAMES, OPTIMIZERS, TrainConfig)


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


def _png_file(ctx, param, value):
    if value is not None and Path(value).suffix.lower() != ".png":
        raise click.BadParameter(f"{value!r}: figures are written as PNG; give a FILE.png", ctx, param)
    return _writable_file(ctx, param, value)


CURVE_POINTS = 20  # test-accuracy evaluations of a learning curve (--plot)


def _need_matplotlib(*paths):
    """Fail at once, before any training, when a figure is asked for and matplotlib is missing."""
    if any(paths):
        from .figures import require

        require()


def _apply(fn, opts):
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def cell_options(fn):
    """The grid keys of one cell: shots, batch, hidden."""
    return _apply(fn, [
        click.option("--shots", type=click.IntRange(1, 5421), default=2, show_default=True, help="Images per class (k)."),
        click.option("--batch", type=click.IntRange(1, MAX_BATCH), default=8, show_default=True,
                     help="Mini-batch size (B)."),
        click.option("--hidden", type=click.IntRange(1, MAX_HIDDEN), default=50, show_default=True,
                     help="Hidden units (H)."),
    ])


def setting_options(fn):
    """Every other option of a training run, shared by train, compare and table."""
    return _value_settings(run_options(fn))


def _value_settings(fn):
    """The settings that take one value each (sweep takes each as a comma list)."""
    return _apply(fn, [
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
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd", show_default=True,
                     help="Update rule."),
        click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True,
                     help="momentum, nesterov: the velocity decay."),
        click.option("--rho", type=click.FloatRange(0, 1, max_open=True), default=0.99, show_default=True,
                     help="rmsprop: decay of the squared-gradient average."),
        click.option("--beta1", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True,
                     help="adam: first-moment decay."),
        click.option("--beta2", type=click.FloatRange(0, 1, max_open=True), default=0.999, show_default=True,
                     help="adam: second-moment decay."),
        click.option("--eps", type=Finite(), default=1e-7, show_default=True, help="adagrad, rmsprop, adam: epsilon."),
        click.option("--init", type=click.Choice(INITS), default="std", show_default=True,
                     help="Weight initialisation: std (--init-std), xavier sqrt(1/n_in), he sqrt(2/n_in)."),
        click.option("--activation", type=click.Choice(ACTIVATIONS), default="sigmoid", show_default=True,
                     help="Hidden activation."),
        click.option("--loss", type=click.Choice(LOSSES), default="cross-entropy", show_default=True,
                     help="Softmax cross-entropy, or 1/2 squared error of the softmax output."),
        click.option("--weight-decay", type=Finite(positive=False), default=0.0, show_default=True,
                     help="L2 weight decay lambda: adds 1/2 lambda (|W1|^2 + |W2|^2) to the loss."),
        click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
                     help="Inverted dropout rate on the hidden layer (mask fixed within an iteration)."),
    ])


THREADS_HELP = ("Numba threads for every kernel call (default: one thread for small calls, for large ones "
                "the faster of one and all cores, as measured).")


def run_options(fn):
    """The flag and the machine options of a run (never swept)."""
    return _apply(fn, [
        click.option("--batch-norm/--no-batch-norm", default=False, show_default=True,
                     help="Batch normalisation of the hidden pre-activations (needs --batch >= 2)."),
        click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="MNIST folder (default: $GRADSEL_DATA_DIR, then the shipped copy)."),
        click.option("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP),
    ])


def training_options(fn):
    return cell_options(setting_options(fn))


def listed_options(fn):
    """The cell options and the one-value settings as comma lists, for sweep.

    Each list option is made from its single-value twin, whose type checks
    every item: a bad item is the same one-line error naming the option.
    """
    probe = cell_options(_value_settings(lambda: None))
    singles = list(reversed(probe.__click_params__))  # click stores them innermost first
    return _apply(fn, [
        click.option("--method", default="alternate", show_default=True, callback=_method_list,
                     help="Gradient sources, comma-separated.")
    ] + [
        click.option(*p.opts, p.name, default=str(p.default), show_default=True, callback=_list_of(p.type),
                     metavar="LIST", help=f"{p.help}{_choices(p.type)} Comma-separated to sweep several.")
        for p in singles
    ])


def _choices(item_type) -> str:
    return f" One of: {', '.join(item_type.choices)}." if isinstance(item_type, click.Choice) else ""


def _list_of(item_type):
    def convert(ctx, param, value):
        items = [v.strip() for v in str(value).split(",")]
        if not all(items):
            raise click.BadParameter(f"{value!r} has an empty item; give values separated by single commas",
                                     ctx, param)
        return list(dict.fromkeys(item_type.convert(v, param, ctx) for v in items))
    return convert


def grid_options(fn):
    """How a grid of trials runs: seeds, workers, executor, the results file."""
    return _apply(fn, [
        click.option("--seeds", type=click.IntRange(1, 10000), default=5, show_default=True,
                     help="Seeds 0..N-1 per cell (each varies initial weights and batch order)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Parallel worker processes, here or in a Dask LocalCluster (default: the number of cores)."),
        click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     help="local: worker processes on this machine; dask: a Dask cluster (a LocalCluster of "
                          "--workers, or the one at --scheduler). Needs: pip install 'gradsel[dask]'."),
        click.option("--scheduler", metavar="ADDRESS", default=None,
                     help="With --executor dask: a running dask.distributed scheduler, e.g. tcp://host:8786."),
        click.option("--results", "results_file", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
                     help="JSON Lines file that stores the runs; runs already there are not redone."),
    ])


CELL_KEYS = ("shots", "batch", "hidden")
SETTING_KEYS = ("iters", "lr", "subset", "init_std", "fd_step", "fd_scheme", "numeric_every", "select_on",
                "eval_every", "test_limit", "optimizer", "momentum", "rho", "beta1", "beta2", "eps", "init",
                "activation", "loss", "weight_decay", "dropout", "batch_norm")
CONFIG_KEYS = CELL_KEYS + SETTING_KEYS


def _set_threads(threads):
    if threads is None:
        return
    from . import kernels

    if threads > kernels.max_threads():
        raise BadInput(f"--threads {threads} is more than the {kernels.max_threads()} available; "
                       "lower it or set NUMBA_NUM_THREADS")
    kernels.set_threads(threads)


def _kernels_cached() -> bool:
    from . import kernels

    return kernels.kernels_cached()


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
              help="Save the trained W1, b1, W2, b2 (and batch-norm gamma, beta, running statistics) to FILE.npz.")
@click.option("--plot", type=click.Path(dir_okay=False), callback=_png_file, default=None,
              help=f"Write learning curves (loss, test accuracy at {CURVE_POINTS} points) to FILE.png "
                   "(needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def train(method, seed, data_dir, threads, out, save_model, plot, as_json, quiet, **opts):
    """Train one network and report its test accuracy.

    \b
    Example:
      gradsel train --shots 2 --batch 8 --hidden 50
      gradsel train --method select --iters 2000 --json > run.json
      gradsel train --method select --plot curves.png
    """
    import numpy as np

    from . import render, results
    from .data import load_mnist_raw
    from .training import train as run

    out_console, err = render.consoles(quiet or as_json)
    config = TrainConfig(method=method, seed=seed, **{k: opts[k] for k in CONFIG_KEYS}).validate()
    _need_matplotlib(plot)
    raw = load_mnist_raw(data_dir)
    _set_threads(threads)
    _compile_notice(err)
    with render.progress_bar(err, config.iters, method) as update:
        result = run(config, raw=raw, progress=lambda d, t, loss: update(d, t, loss=loss),
                     eval_points=CURVE_POINTS if plot else 0)
    record = results.run_record(result)
    if plot:
        from .figures import curves_figure
        from .report import curves

        curves_figure(plot, curves([record], [method]), _figure_title("train", record["config"], [seed]))
        err.print(f"Wrote {plot}")
    if out:
        results.append(out, record)
    if save_model:
        arrays = result.params.blocks()
        if result.running_mean is not None:
            arrays.update(running_mean=result.running_mean, running_var=result.running_var)
        np.savez(save_model, **arrays)
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
@click.option("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP)
@click.option("--background", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Busy-loop processes kept running while timing (a loaded machine); always stopped at the end.")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
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
    _set_threads(threads)
    _compile_notice(err)
    with benchmark.background_load(background), \
            render.progress_bar(err, len(hidden) * len(batch), "bench", unit="") as update:
        rows = benchmark.run_bench(hidden, batch, repeat, data_dir,
                                   progress=lambda d, t, label: update(d, t, info=label))
    n_threads = kernels.get_threads()
    label = n_threads or f"auto (1 or {kernels.max_threads()})"
    if as_json:
        click.echo(json.dumps({"threads": n_threads, "max_threads": kernels.max_threads(), "background": background,
                               "repeat": repeat, "rows": rows}, indent=2))
    else:
        for table in render.bench_tables(rows, label):
            out.print(table)


def _method_list(ctx, param, value):
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in METHOD_NAMES]
    if bad or not items:
        raise click.BadParameter(f"{', '.join(bad) or value!r}: choose from {', '.join(METHOD_NAMES)}, comma-separated",
                                 ctx, param)
    return list(dict.fromkeys(items))


def _executor(name, workers, scheduler, data_dir, eval_points=0):
    from .experiments import LocalExecutor, default_workers

    if scheduler and name != "dask":
        raise BadInput("--scheduler needs --executor dask")
    if name == "local":
        return LocalExecutor(workers or default_workers(), data_dir, eval_points)
    from .dask_executor import DaskExecutor, DaskMissing

    try:
        return DaskExecutor(workers or default_workers(), data_dir, scheduler, eval_points)
    except DaskMissing:
        raise BadInput("--executor dask needs dask.distributed; install it: pip install 'gradsel[dask]'") from None


def _run_grid(configs, results_file, grid, data_dir, err, label, eval_points=0):
    """Run (or resume) the trials with a progress bar over runs; the records in config order.

    grid: the grid options (workers, executor, scheduler); eval_points: test-accuracy curve points per run.
    """
    from . import render
    from .experiments import GridError, run_grid

    executor = _executor(grid["executor"], grid["workers"], grid["scheduler"], data_dir, eval_points)
    _compile_notice(err)
    with render.progress_bar(err, len(configs), label, unit="") as update:
        try:
            return run_grid(configs, results_file, executor, progress=lambda d, t, info: update(d, t, info=info))
        except GridError as exc:
            raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--methods", default=",".join(METHOD_NAMES), show_default=True, callback=_method_list,
              help="Methods to compare, comma-separated.")
@training_options
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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the per-method summary as CSV on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def compare(methods, data_dir, threads, seeds, workers, executor, scheduler, results_file, plot, show_digits,
            digits_from, figure, as_json, as_csv, quiet, **opts):
    """Run methods over seeds, paired, and compare them with the baseline.

    Every method gets the same initial weights, subset and batch order for a
    given seed, so differences are differences of method alone.

    \b
    Example:
      gradsel compare --shots 2 --batch 8 --hidden 50 --seeds 5
      gradsel compare --methods analytic,select --iters 2000 --json
      gradsel compare --methods analytic,alternate --seeds 1 --show-digits 16 --figure figure2.png
      gradsel compare --plot curves.png
    """
    from . import render
    from .experiments import trials
    from .report import compare_summary, curves

    out, err = render.consoles(quiet or as_json or as_csv)
    _set_threads(threads)
    base = TrainConfig(**{k: opts[k] for k in CONFIG_KEYS}).validate()
    _need_matplotlib(plot, figure)
    configs = trials(base, [dict(method=m) for m in methods], range(seeds))
    grid = dict(workers=workers, executor=executor, scheduler=scheduler)
    records = _run_grid(configs, results_file, grid, data_dir, err, "runs", CURVE_POINTS if plot else 0)
    summary = compare_summary(records, methods)
    curve_data = curves(records, methods)
    digits = (_digits(records, methods, show_digits or 16, digits_from, data_dir, err)
              if show_digits or figure else None)
    if as_json:
        click.echo(json.dumps({"config": base.to_dict(), **summary,
                               **({"digits": _digits_json(digits)} if show_digits else {})}, indent=2))
    elif as_csv:
        click.echo("method,seeds,accuracy_mean,accuracy_ci_lo,accuracy_ci_hi,final_loss,time_per_iter,numeric_share,"
                   "select_win_rate,diff_vs_baseline,diff_ci_lo,diff_ci_hi,p_t,p_wilcoxon,disagreement")
        for r in summary["methods"]:
            v = r.get("versus", {})
            cells = [r["method"], len(r["seeds"]), r["accuracy"]["mean"], r["accuracy"]["lo"], r["accuracy"]["hi"],
                     r["final_loss"], r["time_per_iter"], r["numeric_share"], r["select_win_rate"],
                     v.get("difference"), *(v.get("ci") or (None, None)), v.get("p_t"), v.get("p_wilcoxon"),
                     v.get("disagreement")]
            click.echo(",".join("" if c is None else str(c) for c in cells))
    else:
        for table in render.compare_tables(summary, base.to_dict(), curve_data):
            out.print(table)
        if show_digits:
            out.print(render.digits_grid(digits["images"], digits["labels"], digits["indices"],
                                         digits["predictions"], digits["title"]))
    if figure:
        from .figures import digits_figure

        digits_figure(figure, digits["images"], digits["labels"], digits["indices"], digits["predictions"],
                      digits["title"])
        err.print(f"Wrote {figure}")
    if plot:
        from .figures import curves_figure

        if curve_data["missing_accuracy"]:
            err.print(f"[yellow]{curve_data['missing_accuracy']} stored run(s) have no test-accuracy curve "
                      "(made without --plot); the accuracy panel is left empty")
        curves_figure(plot, curve_data, _figure_title("compare", base.to_dict(), range(seeds)))
        err.print(f"Wrote {plot}")


def _figure_title(command: str, c: dict, seeds) -> str:
    seeds = list(seeds)
    which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}"
    return (f"gradsel {command} — k={c['shots']}, B={c['batch']}, H={c['hidden']}, {c['iters']:,} iterations, "
            f"lr {c['lr']}, h={c['fd_step']:g}, {which}")


def _digits(records, methods, n, how, data_dir, err) -> dict:
    """The test images to show, their labels and each method's predictions for the first seed."""
    from .data import load_mnist_raw
    from .report import parse_predictions, pick_digits

    seed = min(r["config"]["seed"] for r in records)
    first = {r["config"]["method"]: r for r in records if r["config"]["seed"] == seed}
    predictions = {m: parse_predictions(first[m]["predictions"]) for m in methods}
    indices, note = pick_digits(predictions, n, how, seed)
    if note:
        err.print(f"[yellow]{note}", soft_wrap=True)
    _, _, x_test, y_test = load_mnist_raw(data_dir)
    c = first[methods[0]]["config"]
    title = (f"Test images and predictions — k={c['shots']}, B={c['batch']}, H={c['hidden']}, "
             f"{c['iters']:,} iterations, seed {seed}; digits from: {how}")
    return {"seed": seed, "how": how, "indices": indices, "images": x_test, "labels": y_test,
            "predictions": predictions, "title": title}


def _digits_json(digits: dict) -> dict:
    idx = digits["indices"]
    return {"seed": digits["seed"], "from": digits["how"], "indices": [int(i) for i in idx],
            "labels": [int(digits["labels"][i]) for i in idx],
            "predictions": {m: [int(p[i]) for i in idx] for m, p in digits["predictions"].items()}}


@cli.command()
@listed_options
@run_options
@grid_options
@click.option("--json", "as_json", is_flag=True, help="Print the run records as a JSON list on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def sweep(method, batch_norm, data_dir, threads, seeds, workers, executor, scheduler, results_file, as_json, quiet,
          **lists):
    """Run a grid over any training options given as comma lists, over seeds.

    Every combination of the listed values is a cell; each cell runs seeds
    0..N-1. The table has one row per cell: the options that vary, accuracy
    mean ± 95% CI, final loss, runs and diverged runs. With --results FILE the
    runs are stored and an interrupted sweep resumes.

    \b
    Example:
      gradsel sweep --method analytic,alternate --fd-step 1e-3,1e-4,1e-5 --seeds 10
      gradsel sweep --lr 0.05,0.1,0.2 --iters 2000 --results lr.jsonl --json
      gradsel sweep --hidden 20,50 --executor dask --scheduler tcp://10.0.0.5:8786
    """
    import itertools

    from . import render
    from .experiments import trials

    out, err = render.consoles(quiet or as_json)
    _set_threads(threads)
    keys = ["method", *lists]
    values = [method, *lists.values()]
    cells = [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    configs = trials(TrainConfig(batch_norm=batch_norm), cells, range(seeds))
    grid = dict(workers=workers, executor=executor, scheduler=scheduler)
    records = _run_grid(configs, results_file, grid, data_dir, err, "sweep")
    if as_json:
        click.echo(json.dumps(records, indent=2))
    else:
        from .report import sweep_summary  # scipy: a second to import, not needed for --json

        varied = [k for k, v in zip(keys, values) if len(v) > 1]
        out.print(render.sweep_table(sweep_summary(records, varied), seeds))


def _results_path(preset, results_file, for_writing):
    """--results, else results/<preset>.jsonl here, else the copy shipped beside the package."""
    if results_file:
        return Path(results_file)
    local = Path("results") / f"{preset}.jsonl"
    if for_writing or local.exists():
        return local
    here = Path(__file__).resolve().parent
    for shipped in (here / "_results" / f"{preset}.jsonl", here.parent / "results" / f"{preset}.jsonl"):
        if shipped.exists():
            return shipped
    return local


@cli.command()
@click.option("--preset", type=click.Choice(["alternate", "select"]), default="alternate", show_default=True,
              help="alternate: paper A's Table 1; select: paper B's Table 1.")
@click.option("--run", "run_missing", is_flag=True, help="Run the missing cells first (resumable).")
@setting_options
@grid_options
@click.option("--format", "fmt", type=click.Choice(["rich", "markdown", "csv", "json", "latex"]), default="rich",
              show_default=True, help="Output format.")
@click.option("--no-paper", is_flag=True, help="Hide the published numbers.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def table(preset, run_missing, data_dir, threads, seeds, workers, executor, scheduler, results_file, fmt, no_paper,
          quiet, **opts):
    """Print a paper's Table 1 from stored runs, beside the published numbers, with verdicts.

    Cells are the mean ± 95% CI over seeds; the best method of each group is
    bold. Below the table, each claim of the paper is tested on the paired
    differences. With --run, missing cells are computed first into
    results/<preset>.jsonl (or --results FILE); an interrupted run resumes.

    \b
    Example:
      gradsel table
      gradsel table --preset select --format markdown
      gradsel table --run --seeds 5 --workers 2
      gradsel table --run --subset random --results results/alternate-random.jsonl
    """
    from . import papers, render, results
    from .report import paper_table, settings_of

    out, err = render.consoles(quiet or fmt != "rich")
    settings = {k: opts[k] for k in SETTING_KEYS}
    path = _results_path(preset, results_file, run_missing)
    if run_missing:
        from .experiments import trials

        _set_threads(threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        base = TrainConfig(**settings)
        configs = trials(base, papers.layout(preset).cells(), range(seeds))
        grid = dict(workers=workers, executor=executor, scheduler=scheduler)
        _run_grid(configs, path, grid, data_dir, err, preset)
        settings = settings_of(base.to_dict())
    else:
        settings = settings_of(TrainConfig(**settings).validate().to_dict())
    records = results.load(path)
    data = paper_table(preset, records, settings)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(render.paper_table_csv(data), nl=False)
    elif fmt == "markdown":
        click.echo(render.paper_table_markdown(data, not no_paper))
    elif fmt == "latex":
        click.echo(render.paper_table_latex(data, not no_paper))
    else:
        for part in render.paper_table_rich(data, not no_paper):
            out.print(part)


def _range(ctx, param, value):
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give LOW,HIGH, e.g. 1e-3,1", ctx, param) from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise click.BadParameter(f"{value!r}: need 0 < LOW <= HIGH (a log-uniform range)", ctx, param)
    return lo, hi


@cli.command()
@click.option("--method", type=click.Choice(METHOD_NAMES), default="analytic", show_default=True,
              help="Gradient source.")
@training_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the weights, subset, batches and the search itself.")
@click.option("--trials", type=click.IntRange(1, 10000), default=20, show_default=True, help="Random settings tried.")
@click.option("--lr-range", default="1e-3,1", show_default=True, callback=_range,
              help="Learning rates, log-uniform between LOW,HIGH.")
@click.option("--weight-decay-range", default="1e-6,1e-2", show_default=True, callback=_range,
              help="Weight decays, log-uniform between LOW,HIGH.")
@click.option("--val-per-class", type=click.IntRange(min=0), default=0, show_default=True,
              help="0: hold one of the k few-shot images per class out for validation; N: validate on N "
                   "further training images per class.")
@click.option("--results", "results_file", type=click.Path(dir_okay=False), callback=_writable_file, default=None,
              help="Append every trial's run record to this JSON Lines file.")
@click.option("--json", "as_json", is_flag=True, help="Print the trials as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def tune(method, seed, data_dir, threads, trials, lr_range, weight_decay_range, val_per_class, results_file,
         as_json, quiet, **opts):
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
    from .tuning import tune as run_tune

    out, err = render.consoles(quiet or as_json)
    config = TrainConfig(method=method, seed=seed, **{k: opts[k] for k in CONFIG_KEYS}).validate()
    raw = load_mnist_raw(data_dir)
    _set_threads(threads)
    _compile_notice(err)
    with render.progress_bar(err, trials, "tune", unit="") as update:
        summary = run_tune(config, trials, lr_range, weight_decay_range, val_per_class, raw, results_file,
                           progress=lambda d, t, info: update(d, t, info=info))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        for part in render.tune_table(summary):
            out.print(part)


@cli.command()
@cell_options
@click.option("--iters", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Iterations of analytic training before the second check.")
@click.option("--lr", type=Finite(), default=0.1, show_default=True, help="Learning rate of that training.")
@click.option("--fd-step", "steps", type=Finite(), multiple=True, default=GRADCHECK_STEPS, show_default=True,
              help="Finite-difference steps h to try (repeat the option for several).")
@click.option("--fd-scheme", type=click.Choice(["central", "forward"]), default="central", show_default=True,
              help="Finite-difference scheme.")
@click.option("--subset", type=click.Choice(["first", "random"]), default="first", show_default=True,
              help="Few-shot subset: first k per class in file order, or a seeded random draw.")
@click.option("--init-std", type=Finite(), default=0.01, show_default=True, help="Std of the initial weights.")
@click.option("--init", type=click.Choice(INITS), default="std", show_default=True, help="Weight initialisation.")
@click.option("--activation", type=click.Choice(ACTIVATIONS), default="sigmoid", show_default=True,
              help="Hidden activation.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the initial weights, subset and batches.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None, help="MNIST folder.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP)
@click.option("--plot", type=click.Path(dir_okay=False), callback=_png_file, default=None,
              help="Write the error-versus-step plot (log-log) to FILE.png (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print the measurements as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
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
    config = TrainConfig(method="analytic", test_limit=1000, **opts).validate()
    _need_matplotlib(plot)
    raw = load_mnist_raw(data_dir)
    _set_threads(threads)
    _compile_notice(err)
    with render.progress_bar(err, config.iters, "analytic") as update:
        check = run_check(config, sorted(set(steps), reverse=True), raw,
                          progress=lambda d, t, loss: update(d, t, loss=loss))
    if as_json:
        click.echo(json.dumps(check, indent=2))
    else:
        for table in render.gradcheck_tables(check):
            out.print(table)
    if plot:
        from .figures import gradcheck_figure

        c = check["config"]
        gradcheck_figure(plot, check, (f"gradsel gradcheck — numeric ({check['scheme']}) vs analytic gradient, "
                                       f"k={c['shots']}, B={c['batch']}, H={c['hidden']}, lr {c['lr']}, "
                                       f"seed {c['seed']}"))
        err.print(f"Wrote {plot}")
