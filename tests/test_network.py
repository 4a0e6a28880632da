"""The checked wrappers of network.py: the kernels through them against the plain NumPy twins in reference.py,
the Params object as a person uses it (unpacking into the four blocks, a readable repr), and the checks of
the fused loop's wrapper."""

import re

import numpy as np
import pytest

import reference as ref
from gradsel_cli.core import network
from gradsel_cli.numerics import loop
from gradsel_cli.sources import numeric as numeric_source
from helpers import as_blocks, assert_blocks_close, config_settings, random_params, rel_error

# Tolerances (relative, norm-wise per block W1, b1, W2, b2).
LOSS_RTOL = 1e-12  # kernel loss vs the reference loss: rounding only
ANALYTIC_RTOL = 1e-12  # backprop vs the reference backprop: rounding only
NUMERIC_VS_NAIVE_RTOL = 1e-7  # incremental finite differences vs perturb-and-rerun: both carry ~eps*L/h rounding
CENTRAL_VS_ANALYTIC_RTOL = 1e-6  # central differences with h = 1e-4: O(h^2) truncation
FORWARD_VS_ANALYTIC_RTOL = 1e-3  # forward differences with h = 1e-4: O(h) truncation
DERIV_RTOL = 1e-7  # the reference activations' derivatives vs their own central differences

STEP = 1e-4
ACTS = list(network.ACTIVATION_CODES)
SCHEMES = list(numeric_source.FD_SCHEMES)
CASES = ["mnist", "batch1", "hidden1", "zero-images", "huge-logits", "dropout", "small-n_in"]
SMALL_CASES = [c for c in CASES if c != "mnist"]  # small enough for the full naive reference


def build_case(name, mnist_batch):
    """(params, x, y, mask) of one named test problem; mask None means no dropout."""
    x8, y8 = mnist_batch
    if name == "mnist":  # the papers' H = 50, B = 8 on real images
        return random_params(50, std=0.1, seed=0), x8, y8, None
    if name == "batch1":
        return random_params(3, std=0.1, seed=1), x8[:1], y8[:1], None
    if name == "hidden1":
        return random_params(1, std=0.1, seed=2), x8[:4], y8[:4], None
    if name == "zero-images":
        return random_params(2, std=0.1, seed=3), np.zeros((3, 784)), np.array([0, 3, 9]), None
    if name == "huge-logits":  # logits ~ 1e3: exp would overflow without the log-sum-exp shift
        p = random_params(3, std=0.1, seed=4)
        x, y = x8[:4], y8[:4]
        p.W2[...] *= 1.5e3 / np.abs(ref.forward(as_blocks(p), x)[2]).max()
        return p, x, y, None
    if name == "dropout":  # inverted dropout: kept units scaled by 1/p = 2, some dropped
        mask = np.array([[2.0, 0.0, 2.0, 2.0], [0.0, 2.0, 0.0, 2.0], [2.0, 2.0, 2.0, 0.0]])
        return random_params(4, std=0.1, seed=5), x8[:3], y8[:3], mask
    if name == "small-n_in":  # a toy network with 12 inputs, half the pixels zero
        gen = np.random.default_rng(6)
        x = gen.uniform(size=(2, 12)) * (gen.uniform(size=(2, 12)) < 0.5)
        return random_params(3, n_in=12, std=0.5, seed=6), x, np.array([7, 2]), None
    raise KeyError(name)


@pytest.fixture(params=CASES)
def case(request, mnist_batch):
    return build_case(request.param, mnist_batch)


@pytest.fixture(params=SMALL_CASES)
def small_case(request, mnist_batch):
    return build_case(request.param, mnist_batch)


def assert_clear_of_kinks(params, x, act, mask=None):
    """Finite differences across the kink of (leaky) ReLU measure a different slope; keep |a1| > h."""
    if act in ("relu", "leaky-relu"):
        a1 = ref.forward(as_blocks(params), x, act, mask)[0]
        assert np.abs(a1).min() > 2 * STEP, "test set-up: a pre-activation lies within h of the kink"


