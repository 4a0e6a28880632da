"""A stop signal that is never lost.

The command line's handlers raise KeyboardInterrupt, but a signal can land
while Python runs a callback from C: Numba's compiler and its cache call some
through ctypes, which print the exception and drop it, and the run would go on
and end as if nothing had happened. So the handlers also note the signal here,
and ``check()``, called between kernel calls and when a command ends, raises it
again. No imports: any layer may call it.
"""

_pending = [False]


def note() -> None:
    """A signal arrived (the handler raises KeyboardInterrupt besides)."""
    _pending[0] = True


def clear() -> None:
    _pending[0] = False


def pending() -> bool:
    """Whether a signal arrived that nobody has acted on yet."""
    return _pending[0]


def check() -> None:
    """KeyboardInterrupt when a signal arrived that nobody has acted on yet."""
    if _pending[0]:
        raise KeyboardInterrupt
