"""complex-step: the complex-step derivative, g_i = Im L(w + i h e_i) / h (Squire & Trapp, SIAM Review 1998;
Martins, Sturdza & Alonso, ACM TOMS 2003).

No two nearby losses are subtracted, so the finite difference's cancellation
is absent and h can be tiny (--cs-step, 1e-20): as accurate as backprop, whose
rounding (in sums that nearly cancel after training) it shares. Its kernels
(kernels/complex_step.py) follow the numeric kernel's structure: perturbing
W1[i, j] moves only unit j of the samples whose pixel i is lit, so complex
arithmetic is done only where the perturbation flows (that unit, then the K
logits). ReLU and leaky ReLU branch on the real part: at a pre-activation of
exactly 0 they give backprop's one-sided slope (ReLU'(0) = 0, leaky 0.01).
"""

from typing import NamedTuple

from ..fields import option
from . import Check, Fused, Source, knobs_in
from .costs import measured


class Knobs(NamedTuple):
    cs_step: float


def gradient(params, x, y, settings=None, mask=None, draws=None):
    """(complex-step gradient, batch loss), in the precision of `params` (complex128 or complex64 inside). Weight
    decay adds lambda w, the complex step of its 1/2 lambda w^2 taken exactly."""
    import numpy as np

    from ..core import network
    from ..core.threads import run_parallel
    from ..kernels.complex_step import _complex_step_bn, _complex_step_fused

    settings = network.DEFAULTS if settings is None else settings
    k: Knobs = knobs_in(settings, "complex-step")
    x, y, mask = network.check_batch(params, x, y, mask)
    t = params.dtype.type
    lit = float(np.count_nonzero(x))
    work = _work(params.hidden, x.shape[0], lit, k)
    if params.batch_norm:
        weights = (params.W1, params.b1, params.W2, params.b2, params.gamma, params.beta)
        g = run_parallel(
            _complex_step_bn,
            work * x.shape[0],
            x,
            y,
            *weights,
            settings.activation,
            mask,
            t(k.cs_step),
            settings.loss,
            t(settings.loss_epsilon),
        )
        grad, loss = network.as_params(params, *g), network.loss(params, x, y, settings, mask)
    else:
        grad, loss = network.step_gradient(_complex_step_fused, work, params, x, y, settings, mask, k)
    if settings.weight_decay:
        grad.flat[...] += settings.weight_decay * params.flat * params.weight_mask()
    return grad, loss


def _of_function(f, df, p, knobs):
    """Complex steps of the scalar function f at the point p: Im f(p + i h e_k) / h for each coordinate k (f must
    take complex points; no two nearby values subtracted)."""
    import numpy as np

    h = Knobs(*knobs).cs_step
    g = np.empty_like(p)
    for i in range(p.size):
        z = p.astype(complex)
        z[i] += 1j * h
        g[i] = f(z).imag / h
    return g


def _work(hidden: int, batch: int, lit: float, k) -> float:
    """Inner-loop operations of one gradient, for the thread policy: a complex loss (K complex exponentials, each
    about four real ones) per hidden unit and lit pixel or bias of each sample."""
    return 4.0 * hidden * (lit + batch) * 10


MAX_CS_STEP = 1.0  # above it the truncation error (of order h^2 relative) swamps the derivative: no derivative at all


def smallest_step(precision: str) -> float:
    """The smallest step h the complex step carries in `precision`: Im L(w + ih) is h times the derivative, and
    for a derivative entry down to the precision's epsilon that product must stay a normal number (else it is
    subnormal, losing digits, or 0: every entry NaN); tiny / eps, about 1e-292 in float64 and 1e-31 in float32."""
    import numpy as np

    info = np.finfo(precision)
    return float(info.tiny) / float(info.eps)


def _problem(config) -> str | None:
    """A --cs-step the run's precision cannot carry, or one too large to be a derivative."""
    h, low = float(config.cs_step), smallest_step(config.precision)
    if h < low:
        return (
            f"--cs-step {h:.3g} is below {low:.0e}, the smallest step {config.precision} carries through the complex "
            "step (h times a gradient entry would underflow: the gradient is lost or NaN); use the default 1e-20"
        )
    if h > MAX_CS_STEP:
        return (
            f"--cs-step {h:.3g} is above {MAX_CS_STEP:g}: the complex step's truncation error (of order h^2) swamps "
            "the derivative; use the default 1e-20"
        )
    return None


def _hint(config) -> str | None:
    """A large step (its truncation error, of order h^2, no longer small), after a run that diverged."""
    if config.cs_step <= 1e-3:
        return None
    return (
        f"The complex-step gradient with --cs-step {config.cs_step:g} carries truncation error of order h^2; "
        "use the default 1e-20."
    )


def _check_steps(precision: str) -> tuple[float, ...]:
    """From truncation error (h near 1e-1, falling as h^2) down to the floor of rounding, past the default 1e-20
    to 1e-30 (both precisions carry it): the complex step's own range. Smaller steps down to smallest_step
    give the floor too, and can be asked for with --steps."""
    return (1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-12, 1e-16, 1e-20, 1e-30)


def _fused():
    from ..kernels.complex_step import _complex_step_fused

    return _complex_step_fused


SOURCE = Source(
    name="complex-step",
    description="the complex-step derivative Im L(w + ih) / h: no differencing, as accurate as backprop",
    label="complex-step",
    colour="#8c564b",
    order=2,
    gradient=gradient,
    cost=lambda hidden, batch, k: measured("complex-step", hidden, batch),
    twin="tests/reference.py: complex_step_gradient",
    options={"cs_step": (float, option(1e-20, "complex-step: the step h of Im L(w + ih) / h.", kind="positive"))},
    reads=("cs_step",),
    knobs=lambda config: Knobs(float(config.cs_step)),
    step="cs_step",
    problem=_problem,
    hint=_hint,
    fused=Fused(_fused, work=lambda hidden, batch, lit, k: _work(hidden, batch, lit, k)),
    check=Check(steps=_check_steps, of_function=_of_function),
)