# --- the reference itself ---------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_reference_derivatives_match_their_activation(act):
    f, df = ref.ACTIVATIONS[act]
    a = np.concatenate([np.linspace(-6, -0.01, 50), np.linspace(0.01, 6, 50)])  # away from the kink at 0
    h = 1e-6
    assert np.allclose(df(a), (f(a + h) - f(a - h)) / (2 * h), rtol=DERIV_RTOL, atol=1e-9)


def test_reference_relu_derivative_at_zero_is_zero():
    assert ref.relu_grad(np.array([0.0]))[0] == 0.0
    assert ref.leaky_relu_grad(np.array([0.0]))[0] == ref.LEAKY_SLOPE


def test_reference_mish_is_x_tanh_softplus():
    a = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    assert np.allclose(ref.mish(a), a * np.tanh(np.log(1 + np.exp(a))), rtol=1e-15)


# --- loss ---------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_loss_matches_reference(case, act):
    params, x, y, mask = case
    got = network.loss(params, x, y, config_settings(activation=act), mask=mask)
    want = ref.loss(as_blocks(params), x, y, act, mask)
    assert np.isfinite(got)
    assert got == pytest.approx(want, rel=LOSS_RTOL)


def test_huge_logits_loss_is_finite_and_large(mnist_batch):
    params, x, y, _ = build_case("huge-logits", mnist_batch)
    logits = ref.forward(as_blocks(params), x)[2]
    assert np.abs(logits).max() > 710  # exp(710) overflows float64: a softmax without the shift would fail
    got = network.loss(params, x, y)
    assert np.isfinite(got) and got > 1.0
    assert got == pytest.approx(ref.loss(as_blocks(params), x, y), rel=LOSS_RTOL)


def test_loss_of_uniform_logits_is_log10():
    params = network.Params.zeros(3)
    assert network.loss(params, np.ones((2, 784)), np.array([1, 8])) == pytest.approx(np.log(10), rel=1e-15)


# --- analytic gradient --------------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_analytic_matches_reference(case, act):
    params, x, y, mask = case
    got = network.analytic_gradient(params, x, y, config_settings(activation=act), mask=mask)
    want = ref.analytic_gradient(as_blocks(params), x, y, act, mask)
    assert_blocks_close(got, want, ANALYTIC_RTOL, f"analytic vs reference ({act})")


@pytest.mark.parametrize("act", ACTS)
def test_analytic_returns_the_loss_it_differentiates(case, act):
    params, x, y, mask = case
    _, value = network.analytic_gradient(params, x, y, config_settings(activation=act), mask=mask, return_loss=True)
    assert value == pytest.approx(network.loss(params, x, y, config_settings(activation=act), mask=mask), rel=LOSS_RTOL)


def test_relu_derivative_at_zero_is_zero():
    # all-zero images and zero biases put every pre-activation exactly at the kink
    params = random_params(4, std=0.1, seed=7)
    params.b1[...] = 0.0
    x, y = np.zeros((2, 784)), np.array([1, 5])
    g = network.analytic_gradient(params, x, y, config_settings(activation="relu"))
    assert np.all(g.b1 == 0.0) and np.all(g.W1 == 0.0)
    g_leaky = network.analytic_gradient(params, x, y, config_settings(activation="leaky-relu"))
    assert np.all(g_leaky.b1 != 0.0)  # slope 0.01, not 0
    assert_blocks_close(g_leaky, ref.analytic_gradient(as_blocks(params), x, y, "leaky-relu"), ANALYTIC_RTOL)


@pytest.mark.parametrize("act", ACTS)
def test_dropped_units_get_exactly_zero_gradient(act, mnist_batch):
    params, x, y, mask = build_case("dropout", mnist_batch)
    dropped_everywhere = ~mask.any(axis=0)
    mask = mask.copy()
    mask[:, 2] = 0.0  # unit 2 dropped for the whole batch
    dropped_everywhere[2] = True
    for g in (
        network.analytic_gradient(params, x, y, config_settings(activation=act), mask=mask),
        numeric_source.numeric_gradient(
            params, x, y, config_settings(fd_step=STEP, fd_scheme="central", activation=act), mask=mask
        ),
    ):
        assert np.all(g.W1[:, dropped_everywhere] == 0.0)
        assert np.all(g.b1[dropped_everywhere] == 0.0)
        assert np.all(g.W2[dropped_everywhere, :] == 0.0)
        assert np.any(g.W2[~dropped_everywhere, :] != 0.0)


