"""The numeric gradient's cumulant series (kernels/differences._ce_series): a sample's cross-entropy change when
one hidden value moves, against a 60-digit reference and against every perturbed exponential (today's path), on
adversarial draws: logits spread up to scale 8, |W2| up to 3, moves up to the series' bound."""

import decimal
from decimal import Decimal

import numpy as np
import pytest

from gradsel_cli.kernels.differences import SERIES_SMALL, _ce_differences, _ce_exponentials, _ce_series

K = 10
N = 4  # moves per draw


def _draw(rng, dtype, central: bool, reach: float = 1.0):
    """One sample's exp(a - max a) (1, K), W2[j], its label and N moves (+ and -), the largest at `reach` times
    the series' bound |dz| max |w| = SERIES_SMALL."""
    a = rng.normal(0, rng.uniform(1, 8), K)
    e = np.exp(a - a.max()).astype(dtype)[None, :]
    w = (rng.uniform(0.01, 3, K) * rng.choice([-1, 1], K)).astype(dtype)
    wmax = float(np.abs(w).max())
    u = SERIES_SMALL * reach / wmax * rng.uniform(0.01, 1, N) * rng.choice([-1, 1], N)
    v = -u * (1 + rng.normal(0, 1e-2, N)) if central else np.zeros(N)
    u[0] = np.sign(u[0]) * SERIES_SMALL * reach / wmax  # one move at the bound itself
    v = np.clip(v, -abs(u[0]), abs(u[0]))
    return e, w, int(rng.integers(K)), u.astype(dtype), v.astype(dtype), wmax


