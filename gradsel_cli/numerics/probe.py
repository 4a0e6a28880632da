"""The fidelity probe: how close each of a run's gradient sources is to the exact gradient, as the run goes.

Every K iterations (from before the first), at the run's weights and on the batch of its next iteration, each
source's gradient (with the draws that iteration gives it) is compared with the exact one (backpropagation) at
the same point: their cosine and ||g - g*|| / ||g*||. For select, also each candidate update's loss minus the
first source's candidate's, on what select compares them on. A reading (without dropout's mask): nothing in the
run changes, and the ledger does not count it.
"""

import numpy as np

from .. import sources
from ..core import network
from . import loop, methods
from .methods import StepContext


def probe(s: StepContext, params: network.Params, opt_state, x, y, mask, t: int) -> dict:
    """The probe at iteration t (1-based: the weights before it, its batch x, y): by source, "cosine" and
    "rel_error" to the exact gradient, and with select "loss_gap" (its candidate's loss minus the first's)."""
    exact = sources.exact()
    truth, _ = methods.gradient(s, exact, params, x, y, mask, t)
    size = network.norm(truth.flat)
    out: dict[str, dict[str, float]] = {"cosine": {}, "rel_error": {}}
    grads = []
    for name in s.settings.sources:
        g = truth if name == exact else methods.gradient(s, name, params, x, y, mask, t)[0]
        grads.append(g)
        if name == exact:
            continue
        length = network.norm(g.flat)
        dot = float(np.dot(g.flat.astype(np.float64), truth.flat.astype(np.float64)))
        out["cosine"][name] = dot / (length * size) if length > 0 and size > 0 else float("nan")
        out["rel_error"][name] = network.norm(g.flat - truth.flat) / size if size > 0 else float("nan")
    if s.settings.policy == loop.POLICY_CODES["select"]:
        _, losses = methods.candidate_losses(s, grads, params, opt_state, x, y, mask)
        out["loss_gap"] = {name: losses[q] - losses[0] for q, name in enumerate(s.settings.sources) if q}
    return out


def iterations(iters: int, every: int) -> list[int]:
    """The iterations done at which the probe reads (0: before the first; none without `every`)."""
    return list(range(0, iters, every)) if every > 0 else []


def series(readings: list[tuple[int, dict]], every: int) -> dict | None:
    """The record's probe: "every", "iterations", and each measure's values by source (None: no readings)."""
    if not readings:
        return None
    out: dict = {"every": every, "iterations": [t for t, _ in readings]}
    for measure in readings[0][1]:
        names = readings[0][1][measure]
        out[measure] = {n: [float(r[measure][n]) for _, r in readings] for n in names}
    return out
