"""The one decorator policy of every kernel (STYLE.md), in one place.

Cached; parallel only where a prange exists. Of fastmath only "contract" (fused
multiply-add: one rounding instead of two, deterministic on a machine; the
polynomials of precision.py run ~1.4x faster); no reassociation, no
finite-math assumptions.
"""

from typing import Any

# the flags of the helpers precision.py overloads
HELPER: dict[str, Any] = dict(error_model="numpy", fastmath={"contract"})
SERIAL: dict[str, Any] = dict(HELPER, cache=True, nogil=True)
PARALLEL: dict[str, Any] = dict(SERIAL, parallel=True)
INLINE: dict[str, Any] = dict(SERIAL, inline="always")
# The few helpers that must round as NumPy does (the fused loop's SGD step and norms): no
# contraction. fastmath=False is said, not left out: Numba compiles a callee that leaves it
# unset with its caller's flags.
EXACT: dict[str, Any] = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)