def test_zero_pixels_get_exactly_zero_gradient(mnist_batch):
    params, x, y, _ = build_case("mnist", mnist_batch)
    blank = ~(x != 0).any(axis=0)  # pixels that are 0 in every image of the batch
    assert blank.sum() > 100
    for g in (network.analytic_gradient(params, x, y), numeric_source.numeric_gradient(params, x, y)):
        assert np.all(g.W1[blank] == 0.0)
        assert np.all(g.W1[~blank].any(axis=1))


# --- numerical gradient -------------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_central_numeric_matches_naive_reference(small_case, act):
    params, x, y, mask = small_case
    got = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme="central", activation=act), mask=mask
    )
    want = ref.numeric_gradient(as_blocks(params), x, y, STEP, "central", act, mask)
    assert_blocks_close(got, want, NUMERIC_VS_NAIVE_RTOL, f"central numeric vs naive reference ({act})")


@pytest.mark.parametrize("act", ["sigmoid", "relu", "mish"])
@pytest.mark.parametrize("name", ["batch1", "zero-images", "huge-logits", "dropout", "small-n_in"])
def test_forward_numeric_matches_naive_reference(name, act, mnist_batch):
    params, x, y, mask = build_case(name, mnist_batch)
    got = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme="forward", activation=act), mask=mask
    )
    want = ref.numeric_gradient(as_blocks(params), x, y, STEP, "forward", act, mask)
    assert_blocks_close(got, want, NUMERIC_VS_NAIVE_RTOL, f"forward numeric vs naive reference ({act})")


def sample_indices(params, x, n_w1=200, seed=0):
    """Flat positions: a random sample of the W1 entries that can move the loss, and every b1, W2, b2."""
    live = np.flatnonzero(np.broadcast_to((x != 0).any(axis=0)[:, None], params.W1.shape))
    w1 = np.random.default_rng(seed).choice(live, size=min(n_w1, live.size), replace=False)
    return np.sort(np.concatenate([w1, np.arange(params.W1.size, params.flat.size)]))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("act", ACTS)
def test_numeric_matches_package_naive_on_sampled_weights(act, scheme, mnist_batch):
    params, x, y, _ = build_case("mnist", mnist_batch)
    idx = sample_indices(params, x)
    fast = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme=scheme, activation=act)
    ).flat[idx]
    naive = numeric_source.naive_numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme=scheme, activation=act), indices=idx
    ).flat[idx]
    assert rel_error(fast, naive) <= NUMERIC_VS_NAIVE_RTOL


def test_package_naive_matches_reference_naive(mnist_batch):
    for name in ("small-n_in", "dropout"):
        params, x, y, mask = build_case(name, mnist_batch)
        for scheme in SCHEMES:
            got = numeric_source.naive_numeric_gradient(
                params, x, y, config_settings(fd_step=STEP, fd_scheme=scheme, activation="tanh"), mask=mask
            )
            want = ref.numeric_gradient(as_blocks(params), x, y, STEP, scheme, "tanh", mask)
            assert_blocks_close(got, want, NUMERIC_VS_NAIVE_RTOL, f"{name} {scheme}")


def test_naive_with_indices_computes_only_those(make_problem):
    params, x, y = make_problem()
    idx = [0, 5, params.flat.size - 1]
    g = numeric_source.naive_numeric_gradient(params, x, y, indices=idx)
    full = numeric_source.naive_numeric_gradient(params, x, y)
    assert np.array_equal(g.flat[idx], full.flat[idx])
    rest = np.delete(g.flat, idx)
    assert np.all(np.isnan(rest))
    assert not np.any(np.isnan(full.flat))


