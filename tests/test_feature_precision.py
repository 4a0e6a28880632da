"""Float32 arithmetic, the textbook's finite-difference arithmetic and the loss epsilon, against the NumPy twins.

The twins in reference.py compute in the dtype they are given, so the float32
reference is the textbook's procedure done in float32 NumPy.
"""

import numpy as np
import pytest

import reference as ref
from gradsel_cli.choices import OPTIMIZERS
from gradsel_cli.config import TrainConfig
from gradsel_cli.core import network
from gradsel_cli.numerics import training
from gradsel_cli.numerics.optimizers import Optimizer
from gradsel_cli.runs import local
from gradsel_cli.sources import numeric as numeric_source
from helpers import as_blocks, assert_blocks_close, config_settings, random_params, rel_error

# Tolerances (relative, norm-wise).
F32_RTOL = 1e-5  # float32 kernels vs the float32 twin: float32 rounding (eps32 = 6e-8) of short sums
F64_RTOL = 1e-12  # float64 kernels vs the float64 twin: rounding only
NUMERIC32_VS_ANALYTIC_RTOL = 3e-2  # float32 exact differences, h = 1e-4: the hidden shift rounds (eps32 z / dz ~ 1e-3)
NUMERIC_VS_NAIVE_RTOL = 1e-7  # float64 incremental vs perturb-and-rerun (as in test_kernels)
CENTRAL_VS_ANALYTIC_RTOL = 1e-6  # central differences with h = 1e-4: O(h^2) truncation
TEXTBOOK_SIZE_FACTOR = 4  # textbook arithmetic's error is within this factor of the naive textbook code's
EXACT_ADVANTAGE = 3  # float32: exact arithmetic's error is at least this many times below textbook's
CANCELLATION_FLOOR_64 = 1e-12  # float64: textbook's cancellation error (~1e-10 here) is above this; exact's ~1e-15
EPS = 1e-7  # the textbook's loss epsilon


def flat(blocks) -> np.ndarray:
    return np.concatenate([np.ravel(b) for b in blocks])


def as32(params):
    return network.Params(params.flat.astype(np.float32), params.hidden, params.n_in, params.n_out, params.batch_norm)


@pytest.fixture
def problem(mnist_batch):
    """The papers' kind of batch (8 real images) with a small hidden layer, in float64 and float32."""
    x, y = mnist_batch
    p64 = random_params(6, std=0.1, seed=0)
    return p64, as32(p64), x, y


# --- float32 ---------------------------------------------------------------------------


def test_float32_in_float32_out(problem):
    _, p32, x, y = problem
    g, value = network.analytic_gradient(p32, x, y, return_loss=True)
    assert g.flat.dtype == np.float32
    assert value == float(np.float32(value))  # a float32 number
    for arith in ("exact", "textbook"):
        assert numeric_source.numeric_gradient(p32, x, y, config_settings(fd_arith=arith)).flat.dtype == np.float32
    assert network.loss(p32, x, y) == float(np.float32(network.loss(p32, x, y)))
    assert network.predict(p32, (x * 255).astype(np.uint8)).shape == (len(y),)


@pytest.mark.parametrize("act", list(network.ACTIVATION_CODES))
@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_float32_loss_and_backprop_match_the_float32_twin(problem, act, loss):
    _, p32, x, y = problem
    x32 = x.astype(np.float32)
    want_loss = ref.loss(as_blocks(p32), x32, y, act, loss=loss)
    assert want_loss.dtype == np.float32  # the twin really computed in float32
    assert network.loss(p32, x, y, config_settings(activation=act, loss=loss)) == pytest.approx(
        float(want_loss), rel=F32_RTOL
    )
    assert_blocks_close(
        network.analytic_gradient(p32, x, y, config_settings(activation=act, loss=loss)),
        ref.analytic_gradient(as_blocks(p32), x32, y, act, loss=loss),
        F32_RTOL,
        f"{act} {loss}",
    )


