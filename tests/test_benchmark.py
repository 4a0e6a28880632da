"""gradsel bench (benchmark.py): its background load, what it times, the exponential counts."""

import dataclasses
import json

import numpy as np
import pytest

from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.core import threads
from gradsel_cli.numerics import benchmark
from gradsel_cli.sources import numeric as numeric_source


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
    seen = []
    numeric = numeric_source._numeric
    monkeypatch.setattr(
        numeric_source,
        "_numeric",
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
    assert all(row[name] > 0 for name in sources.names())  # each source's time per call
    assert all(row[f"{name}_over_analytic"] > 0 for name in sources.names() if name != sources.exact())
    assert row["iteration_over_exact"] == row["iter_analytic"] / row["analytic"]
    assert {"naive", "naive_over_numeric", "exponentials", "multiply_adds", "naive_blas_threads"} <= set(row)
    assert row["exponentials"] < row["exponentials_without_series"]  # the default: the series


def test_bench_times_one_iteration_and_one_gradient_on_a_clock_it_cannot_tell_from_the_real_one(monkeypatch):
    """A fake clock that advances a known cost per training iteration of each method and per gradient call:
    bench must report those costs per iteration and per call, and their ratio."""
    clock = [0.0]
    # per iteration of each method (every registered source alone, and the policies), per call of each source
    cost = {name: 3.0 + 4.0 * q for q, name in enumerate(benchmark.METHOD_NAMES)}
    cost.update({"analytic": 3.0, "numeric": 40.0, "alternate": 21.0, "select": 43.0})
    gradient_cost = {name: 2.0**q for q, name in enumerate(sources.names())}
    gradient_cost.update({"analytic": 1.0, "numeric": 8.0})
    ran = []

    def advance(seconds):
        clock[0] += seconds

    names = {code: name for name, code in benchmark.loop.POLICY_CODES.items()}

    def fake_sgd_iterations(params, x, y, batches, start, settings, *outputs, **kw):
        method = names.get(settings.policy) or settings.sources[0]  # a source alone: PLAIN over it
        assert settings.sources == (("analytic", "numeric") if method in names.values() else (method,))
        ran.append((method, batches.shape))
        advance(cost[method] * len(batches))

    def fake_naive(params, x, y, settings=None, mask=None, indices=None):
        advance(32.0 if indices is None else 0.0)  # the sampled call: per weight ~0, so the full call is timed

    for name, seconds in gradient_cost.items():
        fake = dataclasses.replace(sources.get(name), gradient=lambda *a, seconds=seconds: advance(seconds))
        monkeypatch.setitem(sources.REGISTRY, name, fake)
    monkeypatch.setattr(benchmark.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(benchmark.loop, "sgd_iterations", fake_sgd_iterations)
    monkeypatch.setattr(benchmark.network, "loss", lambda *a: advance(0.5))
    monkeypatch.setattr(numeric_source, "naive_numeric_gradient", fake_naive)
    x = np.random.default_rng(0).uniform(size=(2, 784))
    row = benchmark.bench_one(x, np.array([1, 7]), hidden=3, repeat=3)
    assert {m for m, _ in ran} == set(cost) and all(shape[1] == 2 for _, shape in ran)  # each on the whole batch
    assert (row["loss"], row["analytic"], row["numeric"]) == (0.5, 1.0, 8.0)
    assert {name: row[name] for name in gradient_cost} == gradient_cost
    assert {m: row[f"iter_{m}"] for m in cost} == cost
    assert (row["iteration_over_exact"], row["numeric_over_analytic"]) == (3.0, 8.0)
    assert all(row[f"{n}_over_analytic"] == t for n, t in gradient_cost.items() if n != "analytic")
    assert (row["naive"], row["naive_extrapolated"], row["naive_over_numeric"]) == (32.0, False, 4.0)


def test_the_operation_counts_share_repeated_values_and_samples():
    x = np.array([[0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0], [0.25, 0.0, 0.0, 0.0]])
    y = np.array([3, 3, 1])
    H, K = 2, 10
    # distinct (sample, value): sample 0 {0.5, 1}, sample 1 repeats it, sample 2 {0.25, 1}: 4 pairs, 2 samples
    output = 2 * (H + 1) * K * 3  # W2 and b2: two exponentials per (unit or bias, logit, sample) without the series
    units = 2 * H * 2  # a sigmoid unit's e^-a per distinct sample, each direction
    a, b = numeric_source.SERIES_SAMPLE
    series = numeric_source.op_counts(x, y, H, K)
    assert series["exponentials"] == units
    assert numeric_source.op_counts(x, y, H, K, sigmoid=False)["exponentials"] == 0
    assert series["divisions"] == 2 * H * 4 and numeric_source.op_counts(x, y, H, K, sigmoid=False)["divisions"] == 0
    assert series["multiply_adds"] == H * (4 * numeric_source.SERIES_PAIR + 2 * (a * K + b))
    without = numeric_source.op_counts(x, y, H, K, series=False)
    assert without["exponentials"] == series["exponentials_without_series"] == 2 * K * H * 4 + output + units
    per_pair = 2 * K * numeric_source.EXP_LOGIT + numeric_source.EXP_PAIR
    assert without["multiply_adds"] == series["multiply_adds_without_series"] == H * 4 * per_pair
    assert numeric_source.dense_exp_count(x, H, K) == 2 * K * H * (3 + 3 + 1 + 3) + 2 * (H + 1) * K * 3


def test_the_naive_reference_runs_on_one_blas_thread_whatever_the_environment(monkeypatch, mnist_batch):
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    real = numeric_source.naive_numeric_gradient

    def spy(*args, **kwargs):
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return real(*args, **kwargs)

    monkeypatch.setattr(numeric_source, "naive_numeric_gradient", spy)
    x, y = mnist_batch
    with threadpool_limits(limits=2, user_api="blas"):  # as a machine with more BLAS threads would have
        row = benchmark.bench_one(x[:1], y[:1], 2, repeat=1)
    assert seen and set(seen) == {numeric_source.NAIVE_BLAS_THREADS} == {1}
    assert row["naive_blas_threads"] == 1  # numeric's own measurements say so


# --- bench --compile ---------------------------------------------------------------------------------------


def test_a_kernels_own_compile_time_leaves_out_the_kernels_compiled_inside_it():
    from gradsel_cli.numerics.compile_profile import summarise

    events = [  # (kernel, start, end, depth): outer compiles inner (which compiles leaf) and other
        ("m.outer", 0.0, 10.0, 0),
        ("m.inner", 1.0, 4.0, 1),
        ("m.leaf", 2.0, 3.0, 2),
        ("m.other", 5.0, 6.0, 1),
        ("m.inner", 13.0, 14.0, 0),  # a second specialisation, compiled on its own
    ]
    got = {k["kernel"]: k for k in summarise(events)}
    assert list(got) == ["m.outer", "m.inner", "m.leaf", "m.other"]
    assert (got["m.outer"]["seconds"], got["m.outer"]["inclusive"]) == (6.0, 10.0)
    assert (got["m.inner"]["seconds"], got["m.inner"]["inclusive"], got["m.inner"]["signatures"]) == (3.0, 1.0, 2)
    assert got["m.leaf"]["seconds"] == got["m.other"]["seconds"] == 1.0


def test_the_compile_scenarios_are_the_main_command_every_source_every_policy_and_float32():
    from gradsel_cli.config import POLICIES
    from gradsel_cli.numerics.compile_profile import scenarios

    changes = [c for _, c in scenarios()]
    assert changes[0] == {} and changes[-1] == {"precision": "float32"}
    from gradsel_cli.config import TrainConfig

    assert {TrainConfig(**c).method for c in changes} == {*sources.names(), *POLICIES}


def test_a_child_on_an_empty_cache_records_what_it_compiles_and_on_the_same_cache_again_nothing(tmp_path):
    import os
    import subprocess
    import sys

    from gradsel_cli.numerics.compile_profile import _CHILD

    def child():
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps({"method": "analytic"}), ""],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    first = child()
    names = {k["kernel"]: k for k in first["kernels"]}
    assert {"fused._train_sgd", "forward._predict", "backward._analytic_step"} <= set(names)
    assert "differences._numeric_step" not in names  # analytic alone does not compile the numeric gradient
    assert all(k["seconds"] > 0 and k["signatures"] >= 1 for k in first["kernels"])
    assert names["fused._train_sgd"]["inclusive"] > names["fused._train_sgd"]["seconds"]
    assert first["peak_rss_mb"] > 0
    assert child()["kernels"] == []  # loaded from the cache the first one left


def test_bench_compile_prints_its_tables_or_json_and_refuses_the_timing_options(runner, monkeypatch):
    from gradsel_cli.numerics import compile_profile

    kernel = {"kernel": "fused._train_sgd", "seconds": 1.5, "inclusive": 2.0, "signatures": 1}
    record = {
        "scenarios": [
            {
                "name": "main command (alternate)",
                "changes": {},
                "kernels": [kernel],
                "seconds": 3.0,
                "peak_rss_mb": 400,
            },
            {"name": "float32", "changes": {"precision": "float32"}, "kernels": [], "seconds": 0.5, "peak_rss_mb": 250},
        ],
        "python": "3.11",
        "numba": "0.68",
    }
    monkeypatch.setattr(compile_profile, "profile_compiles", lambda *a, **k: record)
    as_json = runner.invoke(cli, ["bench", "--compile", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == record
    shown = runner.invoke(cli, ["bench", "--compile"])
    assert shown.exit_code == 0, shown.output
    assert "main command (alternate)" in shown.stdout and "fused._train_sgd" in shown.stdout
    assert "float32" in shown.stdout and "400" in shown.stdout
    refused = runner.invoke(cli, ["bench", "--compile", "--hidden", "50"])
    assert refused.exit_code == 2 and "--hidden sets how calls are timed" in refused.stderr


def test_bench_compile_says_in_one_line_which_scenario_failed(runner, monkeypatch):
    from gradsel_cli.numerics import compile_profile

    def failing(*a, **k):
        raise RuntimeError("the float32 scenario failed in its process: MemoryError")

    monkeypatch.setattr(compile_profile, "profile_compiles", failing)
    result = runner.invoke(cli, ["bench", "--compile"])
    assert result.exit_code == 1 and "Error: the float32 scenario failed" in result.stderr
    assert "Traceback" not in result.output


def test_bench_textbook_times_the_chapter_4_training_against_numpy_on_the_same_work(runner):
    got = runner.invoke(cli, ["bench", "--textbook", "20", "--json"])
    assert got.exit_code == 0, got.output
    record = json.loads(got.stdout)
    assert (record["config"]["subset"], record["config"]["batch"], record["config"]["iters"]) == ("all", 100, 20)
    assert record["gradsel_accuracy"] == pytest.approx(record["numpy_accuracy"], abs=2e-4)  # the same run
    assert record["gradsel_seconds"] >= record["gradsel_iterations_seconds"] > 0
    assert record["numpy_iterations_seconds"] > 0 and record["rounds"] == 2
    shown = runner.invoke(cli, ["bench", "--textbook", "20"])
    assert shown.exit_code == 0 and "NumPy / gradsel, iterations:" in shown.stdout
    for wrong, said in (
        (["--hidden", "20"], "--hidden sets how calls are timed, which --textbook does not do"),
        (["--compile"], "--compile and --textbook measure different things; choose one"),
    ):
        refused = runner.invoke(cli, ["bench", "--textbook", "20", *wrong])
        assert refused.exit_code == 2 and said in refused.stderr
