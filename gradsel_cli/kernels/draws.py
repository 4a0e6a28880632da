"""A source's random directions from its per-iteration draws: pure functions of a word and a counter.

A gradient source that declares draws (sources/__init__.py: Source.draws) gets
its iteration's words (uint64, from the run seed's "draws" stream, seeding.py)
as the fused step's `draws` argument. No kernel holds a random generator:
entry i of a direction is a function of one word and i alone (the splitmix64
finaliser of word + (i + 1) * its golden-ratio increment, Steele et al. 2014),
in integer arithmetic, so that any thread may compute any entry and a direction
of any length costs no memory (MeZO's regenerate-from-a-seed).
"""

import math

import numba
import numpy as np

from .policy import INLINE

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11, _S63 = (np.uint64(s) for s in (30, 27, 31, 11, 63))
_ONE = np.uint64(1)


@numba.njit(**INLINE)
def _bits(word, i):
    """64 random bits, entry i (i >= 0) of the stream of `word` (uint64): splitmix64 at counter i + 1."""
    z = word + (np.uint64(i) + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(**INLINE)
def _uniform(word, i):
    """Entry i of the stream of `word` as a float64 in [0, 1): its top 53 bits, exactly."""
    return np.float64(_bits(word, i) >> _S11) * 2.0**-53


@numba.njit(**INLINE)
def _sign(word, i):
    """Entry i of the stream of `word` as +1.0 or -1.0 (a Rademacher draw): its top bit."""
    return 1.0 - 2.0 * np.float64(_bits(word, i) >> _S63)


@numba.njit(**INLINE)
def _normal(word, i):
    """Entry i of the stream of `word` as a standard normal draw (float64): Box-Muller of its entries 2i and
    2i + 1 as uniforms, the first moved to (0, 1] so that its logarithm is finite."""
    u = 1.0 - _uniform(word, 2 * i)
    return math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * _uniform(word, 2 * i + 1))