def test_float32_arithmetic_is_really_float32(problem):
    """Float32 rounding shows where float64 would not: in the finite difference (float64 stays ~1e-8 off)."""
    p64, p32, x, y = problem
    truth = network.analytic_gradient(p64, x, y).flat
    err32 = rel_error(numeric_source.numeric_gradient(p32, x, y).flat, truth)
    err64 = rel_error(numeric_source.numeric_gradient(p64, x, y).flat, truth)
    assert err64 < CENTRAL_VS_ANALYTIC_RTOL
    assert 1e-4 < err32 < NUMERIC32_VS_ANALYTIC_RTOL
    # and the backprop differs from float64 by float32 rounding, not more
    assert 1e-9 < rel_error(network.analytic_gradient(p32, x, y).flat, truth) < F32_RTOL


def test_float32_batch_norm_numeric_follows_its_analytic_gradient(mnist_batch):
    x, y = mnist_batch
    p = network.init_params(4, seed=1, std=0.1, batch_norm=True, dtype="float32")
    ana = network.analytic_gradient(p, x[:4], y[:4]).flat
    assert ana.dtype == np.float32
    assert rel_error(numeric_source.numeric_gradient(p, x[:4], y[:4]).flat, ana) < NUMERIC32_VS_ANALYTIC_RTOL


# --- textbook arithmetic -------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.0, EPS])
def test_textbook_arithmetic_has_the_textbook_codes_error_in_float32(problem, eps):
    """Error against the float64 backprop: textbook arithmetic ~ the float32 naive textbook code, exact far below."""
    p64, p32, x, y = problem
    truth = flat(ref.analytic_gradient(as_blocks(p64), x, y, eps=eps))
    naive = flat(ref.numeric_gradient(as_blocks(p32), x.astype(np.float32), y, eps=eps))
    err_naive = rel_error(naive, truth)
    err_textbook = rel_error(
        numeric_source.numeric_gradient(p32, x, y, config_settings(fd_arith="textbook", loss_epsilon=eps)).flat, truth
    )
    err_exact = rel_error(
        numeric_source.numeric_gradient(p32, x, y, config_settings(fd_arith="exact", loss_epsilon=eps)).flat, truth
    )
    assert err_naive / TEXTBOOK_SIZE_FACTOR < err_textbook < err_naive * TEXTBOOK_SIZE_FACTOR
    assert err_exact * EXACT_ADVANTAGE < err_textbook


@pytest.mark.parametrize("eps", [0.0, EPS])
def test_textbook_arithmetic_has_the_textbook_codes_error_in_float64(problem, eps):
    """Error against the exact arithmetic (whose own rounding is ~1e-15): textbook ~ the naive code."""
    p64, _, x, y = problem
    exact = numeric_source.numeric_gradient(p64, x, y, config_settings(loss_epsilon=eps)).flat
    naive = flat(ref.numeric_gradient(as_blocks(p64), x, y, eps=eps))
    err_naive = rel_error(naive, exact)
    err_textbook = rel_error(
        numeric_source.numeric_gradient(p64, x, y, config_settings(fd_arith="textbook", loss_epsilon=eps)).flat, exact
    )
    assert err_naive > CANCELLATION_FLOOR_64
    assert err_naive / TEXTBOOK_SIZE_FACTOR < err_textbook < err_naive * TEXTBOOK_SIZE_FACTOR


@pytest.mark.parametrize("scheme", ["central", "forward"])
@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_textbook_arithmetic_is_the_same_finite_difference(mnist_batch, scheme, loss):
    """In float64 the cancellation is small: textbook arithmetic agrees with the naive twin, dropout and
    the forward scheme included."""
    x, y = mnist_batch
    p = random_params(4, std=0.1, seed=5)
    mask = np.array([[2.0, 0.0, 2.0, 2.0], [0.0, 2.0, 0.0, 2.0], [2.0, 2.0, 2.0, 0.0]])
    got = numeric_source.numeric_gradient(
        p, x[:3], y[:3], config_settings(fd_scheme=scheme, loss=loss, fd_arith="textbook"), mask=mask
    )
    want = ref.numeric_gradient(as_blocks(p), x[:3], y[:3], scheme=scheme, mask=mask, loss=loss)
    assert_blocks_close(got, want, NUMERIC_VS_NAIVE_RTOL * (1 if scheme == "central" else 10), f"{scheme} {loss}")


