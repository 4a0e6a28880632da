"""The ``gradsel`` command: a Click group of thin commands (parse, build config, call, render).

The options come from options.py (each training option from its TrainConfig
field), the one-line errors and Ctrl-C from cli_errors.py, and what every
command does around its work from cli_steps.py. Heavy modules (numba, the
kernels, Rich) are imported inside the commands so that ``gradsel --help``
and ``--version`` answer at once.
"""

import math
from importlib import metadata
from pathlib import Path
from typing import cast

import click

from .. import lab as lab_presets
from .. import papers, sources
from ..choices import CURVE_AXES, OPTIMIZERS, SURFACES
from ..config import (
    CELL_KEYS,
    DIGITS_FROM,
    GRADCHECK_DRAWS,
    GRADCHECK_QS,
    STUDIES,
    STUDY_RUNS,
    VAL_PER_CLASS,
    TrainConfig,
    counted,
    setting_keys,
)
from ..text import printable
from .errors import BadInput, Group, kept_note, library_errors, on_interrupt
from .options import (
    Finite,
    Whole,
    budget_option,
    budgeted,
    comma_list,
    config_from,
    config_options,
    flags_from,
    given_options,
    grid_from,
    grid_options,
    list_option,
    listed_options,
    log_range,
    machine_options,
    margin_option,
    method_list_option,
    not_offered,
    output_options,
    plot_option,
    png_file,
    power_option,
    probe_option,
    refuse_unread,
    setting_option,
    size_list,
    source_list_option,
    training_options,
    writable_file,
)
from .steps import compiling_shown, emit, prepare, run_grid, say, saying, show, stored, warn, wrote

CURVE_POINTS = 20  # test-accuracy evaluations of a learning curve (--plot)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(metadata.version("gradsel"), "-V", "--version", prog_name="gradsel")
def cli():
    """gradsel: where the gradient comes from in gradient descent.

    Trains a two-layer MNIST network from a few images per class with the
    gradient from any source (backprop, finite differences, the complex step:
    see --method) or a policy that mixes them (alternating, selecting the
    lower loss), and reproduces the papers that proposed those policies.
    Shell completion: eval "$(_GRADSEL_COMPLETE=bash_source gradsel)".
    """


@cli.command()
@config_options("method")
@training_options
@setting_option
@config_options("seed")
@machine_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    callback=writable_file,
    default=None,
    help="Append the run record as one JSON line to FILE.",
)
@click.option(
    "--save-model",
    type=click.Path(dir_okay=False),
    callback=writable_file,
    default=None,
    help="Save the trained W1, b1, W2, b2 (and batch-norm gamma, beta, running statistics) to FILE.npz.",
)
@plot_option(f"learning curves (loss, test accuracy at {CURVE_POINTS} points)")
@click.option(
    "--eval-every",
    type=Whole(min=0),
    default=0,
    show_default=True,
    help="Also measure test accuracy every N iterations (the record's acc_curve; 0: at the end only, "
    f"or at {CURVE_POINTS} points with --plot). Changes nothing in the run.",
)
@budget_option
@probe_option
@output_options("the run record")
@library_errors
def train(data_dir, threads, out, save_model, plot, eval_every, budget, probe_every, as_json, quiet, **opts):
    """Train one network and report its test accuracy.

    \b
    Example:
      gradsel train --shots 2 --batch 8 --hidden 50
      gradsel train --method select --iters 2000 --json > run.json
      gradsel train --method select --plot curves.png
      gradsel train --method spsa --lr 0.01 --budget 1e6   # as many iterations as 1e6 forward passes buy
    """
    from .. import render
    from ..analysis.figures import train_figure
    from ..data import load_mnist_raw
    from ..numerics.training import divergence_message, model_path, overshoot_warning, write_model
    from ..numerics.training import train as run
    from ..runs import results
    from ..runs.records import run_record

    out_console, err = render.consoles(quiet or as_json)
    config = config_from(opts)
    refuse_unread([config])
    config = budgeted([config], budget)[0]
    npz = save_model and model_path(save_model)
    results.probe(plot, out, npz)
    results.check_store(out)
    raw = load_mnist_raw(data_dir)
    prepare(threads, err, plot)
    on_interrupt("Interrupted; nothing was written (train writes its outputs when the run ends).")
    with render.progress_bar(err, config.iters, config.method) as update, compiling_shown(update):
        result = run(
            config,
            raw,
            progress=lambda d, t, loss: update(d, t, loss=loss),
            eval_points=CURVE_POINTS if plot else 0,
            eval_every=eval_every,
            probe_every=probe_every,
        )
    record = run_record(result)

    def store_out():  # the record appended, then noted as written
        _store_once(err, out, record)
        stored(out)

    failed = results.write_each(
        [
            (plot, saying(err, plot, lambda: train_figure(plot, record))),
            (out, store_out),
            (save_model, saying(err, npz, lambda: write_model(npz, result))),
        ]
    )
    show(out_console, record, as_json, lambda: [render.train_summary(record)])
    if failed:
        raise BadInput("; ".join(failed) + " (the other outputs were written)")
    if result.diverged:
        err.print(divergence_message(result.iterations_done, config), style="red", markup=False, soft_wrap=True)
        return 1
    if (overshoot := overshoot_warning(result)) is not None:
        err.print(f"Warning: {overshoot}", style="yellow", markup=False, soft_wrap=True)


