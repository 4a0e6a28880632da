"""The thread policy: one place (kernels.py) imports numba and decides the threads; `bench --background`."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import gradsel_cli
from gradsel_cli import benchmark, kernels
from gradsel_cli.cli import cli

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
    sources = sorted(PACKAGE.glob("*.py"))
    assert PACKAGE / "kernels.py" in sources and len(sources) > 10
    importers = {p.name for p in sources if {"numba", "llvmlite"} & imported_modules(p)}
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


def test_kernels_cached_answers_a_bool():
    assert isinstance(kernels.kernels_cached(), bool)


def test_background_load_stops_its_processes_even_on_interrupt():
    with pytest.raises(KeyboardInterrupt):
        with benchmark.background_load(2) as procs:
            assert len(procs) == 2 and all(p.poll() is None for p in procs)
            raise KeyboardInterrupt
    assert all(p.poll() is not None for p in procs)


@pytest.fixture
def recorded_background(monkeypatch):
    """The busy processes each bench starts, recorded."""
    started = []
    real = benchmark.background_load

    def recording(n):
        cm = real(n)

        class Recorder:
            def __enter__(self):
                procs = cm.__enter__()
                started.extend(procs)
                return procs

            def __exit__(self, *exc):
                return cm.__exit__(*exc)
        return Recorder()

    monkeypatch.setattr(benchmark, "background_load", recording)
    return started


def test_bench_background_stops_its_processes(runner, recorded_background, automatic):
    result = runner.invoke(cli, ["bench", "--hidden", "2", "--batch", "1", "--repeat", "1", "--background", "1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["background"] == 1
    assert len(recorded_background) == 1
    assert recorded_background[0].poll() is not None


def test_bench_background_stops_its_processes_on_ctrl_c(runner, recorded_background, monkeypatch, automatic):
    def interrupted(*args, **kwargs):
        assert recorded_background and recorded_background[0].poll() is None  # running while timing
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "run_bench", interrupted)
    result = runner.invoke(cli, ["bench", "--background", "1", "--json"])
    assert result.exit_code != 0
    assert len(recorded_background) == 1 and recorded_background[0].poll() is not None


def test_bench_times_float32_when_asked_and_says_so(runner, automatic, monkeypatch):
    from gradsel_cli import network

    seen = []
    numeric = network.numerical_gradient
    monkeypatch.setattr(network, "numerical_gradient",
                        lambda params, x, *a, **k: seen.append((params.dtype, x.dtype)) or numeric(params, x, *a, **k))
    result = runner.invoke(cli, ["bench", "--hidden", "2", "--batch", "1", "--repeat", "1", "--precision", "float32",
                                 "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["precision"] == "float32" and record["rows"][0]["numeric"] > 0
    assert seen and all(p == np.float32 and x == np.float32 for p, x in seen)
    table = runner.invoke(cli, ["bench", "--hidden", "2", "--batch", "1", "--repeat", "1", "--precision", "float32"])
    assert "float32" in table.stdout.splitlines()[0]


def test_bench_times_an_iteration_of_each_method_as_training_runs_it(runner, automatic):
    result = runner.invoke(cli, ["bench", "--hidden", "3", "--batch", "2", "--repeat", "1", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["rows"][0]
    assert all(row[f"iter_{m}"] > 0 for m in ("analytic", "numeric", "alternate", "select"))
    assert row["iteration_over_analytic"] == row["iter_analytic"] / row["analytic"]


def test_exp_count_shares_repeated_values_and_samples():
    x = np.array([[0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0], [0.25, 0.0, 0.0, 0.0]])
    y = np.array([3, 3, 1])
    H, K = 2, 10
    # distinct (sample, value): sample 0 {0.5, 1}, sample 1 repeats it, sample 2 {0.25, 1}
    assert benchmark.exp_count(x, y, H, K) == 2 * K * H * 4 + 2 * (H + 1) * K * 3
    assert benchmark.dense_exp_count(x, H, K) == 2 * K * H * (3 + 3 + 1 + 3) + 2 * (H + 1) * K * 3


def test_kernels_cached_after_a_call(mnist_batch):
    x, y = mnist_batch
    from gradsel_cli import network

    network.loss(network.init_params(3), x, y)  # compiles and caches _loss if it was not
    assert kernels.kernels_cached()