def test_textbook_arithmetic_through_batch_norm(mnist_batch):
    x, y = mnist_batch
    p = network.init_params(4, seed=1, std=0.1, batch_norm=True)
    exact = numeric_source.numeric_gradient(p, x[:4], y[:4]).flat
    textbook = numeric_source.numeric_gradient(p, x[:4], y[:4], config_settings(fd_arith="textbook")).flat
    assert CANCELLATION_FLOOR_64 < rel_error(textbook, exact) < NUMERIC_VS_NAIVE_RTOL


# --- loss epsilon ------------------------------------------------------------------------


def test_loss_epsilon_is_the_textbooks_loss(problem):
    p64, p32, x, y = problem
    want = ref.loss(as_blocks(p64), x, y, eps=EPS)
    assert network.loss(p64, x, y, config_settings(loss_epsilon=EPS)) == pytest.approx(want, rel=F64_RTOL)
    assert network.loss(p64, x, y, config_settings(loss_epsilon=EPS)) != network.loss(p64, x, y)
    assert network.textbook_loss(p64, x, y, config_settings(loss_epsilon=EPS)) == pytest.approx(want, rel=F64_RTOL)
    want32 = ref.loss(as_blocks(p32), x.astype(np.float32), y, eps=EPS)
    assert network.loss(p32, x, y, config_settings(loss_epsilon=EPS)) == pytest.approx(float(want32), rel=F32_RTOL)


def test_backprop_ignores_the_loss_epsilon_but_reports_the_loss_with_it(problem):
    p64, _, x, y = problem
    g0, v0 = network.analytic_gradient(p64, x, y, return_loss=True)
    g1, v1 = network.analytic_gradient(p64, x, y, config_settings(loss_epsilon=EPS), return_loss=True)
    assert g0.flat.tobytes() == g1.flat.tobytes()
    assert v1 == network.loss(p64, x, y, config_settings(loss_epsilon=EPS)) and v1 != v0


def test_numeric_gradient_sees_the_loss_epsilon(mnist_batch):
    """Saturated outputs (p_y ~ 1e-6) make epsilon matter: numeric follows the gradient of -log(p + eps)."""
    x, y = mnist_batch
    p = random_params(3, std=0.1, seed=4)
    p.W2[...] *= 60.0
    blocks = as_blocks(p)
    got = numeric_source.numeric_gradient(p, x[:4], y[:4], config_settings(loss_epsilon=EPS))
    assert_blocks_close(got, ref.analytic_gradient(blocks, x[:4], y[:4], eps=EPS), CENTRAL_VS_ANALYTIC_RTOL, "eps")
    assert_blocks_close(got, ref.numeric_gradient(blocks, x[:4], y[:4], eps=EPS), NUMERIC_VS_NAIVE_RTOL, "naive")
    assert rel_error(flat(as_blocks(got)), flat(ref.analytic_gradient(blocks, x[:4], y[:4]))) > 1e-3


def test_loss_epsilon_with_mse_is_refused(problem):
    p64, _, x, y = problem
    with pytest.raises(ValueError, match="cross-entropy only"):
        network.loss(p64, x, y, config_settings(loss="mse", loss_epsilon=EPS))
    with pytest.raises(ValueError, match="cross-entropy only"):
        TrainConfig(loss="mse", loss_epsilon=EPS).validate()


@pytest.mark.parametrize(
    "change",
    [
        dict(precision="float16"),
        dict(fd_arith="sloppy"),
        dict(loss_epsilon=-1e-7),
        dict(loss_epsilon=1.0),
        dict(loss_epsilon=True),
    ],
)
def test_config_checks_the_new_fields(change):
    with pytest.raises(ValueError):
        TrainConfig(**change).validate()