@pytest.mark.parametrize("act", ACTS)
def test_central_numeric_matches_analytic(case, act):
    params, x, y, mask = case
    assert_clear_of_kinks(params, x, act, mask)
    numeric = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme="central", activation=act), mask=mask
    )
    analytic = network.analytic_gradient(params, x, y, config_settings(activation=act), mask=mask)
    assert_blocks_close(numeric, analytic, CENTRAL_VS_ANALYTIC_RTOL, f"central numeric vs analytic ({act})")


@pytest.mark.parametrize("act", ACTS)
def test_forward_numeric_is_close_to_analytic_but_less_so(act, mnist_batch):
    params, x, y, _ = build_case("mnist", mnist_batch)
    assert_clear_of_kinks(params, x, act)
    analytic = network.analytic_gradient(params, x, y, config_settings(activation=act))
    forward = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme="forward", activation=act)
    )
    central = numeric_source.numeric_gradient(
        params, x, y, config_settings(fd_step=STEP, fd_scheme="central", activation=act)
    )
    assert_blocks_close(forward, analytic, FORWARD_VS_ANALYTIC_RTOL, f"forward numeric vs analytic ({act})")
    assert rel_error(forward.flat, analytic.flat) > 10 * rel_error(central.flat, analytic.flat)


def test_numeric_at_the_default_init_matches_analytic(mnist_batch):
    # the default setting (the textbook's): N(0, 0.01^2) weights, zero biases, sigmoid
    x, y = mnist_batch
    params = network.init_params(50, seed=0)
    numeric = numeric_source.numeric_gradient(params, x, y)
    assert_blocks_close(numeric, network.analytic_gradient(params, x, y), CENTRAL_VS_ANALYTIC_RTOL, "default init")


def test_gradient_does_not_mutate_inputs(mnist_batch):
    params, x, y, mask = build_case("dropout", mnist_batch)
    before = (params.flat.copy(), x.copy(), y.copy(), mask.copy())
    network.analytic_gradient(params, x, y, mask=mask)
    numeric_source.numeric_gradient(params, x, y, mask=mask)
    numeric_source.naive_numeric_gradient(params, x, y, mask=mask, indices=[0, 1, 2])
    for a, b in zip(before, (params.flat, x, y, mask)):
        assert np.array_equal(a, b)


# --- predict and accuracy -----------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_predict_matches_reference_argmax(act, mnist_raw):
    x = mnist_raw[2][:1000] / 255.0  # more than one 256-row chunk, and a partial one
    y = mnist_raw[3][:1000]
    params = random_params(20, std=0.1, seed=8)
    got = network.predict(params, x, act)
    want = ref.predict(as_blocks(params), x, act)
    assert got.shape == (1000,)
    assert np.array_equal(got, want)
    assert len(np.unique(got)) > 1
    assert network.accuracy(params, x, y, act) == np.mean(want == y)


def test_predict_ties_go_to_the_first_class():
    params = network.Params.zeros(2)
    params.b2[[3, 7]] = 1.0
    assert np.array_equal(network.predict(params, np.zeros((3, 784))), [3, 3, 3])


# --- input checks -------------------------------------------------------------


def batch_functions():
    return {
        "loss": network.loss,
        "analytic": network.analytic_gradient,
        "numeric": numeric_source.numeric_gradient,
        "naive": lambda p, x, y, **kw: numeric_source.naive_numeric_gradient(p, x, y, indices=[0], **kw),
    }


BAD_BATCHES = {
    "x too narrow": (np.zeros((2, 783)), [1, 2], {}),
    "x one-dimensional": (np.zeros(784), [1], {}),
    "x three-dimensional": (np.zeros((2, 28, 28)), [1, 2], {}),
    "y too long": (np.zeros((2, 784)), [1, 2, 3], {}),
    "y two-dimensional": (np.zeros((2, 784)), [[1], [2]], {}),
    "empty batch": (np.zeros((0, 784)), np.zeros(0, dtype=int), {}),
    "label -1": (np.zeros((2, 784)), [-1, 2], {}),
    "label 10": (np.zeros((2, 784)), [1, 10], {}),
    "mask wrong shape": (np.zeros((2, 784)), [1, 2], {"mask": np.ones((2, 4))}),
}


