"""spsa: simultaneous-perturbation stochastic approximation (Spall, IEEE TAC 1992), the zeroth-order estimate
of MeZO (Malladi et al., NeurIPS 2023) and of DeepZero's random gradient estimate (Chen et al., ICLR 2024).

g = (1/q) sum_r (L(w + eps z_r) - L(w - eps z_r)) / (2 eps) z_r over q random directions z_r (central; forward:
(L(w + eps z_r) - L(w)) / eps), each loss a forward pass of the whole network: 2q forward passes (q forward),
and one at w for the loss. The directions are made in the kernel (kernels/spsa.py) from the iteration's draws,
one 64-bit word each, and never stored: MeZO's regenerate-from-a-seed. Gaussian (MeZO's), Rademacher (Spall's)
or a normal vector scaled to length sqrt(P) (DeepZero's sphere): each has E[z z^T] = I, so the estimate is the
gradient in expectation up to the difference's O(eps^2), and its error falls as 1/sqrt(q).
"""

from typing import NamedTuple

from ..fields import option
from . import Check, Fused, Source, knobs_in

ZO_DISTS = ("gaussian", "rademacher", "sphere")  # in the order of their codes in kernels/draws.py
ZO_SCHEMES = ("central", "forward")
MAX_DIRECTIONS = 100_000  # 2q forward passes an iteration: beyond it one iteration takes minutes


class Knobs(NamedTuple):
    zo_eps: float
    dist: float  # the index of zo_dist in ZO_DISTS (kernels/spsa's code)
    central: float  # 1: central (two losses a direction), 0: forward
    directions: float  # q: the iteration draws one word per direction


def knobs(config) -> Knobs:
    return Knobs(
        float(config.zo_eps),
        float(ZO_DISTS.index(config.zo_dist)),
        float(config.zo_scheme == "central"),
        float(config.directions),
    )


def gradient(params, x, y, settings=None, mask=None, draws=None):
    """(SPSA estimate, batch loss) on the directions of `draws`, the iteration's words (one a direction), in the
    precision of `params`. Weight decay adds lambda w exactly, as MeZO applies it: not estimated."""
    from ..core import network
    from ..kernels.spsa import _spsa_step

    settings = network.DEFAULTS if settings is None else settings
    k: Knobs = knobs_in(settings, "spsa")
    if params.batch_norm:
        raise ValueError(_NO_BATCH_NORM)
    if draws is None or len(draws) != int(k.directions):
        raise ValueError(f"spsa draws {int(k.directions)} words an iteration (one a direction); none were given")
    x, y, mask = network.check_batch(params, x, y, mask)
    grad = network.step_gradient(_spsa_step, 0.0, params, x, y, settings, mask, k, draws)
    if settings.weight_decay:
        grad.flat[...] += settings.weight_decay * params.flat * params.weight_mask()
    return grad, network.loss(params, x, y, settings, mask)


_NO_BATCH_NORM = "spsa has no batch-norm forward pass; drop --batch-norm, or use analytic or numeric"


def _cost(directions: int, central: bool) -> float:
    """Forward-pass equivalents: two a direction (one, forward), and one at w."""
    return (2.0 if central else 1.0) * directions + 1.0


def _problem(config) -> str | None:
    if config.batch_norm:
        return _NO_BATCH_NORM
    return None


def _hint(config) -> str | None:
    """A random estimate's step is about sqrt(P / q) times the gradient's size: a learning rate fit for backprop
    overshoots."""
    return (
        f"spsa with --directions {config.directions} steps along random directions, about sqrt(P / q) times as "
        "long as the gradient (P weights): lower --lr, or raise --directions."
    )


def _fused():
    from ..kernels.spsa import _spsa_step

    return _spsa_step


SOURCE = Source(
    name="spsa",
    description="SPSA / MeZO: losses along q random directions, (L(w+eps z) - L(w-eps z)) / 2eps z; unbiased",
    label="SPSA",
    colour="#2ca02c",
    order=3,
    gradient=gradient,
    cost=lambda hidden, batch, lit: _cost(1, True),
    twin="tests/reference.py: spsa_gradient",
    draws=lambda k: int(Knobs(*k).directions),
    options={
        "directions": (
            int,
            option(
                1,
                "spsa, forward: random directions q an iteration (their estimates averaged).",
                low=1,
                high=MAX_DIRECTIONS,
            ),
        ),
        "zo_eps": (float, option(1e-3, "spsa: the perturbation size eps (MeZO's 1e-3).", kind="positive")),
        "zo_dist": (
            str,
            option(
                "gaussian",
                "spsa: the directions' distribution: gaussian (MeZO), rademacher (+-1 entries, Spall) or sphere "
                "(a gaussian scaled to length sqrt(P), DeepZero).",
                choices=ZO_DISTS,
            ),
        ),
        "zo_scheme": (
            str,
            option(
                "central",
                "spsa: central (L(w+eps z) - L(w-eps z)) / 2eps, two losses a direction, or forward "
                "(L(w+eps z) - L(w)) / eps, one.",
                choices=ZO_SCHEMES,
            ),
        ),
    },
    reads=("directions", "zo_eps", "zo_dist", "zo_scheme"),
    knobs=knobs,
    step="zo_eps",
    problem=_problem,
    hint=_hint,
    footer=lambda c: f"spsa {c['zo_dist']} q={c['directions']} eps {c['zo_eps']} ({c['zo_scheme']})",
    fused=Fused(_fused),
    check=Check(steps=lambda precision: (1e-3,), count="directions"),
)
