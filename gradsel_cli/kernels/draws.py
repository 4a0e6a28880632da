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

from .policy import INLINE, SERIAL
from .precision import _c

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
    """Entry i of the signs of `word` as +1.0 or -1.0 (a Rademacher draw): bit i % 64 (the lowest first) of
    entry i // 64 of its stream, so that one word of 64 bits gives 64 signs."""
    return 1.0 - 2.0 * np.float64((_bits(word, i >> 6) >> np.uint64(i & 63)) & _ONE)


GAUSSIAN, RADEMACHER, SPHERE = 0, 1, 2  # a direction's distribution (its code)

# The ziggurat of the standard normal (Marsaglia & Tsang, J. Stat. Softw. 2000), 256 layers of area _ZV each:
# layer 0 is the base strip (the rectangle under x < r and, beyond it, the tail), layer L >= 1 spans the heights
# f(_ZX[L]) to f(_ZX[L + 1]) under f(x) = exp(-x^2 / 2) and reaches out to _ZX[L].
_ZR = 3.6541528853610088  # where the tail begins
_ZV = 0.00492867323399  # each layer's area
_LAYERS = 256


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    """The layers' right edges x (257: the base strip's width v / f(r), r, ..., 0) and f at each."""
    x = np.zeros(_LAYERS + 1)
    x[0], x[1] = _ZV / math.exp(-0.5 * _ZR * _ZR), _ZR
    for layer in range(1, _LAYERS - 1):
        x[layer + 1] = math.sqrt(-2.0 * math.log(_ZV / x[layer] + math.exp(-0.5 * x[layer] * x[layer])))
    return x, np.exp(-0.5 * x * x)


_ZX, _ZF = _ziggurat_tables()
# A draw of layer L is inside the layer's rectangle, under the curve, when its uniform u (53 bits, an integer m
# over 2^53) times the width _ZX[L] is below _ZX[L + 1]: when m < _ZK[L] = ceil(2^53 _ZX[L + 1] / _ZX[L]). The
# integer test decides first, without the product.
_ZK = np.array([math.ceil(2.0**53 * _ZX[layer + 1] / _ZX[layer]) for layer in range(_LAYERS)], np.int64)
_SALT = np.uint64(0xD1B54A32D192ED03)  # the stream of an entry's further draws: word ^ _SALT
_RETRIES = 1024  # counters of an entry's further draws: i * _RETRIES + k (k < 1024 but with probability ~0)
_LOW8, _BIT8 = np.uint64(255), np.uint64(8)


@numba.njit(**INLINE)
def _normal(word, i):
    """Entry i of the stream of `word` as a standard normal draw (float64), by the ziggurat: its 64 bits give
    the layer (the low 8), the sign (bit 8) and a uniform (the top 53); 98.5% of draws are that uniform times
    the layer's width (_ZK decides), the rest are decided in _normal_outside."""
    bits = _bits(word, i)
    layer = np.int64(bits & _LOW8)
    m = np.int64(bits >> _S11)
    if m < _ZK[layer]:
        return (1.0 - 2.0 * np.float64((bits >> _BIT8) & _ONE)) * (np.float64(m) * 2.0**-53 * _ZX[layer])
    return _normal_outside(word, i, bits)


@numba.njit(**SERIAL)
def _normal_outside(word, i, bits):
    """_normal's draw of entry i whose first 64 bits `bits` fall outside their layer's rectangle: in the tail
    (Marsaglia's exponential method) or the wedge (a height under the curve, else 64 new bits), by further draws
    of the stream word ^ _SALT at counters i * _RETRIES + k."""
    extra = word ^ _SALT
    k = 0
    while True:
        layer = np.int64(bits & _LOW8)
        sign = 1.0 - 2.0 * np.float64((bits >> _BIT8) & _ONE)
        m = np.int64(bits >> _S11)
        x = np.float64(m) * 2.0**-53 * _ZX[layer]
        if m < _ZK[layer]:
            return sign * x
        if layer == 0:  # beyond r: the tail
            while True:
                t = -math.log(1.0 - _uniform(extra, i * _RETRIES + k)) / _ZR
                s = -math.log(1.0 - _uniform(extra, i * _RETRIES + k + 1))
                k += 2
                if s + s > t * t:
                    return sign * (_ZR + t)
        height = _ZF[layer] + _uniform(extra, i * _RETRIES + k) * (_ZF[layer + 1] - _ZF[layer])
        if height < math.exp(-0.5 * x * x):  # in the wedge, under the curve
            return sign * x
        bits = _bits(extra, i * _RETRIES + k + 1)
        k += 2


@numba.njit(**INLINE)
def _direction(word, dist, z):
    """The direction of `word` into z (P entries, of z's precision): normal or sign entries, or (SPHERE) a
    normal vector scaled to length sqrt(P), its length taken of the entries as stored."""
    P = z.shape[0]
    if dist == RADEMACHER:
        for block in range((P + 63) // 64):
            bits = _bits(word, block)
            for t in range(min(64, P - 64 * block)):
                z[64 * block + t] = _c(z, 1.0 - 2.0 * np.float64((bits >> np.uint64(t)) & _ONE))
        return
    for i in range(P):
        z[i] = _c(z, _normal(word, i))
    if dist == SPHERE:
        total = 0.0
        for i in range(P):
            total += np.float64(z[i]) * np.float64(z[i])
        scale = _c(z, math.sqrt(P / total))
        for i in range(P):
            z[i] = scale * z[i]


@numba.njit(**INLINE)
def _add_along(g, z, weight, q):
    """A direction's share of an estimate over q directions: g += weight z; with one direction z is g itself,
    drawn into it, and scaled there."""
    if q == 1:
        for i in range(g.shape[0]):
            g[i] = weight * g[i]
    else:
        for i in range(g.shape[0]):
            g[i] += weight * z[i]


@numba.njit(**INLINE)
def _average(g, q):
    """The estimate's sum over q > 1 directions (_add_along's) made their mean; one direction's is already."""
    for i in range(g.shape[0] if q > 1 else 0):
        g[i] /= _c(g, q)