@pytest.mark.parametrize("fn", ["loss", "analytic", "numeric", "naive"])
@pytest.mark.parametrize("bad", list(BAD_BATCHES))
def test_bad_batch_raises_value_error(fn, bad):
    params = random_params(3, std=0.1)
    x, y, kw = BAD_BATCHES[bad]
    with pytest.raises(ValueError):
        batch_functions()[fn](params, x, np.asarray(y), **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"fd_step": 0.0},
        {"fd_step": -1e-4},
        {"fd_step": float("nan")},
        {"fd_step": float("inf")},
        {"fd_scheme": "backward"},
        {"fd_scheme": "Central"},
        {"activation": "softsign"},
    ],
    ids=["step0", "step-neg", "step-nan", "step-inf", "scheme-backward", "scheme-case", "activation"],
)
def test_bad_settings_are_refused_before_any_kernel_runs(kw):
    with pytest.raises(ValueError, match=r"fd.step|fd.scheme|activation"):
        config_settings(**kw)


def test_predict_checks_its_input():
    params = random_params(3, std=0.1)
    with pytest.raises(ValueError, match="shape"):
        network.predict(params, np.zeros((5, 100)))
    with pytest.raises(ValueError, match="activation"):
        network.predict(params, np.zeros((5, 784)), activation="bogus")


@pytest.mark.parametrize(
    "kw",
    [
        {"hidden": 0},
        {"hidden": -3},
        {"init": "glorot"},
        {"std": 0.0},
        {"std": -0.01},
        {"std": float("nan")},
        {"std": float("inf")},
    ],
)
def test_init_params_rejects_bad_settings(kw):
    args = {"hidden": 5, **kw}
    with pytest.raises(ValueError):
        network.init_params(**args)


@pytest.mark.parametrize("init,std", [("std", 0.01), ("xavier", None), ("he", None)])
def test_init_params_scales(init, std):
    p = network.init_params(200, seed=3, init=init)
    want = {
        "std": (0.01, 0.01),
        "xavier": (np.sqrt(1 / 784), np.sqrt(1 / 200)),
        "he": (np.sqrt(2 / 784), np.sqrt(2 / 200)),
    }[init]
    assert p.W1.std() == pytest.approx(want[0], rel=0.02)
    assert p.W2.std() == pytest.approx(want[1], rel=0.05)
    assert np.all(p.b1 == 0) and np.all(p.b2 == 0)
    assert p.W1.shape == (784, 200) and p.W2.shape == (200, 10)


def test_params_views_share_the_flat_vector():
    p = random_params(4, n_in=6, std=1.0)
    assert p.flat.size == 6 * 4 + 4 + 4 * 10 + 10
    p.W2[1, 2] = 123.0
    assert p.flat[6 * 4 + 4 + 1 * 10 + 2] == 123.0
    assert np.array_equal(p.weight_mask(), np.r_[np.ones(24), np.zeros(4), np.ones(40), np.zeros(10)])


# --- the Params object and the fused loop's wrapper ---------------------------


def test_params_unpack_into_views_of_the_flat_vector():
    params = network.init_params(hidden=50, seed=0)
    W1, b1, W2, b2 = params
    assert (W1.shape, b1.shape, W2.shape, b2.shape) == ((784, 50), (50,), (50, 10), (10,))
    assert all(np.shares_memory(block, params.flat) for block in (W1, b1, W2, b2))
    W1[0, 0] = 7.0
    assert params.flat[0] == 7.0
    assert [a.tobytes() for a in params] == [a.tobytes() for a in params.blocks().values()]


def test_batch_norm_params_unpack_into_the_same_four_blocks():
    params = network.init_params(hidden=3, batch_norm=True)
    W1, _b1, _W2, b2 = params
    assert W1.shape == (784, 3) and b2.shape == (10,)
    assert list(params.blocks()) == ["W1", "b1", "W2", "b2", "gamma", "beta"]


