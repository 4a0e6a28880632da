"""Paired multi-seed experiments: grids of trials, executors, resume.

A *trial* is one TrainConfig, seed included. For one seed every method gets
the same initial weights, few-shot subset and mini-batch sequence, so the
difference between two methods' trials is the difference of method alone.

Trials are independent: they run in worker processes, and only this process
(the client) writes the results file, one whole record per finished trial.
A trial whose run is already in the file (a record of the same run_key: one
that reads the same options, whatever the options it does not read say) is not
run again, so an interrupted grid resumes where it stopped, losing and
duplicating nothing.
An executor is anything with ``run(configs)`` yielding (config, record) as
trials finish: LocalExecutor (local.py) or DaskExecutor (dask_executor.py), both
running trials through trial.py.
"""

import contextlib

from ..config import TrainConfig, images_label
from . import results
from .local import LocalExecutor
from .processes import default_workers, terminate_as_interrupt
from .records import run_key
from .trial import GridError

_DEFAULT = TrainConfig()


def cell_label(config: TrainConfig) -> str:
    """A run as a progress bar names it: method, images, B, H, the optimizer, activation, initialisation, weight
    decay and dropout when not the defaults (what a lab varies), and the seed."""
    c = config
    init = f"std {c.init_std:g}" if c.init == "std" else c.init
    toolkit = [v for v, d in ((c.optimizer, _DEFAULT.optimizer), (c.activation, _DEFAULT.activation)) if v != d]
    toolkit += [init] if (c.init, c.init_std) != (_DEFAULT.init, _DEFAULT.init_std) else []
    toolkit += [f"{name} {v:g}" for name, v in (("weight decay", c.weight_decay), ("dropout", c.dropout)) if v]
    return " ".join([c.method, images_label(c), f"B={c.batch}", f"H={c.hidden}", *toolkit, f"seed={c.seed}"])


def trials(base: TrainConfig, cells: list[dict], seeds) -> list[TrainConfig]:
    """Every (cell, seed) as a full config: `base` with the cell's keys and the seed replaced."""
    return [base.replace(**cell, seed=int(seed)).validate() for cell in cells for seed in seeds]


def effective(config: TrainConfig) -> TrainConfig:
    """The run a config really is (TrainConfig.effective): the options its method does not read set to their
    defaults."""
    return config.effective()


def grid_cells(lists: dict[str, list]) -> list[dict]:
    """Every combination of the listed values, one dict per cell (the first key varies slowest)."""
    import itertools

    return [dict(zip(lists, combo)) for combo in itertools.product(*lists.values())]


def make_executor(
    name: str,
    workers: int | None,
    scheduler: str | None,
    data_dir=None,
    eval_points: int = 0,
    timeout: float | None = None,
    probe_every: int = 0,
):
    """The executor of a grid: local worker processes, or a Dask cluster (ValueError when that cannot be)."""
    if scheduler is not None and name != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if name == "local":
        return LocalExecutor(workers or default_workers(), data_dir, eval_points, probe_every=probe_every)
    from .dask_executor import DaskExecutor, DaskMissing

    try:
        return DaskExecutor(
            workers or default_workers(),
            data_dir,
            scheduler,
            eval_points,
            **({} if timeout is None else {"timeout": timeout}),
            probe_every=probe_every,
        )
    except DaskMissing:
        raise ValueError("--executor dask needs dask.distributed; install it: pip install 'gradsel[dask]'") from None


def preset_trials(preset: str, base: TrainConfig, seeds) -> list[TrainConfig]:
    """The trials of a `table` preset: a paper's grid, or one of the studies (papers.CONDITIONS: every study
    method on papers.study_cells() under each condition; subsets: analytic on paper A's B = 1 cells, first-k
    and random subsets, one per seed; sources: sources_study.trials)."""
    from .. import papers

    if preset == "conditions":
        cells = [dict(method=m, **cell) for cell in papers.study_cells() for m in papers.STUDY_METHODS]
        return [t for changes in papers.CONDITIONS.values() for t in trials(base.replace(**changes), cells, seeds)]
    if preset == "sources":
        return _sources_trials(base, seeds)
    if preset == "differences":  # each condition's runs on the widest cells it is compared on, seed by seed
        return _once(
            condition_config(base, name, cell, seed)
            for seed in seeds
            for name in papers.DIFFERENCE_CONDITIONS
            for cell in papers.difference_cells(papers.difference_scopes(name)[-1])
        )
    if preset in papers.SETTING_PRESETS:  # `base` has the setting (the command line applies it)
        return _once(
            t for paper in papers.SETTING_PRESETS[preset] for t in trials(base, papers.layout(paper).cells(), seeds)
        )
    if preset == "subsets":
        cells = [
            dict(method=papers.STUDY_SOURCES[0], batch=1, hidden=h, shots=k) for h in (20, 50) for k in (1, 2, 3, 4)
        ]
        return [t for subset in ("first", "random") for t in trials(base.replace(subset=subset), cells, seeds)]
    return trials(base, papers.layout(preset).cells(), seeds)


