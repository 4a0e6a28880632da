"""The training loop's side of the network, over the gradient sources: a config's Settings, which runs the fused
loop takes, the alternate schedule, each source's draws, and the fused loop's checked wrapper (sgd_iterations).

Above the sources' registry (sources/), the configuration (config.py) and the network core (core/network.py).
"""

import numpy as np

from .. import seeding
from .. import sources as registry
from ..config import TrainConfig
from ..core import kernel_cache
from ..core.network import (
    ACTIVATION_CODES,
    LOSS_CODES,
    LitPixels,
    Params,
    Settings,
    check_images,
    lit_pixels,
)
from ..core.threads import run_parallel
from ..kernels.fused import ALTERNATE, PLAIN, SELECT, STEPS, _calls_of, _source_at, _train_sgd

POLICY_CODES = {"alternate": ALTERNATE, "select": SELECT}  # of the fused loop; a source alone is PLAIN


def settings(config: TrainConfig) -> Settings:
    """The Settings of `config`, validated (ValueError naming the first bad field)."""
    c = config.validate()
    return Settings(
        POLICY_CODES.get(c.method, PLAIN),
        c.run_sources(),
        ACTIVATION_CODES[c.activation],
        LOSS_CODES[c.loss],
        float(c.weight_decay),
        float(c.loss_epsilon),
        c.alternate_every,
        c.select_on == "train",
        c.lr,
        {name: source.knobs(c) for name, source in registry.REGISTRY.items()},
        int(c.seed),
    )


def fusable(config: TrainConfig) -> bool:
    """Whether sgd_iterations runs this configuration (else training.py steps through methods.py): plain SGD
    without weight decay, dropout or batch norm, over at most STEPS sources that all have a fused step."""
    return _plain_fused(config) and len(config.run_sources()) <= STEPS


def too_many_to_fuse(config: TrainConfig) -> str | None:
    """Why a run the fused loop would otherwise take steps through Python: more sources than the loop's STEPS
    (bitwise the same result, slower), as one line; None when that is not why."""
    n = len(config.run_sources())
    if n <= STEPS or not _plain_fused(config):
        return None
    return (
        f"{config.method} over {n} sources steps through Python: the fused training loop takes at most {STEPS}; "
        "the result is bitwise the same, only slower"
    )


def _plain_fused(config: TrainConfig) -> bool:
    c = config
    plain = c.optimizer == "sgd" and c.weight_decay == 0 and c.dropout == 0 and not c.batch_norm
    return plain and all(registry.get(n).fused is not None for n in c.run_sources())


def _every(s: Settings, end: int) -> int:
    """alternate_every for iterations up to `end`: the same iterations, in the kernels' int64."""
    return min(s.alternate_every, end + 1)


def source_at(s: Settings, t: int) -> int:
    """The position in s.sources of the source that iteration t (1-based) computes under plain or alternate (the
    schedule of kernels/fused._source_at, the one both loops follow)."""
    return int(_source_at(t, s.policy, len(s.sources), _every(s, t)))


def iterations_of(s: Settings, t0: int, T: int) -> list[int]:
    """How many of iterations t0 + 1 ... t0 + T compute each of the run's sources."""
    return [int(c) for c in _calls_of(t0, T, s.policy, len(s.sources), _every(s, t0 + T))]


def words_of(settings: Settings, source: str, t0: int, iterations: int) -> np.ndarray:
    """The words (uint64) `source` draws at iterations t0 + 1 ... t0 + `iterations` of the run of `settings`, as
    an (iterations, Source.draws) array: from the run seed's "draws" stream (seeding.draws), so the same at an
    iteration whatever the method, the other sources beside it and the loop (fused or through Python)."""
    per_iteration = registry.get(source).draws(settings.knobs.get(source, ()))
    return seeding.draws(settings.seed, source, t0, iterations, per_iteration)


