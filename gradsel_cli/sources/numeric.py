"""numeric: central (or forward) finite differences of the loss, one weight at a time.

Every perturbed loss is re-evaluated incrementally by the kernels of
kernels/differences.py (and differences_bn.py with batch norm): perturbing one
weight moves one hidden unit of the samples whose pixel is lit, or one output.
"""

from typing import NamedTuple

from ..fields import option
from . import Bench, Check, Fused, Source, knobs_in

FD_SCHEMES = ("central", "forward")
FD_ARITHS = ("exact", "textbook")  # how a finite difference subtracts the two perturbed losses


class Knobs(NamedTuple):
    fd_step: float
    fd_central: bool  # fd_scheme == "central" (else forward)
    fd_textbook: bool  # fd_arith == "textbook" (else exact)


def knobs(config) -> Knobs:
    return Knobs(float(config.fd_step), config.fd_scheme == "central", config.fd_arith == "textbook")


def gradient(params, x, y, settings, mask=None, draws=None):
    """(finite-difference gradient, batch loss), every perturbed loss re-evaluated incrementally (fast).

    fd_arith "exact" differences the per-sample losses (the batch loss's size
    never cancels; the moved unit's change still rounds, about eps / h);
    "textbook" subtracts the two perturbed batch losses as numbers, with the
    textbook's cancellation error. The weight-decay term is part of the loss:
    its change under each perturbation, 1/2 lambda ((w + h)^2 - (w - h)^2), is
    differenced like the rest.
    """
    return _numeric(params, x, y, settings, mask)


def numeric_gradient(params, x, y, settings=None, mask=None):
    """The finite-difference gradient alone, as Params (see gradient); settings: loop.settings(config), the
    defaults' when None."""
    return _numeric(params, x, y, settings, mask)[0]


def _numeric(params, x, y, settings, mask):
    """(gradient, batch loss): the step kernel's loss, or without one (batch norm) network.loss's."""
    import numpy as np

    from ..core import network
    from ..core.threads import run_parallel
    from ..kernels.differences import _numeric_step
    from ..kernels.differences_bn import _numeric_bn

    settings = network.DEFAULTS if settings is None else settings
    k: Knobs = knobs_in(settings, "numeric")
    x, y, mask = network.check_batch(params, x, y, mask)
    t = params.dtype.type
    if params.batch_norm:
        lit_columns = int(np.count_nonzero(x.any(axis=0))) + 1
        work = (2 if k.fd_central else 1) * params.hidden * lit_columns * x.shape[0] * params.n_out
        weights = (params.W1, params.b1, params.W2, params.b2, params.gamma, params.beta)
        g = run_parallel(
            _numeric_bn,
            work,
            x,
            y,
            *weights,
            settings.activation,
            mask,
            t(k.fd_step),
            k.fd_central,
            settings.loss,
            k.fd_textbook,
            t(settings.loss_epsilon),
        )
        grad, loss = network.as_params(params, *g), network.loss(params, x, y, settings, mask)
    else:
        work = _work(params.hidden, x.shape[0], float(np.count_nonzero(x)), k, params.n_in, params.n_out)
        grad, loss = network.step_gradient(_numeric_step, work, params, x, y, settings, mask, k)
    decay, fd_step = settings.weight_decay, k.fd_step
    if decay:
        w = params.flat
        lower = w - fd_step if k.fd_central else w
        change = 0.5 * decay * ((w + fd_step) ** 2 - lower**2) / ((2 * fd_step) if k.fd_central else fd_step)
        grad.flat[...] += change * params.weight_mask()
    return grad, loss