def _store_once(err, path, record) -> None:
    """train --out: append the record, unless the file holds this run already (then say so)."""
    from ..runs import results

    if not results.Store(path).append(record):
        err.print(
            f"{path} already holds this run (the same configuration); it was not appended again.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@cli.command()
@list_option("--hidden", "20,50,100", size_list("hidden", "20,50"), "Hidden sizes, comma-separated.")
@list_option("--batch", "1,8,32", size_list("batch", "1,8"), "Batch sizes, comma-separated.")
@click.option(
    "--repeat", type=click.IntRange(1, 1000), default=7, show_default=True, help="Timed calls per measurement (median)."
)
@machine_options
@click.option(
    "--background",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Busy-loop processes kept running while timing (a loaded machine); always stopped at the end.",
)
@config_options("precision")
@click.option(
    "--compile",
    "compiling",
    is_flag=True,
    help="Instead: on a new, empty Numba cache, the kernels each scenario compiles (the main command, each "
    "source, each policy, float32; each on the cache the ones before it left), their compile times and "
    "specialisations. A few minutes.",
)
@click.option(
    "--textbook",
    type=Whole(min=1),
    default=None,
    metavar="ITERS",
    help="Instead: the textbook's chapter-4 training (all 60,000 training images, B 100, H 50, lr 0.1, analytic) "
    "for ITERS iterations (10000 in the book), gradsel against a plain NumPy loop on one BLAS thread, 2 "
    "interleaved rounds.",
)
@click.option(
    "--costs",
    is_flag=True,
    help="Instead: each source's cost in forward-pass equivalents (its step's time over a forward pass's, one "
    "thread, float64) over --hidden x --batch, beside the table gradsel ships and the cost ledger and --budget "
    "read; exit 1 when one is more than 35% off it.",
)
@output_options("the measurements")
@library_errors
def bench(hidden, batch, repeat, data_dir, threads, background, precision, compiling, textbook, costs, as_json, quiet):
    """Time the loss, both gradients, the naive reference and each method's iteration.

    \b
    Example:
      gradsel bench --hidden 50 --batch 8
      gradsel bench --hidden 50 --batch 8 --background 2   # beside two busy processes
      gradsel bench --hidden 50 --batch 8 --precision float32
      gradsel bench --json > bench.json
      gradsel bench --compile                               # what a first run compiles
      gradsel bench --textbook 10000                        # chapter 4's training against NumPy
      gradsel bench --costs                                 # each source's cost, against the shipped table
    """
    from .. import render
    from ..numerics import benchmark

    out, err = render.consoles(quiet or as_json)
    modes = [flag for flag, on in (("--compile", compiling), ("--textbook", textbook), ("--costs", costs)) if on]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} measure different things; choose one")
    if costs:
        given = [k for k in ("background", "precision", "threads") if k in given_options()]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise click.UsageError(f"--costs times one thread in float64 on an idle machine; drop {flag}")
        return _bench_costs(out, err, hidden, batch, repeat, data_dir, as_json)
    if compiling or textbook:
        mode = "--compile" if compiling else "--textbook"
        timing = ("hidden", "batch", "repeat", "background", "precision", *(("threads",) if compiling else ()))
        given = [k for k in timing if k in given_options()]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise click.UsageError(f"{flag} sets how calls are timed, which {mode} does not do; drop {flag}")
        if compiling:
            _bench_compile(out, err, data_dir, as_json)
            return
        prepare(threads, err)
        with render.progress_bar(err, 4, "textbook", unit="") as update, compiling_shown(update):
            record = benchmark.textbook(textbook, 2, data_dir, lambda d, t, label: update(d, t, info=label))
        show(out, record, as_json, lambda: [render.textbook_table(record)])
        return
    prepare(threads, err)
    with (
        benchmark.background_load(background),
        render.progress_bar(err, len(hidden) * len(batch), "bench", unit="") as update,
        compiling_shown(update),
    ):
        rows = benchmark.run_bench(
            hidden, batch, repeat, data_dir, progress=lambda d, t, label: update(d, t, info=label), precision=precision
        )
    record = benchmark.bench_record(rows, repeat, background, precision)
    show(out, record, as_json, lambda: render.bench_record_tables(record))


