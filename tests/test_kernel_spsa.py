"""The SPSA kernel (kernels/spsa.py) and the directions it makes of its draws (kernels/draws.py): against their
NumPy twins (reference.py) drawing the same directions, and unbiased, its error falling as 1/sqrt(q) with the
number of directions q (the 1/q variance law, measured, not assumed)."""

import numpy as np
import pytest

import reference as ref
from gradsel_cli import seeding
from gradsel_cli.core import network
from gradsel_cli.kernels import draws, lit, spsa

DISTS = {"gaussian": draws.GAUSSIAN, "rademacher": draws.RADEMACHER, "sphere": draws.SPHERE}
TWIN_RTOL = 1e-8  # kernel vs twin: each slope is a difference of two losses summed in another order, over 2 eps
ZO_EPS = 1e-3


def problem(n_in, H, K, B, seed):
    """Weights [W1, b1, W2, b2] and a batch x (with MNIST-like exact zeros), y."""
    gen = np.random.default_rng(seed)
    x = gen.uniform(size=(B, n_in)) * (gen.uniform(size=(B, n_in)) < 0.5)
    y = gen.integers(0, K, B)
    w = [gen.normal(0, 0.5, (n_in, H)), gen.normal(0, 0.5, H), gen.normal(0, 0.5, (H, K)), gen.normal(0, 0.5, K)]
    return w, x, y


def kernel(w, x, y, words, dist, act=0, loss=0, zo_eps=ZO_EPS, central=True):
    """(the kernel's estimate as one flat vector, the batch loss it returns)."""
    flat = np.concatenate([np.ravel(a) for a in w])
    g = np.full_like(flat, np.nan)  # every entry must be written
    H = w[0].shape[1]
    mask = np.ones((x.shape[0], H))
    knobs = np.array([zo_eps, dist, float(central), len(words)], np.float64)
    value = spsa._spsa_step(x, y, *lit._nonzero(x), flat, H, act, mask, loss, 0.0, knobs, words, g)
    return g, value


def words(n, seed=0):
    return seeding.draws(seed, "spsa-test", 0, 1, n)[0]


def test_the_directions_are_their_twins_draws():
    for word in (0, 2**64 - 1, 987654321):
        got = [draws._normal(np.uint64(word), i) for i in range(2_000)]  # ~30 outside their layer's rectangle
        assert got == list(ref.normal(word, 2_000))
    for dist, twin in ((draws.GAUSSIAN, ref.normal), (draws.RADEMACHER, ref.rademacher)):
        z = np.empty(130)  # not a multiple of 64: the last word's signs are used in part
        draws._direction(np.uint64(42), dist, z)
        assert list(z) == list(twin(42, 130))
    z32 = np.empty(130, np.float32)
    draws._direction(np.uint64(42), draws.GAUSSIAN, z32)
    assert np.array_equal(z32, ref.normal(42, 130).astype(np.float32))  # each entry rounded once


def test_the_normal_draws_are_standard_normal_tails_included():
    """200,000 draws of one long direction: Kolmogorov-Smirnov against N(0, 1), and as many beyond the ziggurat's
    base strip (|z| > r = 3.654, where the tail's own method draws them) as N(0, 1) puts there."""
    from scipy import stats

    z = np.empty(200_000)
    draws._direction(np.uint64(2026), draws.GAUSSIAN, z)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    expected = 2 * stats.norm.sf(draws._ZR) * z.size  # 52
    assert abs(np.sum(np.abs(z) > draws._ZR) - expected) < 4 * np.sqrt(expected)
    assert np.abs(z).max() > draws._ZR
    sphere = np.empty(5_000)
    draws._direction(np.uint64(7), draws.SPHERE, sphere)
    assert np.dot(sphere, sphere) == pytest.approx(5_000, rel=1e-12)


@pytest.mark.parametrize("central", [True, False], ids=["central", "forward"])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_the_estimate_is_its_twins_on_the_same_directions(dist, act, central):
    w, x, y = problem(12, 3, 10, 4, seed=1)
    drawn = words(3, seed=2)
    got, value = kernel(w, x, y, drawn, DISTS[dist], network.ACTIVATION_CODES[act], central=central)
    want = ref.spsa_gradient(w, x, y, drawn, ZO_EPS, dist, act, central=central)
    want = np.concatenate([a.ravel() for a in want])
    np.testing.assert_allclose(got, want, rtol=TWIN_RTOL, atol=1e-12 * np.abs(want).max())
    assert value == pytest.approx(ref.loss(w, x, y, act), rel=1e-14)


@pytest.mark.parametrize("dist", DISTS)
def test_the_estimate_is_unbiased_and_its_error_falls_as_one_over_root_q(dist):
    """With q directions the error's expected square is about |g|^2 P / q (P weights): measured at q and 16 q,
    each within a factor of 1.5 of sqrt(P / q), so it falls by about 4."""
    w, x, y = problem(40, 2, 10, 3, seed=3)
    flat = np.concatenate([a.ravel() for a in w])
    exact = np.concatenate([a.ravel() for a in ref.analytic_gradient(w, x, y)])
    errors = {}
    for q in (2_000, 32_000):
        got, _ = kernel(w, x, y, words(q, seed=4), DISTS[dist])
        errors[q] = np.linalg.norm(got - exact) / np.linalg.norm(exact)
        expected = np.sqrt(flat.size / q)
        assert expected / 1.5 < errors[q] < 1.5 * expected, (q, errors[q], expected)
    assert 2.5 < errors[2_000] / errors[32_000] < 6.5


def test_no_directions_leave_the_estimate_zero_and_the_loss_said():
    w, x, y = problem(12, 3, 10, 4, seed=1)
    got, value = kernel(w, x, y, np.zeros(0, np.uint64), draws.GAUSSIAN)
    assert np.all(got == 0.0) and value == pytest.approx(ref.loss(w, x, y), rel=1e-14)
