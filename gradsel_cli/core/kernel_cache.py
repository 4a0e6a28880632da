"""Numba's on-disk cache of the kernels: a damaged cache dropped, and each compile told.

A cache that cannot be loaded is dropped and the kernel compiled again: every
cached kernel's loader is guarded from this module's import on (network.py
imports it before its first kernel call), and says what it dropped to
``on_dropped`` (the command line prints one line). Each kernel this process
compiles rather than loads is told to ``on_compile`` as its compile starts.
``drop_damaged_cache`` checks every kernel's cache at once; no command pays for
that at start-up (0.2 s).
"""

import contextlib
import glob
import importlib
import os
import pkgutil
import time
import warnings
from collections.abc import Callable

import numba
import numpy as np

from .. import kernels
from ..kernels.fused import step_signature


# A damaged cache (a file cut short or overwritten: Numba's loader raises pickle's errors,
# EOFError, ValueError...) is dropped and the kernel compiled again, never an error.
def _cached_kernels() -> tuple:
    """Every cached kernel of every module of the kernels package (each once)."""
    found = {}
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for v in vars(module).values():
            # Dispatcher._cache is private: numba's stubs leave it out
            if isinstance(v, numba.core.dispatcher.Dispatcher) and hasattr(v._cache, "_cache_file"):  # type: ignore[attr-defined]
                found[id(v)] = v
    return tuple(found.values())


_CACHED = _cached_kernels()


def _cache_files(kernel) -> list[str]:
    """The cache files of `kernel` compiled from this source: its index and its data files."""
    f = kernel._cache._cache_file
    base = glob.escape(os.path.join(f._cache_path, f._index_name[: -len(".nbi")]))
    return [p for p in [f._index_path, *glob.glob(base + ".*.nbc")] if os.path.exists(p)]


def _drop(kernel) -> list[str]:
    """Remove `kernel`'s cache files (only these); the paths removed."""
    dropped = []
    for path in _cache_files(kernel):
        try:
            os.remove(path)
            dropped.append(path)
        except OSError:  # gone meanwhile, or not ours to remove: the guarded load compiles anyway
            pass
    return dropped


def _loads(kernel) -> bool:
    """Whether every cache entry of `kernel` unpickles (a missing file is no damage: Numba compiles)."""
    f = kernel._cache._cache_file
    try:
        for name in f._load_index().values():
            try:
                f._load_data(name)
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        return True
    except Exception:
        return False
    return True


def drop_damaged_cache() -> list[str]:
    """Check every kernel's cache files; drop those of each kernel whose cache cannot be loaded.
    The paths dropped (none when the cache is sound or absent)."""
    return [path for k in _CACHED if not _loads(k) for path in _drop(k)]


# on_dropped(paths): told when a guarded load found a kernel's cache damaged and dropped its files (`paths`),
# before the kernel is compiled again
on_dropped: Callable[[list[str]], None] | None = None
# on_compile(name): told when this process starts to compile one of gradsel's kernels (not to load it from the
# cache), for the outermost of nested compiles only: its module and name, as "fused._train_sgd"
on_compile: Callable[[str], None] | None = None


def _kernel_name(event) -> str | None:
    """The module and name of the kernel a "numba:compile" event is about ("fused._train_sgd"), None when it is
    not one of gradsel's."""
    function = event.data["dispatcher"].py_func
    if not function.__module__.startswith(__package__.split(".")[0] + "."):
        return None
    return f"{function.__module__.rsplit('.', 1)[-1]}.{function.__qualname__}"


class _Compiles(numba.core.event.Listener):
    """Tells on_compile of each outermost compile (Numba's "numba:compile" event: a cache miss, not a load)."""

    depth = 0

    def on_start(self, event):
        self.depth += 1
        if self.depth == 1 and on_compile is not None and (name := _kernel_name(event)) is not None:
            on_compile(name)

    def on_end(self, event):
        self.depth -= 1


numba.core.event.register("numba:compile", _Compiles())


@contextlib.contextmanager
def recording_compiles():
    """While open, every compile of gradsel's kernels in this process, nested ones too, is appended to the list it
    yields as (kernel, start, end, depth): perf_counter seconds, and depth the number of gradsel's kernels
    compiling around it (0: the outermost)."""
    events: list[tuple[str, float, float, int]] = []
    started: list[tuple[str | None, float, int]] = []  # every compile under way: (gradsel's kernel or None, ...)

    class Recorder(numba.core.event.Listener):
        def on_start(self, event):
            depth = sum(name is not None for name, _, _ in started)
            started.append((_kernel_name(event), time.perf_counter(), depth))

        def on_end(self, event):
            name, start, depth = started.pop()
            if name is not None:
                events.append((name, start, time.perf_counter(), depth))

    with numba.core.event.install_listener("numba:compile", Recorder()):
        yield events


def _guarded(kernel) -> None:
    """Loading `kernel` from a cache that fails (damaged after the check, or in a process that
    made none) drops its files and compiles instead; saving then writes a sound cache. A save
    that fails (a full disk, say) leaves the kernel uncached, not the run stopped."""
    cache = kernel._cache
    load, save = cache.load_overload, cache.save_overload

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:
            dropped = _drop(kernel)
            if dropped and on_dropped is not None:
                on_dropped(dropped)
            return None

    def save_overload(sig, data):
        try:
            save(sig, data)
        except Exception:
            pass

    cache.load_overload, cache.save_overload = load_overload, save_overload


for _kernel in _CACHED:
    _guarded(_kernel)


_TYPED: dict = {}


def typed_step(step, dtype):
    """A source's fused step as the fused loop takes it: compiled (or loaded from the cache) with the step's own
    flags for the one signature of `dtype` (kernels/fused.py step_signature), and closed to others, so that
    Numba passes it as a first-class function and the loop compiles once per precision, whatever the sources.
    Made once each."""
    key = (step.py_func, np.dtype(dtype).name)
    if key not in _TYPED:
        flags = {k: v for k, v in step.targetoptions.items() if k != "nopython"}  # njit's own, said again
        # cached as the step is: an uncached step (a test's) must not be loaded from a cache its callees outdate
        cache = not isinstance(step._cache, numba.core.caching.NullCache)
        typed = numba.njit(cache=cache, **flags)(step.py_func)  # its flags: a parallel step stays parallel
        _guarded(typed)
        with first_class_functions():
            typed.compile(step_signature(dtype))
        typed.disable_compile()
        _TYPED[key] = typed
    return _TYPED[key]


@contextlib.contextmanager
def first_class_functions():
    """Numba's note that first-class functions are experimental, unsaid: the fused loop relies on them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.NumbaExperimentalFeatureWarning)
        yield