def _bench_costs(out, err, hidden, batch, repeat, data_dir, as_json) -> int | None:
    """bench --costs: the sources' costs measured over the grid, beside the shipped table; 1 when one is off."""
    from .. import render
    from ..numerics import benchmark
    from ..sources import costs

    prepare(None, err)
    with render.progress_bar(err, len(hidden) * len(batch), "costs", unit="") as update, compiling_shown(update):
        measured = benchmark.cost_table(hidden, batch, repeat, data_dir, lambda d, t, label: update(d, t, info=label))
    agreement = benchmark.cost_agreement(measured, costs.table(), costs.TOLERANCE)
    record = {"tolerance": costs.TOLERANCE, "measured": measured, "declared": costs.table(), "agreement": agreement}
    show(out, record, as_json, lambda: [render.costs_table(record)])
    off = [r for r in agreement if not r["agrees"]]
    if off:
        r = max(off, key=lambda r: abs(math.log(r["ratio"])))
        err.print(
            f"{counted(len(off), 'cost')} of {len(agreement)} differ from the shipped table by more than "
            f"{costs.TOLERANCE:.0%} (the most: {r['key']} at H={r['hidden']} B={r['batch']}, {r['ratio']:.2f}x); "
            "on an idle machine, this CPU's costs differ from the table's",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
        return 1
    return None


def _bench_compile(out, err, data_dir, as_json) -> None:
    """bench --compile: each scenario's compiles, in child processes on one new, empty cache."""
    from .. import render
    from ..data import find_data_dir
    from ..numerics.compile_profile import profile_compiles

    directory = find_data_dir(data_dir)  # a bad --data-dir is one line here, not a failed child
    with render.progress_bar(err, 1, "compile", unit="") as update:
        try:
            record = profile_compiles(directory, progress=lambda d, t, name: update(d, t, info=name))
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    show(out, record, as_json, lambda: render.compile_tables(record))


@cli.command()
@method_list_option(",".join(papers.STUDY_METHODS))  # the papers' four: every existing command as it was
@training_options
@setting_option
@machine_options
@grid_options
@plot_option("learning curves (mean and band over seeds) and where select keeps each source's update")
@click.option(
    "--show-digits",
    type=click.IntRange(0, 10000),
    default=0,
    show_default=True,
    help="Show N test images with each method's prediction (seed 0; the paper's Figure 2).",
)
@click.option(
    "--digits-from",
    type=click.Choice(DIGITS_FROM),
    default="first",
    show_default=True,
    help="Which test images: the first, where the methods' predictions differ, or random.",
)
@click.option(
    "--figure",
    type=click.Path(dir_okay=False),
    callback=png_file,
    default=None,
    help="Write the digits (--show-digits N, else 16) to FILE.png (needs matplotlib).",
)
@budget_option
@probe_option
@click.option(
    "--x-axis",
    type=click.Choice(CURVE_AXES),
    default="iterations",
    show_default=True,
    help="--plot: draw the learning curves against iterations, against the forward-pass equivalents spent (the "
    "cost ledger) or against wall time (iterations times the run's time per iteration).",
)
@margin_option
@power_option
@output_options("the summary")
@click.option("--csv", "as_csv", is_flag=True, help="Print the per-method summary as CSV on stdout.")
@library_errors
def compare(
    methods,
    data_dir,
    threads,
    seeds,
    results_file,
    plot,
    show_digits,
    digits_from,
    figure,
    budget,
    probe_every,
    x_axis,
    margin,
    power_images,
    as_json,
    as_csv,
    quiet,
    **opts,
):
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
      gradsel compare --methods analytic,spsa,forward --budget 3e5 --plot curves.png --x-axis budget
    """
    from .. import render
    from ..analysis.report import compare_record, compare_summary, curves, digits_view
    from ..data import load_mnist_raw
    from ..runs import results
    from ..runs.experiments import trials

    if as_json and as_csv:
        raise BadInput("--json and --csv print different things to stdout; choose one")
    out, err = render.consoles(quiet or as_json or as_csv)
    grid = grid_from(opts)
    base = config_from(opts)
    refuse_unread([base.replace(method=m) for m in methods])
    prepare(threads, err, plot, figure)
    results.probe(plot, figure)
    configs = budgeted(trials(base, [dict(method=m) for m in methods], range(seeds)), budget)
    points = CURVE_POINTS if plot else 0
    records = run_grid(configs, results_file, grid, data_dir, err, "runs", points, probe_every=probe_every)
    summary, curve_data = (
        compare_summary(records, methods, margin, power_images, budget),
        curves(records, methods, x_axis),
    )
    digits = None
    if show_digits or figure:
        digits, note = digits_view(records, methods, show_digits or 16, digits_from, *load_mnist_raw(data_dir)[2:])
        warn(err, note)
    shown = digits if show_digits else None  # --figure alone draws the digits without printing them
    if as_csv:
        emit(out, render.compare_csv(summary))
    else:
        show(
            out,
            compare_record(base.to_dict(), summary, shown, records),
            as_json,
            lambda: render.compare_parts(summary, base.to_dict(), curve_data, shown),
        )
    _compare_figures(err, figure, plot, digits, curve_data, {**base.to_dict(), "budget": budget}, seeds, methods)


def _compare_figures(err, figure, plot, digits, curve_data, config, seeds, methods) -> None:
    """compare's --figure (the digits) and --plot (the learning curves), each said on stderr when written."""
    from ..analysis.figures import curves_figure, digits_view_figure, figure_title

    if figure:
        digits_view_figure(figure, digits)
        wrote(err, figure)
    if plot:
        if curve_data["missing_accuracy"]:
            n = curve_data["missing_accuracy"]
            err.print(
                f"{counted(n, 'stored run')} {'has' if n == 1 else 'have'} no test-accuracy curve (made without "
                "--plot); the accuracy panel is left empty",
                style="yellow",
                markup=False,
            )
        curves_figure(plot, curve_data, figure_title("compare", config, range(seeds), methods))
        wrote(err, plot)


@cli.command()
@method_list_option("alternate")
@listed_options
@machine_options
@grid_options
@budget_option
@output_options("the run records")
@library_errors
def sweep(methods, data_dir, threads, seeds, results_file, budget, as_json, quiet, **opts):
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
    from .. import render
    from ..runs.experiments import effective, grid_cells, trials

    out, err = render.consoles(quiet or as_json)
    grid = grid_from(opts)
    base = TrainConfig(**flags_from(opts))
    lists = {"method": methods, **opts}
    prepare(threads, err)
    configs = budgeted(trials(base, grid_cells(lists), range(seeds)), budget)
    records = run_grid([effective(c) for c in configs], results_file, grid, data_dir, err, render.sweep_label(lists))

    def tables():
        from ..analysis.report import sweep_view  # scipy: a second to import, not needed for --json

        bought = {"iters": sorted({c.iters for c in configs})} if budget is not None else {}  # a column each
        summary = sweep_view(records, configs, {**lists, **bought})
        return render.runs_table(summary, render.sweep_title(summary, seeds))

    show(out, records, as_json, tables)


def study_readings(preset: str) -> dict:
    """What a preset's runs record besides themselves: the sources study's accuracy curves and probe."""
    if preset != "sources":
        return {}
    from .. import sources_study

    return {"eval_points": sources_study.CURVE_POINTS, "probe_every": sources_study.PROBE_EVERY}


@cli.command()
@click.option(
    "--preset",
    type=click.Choice(["alternate", "select", *papers.SETTING_PRESETS, *STUDIES]),
    default="alternate",
    show_default=True,
    help="alternate: paper A's Table 1; select: paper B's Table 1; relu-textbook: both in the textbook's "
    "setting (--setting relu-textbook), beside gradsel's default sigmoid runs; conditions: when the "
    "gradient source matters (study); subsets: first-k against random subsets; sources: every source alone and "
    "mixed with backprop, at equal iterations and equal compute (study); differences: the published method "
    "differences tested against sigmoid float64, float32, ReLU and relu-textbook runs (which network?).",
)
@click.option("--run", "run_missing", is_flag=True, help="Run the missing cells first (resumable).")
@config_options(*setting_keys())
@setting_option
@margin_option
@power_option
@machine_options
@grid_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown", "csv", "json", "latex"]),
    default="rich",
    show_default=True,
    help="Output format (the studies: rich, markdown or json).",
)
@click.option("--no-paper", is_flag=True, help="Hide the published numbers.")
@plot_option("the sources study: loss and accuracy against compute, the probe's cosines (--preset sources only)")
@click.option("-q", "--quiet", is_flag=True, help="No progress or messages on stderr.")
@library_errors
def table(
    preset,
    run_missing,
    margin,
    power_images,
    data_dir,
    threads,
    seeds,
    results_file,
    fmt,
    no_paper,
    plot,
    quiet,
    **opts,
):
    """Print a paper's Table 1 from stored runs, beside the published numbers, with verdicts.

    Cells are the mean ± 95% CI over seeds; the best method of each group is
    bold. Below the table, each claim of the paper is tested on the paired
    differences, and with two one-sided tests (TOST) against a margin below
    the gain the paper's own numbers claim (half of it, at most 0.002), or
    --margin when given: EQUIVALENT, BETTER, WORSE or INCONCLUSIVE; each
    family of tests Holm-adjusted. The studies use --margin. The table shows the runs shipped
    with gradsel (read-only) and yours in gradsel-<preset>.jsonl of the current
    directory, or only those of --results FILE; a line on stderr says which.
    With --run, missing cells are computed first into your file (the shipped
    runs are not run again); an interrupted run resumes.

    \b
    Example:
      gradsel table
      gradsel table --preset select --format markdown
      gradsel table --run --seeds 5 --workers 2
      gradsel table --subset random --results results/alternate-random.jsonl
      gradsel table --preset conditions
      gradsel table --preset differences
    """
    from .. import render
    from ..analysis.report import (
        beside_default,
        matching,
        missing_note,
        paper_table,
        settings_of,
        sources_note,
        study_summary,
    )
    from ..runs import results
    from ..runs.experiments import preset_trials

    if plot and preset != "sources":
        raise click.UsageError(f"--plot draws the sources study; the {preset} table has no figure: drop --plot")
    if plot:
        from ..analysis.figures import require

        require()
        results.probe(plot)
    if power_images and preset in STUDIES:
        raise click.UsageError(
            f"--power sizes a paper's claims; the {preset} study tests none: drop --power, or use it with "
            "--preset alternate or select, or with gradsel compare"
        )
    if preset == "differences" and (
        chosen := [k for k in ("setting", *papers.condition_fields()) if k in given_options()]
    ):
        names = ", ".join("--" + k.replace("_", "-") for k in chosen)
        raise click.UsageError(
            f"the differences comparison sets each condition's network and arithmetic itself: drop {names}"
        )
    out, err = render.consoles(quiet)
    grid = grid_from(opts)
    papers_of = papers.SETTING_PRESETS.get(preset, (preset,))  # the papers' tables it prints
    if preset in papers.SETTING_PRESETS:
        opts["setting"] = opts.get("setting") or preset
    base = config_from(opts)
    refuse_unread(preset_trials(preset, base, range(1)), None)
    # the runs shipped with gradsel that the table reads: its own file, or those of the presets a study reads
    shipped = [] if results_file else [p for n in STUDY_RUNS.get(preset, (preset,)) if (p := results.shipped_path(n))]
    path = Path(results_file) if results_file else results.user_path(preset)  # the user's runs: read, written
    if results_file and not run_missing:
        path = results.readable(path)  # results/NAME.jsonl, as the docs write, is the shipped copy outside a checkout
        if not results.exists(path):
            raise BadInput(
                f"{printable(results_file)} does not exist; give an existing results file with "
                "--results, or add --run to compute the runs into it"
            )
        if results.holds_no_record(path):
            raise BadInput(
                f"{printable(results_file)} holds no run record; give a results file (train --out, --results) "
                "with --results"
            )
    if run_missing:
        prepare(threads, err)
        results.make_parent(path)
        run_grid(
            preset_trials(preset, base, range(seeds)),
            path,
            grid,
            data_dir,
            err,
            preset,
            reference=shipped,
            **study_readings(preset),
        )
    sources = [(p, True) for p in shipped] + ([(path, False)] if results.exists(path) else [])
    loaded = results.load_sources([p for p, _ in sources], quiet=run_missing)  # --run has said what it skipped
    records = [r for recs in loaded for r in recs]
    where = " or ".join(dict.fromkeys("the shipped runs" if is_shipped else str(p) for p, is_shipped in sources))
    where = where or str(path)
    if preset in STUDIES:
        summary, note = study_summary(preset, records, margin, where, base)
        shown = loaded
    else:
        settings = settings_of(base.to_dict())
        # each claim's own margin (below the gain it claims) unless --margin is given
        claimed = margin if "margin" in given_options() else None
        tables = [paper_table(p, records, settings, claimed, power_images, run_preset=preset) for p in papers_of]
        if preset in papers.SETTING_PRESETS:  # beside gradsel's default setting: the shipped runs of each paper
            default = settings_of(TrainConfig(iters=base.iters, lr=base.lr, test_limit=base.test_limit).to_dict())
            for t in tables:
                theirs = results.shipped_path(t["preset"])
                recs = [r for rs in results.load_sources([theirs], quiet=True) for r in rs] if theirs else []
                t["beside"] = beside_default(t, recs, default)
        note = next((n for t in tables if (n := missing_note(t, where, run_missing))), None)
        shown = [matching(recs, settings) for recs in loaded]
    warn(err, note)
    if not quiet:
        err.print(
            sources_note([(p, is_shipped, len(recs)) for (p, is_shipped), recs in zip(sources, shown)]),
            style="dim",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if preset in STUDIES:
        emit(out, render.study_output(preset, summary, fmt))
    elif fmt == "json" and len(tables) > 1:
        emit(out, render.json_text({"preset": preset, "tables": tables}))
    else:
        for t in tables:
            emit(out, render.paper_table_output(t, fmt, not no_paper))
    if plot:
        from ..analysis.figures import sources_figure

        failed = results.write_each([(plot, saying(err, plot, lambda: sources_figure(plot, records)))])
        if failed:
            raise BadInput(failed[0])


@cli.command()
@config_options("method", method={"default": sources.exact()})
@training_options(without=("lr", "weight_decay"))  # each trial draws its own, from the ranges below
@not_offered("--lr", "tune draws each trial's learning rate from --lr-range LOW,HIGH; give that instead")
@not_offered(
    "--weight-decay", "tune draws each trial's weight decay from --weight-decay-range LOW,HIGH; give that instead"
)
@config_options("seed", seed={"help": "Seed of the weights, subset, batches and the search itself."})
@machine_options
@click.option("--trials", type=Whole(1, 10000), default=20, show_default=True, help="Random settings tried.")
@click.option(
    "--lr-range",
    default="1e-3,1",
    show_default=True,
    callback=log_range,
    help="Learning rates, log-uniform between LOW,HIGH.",
)
@click.option(
    "--weight-decay-range",
    default="1e-6,1e-2",
    show_default=True,
    callback=log_range,
    help="Weight decays, log-uniform between LOW,HIGH.",
)
@click.option(
    "--val-per-class",
    type=click.IntRange(min=0),
    default=VAL_PER_CLASS,
    show_default=True,
    help="Validate on N further training images per class, disjoint from the few-shot set; 0: hold one "
    "of the k few-shot images per class out instead (so few that trials often tie).",
)
@click.option(
    "--results",
    "results_file",
    type=click.Path(dir_okay=False),
    callback=writable_file,
    default=None,
    help="Append every trial's run record to this JSON Lines file; trials already in it are not run "
    "again (the same command resumes).",
)
@output_options("the trials")
@library_errors
def tune(data_dir, threads, trials, lr_range, weight_decay_range, val_per_class, results_file, as_json, quiet, **opts):
    """Random search of learning rate and weight decay on a validation split.

    The test set is never looked at: the score is the accuracy on further
    training images, disjoint from the few-shot set. When the best trials
    tie, none is chosen.

    \b
    Example:
      gradsel tune --trials 20
      gradsel tune --method select --optimizer adam --lr-range 1e-4,1e-2 --iters 2000
    """
    from .. import render
    from ..data import load_mnist_raw
    from ..runs.tuning import nothing_worked, tie_message
    from ..runs.tuning import tune as run_tune

    out, err = render.consoles(quiet or as_json)
    config = config_from(opts)
    refuse_unread([config])
    raw = load_mnist_raw(data_dir)
    prepare(threads, err)
    on_interrupt(kept_note(results_file, "trials"))
    stored(results_file)
    with render.progress_bar(err, trials, "tune", unit="") as update, compiling_shown(update):
        summary = run_tune(
            config,
            trials,
            lr_range,
            weight_decay_range,
            val_per_class,
            raw,
            results_file,
            progress=lambda d, t, info: update(d, t, info=info),
        )
    stored_before(err, summary, trials, results_file)
    show(out, summary, as_json, lambda: render.tune_table(summary))
    if tie_message(summary) and not quiet:  # a warning: said with --json too, as the library's are
        click.echo(f"Warning: {tie_message(summary)}", err=True)
    if nothing_worked(summary):
        raise click.ClickException(cast(str, nothing_worked(summary)))  # not None: tested just above


def stored_before(err, searched: dict, trials: int, results_file) -> None:
    """Say how many of a search's trials were read from its results file rather than run."""
    if searched["stored_before"]:
        err.print(
            f"{searched['stored_before']} of the {trials} trials were already stored in {results_file}; "
            "they were not run again.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _flag(option: str) -> str:
    return option.replace("_", "-")


def _step_list(ctx, param, value):
    """Callback: a comma list of steps h (None when not given)."""
    return comma_list(Finite(), "1e-3,1e-5")(ctx, param, value) if value else None


STEP_LIST = "steps_of_"  # gradcheck's parameter of each source's own steps: steps_of_ + its step option


def _each_source_steps(f):
    """gradcheck's option of each source's own steps, named as its step option in train (numeric's --fd-step)."""
    for s in reversed(list(sources.REGISTRY.values())):
        if s.step is None:
            continue
        f = click.option(
            f"--{_flag(s.step)}",
            STEP_LIST + s.step,
            multiple=True,
            metavar="LIST",
            callback=_step_list,
            help=f"Steps h to try for {s.name} alone, comma-separated: over --steps for it. [default: --steps]",
        )(f)
    return f


COUNT_LIST = "counts_of_"  # gradcheck's parameter of the numbers of directions q: counts_of_ + the option


def _each_direction_count(f):
    """gradcheck's option of the numbers of directions q its random sources are checked at, named as the option
    that counts them in train (one option for every source that shares it)."""
    counts: dict[str, list[str]] = {}
    for s in sources.REGISTRY.values():
        if s.check.count:
            counts.setdefault(s.check.count, []).append(s.name)
    for option, names in reversed(counts.items()):
        f = list_option(
            f"--{_flag(option)}",
            ",".join(map(str, GRADCHECK_QS)),
            size_list(option, "1,16,256"),
            f"Numbers of random directions q to check {' and '.join(names)} at, comma-separated, each over "
            "--draws draws.",
            dest=COUNT_LIST + option,
        )(f)
    return f


def _steps_text(source) -> str:
    """A source's own gradcheck steps in float64, as --help says them: 1e-2 to 1e-8."""
    steps = source.check.steps("float64")
    return f"{max(steps):g}" if len(steps) == 1 else f"{max(steps):g} to {min(steps):g}"


@cli.command()
@config_options(*CELL_KEYS)
@config_options("iters", "lr", iters={"default": 2000, "help": "Iterations of exact training before the second check."})
@click.option(
    "--steps",
    "steps",
    multiple=True,
    metavar="LIST",
    callback=_step_list,
    help="Steps h to try, comma-separated, for every checked source that has one ("
    + ", ".join(f"{s.name}'s --{_flag(s.step)}" for s in sources.REGISTRY.values() if s.step)
    + "); a step a source cannot take in the precision is left out for it. "
    "[default: each source across its own range: "
    + "; ".join(f"{s.name} {_steps_text(s)}" for s in sources.REGISTRY.values() if s.step)
    + " (float64)]",
)
@_each_source_steps
@_each_direction_count
@click.option(
    "--draws",
    type=click.IntRange(2, 100_000),
    default=GRADCHECK_DRAWS,
    show_default=True,
    help="Draws each random source's error is averaged over, at each q: the directions of iterations 1 to N.",
)
@list_option(
    "--check",
    ",".join(n for n in sources.names() if n != sources.exact()),
    source_list_option(",".join(n for n in sources.names() if n != sources.exact())),
    f"The sources to check against the exact gradient ({sources.exact()}), comma-separated.",
    dest="to_check",
)
@config_options("subset", "init_std", "init", "activation", "seed", "precision", "loss_epsilon")
@config_options(
    *(
        k
        for k in sources.options()
        if k not in {x.step for x in sources.REGISTRY.values()} | {x.check.count for x in sources.REGISTRY.values()}
    )
)
@machine_options
@plot_option("the error-versus-step plot (log-log); random sources' error against q beside it")
@output_options("the measurements")
@library_errors
def gradcheck(steps, draws, to_check, data_dir, threads, plot, as_json, quiet, **opts):
    """Every gradient source against the exact one, per block (and step h).

    On the first mini-batch of the run, at the initial weights and after
    --iters iterations of exact (analytic) training: the relative error
    ||g - g_exact|| / ||g_exact|| of W1, b1, W2, b2 and of all weights, and
    the cosine similarity, of each source, for each step h where it has one.
    For finite differences too large an h gives truncation error, too small an
    h rounding error: the error against h is V-shaped. A source of random
    directions is checked at several numbers of directions q, each over
    --draws draws: the mean error and its spread, against sqrt(P / q), the
    size the 1/q variance law predicts for P weights; its slope against q and,
    at initialisation, against the number of weights (other hidden sizes).

    \b
    Example:
      gradsel gradcheck --hidden 50 --batch 8
      gradsel gradcheck --steps 1e-3,1e-5 --fd-scheme forward --json
      gradsel gradcheck --fd-step 1e-4,1e-6 --cs-step 1e-20
      gradsel gradcheck --plot gradcheck.png
    """
    from .. import render
    from ..data import load_mnist_raw
    from ..numerics.gradcheck import gradcheck as run_check
    from ..runs import results

    counts = [opts.pop(k) for k in list(opts) if k.startswith(COUNT_LIST)]
    qs = next((c for c in counts if c is not None), None)
    own = {s.name: opts.pop(STEP_LIST + s.step) for s in sources.REGISTRY.values() if s.step}
    if any(v is not None for v in own.values()):  # a source's own list over --steps for it
        steps = {n: steps if v is None else v for n, v in own.items()}
    out, err = render.consoles(quiet or as_json)
    config = config_from(opts, method=sources.exact(), test_limit=1000)
    refuse_unread([config.replace(method=n) for n in to_check if n != sources.exact()], "--check")
    results.probe(plot)
    raw = load_mnist_raw(data_dir)
    prepare(threads, err, plot)
    with render.progress_bar(err, config.iters, sources.exact()) as update, compiling_shown(update):
        check = run_check(
            config,
            steps,
            raw,
            progress=lambda d, t, loss: update(d, t, loss=loss),
            names=to_check,
            qs=qs,
            draws=draws,
        )
    show(out, check, as_json, lambda: render.gradcheck_tables(check))
    if plot:
        from ..analysis.figures import gradcheck_figure, gradcheck_title

        gradcheck_figure(plot, check, gradcheck_title(check))
        wrote(err, plot)


def _existing(ctx, param, value):
    """Callback: an existing results file; results/NAME.jsonl, as the docs write, is the shipped copy outside a
    checkout."""
    from ..runs.results import readable

    return click.Path(exists=True, dir_okay=False).convert(str(readable(value)), param, ctx)


@cli.command()
@click.argument(
    "file", type=click.Path(dir_okay=False), callback=lambda ctx, param, value: _existing(ctx, param, value)
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the summary as CSV on stdout.")
@library_errors
def runs(file, as_json, as_csv):
    """Summarise a results file: one row per configuration.

    Reads any file written by train --out or compare / sweep / tune / table
    --results, and what train, compare, sweep and tune --json print; each run
    counts once. A file with no readable run record is an error. results/NAME.jsonl outside the checkout reads the copy
    shipped with gradsel. Rows are the configurations (runs equal but for the seed): the
    options that vary across the file, runs, accuracy mean ± 95% CI, mean
    final loss and diverged runs; below, the options every run shares.

    \b
    Example:
      gradsel runs results/compare.jsonl
      gradsel runs results/select.jsonl --csv > select.csv
    """
    from .. import render
    from ..analysis.report import runs_summary
    from ..runs import results

    if as_json and as_csv:
        raise BadInput("--json and --csv print different things to stdout; choose one")
    out, _ = render.consoles(as_json or as_csv)
    records = results.load(file)
    if not records:
        raise BadInput(
            f"{printable(file)} holds no run record; give a file written by train --out or --results FILE, or "
            "the --json output of train, compare, sweep or tune"
        )
    summary = runs_summary(records)
    if as_csv:
        emit(out, render.runs_csv(summary))
    else:
        show(out, summary, as_json, lambda: render.runs_table(summary, render.runs_title(summary, file)))


def _learning_rates(ctx, param, value):
    """--lr: one rate for every optimizer (a float), or NAME=RATE,... for some (a dict); None when not given."""
    if value is None:
        return None
    rate = Finite()
    if "=" not in value:
        return rate.convert(value, param, ctx)
    out = {}
    for item in value.split(","):
        name, _, text = item.partition("=")
        name = name.strip()
        if name not in OPTIMIZERS:
            raise click.BadParameter(
                f"{name!r} is not an optimizer; give NAME=RATE with NAME one of: {', '.join(OPTIMIZERS)}", ctx, param
            )
        out[name] = rate.convert(text.strip(), param, ctx)
    return out


def _point(ctx, param, value):
    """--start: X,Y, two finite numbers; None when not given."""
    if value is None:
        return None
    try:
        point = tuple(float(v) for v in value.split(","))
    except ValueError:
        point = ()
    if len(point) != 2 or not all(map(math.isfinite, point)):
        raise click.BadParameter(f"{value!r}: give the start as X,Y, two finite numbers, e.g. -7,2", ctx, param)
    return point


@cli.command()
@click.option(
    "--surface",
    type=click.Choice(SURFACES),
    default=SURFACES[0],
    show_default=True,
    help="The function: textbook x²/20 + y² (the textbook's figure 6-8), saddle x² - y², two-minima "
    "(x² - 1)² + 0.3x + y² (a local and a global minimum), rosenbrock (1 - x)² + 100(y - x²)².",
)
@click.option(
    "--method",
    type=click.Choice(sources.names()),
    default=sources.exact(),
    show_default=True,
    help="The gradient source: analytic takes the surface's closed-form gradient, the others their own "
    "estimate of it from the function's values (with their options below).",
)
@list_option(
    "--optimizers",
    "sgd,momentum,adagrad,adam",
    comma_list(click.Choice(OPTIMIZERS), "sgd,adam"),
    "The optimizers, one panel each, comma-separated.",
)
@click.option(
    "--lr",
    "lrs",
    metavar="RATE|NAME=RATE,...",
    callback=_learning_rates,
    help="Learning rates: one for every optimizer, or NAME=RATE for some (e.g. sgd=0.5,adam=0.1). "
    "[default: the surface's; the textbook's for its surface: sgd 0.95, momentum 0.1, adagrad 1.5, adam 0.3]",
)
@click.option("--start", metavar="X,Y", callback=_point, help="The start point. [default: the surface's; (-7, 2)]")
@click.option("--steps", type=Whole(1, 1_000_000), help="Steps of each optimizer. [default: the surface's; 30]")
@config_options(*sources.options())
@config_options("momentum", "rho", "beta1", "beta2", "eps")
@plot_option("the paths over the surface's contours (one panel per optimizer)")
@output_options("every point of every path")
@library_errors
def paths(surface, method, optimizers, lrs, start, steps, plot, as_json, quiet, **opts):
    """Optimizer paths over a 2-D function, with the gradient from a source.

    The study notes' picture of gradient descent (the textbook's figure 6-8,
    ch06/optimizer_compare_naive.py): each optimizer's path from a start
    point, over the function's contours, with the same optimizers the
    network trains with. Central differences are exact on a quadratic up to
    rounding, so on the textbook's surface numeric follows analytic; forward
    differences with a large --fd-step part visibly.

    \b
    Example:
      gradsel paths --plot paths.png
      gradsel paths --method numeric --fd-scheme forward --fd-step 0.5 --plot forward.png
      gradsel paths --surface rosenbrock --optimizers sgd,adam --json
    """
    from .. import render
    from ..numerics import paths as surfaces
    from ..runs import results

    out, err = render.consoles(quiet or as_json)
    config = config_from(opts, method=method)
    refuse_unread([config])
    results.probe(plot)
    rates = {o: lrs for o in optimizers} if isinstance(lrs, float) else (lrs or {})
    unused = sorted(set(rates) - set(optimizers))
    if unused:
        raise BadInput(f"--lr gives a rate for {', '.join(unused)}, which --optimizers does not run; drop it or add it")
    record = surfaces.run(config, surface, optimizers, rates, start, steps)
    show(out, record, as_json, lambda: [render.paths_table(record)])
    if plot:
        from ..analysis.figures import paths_figure

        paths_figure(plot, record, f"gradsel paths — {surfaces.title(record)}")
        wrote(err, plot)


@cli.command()
@click.argument("preset", type=click.Choice(list(lab_presets.PRESETS)))
@config_options("method", method={"default": sources.exact()})
@training_options(preset=lab_presets.SET)
@machine_options
@grid_options(seeds=1)
@click.option(
    "--trials",
    type=Whole(1, 10000),
    default=None,
    help="hyperparameters: the random settings of lr and weight decay tried [default: the preset's, 100].",
)
@plot_option("the figure [default: lab-PRESET-METHOD.png]")
@output_options("the summary and every curve")
@library_errors
def lab(preset, data_dir, threads, seeds, trials, results_file, plot, as_json, quiet, **opts):
    """The study notes' chapter-6 experiments on gradsel's network, with the gradient from any source.

    \b
    Presets (on the textbook's chapter-6 training unless an option says
    otherwise: all 60,000 images, B=128, H=100, ReLU, He, SGD lr 0.01, 2,000
    iterations; overfit: 300 images, B=100, 600 iterations; batch-norm: 1,000
    images, B=100, 200 iterations; hyperparameters: 400 images validated on
    100 more, B=100, 200 iterations):
    \b
      optimizers       training loss per optimizer (section 6.1), paired
      init             training loss per initialisation, per activation (6.2)
      init-histograms  hidden activations per initialisation and activation
                       (6.2): the textbook's 5 random layers, and gradsel's
                       network at initialisation and after training
      overfit          train against test accuracy per epoch on 300 images:
                       plain, weight decay 0.1, dropout 0.2 (6.4)
      batch-norm       training accuracy per epoch with and without batch
                       norm, for 16 initial weight scales (6.3)
      hyperparameters  random search of lr 10^U(-6,-2) and weight decay
                       10^U(-8,-4) on tune's machinery: each trial's
                       validation accuracy, the best 20 trials' curves (6.5)

    The runs are stored in --results (default lab-PRESET.jsonl) and never
    run twice: the same command resumes an interrupted lab, and redraws the
    same figure from the stored runs. The figure goes to --plot (default
    lab-PRESET-METHOD.png); one seed by default, --seeds N draws the mean
    with a band (hyperparameters: one search, of --trials N settings).

    \b
    Example:
      gradsel lab optimizers
      gradsel lab optimizers --method numeric
      gradsel lab init --seeds 3 --iters 1000
      gradsel lab init-histograms --method select --sources analytic,numeric
      gradsel lab hyperparameters --trials 30
    """
    import importlib.util

    from .. import render
    from ..analysis.report import lab_summary
    from ..runs import results
    from ..runs.experiments import trials as grid_trials

    p = lab_presets.PRESETS[preset]
    if (refused := lab_presets.refusal(preset, given_options())) is not None:
        raise click.UsageError(refused)
    out, err = render.consoles(quiet or as_json)
    grid = grid_from(opts)
    chosen = {k: v for k in lab_presets.SET if (v := opts.pop(k)) is not None}
    base = config_from(opts, **{**p.settings, **chosen})
    configs = [base] if p.search is not None else grid_trials(base, list(p.cells), range(seeds))
    refuse_unread(configs)
    results_file = results_file or f"lab-{preset}.jsonl"
    drawing = plot is not None or importlib.util.find_spec("matplotlib") is not None
    plot = plot or f"lab-{preset}-{base.method}.png"
    prepare(threads, err, drawing)
    results.probe(results_file, plot if drawing else None)
    if p.search is not None:
        summary = lab_search(p, base, trials or p.search.trials, data_dir, results_file, err)
    else:
        records = run_grid(configs, results_file, grid, data_dir, err, f"lab {preset}", p.points(base.to_dict()))
        summary = lab_summary(preset, configs, records, seeds)
    show(out, summary, as_json, lambda: render.lab_table(summary))
    if not drawing:
        say(err, "no figure: plotting needs matplotlib, which is not installed: pip install 'gradsel[plot]'")
        return
    from ..analysis import figures

    draw = {
        "curves": figures.lab_figure,
        "histograms": figures.lab_histograms_figure,
        "grid": figures.lab_grid_figure,
        "search": figures.lab_search_figure,
    }
    draw.get(p.figure, figures.lab_train_test_figure)(plot, summary, lab_presets.title(summary))
    wrote(err, plot)


def lab_search(p, base, trials: int, data_dir, results_file, err) -> dict:
    """Run (or resume) a search preset's trials on tune's machinery with a progress bar; lab's summary of them."""
    from .. import render
    from ..analysis.report import lab_search_summary
    from ..data import load_mnist_raw
    from ..runs.tuning import tune as run_tune

    raw = load_mnist_raw(data_dir)
    on_interrupt(kept_note(results_file, "trials"))
    stored(results_file)
    s = p.search
    with render.progress_bar(err, trials, f"lab {p.name}", unit="") as update, compiling_shown(update):
        searched = run_tune(
            base,
            trials,
            s.lr,
            s.weight_decay,
            s.val_per_class,
            raw,
            results_file,
            progress=lambda d, t, info: update(d, t, info=info),
            eval_points=p.points(base.to_dict()),
        )
    stored_before(err, searched, trials, results_file)
    return lab_search_summary(p.name, searched)