def naive_numeric_gradient(params, x, y, settings=None, mask=None, indices=None):
    """The textbook's procedure: perturb one weight, full NumPy forward pass, restore, and subtract the
    two batch losses, (f(w + h) - f(w - h)) / 2h, in the precision of `params`.

    Its loss is the textbook's -log(p + loss_epsilon) with loss_epsilon = 1e-7,
    the log-sum-exp form with 0 (see network.textbook_loss). Slow on purpose: the
    reference that tests and benchmarks compare against. With `indices`
    (positions in the flat vector) only those entries are computed; the rest of
    the result is NaN.
    """
    import numpy as np

    from ..core import network

    settings = network.DEFAULTS if settings is None else settings
    k: Knobs = knobs_in(settings, "numeric")
    x, y, mask = network.check_batch(params, x, y, mask)
    work = params.copy()
    t = params.dtype.type  # the losses are numbers of this precision, subtracted and divided in it
    f = lambda: t(network.textbook_loss(work, x, y, settings, mask))  # noqa: E731 (views see each perturbation)
    fd_step = k.fd_step
    grad = np.full_like(work.flat, np.nan)
    base = None if k.fd_central else f()
    for n in range(work.flat.size) if indices is None else indices:
        keep = work.flat[n]
        work.flat[n] = keep + fd_step
        up = f()
        if k.fd_central:
            work.flat[n] = keep - fd_step
            grad[n] = (up - f()) / t(2 * fd_step)
        else:
            grad[n] = (up - base) / t(fd_step)
        work.flat[n] = keep
    return params.with_flat(grad)


def _of_function(f, df, p, knobs):
    """Finite differences of the scalar function f at the point p, one coordinate at a time (central or forward,
    as its knobs say; the two arithmetics are one subtraction here)."""
    import numpy as np

    k = Knobs(*knobs)
    g = np.empty_like(p)
    for i in range(p.size):
        e = np.zeros_like(p)
        e[i] = k.fd_step
        g[i] = (f(p + e) - f(p - e)) / (2 * k.fd_step) if k.fd_central else (f(p + e) - f(p)) / k.fd_step
    return g


def _work(hidden: int, batch: int, lit: float, k: Knobs, n_in: int = 784, n_out: int = 10) -> float:
    """Inner-loop operations of one numeric gradient of a batch of `batch` samples with `lit` lit pixels."""
    work = (2 if k.fd_central else 1) * hidden * (lit + batch) * n_out
    if k.fd_textbook:  # every sample's loss also enters the sums of every pixel it leaves unmoved
        work += hidden * batch * (n_in + 1)
    return work


def _cost(hidden: int, batch: int, k: Knobs) -> float:
    """Forward-pass equivalents, as measured (sources/costs.py) with the central scheme; the forward scheme
    counted from it: the pass at w and half the perturbed losses."""
    from .costs import measured

    central = measured("numeric", hidden, batch)
    return central if k.fd_central else 1.0 + (central - 1.0) / 2.0


NAIVE_FULL_LIMIT = 3.0  # seconds: above this the naive gradient is sampled and extrapolated
NAIVE_SAMPLE = 400  # weights timed when sampling
NAIVE_BLAS_THREADS = 1  # BLAS threads of the naive reference's NumPy (the textbook code's single thread)