def sgd_iterations(
    params: Params,
    x_train,
    y_train,
    batches,
    t0: int,
    settings: Settings,
    losses=None,
    sources=None,
    rel_diffs=None,
    lit: LitPixels | None = None,
    ties=None,
) -> tuple[int, bool]:
    """Iterations t0 + 1 ... t0 + len(batches) of plain SGD (no weight decay, dropout or batch norm)
    in one kernel call, `params` updated in place: bitwise the steps of methods.py.

    batches : (T, B) int64 indices into x_train (N, 784), y_train (N,); losses (float64) and sources
    (int8), each at least t0 + T long, and rel_diffs (float64, (t0 + T, n - 1) for n sources) receive
    iteration t's batch loss, the position in settings.sources of its kept update's source, and
    select's relative difference of each other source to the first, at t - 1 (made when not given); ties
    (bool, at least t0 + T long) whether select's kept candidate's loss equalled another's, bitwise.
    Returns the iterations done and whether the last diverged (a loss or a new weight not finite;
    the weights then stay those before it). `lit`: lit_pixels(x_train), made here when not given; a
    run gives it, so that no call costs anything that depends on the training set's size.
    """
    s = settings
    if params.batch_norm:
        raise ValueError("sgd_iterations runs networks without batch norm")
    x_train, y_train = check_images(params, x_train, y_train)
    t = params.dtype.type
    batches = np.ascontiguousarray(batches, dtype=np.int64)
    if batches.ndim != 2 or (batches.size and not 0 <= batches.min() <= batches.max() < len(y_train)):
        raise ValueError(f"batches must be (T, B) indices into the {len(y_train)} training images")
    run = [registry.get(name) for name in s.sources]
    if len(run) > STEPS or any(source.fused is None for source in run):
        raise ValueError(f"sgd_iterations runs at most {STEPS} sources, each with a fused step")
    end = t0 + len(batches)
    n_others = len(run) - 1
    losses = np.empty(end) if losses is None else losses
    sources = np.zeros(end, np.int8) if sources is None else sources
    rel_diffs = np.full((end, n_others), np.nan) if rel_diffs is None else rel_diffs
    ties = np.zeros(end, np.bool_) if ties is None else ties
    for name, out, dtype, ndim in (
        ("losses", losses, np.float64, 1),
        ("sources", sources, np.int8, 1),
        ("rel_diffs", rel_diffs, np.float64, 2),
        ("ties", ties, np.bool_, 1),
    ):
        if not (
            isinstance(out, np.ndarray)
            and out.dtype == dtype
            and out.ndim == ndim
            and len(out) >= end
            and (ndim == 1 or out.shape[1] == n_others)
            and out.flags.c_contiguous
        ):
            raise ValueError(f"{name} must be a contiguous {np.dtype(dtype).name} array of at least {end} rows")
    if lit is None:
        lit = lit_pixels(x_train)
    elif not (len(lit.ptr) == len(y_train) + 1 and lit.val.dtype == x_train.dtype and lit.ptr[-1] == len(lit.idx)):
        raise ValueError("lit must be lit_pixels(x_train), of these training images in their dtype")
    every = _every(s, end)
    knobs = [tuple(float(v) for v in s.knobs[source.name]) for source in run]
    width = max(1, *(len(k) for k in knobs))
    knob_array = np.zeros((len(run), width))
    for q, k in enumerate(knobs):
        knob_array[q, : len(k)] = k
    words = [words_of(s, source.name, t0, len(batches)) for source in run]
    draws = np.zeros((len(batches), len(run), max(w.shape[1] for w in words)), np.uint64)
    for q, w in enumerate(words):
        draws[:, q, : w.shape[1]] = w
    fused = [source.fused for source in run if source.fused is not None]
    steps = tuple(kernel_cache.typed_step(f.step(), params.dtype) for f in fused)
    steps = steps + (steps[0],) * (STEPS - len(steps))
    B = batches.shape[1]
    lit_per_batch = (len(lit.idx) - len(y_train)) / len(y_train) * B  # lit pixels of a batch, on average (no bias)
    calls = iterations_of(s, t0, len(batches))
    works = [f.work(params.hidden, B, lit_per_batch, s.knobs[source.name]) for f, source in zip(fused, run)]
    parallel = [(w, c) for w, c in zip(works, calls) if w > 0 and c > 0]
    with kernel_cache.first_class_functions():
        return run_parallel(
            _train_sgd,
            max((w for w, _ in parallel), default=0),
            params.flat,
            params.hidden,
            x_train,
            y_train,
            *lit,
            batches,
            t0,
            s.policy,
            steps,
            len(run),
            np.array([f.dense for f in fused]),
            np.array([f.sparse for f in fused]),
            knob_array,
            draws,
            every,
            t(s.lr),
            s.activation,
            s.loss,
            t(s.loss_epsilon),
            s.select_on_train,
            losses,
            sources,
            rel_diffs,
            ties,
            calls=sum(c for _, c in parallel),
        )
