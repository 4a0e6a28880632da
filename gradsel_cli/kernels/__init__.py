"""Every Numba kernel of gradsel, and nothing else (no I/O, no Rich, no Click, no thread policy); on
import, Numba's parallel backend started (below).

One module per part: the decorator policy (policy), precision and the exp/log
polynomials (precision), activations, lit pixels (lit), batch norm, forward,
losses and prediction (forward), the fused SGD loop (fused); and the kernels of
each gradient source in a module of their own (backward: backpropagation;
differences, differences_bn: finite differences; a new source's likewise, see
docs/adding-a-source.md). Kernels are private; the checked public wrappers live
in ``core/network.py`` and in each source's module of ``sources/``.

Determinism: a ``prange`` loop owns disjoint output elements and every sum is
done serially in a fixed order, so results are bitwise identical whatever the
thread count.

Names: a kernel's parameters carry the config's names (``fd_step``,
``loss_epsilon``); a choice between two names is a boolean named after the
field and the choice it is true for (``fd_central``: fd_scheme is central,
``fd_textbook``: fd_arith is textbook); a choice among more is an int code, the
name's position in choices.py (activation, loss; the policy's in
numerics/loop.POLICY_CODES). A gradient source's step of the fused loop has the one
signature of ``fused.step_signature``.
"""

import numba

# Numba's parallel backend is started before any kernel is loaded from Numba's cache. A cached kernel's
# machine code links against the backend's entry points (allocate_sched, numba_parallel_for...), which
# exist for LLVM only once the thread pool is launched. Numba launches it when it loads a cached parallel
# kernel, but a serial kernel compiled in a process where the parallel kernels it calls came from the
# cache (a source's fused step, after the damaged-cache recovery dropped its files) is cached without
# that hook, and loading it first in a later process aborted it: "LLVM ERROR: Symbol not found:
# allocate_sched". Launching the pool here, once, on import of the package (about 50 ms), makes the
# order of loads irrelevant. tests/test_feature_faults_process.py writes such a cache and loads it.
numba.get_num_threads()
