"""The gradient sources: where an iteration's gradient comes from, one module each.

Every module of this package declares one ``SOURCE``: its name and one-line
description, the TrainConfig options it adds and those it reads, its checked
gradient function, its step of the fused training loop (or none: a run that uses
it then steps through Python), its cost in forward-pass equivalents, its label
and colour, and where its reference twin lives in the tests. The registry below
collects them in their declared order; the command line's choices, the records,
tables, figures, ``bench``, ``gradcheck`` and the studies iterate over it. No
module outside this package names a source (docs/adding-a-source.md).

Declarations are light: a source imports its kernels inside its functions, so
that reading a configuration never loads Numba.
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import Field, dataclass, field
from types import SimpleNamespace
from typing import Any


@dataclass(frozen=True)
class Source:
    """One gradient source, as its module declares it.

    gradient(params, x, y, settings, mask, draws) -> (Params, batch loss): the checked gradient of the mean
        loss (with weight decay) at `params` on the batch, and the loss there (with loss_epsilon); draws: its
        words of the iteration (loop.words_of; None where a caller has no iteration, for a source that draws
        none).
    draws(knobs) -> how many words (uint64) it draws each iteration (0: it is deterministic). They come from the
        run seed's "draws" stream by iteration, the same for every method of a seed and for both loops; its
        fused step gets them as `draws` and makes its directions of them (kernels/draws.py).
    knobs(config) -> tuple of floats: what its kernels need of the config (its options, converted);
        settings(config) keeps them under the source's name, and the fused step gets them as float64s.
    fused() -> its step of the fused loop (a Numba kernel of the signature of kernels/fused.py's
        _train_sgd steps), or None: then a run that uses the source steps through Python.
    cost(hidden, batch, lit) -> forward-pass equivalents of one gradient of a batch with `lit`
        lit pixels in all.
    work(hidden, batch, lit, knobs) -> inner-loop operations of one gradient, for the thread policy
        (0: a serial kernel).
    of_function(f, df, p, knobs) -> its gradient of a scalar function f of the point p (a 1-D float64
        array; f also takes complex points) given df, f's closed-form gradient, and its knobs; None: it
        works on the network alone (gradsel paths says so).
    """

    name: str
    description: str
    label: str
    colour: str
    order: int
    gradient: Callable[..., Any]
    cost: Callable[[int, int, float], float]
    twin: str  # the independent NumPy twin in the tests it is checked against
    options: dict[str, tuple[type, Field]] = field(default_factory=dict)  # TrainConfig fields it adds
    placed: dict[str, str] = field(default_factory=dict)  # option -> the TrainConfig field it comes after
    reads: tuple[str, ...] = ()  # options that change its gradient alone: set to defaults for runs without it
    knobs: Callable[[Any], tuple] = lambda config: ()
    fused: Callable[[], Any] | None = None
    dense: bool = False  # its fused step reads the batch's pixels x (else only their lit lists)
    sparse: bool = False  # its gradient is zero on the rows of W1 of pixels the batch leaves dark
    work: Callable[[int, int, float, tuple], float] = lambda hidden, batch, lit, knobs: 0.0
    draws: Callable[[tuple], int] = lambda knobs: 0  # words it draws each iteration, given its knobs
    exact: bool = False  # it is the exact gradient the others are measured against (one source)
    # bench(params, x, y, settings, repeat, seed, seconds per gradient) -> its own measurements, and how `gradsel
    # bench` shows them: (column header, key, format) of each; None: only its time per call
    step: str | None = None  # its option that is a step h, which gradcheck varies (None: it has none)
    # check_steps(precision) -> the steps h gradcheck tries by default, largest first: its own meaningful range
    check_steps: Callable[[str], tuple[float, ...]] = lambda precision: ()
    # problem(config) -> what is wrong with the config's values of its options (a step the precision cannot
    # carry, say), as the one line of a ValueError with its remedy; None: nothing (checked for the run's sources)
    problem: Callable[[Any], str | None] = lambda config: None
    # hint(config) -> after a run with it diverged, the option of its own most likely at fault and what to do, as
    # one sentence; None: nothing of its own to suspect (the learning rate is then blamed)
    hint: Callable[[Any], str | None] = lambda config: None
    # notice(config, weights) -> before a run with it, at its initial weights (a flat array): advice on its options
    # that does not stop the run (a step too small for the precision, say), as one line; None: nothing to say
    notice: Callable[[Any, Any], str | None] = lambda config, weights: None
    truncation: Callable[[dict], int] = lambda config: 2  # the power of h in its truncation error (a config dict)
    # footer(config dict) -> its settings in a table's footer, one phrase (numeric: "fd step 0.0001 (central)");
    # None: its step option and value ("cs step 1e-20"), nothing for a source without one (footer_phrase)
    footer: Callable[[dict], str] | None = None
    arithmetic: tuple[str, ...] = ()  # its options that choose its arithmetic: on a footer's arithmetic line
    bench: Callable[..., dict] | None = None
    bench_columns: tuple[tuple[str, str, str], ...] = ()
    bench_notes: tuple[str, ...] = ()  # what its columns mean
    bench_title: str = ""  # the title of its table of bench_columns (what they measure)
    of_function: Callable[[Callable, Callable, Any, tuple], Any] | None = None


def knobs_in(settings, name: str) -> Any:
    """Source `name`'s knobs in the run's Settings (core/network.py), or those of its options' defaults where the
    settings hold none (the network core's DEFAULTS)."""
    if name in settings.knobs:
        return settings.knobs[name]
    s = get(name)
    return s.knobs(SimpleNamespace(**{option: f.default for option, (_, f) in s.options.items()}))


def _discover() -> dict[str, Source]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        source = getattr(module, "SOURCE", None)
        if isinstance(source, Source):
            found.append(source)
    return {s.name: s for s in sorted(found, key=lambda s: (s.order, s.name))}


REGISTRY: dict[str, Source] = _discover()


def names() -> tuple[str, ...]:
    """Every registered source, in the registry's order."""
    return tuple(REGISTRY)


def get(name: str) -> Source:
    """The source called `name` (ValueError naming the registered ones)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown gradient source {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def exact() -> str:
    """The source every other is measured against: the exact gradient (backpropagation)."""
    return next(s.name for s in REGISTRY.values() if s.exact)


def options() -> dict[str, tuple[type, Field]]:
    """Every source's options, in the registry's order: the TrainConfig fields they add."""
    out: dict[str, tuple[type, Field]] = {}
    for s in REGISTRY.values():
        out.update(s.options)
    return out


def footer_phrase(name: str, config: dict) -> str | None:
    """Source `name`'s settings in the config dict `config` as a table's footer says them (Source.footer)."""
    s = get(name)
    if s.footer is not None:
        return s.footer(config)
    return f"{s.step.replace('_', ' ')} {config[s.step]}" if s.step else None


def register(source: Source) -> None:
    """Add a source at run time (a test's, or a user's own): it steps through Python unless it has a fused step.
    Its options cannot be added after TrainConfig is made; such a source reads none."""
    if source.options:
        raise ValueError("a source registered at run time cannot add options; declare it as a module of sources/")
    REGISTRY[source.name] = source


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def parse(text: str) -> tuple[str, ...]:
    """A comma-separated list of source names, checked (ValueError naming the problem and the choices)."""
    listed = tuple(n.strip() for n in str(text).split(","))
    for n in listed:
        if n not in REGISTRY:
            raise ValueError(f"unknown gradient source {n!r} in sources; choose from: {', '.join(REGISTRY)}")
    if len(set(listed)) != len(listed):
        raise ValueError(f"sources {text!r} lists a source twice; list each once")
    return listed
