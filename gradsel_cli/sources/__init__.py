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
class Fused:
    """A source's step of the fused training loop (kernels/fused.py), and what the loop must know of it
    (numerics/loop.py reads it).

    step() -> the Numba kernel, of the one signature of kernels/fused.step_signature (imported when asked: a
        configuration read never loads Numba).
    work(hidden, batch, lit, knobs) -> inner-loop operations of one gradient, for the thread policy (0: a serial
        kernel).
    """

    step: Callable[[], Any]
    dense: bool = False  # the step reads the batch's pixels x (else only their lit lists: x is NaN)
    sparse: bool = False  # its gradient is zero on the rows of W1 of pixels the batch leaves dark
    work: Callable[[int, int, float, tuple], float] = lambda hidden, batch, lit, knobs: 0.0


@dataclass(frozen=True)
class Check:
    """What `gradsel gradcheck` and `gradsel paths` need of a source (numerics/gradcheck.py, numerics/paths.py,
    the gradcheck figure).

    steps(precision) -> the steps h gradcheck tries by default, largest first: its own meaningful range (for a
        source with a step option, Source.step).
    truncation(config dict) -> the power of h in its truncation error: the gradcheck figure's reference slope.
    of_function(f, df, p, knobs) -> its gradient of a scalar function f of the point p (a 1-D float64 array; f
        also takes complex points) given df, f's closed-form gradient, and its knobs; None: it works on the
        network alone (gradsel paths says so).
    count: for a source of random directions, its option that counts them (q): gradcheck checks it at
        several q over many iterations' draws (the mean and spread of its error, its slope against q and
        against the number of weights) instead of once.
    """

    steps: Callable[[str], tuple[float, ...]] = lambda precision: ()
    truncation: Callable[[dict], int] = lambda config: 2
    of_function: Callable[[Callable, Callable, Any, tuple], Any] | None = None
    count: str | None = None  # its option that counts its random directions q an iteration: gradcheck
    # varies it and measures its error over many draws (None: a deterministic source, checked once)


@dataclass(frozen=True)
class Bench:
    """A source's own measurements in `gradsel bench` (numerics/benchmark.py) and their table (render/tables.py).

    measure(params, x, y, settings, repeat, seed, seconds per gradient) -> its measurements, by key.
    columns: (column header, key, format) of each shown.
    """

    measure: Callable[..., dict]
    columns: tuple[tuple[str, str, str], ...] = ()
    title: str = ""  # the title of its table (what the columns measure)
    notes: tuple[str, ...] = ()  # what its columns mean