def _reference(e, w, y, u, v) -> float:
    """log(S(u) / S(v)) - (u - v) w_y in 60 digits, from the same float inputs."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60

        def total(dz):
            return sum(Decimal(float(ek)) * (Decimal(float(dz)) * Decimal(float(wk))).exp() for ek, wk in zip(e, w))

        return float((total(u) / total(v)).ln() - (Decimal(float(u)) - Decimal(float(v))) * Decimal(float(w[y])))


def _series(e, w, y, u, v):
    out = np.empty(N, e.dtype)
    _ce_series(e, 0, w, y, u, v, N, out)
    return out


def _exponentials(e, w, y, u, v):
    out = np.empty(N, e.dtype)
    spare = np.empty(N, e.dtype)
    none = np.empty(0, e.dtype)
    _ce_exponentials(e, np.zeros(1, e.dtype), np.zeros((1, K), e.dtype), 0, w, y, True, u, v, N, spare,
                     spare.copy(), False, 0.0, out, none, none)  # fmt: skip
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("central", [True, False])
def test_the_series_is_within_a_few_ulp_of_the_changes_scale(dtype, central):
    """Error at most 16 ulp of |dz| max |w| (the change's scale; the change itself is of that order unless its
    first cumulant cancels against w_y): the truncation bound is a fraction of an ulp, the rest is rounding."""
    rng = np.random.default_rng(42 + central)
    eps = np.finfo(dtype).eps
    worst = 0.0
    for _ in range(300):
        e, w, y, u, v, wmax = _draw(rng, dtype, central)
        got = _series(e, w, y, u, v)
        for t in range(N):
            scale = max(abs(float(u[t])), abs(float(v[t]))) * wmax
            worst = max(worst, abs(float(got[t]) - _reference(e[0], w, y, u[t], v[t])) / (scale * eps))
    assert worst <= 16


def test_the_series_is_today_kernel_to_a_few_ulp_of_the_loss_and_far_more_exact():
    """Every perturbed exponential (today's path) is exact to a few ulp of the loss, as the series is: the two
    agree to 8 ulp; against the reference the series' errors are the smaller by orders of magnitude."""
    rng = np.random.default_rng(7)
    eps = np.finfo(np.float64).eps
    mine, today = [], []
    for _ in range(300):
        e, w, y, u, v, _ = _draw(rng, np.float64, central=True)
        s, x = _series(e, w, y, u, v), _exponentials(e, w, y, u, v)
        assert np.all(np.abs(s - x) <= 8 * eps)
        for t in range(N):
            r = _reference(e[0], w, y, u[t], v[t])
            mine.append(abs(s[t] - r) / abs(r))
            today.append(abs(x[t] - r) / abs(r))
    assert np.median(mine) * 100 < np.median(today)


def test_past_the_bound_every_exponential_is_evaluated():
    """A move beyond SERIES_SMALL (a large step, large W2): _ce_differences takes the exponentials, whatever
    the series would give; within it, the series."""
    rng = np.random.default_rng(3)
    for reach, path in ((4.0, _exponentials), (1.0, _series)):
        e, w, y, u, v, wmax = _draw(rng, np.float64, central=True, reach=reach)
        small = float(np.abs(u).max()) * wmax <= 1 / 256
        out, none = np.empty(N), np.empty(0)
        _ce_differences(e, np.zeros(1), np.zeros((1, K)), 0, w, y, np.abs(w).max(), u, v, N, np.empty(N),
                        np.empty(N), False, 0.0, out, none, none)  # fmt: skip
        assert small and np.array_equal(out, path(e, w, y, u, v))


def test_the_loss_epsilon_and_textbook_paths_keep_their_exponentials():
    """The series is of -log p: with loss_epsilon (-log(p + eps)) the change is made from the exponentials."""
    rng = np.random.default_rng(5)
    e, w, y, u, v, _ = _draw(rng, np.float64, central=True)
    none = np.empty(0)
    with_eps, plain = np.empty(N), np.empty(N)
    for out, eps in ((with_eps, 1e-7), (plain, 0.0)):
        _ce_differences(e, np.zeros(1), np.zeros((1, K)), 0, w, y, np.abs(w).max(), u, v, N, np.empty(N),
                        np.empty(N), False, eps, out, none, none)  # fmt: skip
    assert np.array_equal(plain, _series(e, w, y, u, v))
    assert not np.array_equal(with_eps, plain)


def _output_reference(z1, e, y, step, central) -> np.ndarray:
    """gW2 and b2's gradient (H + 1, K) of the summed per-sample loss changes, in 60 digits from the same inputs."""
    B, H = z1.shape
    out = np.empty((H + 1, e.shape[1]))
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        h = Decimal(float(step))
        for j in range(H + 1):
            for k in range(e.shape[1]):
                total = Decimal(0)
                for b in range(B):
                    S = sum(Decimal(float(v)) for v in e[b])
                    ek = Decimal(float(e[b, k]))
                    u = h * Decimal(float(z1[b, j]) if j < H else 1.0)
                    v = -u if central else Decimal(0)
                    total += (S + ek * (u.exp() - 1)).ln() - (S + ek * (v.exp() - 1)).ln()
                    total -= (u - v) if k == y[b] else 0
                out[j, k] = float(total / (B * (2 * h if central else h)))
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("central", [True, False])
def test_the_output_layers_series_is_within_a_few_ulp_and_the_exponentials_are_not(dtype, central):
    """W2 and b2 by the Bernoulli cumulant series, against the 60-digit reference: within 32 ulp of the
    entry's scale (the mean |z1| of its unit); the exponentials' path errs by orders of magnitude more in
    float64 (its loss changes round at the scale of the loss, not of the change)."""
    from gradsel_cli.kernels.differences import _numeric_output_layer, _output_exponentials

    rng = np.random.default_rng(21 + central)
    B, H = 6, 4
    eps = np.finfo(dtype).eps
    step = dtype(1e-4)  # with |z1| up to 4, every move within the series' bound
    worst = today = 0.0
    for _ in range(4):
        a2 = rng.normal(0, rng.uniform(1, 8), (B, K))
        m = a2.max(axis=1)
        e = np.exp(a2 - m[:, None]).astype(dtype)
        z1 = rng.uniform(0, 1, (B, H)).astype(dtype) * dtype(rng.choice([1.0, 4.0]))  # sigmoid's, and ReLU's
        y = rng.integers(0, K, B)
        args = (z1, a2.astype(dtype), m.astype(dtype), e, y, step, central, 0, False, dtype(0.0))
        gW2, gb2 = _numeric_output_layer(*args)
        oW2, ob2 = _output_exponentials(*args)
        want = _output_reference(z1, e, y, step, central)
        scale = np.append(np.abs(z1).mean(axis=0), 1.0)[:, None]
        worst = max(worst, float(np.max(np.abs(np.vstack([gW2, gb2]) - want) / scale)) / eps)
        today = max(today, float(np.max(np.abs(np.vstack([oW2, ob2]) - want) / scale)) / eps)
    assert worst <= 32
    if dtype == np.float64:
        assert today > 100 * worst


def test_the_output_layer_takes_the_exponentials_past_the_bound_or_with_a_loss_epsilon():
    from gradsel_cli.kernels.differences import SERIES_SMALL, _numeric_output_layer, _output_exponentials

    rng = np.random.default_rng(2)
    a2 = rng.normal(0, 3, (3, K))
    m = a2.max(axis=1)
    e = np.exp(a2 - m[:, None])
    y = rng.integers(0, K, 3)
    step = 1e-4
    far = np.full((3, 2), 2.2 * SERIES_SMALL / step)  # a ReLU unit this large moves its logits past the bound
    for z1, eps in ((far, 0.0), (far / 10, 1e-7)):
        args = (z1, a2, m, e, y, step, True, 0, False, eps)
        got, want = _numeric_output_layer(*args), _output_exponentials(*args)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    near = (far / 10, a2, m, e, y, step, True, 0, False, 0.0)
    assert not np.array_equal(_numeric_output_layer(*near)[0], _output_exponentials(*near)[0])
