"""The cost table (sources/costs.py): every source's cost in forward-pass equivalents, how it is read between
and beyond the measured sizes, and `gradsel bench --costs`, which measures it again and says where it is off.
Whether this machine's kernels agree with the shipped table is a timing: `gradsel bench --costs` checks it (its
exit status), never a test here."""

import json
import math

import pytest

from gradsel_cli import data, sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network, threads
from gradsel_cli.numerics import benchmark, loop
from gradsel_cli.sources import costs


@pytest.fixture
def automatic_threads():
    """The automatic thread policy before and after the test, whatever it sets."""
    threads.set_threads(None)
    yield
    threads.set_threads(None)


GRID = {"hidden": [10, 40], "batch": [2, 8], "costs": {"k": [[1.0, 3.0], [5.0, 11.0]]}, "measured": "test"}


def test_the_table_is_read_exactly_at_its_sizes_between_them_in_log_scale_and_clamped_beyond():
    assert [costs.measured("k", h, b, GRID) for h in (10, 40) for b in (2, 8)] == [1.0, 3.0, 5.0, 11.0]
    assert costs.measured("k", 20, 2, GRID) == pytest.approx(3.0)  # 20 is half way from 10 to 40 in log scale
    assert costs.measured("k", 10, 4, GRID) == pytest.approx(2.0)
    assert costs.measured("k", 20, 4, GRID) == pytest.approx((1 + 3 + 5 + 11) / 4)
    assert costs.measured("k", 1, 1, GRID) == 1.0 and costs.measured("k", 1000, 1000, GRID) == 11.0


def test_the_shipped_table_holds_every_source_and_every_cost_is_a_positive_number():
    table = costs.table()
    keys = {key for key, _, _ in benchmark.cost_keys()}
    assert set(table["costs"]) == keys
    assert {n for n in sources.names()} <= keys  # each source at its defaults
    for key, grid in table["costs"].items():
        assert len(grid) == len(table["hidden"]) and all(len(row) == len(table["batch"]) for row in grid)
        assert all(v > 0 and math.isfinite(v) for row in grid for v in row), key
    for name, source in sources.REGISTRY.items():
        knobs = sources.knobs_in(network.DEFAULTS, name)
        assert source.cost(50, 8, knobs) == pytest.approx(costs.measured(name, 50, 8))


@pytest.mark.parametrize("name", [n for n, s in sources.REGISTRY.items() if s.check.count])
def test_a_random_source_costs_the_line_through_its_two_measured_counts_of_directions(name):
    source = sources.get(name)
    count = source.check.count

    def cost(q):
        return source.cost(50, 8, sources.knobs_in(loop.settings(TrainConfig(method=name, **{count: q})), name))

    assert cost(1) == pytest.approx(costs.measured(costs.key(name), 50, 8))
    assert cost(costs.COST_Q) == pytest.approx(costs.measured(costs.key(name, costs.COST_Q), 50, 8))
    assert cost(3) - cost(2) == pytest.approx(cost(101) - cost(100)) and cost(3) > cost(2)


def test_agreement_is_the_ratio_to_the_table_within_the_tolerance():
    measured = {**GRID, "costs": {"k": [[1.2, 3.0], [5.0, 22.0]]}}
    rows = {(r["hidden"], r["batch"]): r for r in benchmark.cost_agreement(measured, GRID, 0.35)}
    assert rows[(10, 2)]["ratio"] == pytest.approx(1.2) and rows[(10, 2)]["agrees"]
    assert rows[(40, 8)]["ratio"] == pytest.approx(2.0) and not rows[(40, 8)]["agrees"]
    assert sum(r["agrees"] for r in rows.values()) == 3


def test_measure_costs_gives_each_key_a_positive_cost_and_leaves_the_thread_count(automatic_threads):
    import numba

    before = numba.get_num_threads()
    xtr, ytr, _, _ = data.load_mnist_raw()
    got = benchmark.measure_costs(3, data.to_float(xtr[:2]), ytr[:2], repeat=1)
    assert set(got) == {key for key, _, _ in benchmark.cost_keys()}
    assert all(v > 0 and math.isfinite(v) for v in got.values())
    assert numba.get_num_threads() == before


def test_bench_costs_exits_1_naming_the_costs_off_the_table(runner, monkeypatch, automatic_threads):
    shipped = costs.table()
    far = {**shipped, "costs": {k: [[v * 1000 for v in row] for row in grid] for k, grid in shipped["costs"].items()}}
    monkeypatch.setattr(costs, "table", lambda: far)
    result = runner.invoke(cli, ["bench", "--costs", "--hidden", "2,3", "--batch", "1,2", "--repeat", "1", "--json"])
    assert result.exit_code == 1, result.output
    record = json.loads(result.stdout)
    assert record["tolerance"] == costs.TOLERANCE and not any(r["agrees"] for r in record["agreement"])
    shown = runner.invoke(cli, ["bench", "--costs", "--hidden", "2,3", "--batch", "1,2", "--repeat", "1"])
    assert shown.exit_code == 1 and "! = outside 1 ± 0.35: 28 of 28" in shown.stdout
    said = [line for line in shown.stderr.splitlines() if "differ from the shipped table" in line]
    assert len(said) == 1 and said[0].startswith("28 costs of 28 differ from the shipped table by more than 35%")


def test_bench_costs_refuses_what_it_does_not_vary(runner):
    for extra, flag in ((["--threads", "2"], "--threads"), (["--precision", "float32"], "--precision")):
        result = runner.invoke(cli, ["bench", "--costs", *extra])
        assert result.exit_code == 2 and f"drop {flag}" in result.output
    assert "choose one" in runner.invoke(cli, ["bench", "--costs", "--compile"]).output
    one = runner.invoke(cli, ["bench", "--costs", "--hidden", "50", "--batch", "1,8"])
    assert one.exit_code != 0 and "two hidden sizes or more" in one.output
