"""Every Numba kernel of gradsel, and nothing else (no I/O, no Rich, no Click, no thread policy).

One module per part: the decorator policy (policy), precision and the exp/log
polynomials (precision), activations, lit pixels (lit), batch norm, forward,
losses and prediction (forward), the fused SGD loop (fused); and the kernels of
each gradient source in a module of their own (backward: backpropagation;
differences, differences_bn: finite differences; a new source's likewise, see
docs/adding-a-source.md). Kernels are private; the checked public wrappers live
in ``numerics/network.py`` and in each source's module of ``sources/``.

Determinism: a ``prange`` loop owns disjoint output elements and every sum is
done serially in a fixed order, so results are bitwise identical whatever the
thread count.

Names: a kernel's parameters carry the config's names (``fd_step``,
``loss_epsilon``); a choice between two names is a boolean named after the
field and the choice it is true for (``fd_central``: fd_scheme is central,
``fd_textbook``: fd_arith is textbook); a choice among more is an int code, the
name's position in the registry of config.py (activation, loss; the policy's in
network.POLICY_CODES). A gradient source's step of the fused loop has the one
signature of ``fused.step_signature``.
"""