@dataclass(frozen=True)
class Source:
    """One gradient source, as its module declares it: what it is, how it computes, its options, and the parts
    that the fused loop (Fused), gradcheck and paths (Check) and bench (Bench) read.

    gradient(params, x, y, settings, mask, draws) -> (Params, batch loss): the checked gradient of the mean
        loss (with weight decay) at `params` on the batch, and the loss there (with loss_epsilon); draws: its
        words of the iteration (numerics/loop.words_of; None where a caller has no iteration, for a source
        that draws none).
    cost(hidden, batch, knobs) -> forward-pass equivalents of one gradient of a batch, with its knobs: its step's
        time over a forward pass's, measured (sources/costs.py: costs.json, `gradsel bench --costs`); the cost
        ledger (numerics/ledger.py) and --budget read it.
    draws(knobs) -> how many words (uint64) it draws each iteration (0: it is deterministic). They come from the
        run seed's "draws" stream by iteration, the same for every method of a seed and for both loops; its
        fused step gets them as `draws` and makes its directions of them (kernels/draws.py).
    knobs(config) -> tuple of floats: what its kernels need of the config (its options, converted); the run's
        Settings keep them under the source's name, and the fused step gets them as float64s.
    problem(config) -> what is wrong with the config's values of its options (a step the precision cannot carry,
        say), as the one line of a ValueError with its remedy; None: nothing (checked for the run's sources).
    hint(config) -> after a run with it diverged, the option of its own most likely at fault and what to do, as
        one sentence; None: nothing of its own to suspect (the learning rate is then blamed).
    notice(config, weights) -> before a run with it, at its initial weights (a flat array): advice on its options
        that does not stop the run (a step too small for the precision, say), as one line; None: nothing to say.
    footer(config dict) -> its settings in a table's footer, one phrase (numeric: "fd step 0.0001 (central)");
        None: its step option and value ("cs step 1e-20"), nothing for a source without one (footer_phrase).
    """

    # what it is, and how it computes
    name: str
    description: str
    label: str
    colour: str
    order: int
    gradient: Callable[..., Any]
    cost: Callable[[int, int, tuple], float]
    twin: str  # the independent NumPy twin in the tests it is checked against
    exact: bool = False  # it is the exact gradient the others are measured against (one source)
    draws: Callable[[tuple], int] = lambda knobs: 0  # words it draws each iteration, given its knobs
    # its options (TrainConfig's fields it adds) and what it says of their values
    options: dict[str, tuple[type, Field]] = field(default_factory=dict)
    placed: dict[str, str] = field(default_factory=dict)  # option -> the TrainConfig field it comes after
    reads: tuple[str, ...] = ()  # options that change its gradient alone: set to defaults for runs without it
    knobs: Callable[[Any], tuple] = lambda config: ()
    step: str | None = None  # its option that is a step h, which gradcheck varies (None: it has none)
    problem: Callable[[Any], str | None] = lambda config: None
    hint: Callable[[Any], str | None] = lambda config: None
    notice: Callable[[Any, Any], str | None] = lambda config, weights: None
    footer: Callable[[dict], str] | None = None
    arithmetic: tuple[str, ...] = ()  # its options that choose its arithmetic: on a footer's arithmetic line
    # the parts the fused loop, gradcheck and paths, and bench read
    fused: Fused | None = None  # None: a run that uses it steps through Python (bitwise the same, slower)
    check: Check = Check()
    bench: Bench | None = None  # None: bench shows its time per call only


def knobs_in(settings, name: str) -> Any:
    """Source `name`'s knobs in the run's Settings (core/network.py), or those of the options' defaults where the
    settings hold none (the network core's DEFAULTS): its own options' and those it reads of other sources'."""
    if name in settings.knobs:
        return settings.knobs[name]
    return get(name).knobs(SimpleNamespace(**{option: f.default for option, (_, f) in options().items()}))


def random_gradient(name: str, step, params, x, y, settings, mask, draws):
    """(gradient, batch loss) of the random-direction source `name` (its knobs' `directions` words an iteration)
    by its fused `step` kernel on the iteration's words `draws`, in the precision of `params`; weight decay
    added exactly (lambda w: not estimated, as MeZO applies it)."""
    from ..core import network

    settings = network.DEFAULTS if settings is None else settings
    knobs = knobs_in(settings, name)
    q = int(knobs.directions)
    if params.batch_norm:
        raise ValueError(no_batch_norm(name))
    if draws is None or len(draws) != q:
        raise ValueError(f"{name} draws {q} words an iteration (one a direction); none were given")
    x, y, mask = network.check_batch(params, x, y, mask)
    grad, loss = network.step_gradient(step, 0.0, params, x, y, settings, mask, knobs, draws)
    if settings.weight_decay:
        grad.flat[...] += settings.weight_decay * params.flat * params.weight_mask()
    return grad, loss


def no_batch_norm(name: str) -> str:
    """Why a random-direction source refuses batch norm, and what to do."""
    return f"{name} has no batch-norm pass of its directions; drop --batch-norm, or use analytic or numeric"


def random_hint(name: str, config) -> str:
    """After a run of a random-direction source climbed: its steps are about sqrt(P / q) times the gradient's
    length, so a learning rate fit for backprop overshoots."""
    return (
        f"{name} with --directions {config.directions} steps along random directions, about sqrt(P / q) times as "
        "long as the gradient (P weights): lower --lr, or raise --directions."
    )


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
