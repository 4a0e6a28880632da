"""The same seed gives bitwise the same run, with one thread or several (STYLE.md: deterministic by construction)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradsel_cli.core import network
from gradsel_cli.core.threads import max_threads, set_threads
from gradsel_cli.numerics import training
from gradsel_cli.numerics.training import TrainConfig
from gradsel_cli.sources import numeric as numeric_source
from helpers import config_settings

CONFIG = dict(method="select", hidden=8, batch=4, iters=30, test_limit=100, seed=5)

RUN_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from gradsel_cli.core import threads
    from gradsel_cli.numerics.training import TrainConfig, train

    out = sys.argv[1]
    threads.set_threads(threads.max_threads())  # every call on all threads, however small
    result = train(TrainConfig(**{config!r}))
    np.save(out + "/params.npy", result.params.flat)
    np.save(out + "/losses.npy", result.loss_history)
    np.save(out + "/predictions.npy", result.predictions)
    np.save(out + "/sources.npy", result.sources)
    with open(out + "/threads.txt", "w") as fh:
        fh.write(str(threads.get_threads()))
""").format(config=CONFIG)


def run_in_subprocess(directory, threads: int) -> dict:
    directory.mkdir()
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, str(directory)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = {name: np.load(directory / f"{name}.npy") for name in ("params", "losses", "predictions", "sources")}
    out["threads"] = int((directory / "threads.txt").read_text())
    return out


def test_one_thread_and_two_threads_give_bitwise_the_same_run(tmp_path):
    one = run_in_subprocess(tmp_path / "one", 1)
    two = run_in_subprocess(tmp_path / "two", 2)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert one["params"].size == 784 * 8 + 8 + 8 * 10 + 10
    for name in ("params", "losses", "predictions", "sources"):
        assert one[name].dtype == two[name].dtype
        assert one[name].tobytes() == two[name].tobytes(), f"{name} differs between 1 and 2 threads"


@pytest.fixture
def threads():
    """Fix the kernels' thread count within this process; the automatic policy restored afterwards."""
    yield set_threads
    set_threads(None)


def test_kernels_do_not_depend_on_the_thread_count(threads, mnist_batch):
    if max_threads() < 2:
        pytest.fail("this test needs at least 2 Numba threads (NUMBA_NUM_THREADS)")
    x, y = mnist_batch
    params = network.init_params(50, seed=2, std=0.1)
    params32 = network.init_params(50, seed=2, std=0.1, dtype="float32")
    outputs = {}
    for n in (1, 2):
        threads(n)
        outputs[n] = [
            numeric_source.numeric_gradient(params, x, y).flat,
            numeric_source.numeric_gradient(params, x, y, config_settings(fd_scheme="forward")).flat,
            numeric_source.numeric_gradient(params, x, y, config_settings(fd_arith="textbook", loss_epsilon=1e-7)).flat,
            numeric_source.numeric_gradient(params32, x, y).flat,
            numeric_source.numeric_gradient(params32, x, y, config_settings(fd_arith="textbook")).flat,
            network.predict(params32, np.tile(x, (100, 1))),
            network.analytic_gradient(params, x, y).flat,
            np.array([network.loss(params, x, y)]),
            network.predict(params, np.tile(x, (100, 1))),
        ]
    for a, b in zip(outputs[1], outputs[2]):
        assert a.tobytes() == b.tobytes()


def test_two_runs_in_one_process_are_identical(mnist_raw):
    config = TrainConfig(**CONFIG)
    a, b = training.train(config, data=mnist_raw), training.train(config, data=mnist_raw)
    assert a.params.flat.tobytes() == b.params.flat.tobytes()
    assert a.loss_history.tobytes() == b.loss_history.tobytes()
    assert np.array_equal(a.predictions, b.predictions)
    assert np.array_equal(a.sources, b.sources)
    assert a.counts == b.counts and a.select_wins == b.select_wins
    assert a.rel_diff_mean == b.rel_diff_mean


def test_another_seed_gives_another_run(mnist_raw):
    a = training.train(TrainConfig(**CONFIG), data=mnist_raw)
    b = training.train(TrainConfig(**{**CONFIG, "seed": 6}), data=mnist_raw)
    assert not np.array_equal(a.params.flat, b.params.flat)
