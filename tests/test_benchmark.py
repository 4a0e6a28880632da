"""gradsel bench (benchmark.py): its background load, what it times, the exponential counts."""

import json

import numpy as np
import pytest

from gradsel_cli.cli.commands import cli
from gradsel_cli.numerics import benchmark, threads


@pytest.fixture
def automatic():
    """The automatic thread policy before and after the test, whatever it sets."""
    threads.set_threads(None)
    yield
    threads.set_threads(None)


def test_background_load_stops_its_processes_even_on_interrupt():
    with pytest.raises(KeyboardInterrupt), benchmark.background_load(2) as procs:
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
    result = runner.invoke(
        cli, ["bench", "--hidden", "2", "--batch", "1", "--repeat", "1", "--background", "1", "--json"]
    )
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
    from gradsel_cli.numerics import network

    seen = []
    numeric = network.numeric_gradient
    monkeypatch.setattr(
        network,
        "numeric_gradient",
        lambda params, x, *a, **k: seen.append((params.dtype, x.dtype)) or numeric(params, x, *a, **k),
    )
    result = runner.invoke(
        cli, ["bench", "--hidden", "2", "--batch", "1", "--repeat", "1", "--precision", "float32", "--json"]
    )
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


def test_bench_times_one_iteration_and_one_gradient_on_a_clock_it_cannot_tell_from_the_real_one(monkeypatch):
    """A fake clock that advances a known cost per training iteration of each method and per gradient call:
    bench must report those costs per iteration and per call, and their ratio."""
    clock = [0.0]
    cost = {"analytic": 3.0, "numeric": 40.0, "alternate": 21.0, "select": 43.0}
    ran = []

    def advance(seconds):
        clock[0] += seconds

    names = {code: name for name, code in benchmark.network.METHOD_CODES.items()}

    def fake_sgd_iterations(params, x, y, batches, start, settings, *outputs, **kw):
        method = names[settings.method]
        ran.append((method, batches.shape))
        advance(cost[method] * len(batches))

    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(benchmark.network, "sgd_iterations", fake_sgd_iterations)
    monkeypatch.setattr(benchmark.network, "loss", lambda *a: advance(0.5))
    monkeypatch.setattr(benchmark.network, "analytic_gradient", lambda *a: advance(1.0))
    monkeypatch.setattr(benchmark.network, "numeric_gradient", lambda *a: advance(8.0))
    monkeypatch.setattr(benchmark, "_naive_timing", lambda *a: {"naive": 32.0, "naive_extrapolated": False})
    x = np.random.default_rng(0).uniform(size=(2, 784))
    row = benchmark.bench_one(x, np.array([1, 7]), hidden=3, repeat=3)
    assert {m for m, _ in ran} == set(cost) and all(shape[1] == 2 for _, shape in ran)  # each on the whole batch
    assert (row["loss"], row["analytic"], row["numeric"]) == (0.5, 1.0, 8.0)
    assert {m: row[f"iter_{m}"] for m in cost} == cost
    assert (row["iteration_over_analytic"], row["numeric_over_analytic"], row["naive_over_numeric"]) == (3.0, 8.0, 4.0)


def test_exp_count_shares_repeated_values_and_samples():
    x = np.array([[0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0], [0.25, 0.0, 0.0, 0.0]])
    y = np.array([3, 3, 1])
    H, K = 2, 10
    # distinct (sample, value): sample 0 {0.5, 1}, sample 1 repeats it, sample 2 {0.25, 1}
    assert benchmark.exp_count(x, y, H, K) == 2 * K * H * 4 + 2 * (H + 1) * K * 3
    assert benchmark.dense_exp_count(x, H, K) == 2 * K * H * (3 + 3 + 1 + 3) + 2 * (H + 1) * K * 3


def test_the_naive_reference_runs_on_one_blas_thread_whatever_the_environment(monkeypatch, mnist_batch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from gradsel_cli.numerics import network

    seen = []
    real = network.naive_numeric_gradient

    def spy(*args, **kwargs):
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return real(*args, **kwargs)

    monkeypatch.setattr(network, "naive_numeric_gradient", spy)
    x, y = mnist_batch
    with threadpool_limits(limits=2, user_api="blas"):  # as a machine with more BLAS threads would have
        benchmark.bench_one(x[:1], y[:1], 2, repeat=1)
    assert seen and set(seen) == {benchmark.NAIVE_BLAS_THREADS} == {1}
    assert benchmark.bench_record([], 1, 0)["naive_blas_threads"] == 1