def _bench(params, x, y, settings, repeat: int, seed: int, seconds: float) -> dict:
    """What `gradsel bench` measures of the numeric gradient besides its time: the textbook's naive loop (perturb
    one weight, full forward pass, restore) on NAIVE_BLAS_THREADS BLAS threads (set with threadpoolctl, whatever
    the environment says, so that it does not swing with the load), timed on a random sample of weights and
    extrapolated when the full call would take more than NAIVE_FULL_LIMIT; and the exponentials it evaluates."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from ..core.timing import median_time

    n = params.flat.size
    sample = np.random.default_rng(seed).choice(n, size=min(NAIVE_SAMPLE, n), replace=False)
    with threadpool_limits(limits=NAIVE_BLAS_THREADS, user_api="blas"):
        per_weight = median_time(
            lambda: naive_numeric_gradient(params, x, y, settings, indices=sample), max(1, repeat // 2)
        ) / len(sample)
        extrapolated = per_weight * n > NAIVE_FULL_LIMIT
        naive = (
            per_weight * n
            if extrapolated
            else median_time(lambda: naive_numeric_gradient(params, x, y, settings), max(1, repeat // 2))
        )
    from ..core import network

    k: Knobs = knobs_in(settings, "numeric")
    series = not k.fd_textbook and settings.loss_epsilon == 0.0 and settings.loss == network.LOSS_CODES["cross-entropy"]
    sigmoid = settings.activation == network.ACTIVATION_CODES["sigmoid"]
    counts = op_counts(x, y, params.hidden, series=series, sigmoid=sigmoid)
    return {
        "naive": naive,
        "naive_extrapolated": extrapolated,
        "naive_blas_threads": NAIVE_BLAS_THREADS,
        "naive_over_numeric": naive / seconds,
        **counts,
        "exponentials_unshared": dense_exp_count(x, params.hidden),
    }


# Multiply-adds (a multiply, an add or a fused multiply-add each count one) of the numeric gradient's inner loops
# of W1 and b1, as kernels/differences.py writes them, per hidden unit:
SERIES_PAIR = 14  # per distinct (sample, value) pair by the cumulant series: h1..h4, u - v, the degree-5 sum
SERIES_SAMPLE = (13, 12)  # per distinct sample: (a, b) -> a n_out + b: S, kappa_1 - w_y, four central moments
EXP_LOGIT = 8  # per perturbed logit without the series: _exp_small's degree-6 polynomial (7), its sum (1)
EXP_PAIR = 9  # per distinct pair without the series: log1p's degree-9 series


def op_counts(x, y, hidden: int, n_out: int = 10, series: bool = True, sigmoid: bool = True) -> dict:
    """Per call (central differences, no dropout, the cross-entropy): the exponentials the numeric gradient
    evaluates and the multiply-adds of its W1 loops, with the cumulant series (`series`: the exact arithmetic
    without a loss epsilon, each move within its bound, kernels/differences.SERIES_SMALL) and without it.

    W1 and b1: without the series, 2 n_out exponentials per hidden unit and distinct (sample, value) pair, the
    bias counting as a pixel of value 1 (a value repeated within a sample, or a sample repeated in the batch, is
    evaluated once); with it, none. W2 and b2: without it 2 per (hidden unit or bias, logit, sample); with it
    none. A sigmoid unit's own: 2 per hidden unit and distinct sample (its e^-a, once per direction). Divisions:
    the sigmoid's, 2 per hidden unit and distinct pair, with the series and without (what is left of the W1 loops
    once the exponentials are gone)."""
    import numpy as np

    seen, pairs = set(), 0
    for row, label in zip(x, y):
        key = (row.tobytes(), int(label))
        if key not in seen:
            seen.add(key)
            pairs += len(np.unique(np.append(row[row != 0], 1.0)))
    output = 2 * (hidden + 1) * n_out * x.shape[0]
    units = 2 * hidden * len(seen) if sigmoid else 0
    without = {
        "exponentials": 2 * n_out * hidden * pairs + output + units,
        "multiply_adds": hidden * pairs * (2 * n_out * EXP_LOGIT + EXP_PAIR),
    }
    a, b = SERIES_SAMPLE
    with_series = {
        "exponentials": units,
        "multiply_adds": hidden * (pairs * SERIES_PAIR + len(seen) * (a * n_out + b)),
    }
    now = with_series if series else without
    # a shifted sigmoid unit, 1 / (1 + e^-a e^-hx), per hidden unit, distinct pair and direction, either way
    divisions = 2 * hidden * pairs if sigmoid else 0
    return {**now, **{f"{k}_without_series": v for k, v in without.items()}, "divisions": divisions}


def dense_exp_count(x, hidden: int, n_out: int = 10) -> int:
    """The same without sharing: 2 x n_out per hidden unit and lit pixel of each sample (and bias)."""
    import numpy as np

    nnz = int(np.count_nonzero(x)) + x.shape[0]
    return 2 * n_out * hidden * nnz + 2 * (hidden + 1) * n_out * x.shape[0]


def _fused():
    from ..kernels.differences import _numeric_step

    return _numeric_step


FD_SANE = (1e-10, 1e-1)  # finite-difference steps outside this range give a gradient of rounding or curvature


def _hint(config) -> str | None:
    """A step outside FD_SANE, after a run that diverged."""
    if FD_SANE[0] <= config.fd_step <= FD_SANE[1]:
        return None
    return (
        f"The numeric gradient with --fd-step {config.fd_step:g} is mostly rounding or curvature error; "
        "use a step near 1e-4."
    )


# Below this many of the precision's gaps (at the network's scale) a finite difference is mostly rounding: at 10
# gaps the numeric gradient was 19% (float64) and 21% (float32) from backprop's, at 1,000 gaps 1% (k = 2, B = 8,
# H = 50 at initialisation, 2026-12-07).
ROUNDING_FLOOR = 10


def _notice(config, weights) -> str | None:
    """A step too small for the run's precision: the kernels never form w + h, they move each pre-activation by
    h x (a logit by h z1) and difference the moved unit's or logit's values, whose rounding is about gap / h
    relative (gap: the precision's spacing at the larger of 1 and the weights' scale)."""
    import numpy as np

    top = max(1.0, float(np.max(np.abs(weights)))) if weights.size else 1.0
    gap = float(np.spacing(weights.dtype.type(top)))
    if config.fd_step >= ROUNDING_FLOOR * gap:
        return None
    return (
        f"--fd-step {config.fd_step:g} is within {ROUNDING_FLOOR} of {weights.dtype}'s spacing at the network's "
        f"scale ({gap:.1e}): the moved units and logits change by little more than their rounding, and the numeric "
        "gradient is mostly rounding error (about 20% or more); use a step near 1e-4"
    )


SOURCE = Source(
    name="numeric",
    description="finite differences, central (L(w+h) - L(w-h)) / 2h or forward, one weight at a time",
    label="numeric",
    colour="#ff7f0e",
    order=1,
    gradient=gradient,
    cost=lambda hidden, batch, k: _cost(hidden, batch, Knobs(*k)),
    twin="tests/reference.py: numeric_gradient (and network.naive_numeric_gradient, the textbook's loop)",
    options={
        "fd_step": (float, option(1e-4, "Finite-difference step h.", kind="positive")),
        "fd_scheme": (
            str,
            option(
                "central",
                "Finite-difference scheme: central (L(w+h)-L(w-h))/2h or forward (L(w+h)-L(w))/h.",
                choices=FD_SCHEMES,
            ),
        ),
        "fd_arith": (
            str,
            option(
                "exact",
                "Finite-difference arithmetic: exact (differences of per-sample losses: the batch "
                "loss's size never cancels) or textbook ((L+ - L-)/2h of the batch losses as numbers).",
                choices=FD_ARITHS,
            ),
        ),
    },
    placed={"fd_step": "init_std", "fd_scheme": "init_std", "fd_arith": "precision"},
    hint=_hint,
    notice=_notice,
    reads=("fd_step", "fd_scheme", "fd_arith"),
    knobs=knobs,
    step="fd_step",
    footer=lambda c: f"fd step {c['fd_step']} ({c['fd_scheme']})",
    arithmetic=("fd_arith",),
    fused=Fused(_fused, work=lambda hidden, batch, lit, k: _work(hidden, batch, lit, Knobs(*k))),
    check=Check(
        # from truncation error (large h) through the best step to rounding error (small h): the V of the check
        steps=lambda precision: (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
        truncation=lambda config: 2 if config["fd_scheme"] == "central" else 1,
        of_function=_of_function,
    ),
    bench=Bench(
        _bench,
        columns=(
            ("naive", "naive", "duration"),
            ("naive /\nnumeric", "naive_over_numeric", ",.0f×"),
            ("exps", "exponentials", "M"),
            ("w/o\nseries", "exponentials_without_series", "M"),
            ("mul-\nadds", "multiply_adds", "M"),
            ("w/o\nseries", "multiply_adds_without_series", "M"),
            ("divi-\nsions", "divisions", "M"),
        ),
        title="numeric: against the textbook's loop, and its exponentials",
        notes=(
            "naive: the textbook numerical gradient (a weight at a time, full forward",
            "pass), timed on a sample of weights and extrapolated above 3 s a call",
            "exps: the numeric gradient's exponentials (equal pixel values of a sample,",
            "and repeated samples, share theirs); mul-adds: of its W1 loops; w/o series:",
            "each without the cumulant series of the loss change (the exponentials' path);",
            "divisions: the shifted sigmoid units' (both paths)",
        ),
    ),
)
