"""analytic: the exact gradient by backpropagation (kernels/backward.py), over the lit pixels of each image."""

from . import Check, Fused, Source
from .costs import measured


def gradient(params, x, y, settings, mask=None, draws=None):
    """(gradient, batch loss) by backpropagation; with loss_epsilon > 0 the loss is -log(p + loss_epsilon) but
    the gradient stays that of -log p, as in the textbook's backward pass."""
    from ..core import network

    return network.analytic_gradient(params, x, y, settings, mask, return_loss=True)


def _fused():
    from ..kernels.backward import _analytic_step

    return _analytic_step


SOURCE = Source(
    name="analytic",
    description="backpropagation: the exact gradient",
    label="analytic",
    colour="#1f77b4",
    order=0,
    gradient=gradient,
    cost=lambda hidden, batch, k: measured("analytic", hidden, batch),  # measured: not the textbook's 3
    twin="tests/reference.py: analytic_gradient",
    exact=True,
    fused=Fused(_fused, sparse=True),
    check=Check(of_function=lambda f, df, p, knobs: df(p)),
)
