"""The thread policy (core/threads.py) and the kernel cache check (core/kernel_cache.py), the only modules
besides the kernels that import numba."""

import ast
from pathlib import Path

import pytest

import gradsel_cli
from gradsel_cli.core import kernel_cache, threads
from gradsel_cli.kernels import differences

PACKAGE = Path(gradsel_cli.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_kernels_the_thread_policy_and_the_cache_check_import_numba():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 30
    importers = {p.relative_to(PACKAGE).as_posix() for p in sources if {"numba", "llvmlite"} & imported_modules(p)}
    # the package's __init__ imports Numba to start its parallel backend before any kernel loads
    kernels = {f"kernels/{p.name}" for p in (PACKAGE / "kernels").glob("*.py")} - {"kernels/policy.py"}
    assert len(kernels) >= 8  # the network's and each gradient source's own
    assert importers == kernels | {"core/threads.py", "core/kernel_cache.py"}


def test_the_cache_check_guards_the_kernels_of_every_module():
    from gradsel_cli.kernels import forward, fused, lit, precision

    guarded = set(kernel_cache._CACHED)
    assert {forward._predict, fused._train_sgd, differences._numeric_step, lit._nonzero, precision._exp64} <= guarded
    modules = {k.py_func.__module__.rsplit(".", 1)[1] for k in guarded}
    kernel_modules = {p.stem for p in (PACKAGE / "kernels").glob("*.py")} - {"__init__", "policy"}
    assert modules == kernel_modules  # every module of kernels/, a source's own too
    assert len(guarded) == len(kernel_cache._CACHED)  # each kernel once, though modules import each other's


@pytest.fixture
def automatic():
    """The automatic policy before and after the test, whatever it sets."""
    threads.set_threads(None)
    yield
    threads.set_threads(None)


def test_set_and_get_threads(automatic):
    assert threads.get_threads() is None
    assert threads.max_threads() >= 1
    threads.set_threads(1)
    assert threads.get_threads() == 1
    assert threads.threads_for(differences._numeric_step, 10**12) == 1  # a fixed count holds for any work
    threads.set_threads(threads.max_threads())
    assert threads.threads_for(differences._numeric_step, 1) == threads.max_threads()
    threads.set_threads(None)
    assert threads.get_threads() is None


@pytest.mark.parametrize("bad", [0, -1, 10**6])
def test_set_threads_rejects_counts_out_of_range(automatic, bad):
    with pytest.raises(ValueError, match="threads"):
        threads.set_threads(bad)
    assert threads.get_threads() is None


def test_small_calls_run_on_one_thread(automatic):
    assert threads.threads_for(differences._numeric_step, threads.PARALLEL_WORK - 1) == 1


def test_choice_follows_the_measured_times_and_remeasures_the_other():
    choice, top = threads._Choice(), 4
    assert choice.pick(top) == 1  # nothing measured: one thread first
    choice.record(1, top, 2e-9)
    assert choice.pick(top) == top  # then all threads
    choice.record(top, top, 1e-9)  # all threads faster
    picks = [choice.pick(top) for _ in range(threads._PROBE_FIRST)]
    assert picks[:-1] == [top] * (threads._PROBE_FIRST - 1) and picks[-1] == 1  # one thread re-measured
    for _ in range(3):  # one thread now faster (the machine got busy): it takes over
        while choice.pick(top) != 1:
            pass
        choice.record(1, top, 1e-10)
    assert choice.best == 1 and choice.pick(top) == 1


def test_choice_probes_less_often_while_the_same_choice_keeps_winning():
    choice, top = threads._Choice(), 2
    choice.record(1, top, 1e-9)
    choice.record(top, top, 5e-9)
    first = choice.interval
    for _ in range(3):
        while choice.pick(top) != top:
            pass
        choice.record(top, top, 5e-9)
    assert choice.interval == min(first * 8, threads._PROBE_LAST)
