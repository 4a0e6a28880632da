"""The thread policy: one place (kernels.py) imports numba and decides the threads."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gradsel_cli
from gradsel_cli import kernels

PACKAGE = Path(gradsel_cli.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_kernels_imports_numba():
    sources = sorted(PACKAGE.rglob("*.py"))  # every wing's modules, not only the top level
    assert PACKAGE / "kernels.py" in sources and len(sources) > 10
    importers = {p.relative_to(PACKAGE).as_posix() for p in sources if {"numba", "llvmlite"} & imported_modules(p)}
    assert importers == {"kernels.py"}


@pytest.fixture
def automatic():
    """The automatic policy before and after the test, whatever it sets."""
    kernels.set_threads(None)
    yield
    kernels.set_threads(None)


def test_set_and_get_threads(automatic):
    assert kernels.get_threads() is None
    assert kernels.max_threads() >= 1
    kernels.set_threads(1)
    assert kernels.get_threads() == 1
    assert kernels.threads_for(kernels._numeric, 10 ** 12) == 1  # a fixed count holds for any work
    kernels.set_threads(kernels.max_threads())
    assert kernels.threads_for(kernels._numeric, 1) == kernels.max_threads()
    kernels.set_threads(None)
    assert kernels.get_threads() is None


@pytest.mark.parametrize("bad", [0, -1, 10 ** 6])
def test_set_threads_rejects_counts_out_of_range(automatic, bad):
    with pytest.raises(ValueError, match="threads"):
        kernels.set_threads(bad)
    assert kernels.get_threads() is None


def test_small_calls_run_on_one_thread(automatic):
    assert kernels.threads_for(kernels._numeric, kernels.PARALLEL_WORK - 1) == 1


def test_choice_follows_the_measured_times_and_remeasures_the_other():
    choice, top = kernels._Choice(), 4
    assert choice.pick(top) == 1           # nothing measured: one thread first
    choice.record(1, top, 2e-9)
    assert choice.pick(top) == top         # then all threads
    choice.record(top, top, 1e-9)          # all threads faster
    picks = [choice.pick(top) for _ in range(kernels._PROBE_FIRST)]
    assert picks[:-1] == [top] * (kernels._PROBE_FIRST - 1) and picks[-1] == 1  # one thread re-measured
    for _ in range(3):                     # one thread now faster (the machine got busy): it takes over
        while choice.pick(top) != 1:
            pass
        choice.record(1, top, 1e-10)
    assert choice.best == 1 and choice.pick(top) == 1


def test_choice_probes_less_often_while_the_same_choice_keeps_winning():
    choice, top = kernels._Choice(), 2
    choice.record(1, top, 1e-9)
    choice.record(top, top, 5e-9)
    first = choice.interval
    for _ in range(3):
        while choice.pick(top) != top:
            pass
        choice.record(top, top, 5e-9)
    assert choice.interval == min(first * 8, kernels._PROBE_LAST)


def test_kernels_cached_is_false_before_anything_is_compiled(tmp_path):
    """In a process whose Numba cache is an empty directory nothing is cached (the first call compiles)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    code = "from gradsel_cli import kernels; print(kernels.kernels_cached())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_kernels_cached_after_a_call(mnist_batch):
    x, y = mnist_batch
    from gradsel_cli.numerics import network

    network.loss(network.init_params(3), x, y)  # compiles and caches _loss if it was not
    assert kernels.kernels_cached()