# --- optimizers and training ---------------------------------------------------------


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_keeps_float32(name):
    opt = Optimizer(name)
    p = np.linspace(-1, 1, 7, dtype=np.float32)
    g = np.linspace(0.5, -0.5, 7, dtype=np.float32)
    state = opt.init(p.size, np.float32)
    for _ in range(3):
        p, state = opt.step(p, g, state)
        assert p.dtype == np.float32
        assert all(v.dtype == np.float32 for v in state.values() if isinstance(v, np.ndarray))


TINY = dict(hidden=4, batch=2, iters=6, test_limit=50, shots=1)


@pytest.mark.parametrize("method", ["analytic", "numeric", "alternate", "select"])
def test_every_method_trains_in_float32_deterministically(mnist_raw, method):
    config = TrainConfig(method=method, precision="float32", fd_arith="textbook", loss_epsilon=EPS, **TINY)
    a = training.train(config, data=mnist_raw)
    b = training.train(config, data=mnist_raw)
    assert a.params.flat.dtype == np.float32 and not a.diverged
    assert a.params.flat.tobytes() == b.params.flat.tobytes()
    assert np.array_equal(a.loss_history, a.loss_history.astype(np.float32))  # every loss a float32 number
    f64 = training.train(config.replace(precision="float64"), data=mnist_raw)
    assert not np.array_equal(f64.params.flat.astype(np.float32), a.params.flat)


def test_float32_adam_with_dropout_and_batch_norm_trains(mnist_raw):
    config = TrainConfig(
        method="select", precision="float32", optimizer="adam", lr=0.01, dropout=0.2, batch_norm=True, **TINY
    )
    result = training.train(config, data=mnist_raw)
    assert result.params.flat.dtype == np.float32 and not result.diverged and result.running_mean.dtype == np.float32


def test_the_new_fields_change_the_runs_they_should(mnist_raw):
    base = TrainConfig(method="select", **TINY)
    plain = training.train(base, data=mnist_raw)
    with_eps = training.train(base.replace(loss_epsilon=EPS), data=mnist_raw)
    assert with_eps.final_loss != plain.final_loss  # the reported loss sees epsilon
    numeric = training.train(base.replace(method="numeric", precision="float32"), data=mnist_raw)
    textbook = training.train(base.replace(method="numeric", precision="float32", fd_arith="textbook"), data=mnist_raw)
    assert numeric.params.flat.tobytes() != textbook.params.flat.tobytes()


def test_local_and_dask_executors_honour_the_new_fields(tmp_path, mnist_raw):
    from gradsel_cli.runs import experiments
    from gradsel_cli.runs.dask_executor import DaskExecutor

    configs = [
        TrainConfig(method="alternate", precision="float32", fd_arith="textbook", loss_epsilon=EPS, seed=s, **TINY)
        for s in range(2)
    ]
    direct = [training.train(c, data=mnist_raw) for c in configs]
    for name, executor in (("local", local.LocalExecutor(2)), ("dask", DaskExecutor(1))):
        records = experiments.run_grid(configs, tmp_path / f"{name}.jsonl", executor)
        for record, result in zip(records, direct):
            assert (record["config"]["precision"], record["config"]["fd_arith"], record["config"]["loss_epsilon"]) == (
                "float32",
                "textbook",
                EPS,
            )
            assert record["predictions"] == "".join(str(p) for p in result.predictions), name
            assert record["final_loss"] == result.final_loss, name


def test_gradcheck_measures_the_textbook_arithmetic_in_float32(mnist_raw):
    from gradsel_cli.numerics.gradcheck import gradcheck

    config = TrainConfig(hidden=6, batch=8, iters=5, test_limit=50, precision="float32")
    errors = {
        arith: gradcheck(config.replace(fd_arith=arith), [1e-4], mnist_raw)["states"][0]["sources"]["numeric"]["rows"][
            0
        ]["all"]["rel_diff"]
        for arith in ("exact", "textbook")
    }
    assert errors["exact"] * EXACT_ADVANTAGE < errors["textbook"] < 1.0
