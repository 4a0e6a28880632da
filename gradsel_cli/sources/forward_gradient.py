"""forward: the forward gradient (Baydin, Pearlmutter, Syme, Wood & Torr, "Gradients without backpropagation",
2022): g = (1/q) sum_r (grad L . v_r) v_r over q standard normal directions v_r of all the weights.

Each directional derivative grad L . v is exact to rounding, by forward-mode differentiation: one tangent pass
beside the forward pass (kernels/tangent.py), no difference taken and no backward pass. E[v v^T] = I makes the
estimate the gradient in expectation; its error, like SPSA's, is about sqrt(P / q) times the gradient's size.
The directions are made in the kernel from the iteration's draws (kernels/draws.py), never stored.
"""

from typing import NamedTuple

from . import Check, Fused, Source, no_batch_norm, random_gradient, random_hint
from .costs import of_directions


class Knobs(NamedTuple):
    directions: float  # q: the iteration draws one word per direction


def gradient(params, x, y, settings=None, mask=None, draws=None):
    """(forward gradient, batch loss) on the directions of `draws`, the iteration's words (one a direction), in
    the precision of `params`. Weight decay adds lambda w exactly."""
    return random_gradient("forward", _fused(), params, x, y, settings, mask, draws)


def _fused():
    from ..kernels.forward_gradient import _forward_gradient_step

    return _forward_gradient_step


SOURCE = Source(
    name="forward",
    description="the forward gradient (grad L . v) v, v normal: forward-mode, no backward pass; unbiased",
    label="forward gradient",
    colour="#e377c2",
    order=4,
    gradient=gradient,
    cost=lambda hidden, batch, k: of_directions("forward", int(Knobs(*k).directions), hidden, batch),  # measured
    twin="tests/reference.py: forward_gradient",
    draws=lambda k: int(Knobs(*k).directions),
    reads=("directions",),
    knobs=lambda config: Knobs(float(config.directions)),
    problem=lambda config: no_batch_norm("forward") if config.batch_norm else None,
    hint=lambda config: random_hint("forward", config),
    footer=lambda c: f"forward q={c['directions']}",
    fused=Fused(_fused),
    check=Check(count="directions"),
)