def _once(configs) -> list[TrainConfig]:
    """Each run once, in order: a run two conditions or papers share (paper B's analytic cells are paper A's) is
    one run, whatever the options it does not read say (TrainConfig.effective)."""
    unique: dict[TrainConfig, TrainConfig] = {}
    for t in configs:
        unique.setdefault(t.effective(), t)
    return list(unique.values())


def condition_config(base: TrainConfig, name: str, cell: dict, seed: int) -> TrainConfig:
    """The run of a condition of the differences comparison (papers.DIFFERENCE_CONDITIONS) in a cell
    (dict(method, batch, hidden, shots); a "paper" key is ignored) and seed."""
    from .. import papers

    keys = {k: v for k, v in cell.items() if k != "paper"}
    defaults = {k: getattr(_DEFAULT, k) for k in papers.condition_fields()}  # the condition's, not the base's
    return base.replace(**{**defaults, **papers.condition_changes(name), **keys}, seed=int(seed)).validate()


def _sources_trials(base: TrainConfig, seeds) -> list[TrainConfig]:
    """The sources study's runs (sources_study.py), seed by seed so that a partial store holds whole seeds: each
    cell at its iterations, then at those sources_study.BUDGET buys it (numerics/ledger.py); then the long
    regime's, at those sources_study.LONG_BUDGET buys them."""
    from .. import sources_study
    from ..numerics.ledger import within_budget

    out = []
    for seed in seeds:
        for cell in sources_study.cells():
            c = base.replace(**cell, seed=int(seed)).validate()
            out += [c, within_budget(c, sources_study.BUDGET)]
        out += [
            within_budget(base.replace(**cell, seed=int(seed)).validate(), sources_study.LONG_BUDGET)
            for cell in sources_study.long_cells()
        ]
    return out


def kept(done: int, ran: int, path) -> str:
    """What a grid that stopped early leaves: `done` runs stored in `path` (`ran` of them by this call);
    nothing to say when none is."""
    runs = f"{done} run{'' if done == 1 else 's'}"
    if done == 0:
        return ""
    if path is not None:
        return f"{runs} stored in {path}: run the same command again to resume"
    return f"no run was stored ({ran} finished; give --results FILE to keep finished runs)"


def _saying_what_is_kept(finished, done: int, path):
    """The executor's (config, record) pairs, each stored by the caller before the next; a GridError that
    stops them gets what was stored added: `done` runs before the first, and one more after each."""
    ran = 0
    with contextlib.closing(finished):
        try:
            for pair in finished:
                yield pair
                ran += 1
        except GridError as exc:
            if not exc.resume:
                raise
            note = kept(done + ran, ran, path)
            raise GridError(f"{exc}; {note}" if note else str(exc), resume=False) from None


def run_grid(configs: list[TrainConfig], path=None, executor=None, progress=None, reference=()) -> list[dict]:
    """Records of all `configs`, in their order: loaded from `path` (or the read-only `reference` files, such as
    the shipped runs) when there, run otherwise.

    Each finished trial is appended to `path` at once. progress(done, total, label).
    Only records of test-set runs count (a tune trial is not one).
    """
    executor = executor or LocalExecutor()
    stored: dict[str, dict] = {}
    store = None
    for rec in (r for p in reference for r in results.load(p, quiet=True)):
        stored.setdefault(run_key(rec), rec)
    if path is not None:
        for rec in results.load(path, redo=True):
            stored.setdefault(run_key(rec), rec)
        store = results.Store(path)
    keys = [run_key({"config": c.to_dict()}) for c in configs]  # a stored run that reads the same is the run
    todo, seen = [], set()
    for config, key in zip(configs, keys):
        if key not in stored and key not in seen:
            todo.append(config)
            seen.add(key)
    done = len(configs) - len(todo)
    if progress:
        progress(done, len(configs), "resumed" if done else "starting")
    if todo and path is not None:
        results.probe(path)  # before any run: a file that cannot be written is one line, not lost work
    with terminate_as_interrupt(), contextlib.closing(_saying_what_is_kept(executor.run(todo), done, path)) as finished:
        for config, record in finished:
            if store is not None:
                try:
                    store.append(record)  # not written again if another process stored this run meanwhile
                except results.StoreError as exc:
                    raise results.StoreError(
                        f"{exc}; {done} run{'' if done == 1 else 's'} stored, run the same command again to resume"
                    ) from None
            stored[run_key(record)] = record
            done += 1
            if progress:
                progress(done, len(configs), cell_label(config))
    return [stored[k] for k in keys]
