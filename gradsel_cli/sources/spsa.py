"""spsa: simultaneous-perturbation stochastic approximation (Spall, IEEE TAC 1992), the zeroth-order estimate
of MeZO (Malladi et al., NeurIPS 2023) and of DeepZero's random gradient estimate (Chen et al., ICLR 2024).

g = (1/q) sum_r (L(w + eps z_r) - L(w - eps z_r)) / (2 eps) z_r over q random directions z_r (central; forward:
(L(w + eps z_r) - L(w)) / eps). The kernel (kernels/spsa.py) runs one forward pass at w and, per direction, its
tangent over the lit pixels, from which each moved loss needs only the hidden units and the output layer. The
directions are made from the iteration's draws (kernels/draws.py), one 64-bit word each, and never stored:
MeZO's regenerate-from-a-seed. Gaussian (MeZO's), Rademacher (Spall's)
or a normal vector scaled to length sqrt(P) (DeepZero's sphere): each has E[z z^T] = I, so the estimate is the
gradient in expectation up to the difference's O(eps^2), and its error falls as 1/sqrt(q).
"""

from typing import NamedTuple

from ..fields import option
from . import Check, Fused, Source, no_batch_norm, random_gradient, random_hint
from .costs import of_directions

ZO_DISTS = ("gaussian", "rademacher", "sphere")  # in the order of their codes in kernels/draws.py
ZO_SCHEMES = ("central", "forward")
MAX_DIRECTIONS = 100_000  # 2q forward passes an iteration: beyond it one iteration takes minutes


class Knobs(NamedTuple):
    zo_eps: float
    dist: float  # the index of zo_dist in ZO_DISTS (its code in kernels/draws.py)
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
    return random_gradient("spsa", _fused(), params, x, y, settings, mask, draws)


def _fused():
    from ..kernels.spsa import _spsa_step

    return _spsa_step


SOURCE = Source(
    name="spsa",
    description="SPSA / MeZO: losses along q random directions, (L(w+eps z) - L(w-eps z)) / 2eps z; unbiased",
    label="SPSA",
    colour="#9467bd",
    order=3,
    gradient=gradient,
    # as measured (sources/costs.py), the central scheme's: the forward scheme saves one moved loss a direction,
    # which takes only the hidden units and the output layer; the draws and the tangent pass stay
    cost=lambda hidden, batch, k: of_directions("spsa", int(Knobs(*k).directions), hidden, batch),
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
    problem=lambda config: no_batch_norm("spsa") if config.batch_norm else None,
    hint=lambda config: random_hint("spsa", config),
    footer=lambda c: f"spsa {c['zo_dist']} q={c['directions']} eps {c['zo_eps']} ({c['zo_scheme']})",
    fused=Fused(_fused),
    check=Check(steps=lambda precision: (1e-3,), count="directions"),
)