def test_params_repr_names_shapes_hidden_units_and_batch_norm():
    text = repr(network.init_params(hidden=50, seed=0))
    assert text.startswith("Params(784→50→10")
    assert "50 hidden units" in text and "no batch norm" in text and "39,760 values" in text
    assert "W1 (784, 50)" in text and "b2 (10,)" in text
    assert len(text) < 200  # not a dump of 39,760 numbers
    bn = repr(network.init_params(hidden=3, batch_norm=True))
    assert "batch norm" in bn and "no batch norm" not in bn and "gamma (3,)" in bn


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(batches=np.array([[0, 20]])), "indices into the 20 training images"),
        (dict(batches=np.array([[-1, 0]])), "indices into the 20 training images"),
        (dict(batches=np.array([0, 1])), "(T, B) indices"),
        (dict(losses=np.empty(1)), "losses must be a contiguous float64 array of at least 2 rows"),
        (dict(losses=np.empty((2, 1))), "losses must be a contiguous float64 array"),
        (dict(sources=np.zeros(2)), "sources must be a contiguous int8 array"),
        (dict(sources=np.zeros(1, np.int8)), "sources must be a contiguous int8 array of at least 2 rows"),
        (dict(rel_diffs=np.full(2, np.nan)), "rel_diffs must be a contiguous float64 array"),  # 1-D: the old shape
        (dict(rel_diffs=np.full((2, 2), np.nan)), "rel_diffs must be a contiguous float64 array"),  # 2 others of 1
        (dict(rel_diffs=np.full((1, 1), np.nan)), "rel_diffs must be a contiguous float64 array of at least 2 rows"),
        (dict(rel_diffs=np.full((2, 2), np.nan)[:, :1]), "rel_diffs must be a contiguous float64 array"),
        (dict(lit="fewer"), "lit must be lit_pixels(x_train)"),  # another training set's
        (dict(lit="float32"), "lit must be lit_pixels(x_train)"),
    ],
)
def test_sgd_iterations_checks_what_would_reach_the_kernel_unchecked(few_shot_set, changes, message):
    x, y = few_shot_set
    params = network.init_params(3, seed=0)
    before = params.flat.copy()
    args = dict(batches=np.array([[0, 1], [2, 3]]), losses=None, sources=None, rel_diffs=None, lit=None)
    args.update(changes)
    if args["lit"] is not None:
        args["lit"] = network.lit_pixels(x[:-1] if args["lit"] == "fewer" else x.astype(np.float32))
    with pytest.raises(ValueError, match=re.escape(message)):
        loop.sgd_iterations(
            params,
            x,
            y,
            args["batches"],
            0,
            config_settings(method="select"),
            losses=args["losses"],
            sources=args["sources"],
            rel_diffs=args["rel_diffs"],
            lit=args["lit"],
        )
    assert np.array_equal(params.flat, before)


def test_the_training_sets_lit_pixels_given_once_give_the_run_made_without_them(few_shot_set):
    x, y = few_shot_set
    batches = np.random.default_rng(0).integers(0, len(y), (6, 4))
    settings = config_settings(method="select", lr=0.1)
    lit = network.lit_pixels(x)
    assert lit.ptr[-1] == len(lit.idx) == np.count_nonzero(x) + len(x)  # each image's lit pixels and its bias
    runs = []
    for given in (None, lit):
        params, losses = network.init_params(3, seed=0), np.empty(6)
        loop.sgd_iterations(params, x, y, batches[:3], 0, settings, losses, lit=given)
        loop.sgd_iterations(params, x, y, batches[3:], 3, settings, losses, lit=given)
        runs.append((params.flat, losses))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


def test_sgd_iterations_makes_its_outputs_when_not_given(few_shot_set):
    x, y = few_shot_set
    done, diverged = loop.sgd_iterations(
        network.init_params(3, seed=0), x, y, np.array([[0, 1], [2, 3]]), 0, config_settings(method="alternate", lr=0.1)
    )
    assert (done, diverged) == (2, False)
