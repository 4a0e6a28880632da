"""The numeric gradient: finite differences, every perturbed loss re-evaluated incrementally.

Perturbing one weight changes little of the network: one hidden unit of the
samples where the pixel is lit, or one output. Only that part is computed again.

Neither arithmetic forms w + h: a perturbation moves a pre-activation by h x (a
logit by h z1) and what it moves is re-evaluated. Finite-difference arithmetic
(``fd_textbook``): the default differences the per-sample losses of the
affected samples, so the batch loss's size never cancels; the moved unit's own
change, act(a + h x) - act(a), still rounds, about eps / h relative (0.9% in
float32 at h = 1e-4, negligible in float64). With ``fd_textbook`` each perturbed batch
loss L(w +- h) is accumulated as a number (the mean of every sample's loss) and
the two are subtracted, (L+ - L-) / 2h, as the textbook code does: its
cancellation error, about eps * L / h, is the textbook's.
"""

import numba
import numpy as np

from .activations import SIGMOID, _act
from .forward import (
    MSE,
    _blocks,
    _ce_change,
    _cross_entropy,
    _forward_lit,
    _mean,
    _sample_losses,
    _softmax_parts,
    _with_eps,
)
from .lit import _by_pixel
from .policy import INLINE, PARALLEL, SERIAL
from .precision import SMALL, _c, _exp, _exp_small


@numba.njit(**SERIAL)
def _hidden_shift(abj, zbj, mbj, fd_step, val, lo, n, act, small, out):
    """out[t] = change of z1[b, j] when a1[b, j] moves by fd_step * val[lo + t], t < n.

    For the sigmoid, exp(-(a + s)) = exp(-a) exp(-s), the second factor small
    when `small` (fd_step * max pixel <= SMALL): a loop that vectorises.
    """
    if act == SIGMOID and small:
        E = _exp(-abj)
        for t in range(n):
            out[t] = mbj / (_c(abj, 1.0) + E * _exp_small(-fd_step * val[lo + t])) - zbj
    else:
        for t in range(n):
            out[t] = _act(abj + fd_step * val[lo + t], act) * mbj - zbj


@numba.njit(**INLINE)
def _mse_shifted(e, b, y_b, w, dz):
    """MSE of sample b when its logits move by dz * w[k] (a hidden value moved by dz)."""
    K = e.shape[1]
    s = _c(e, 0.0)
    for k in range(K):
        s += e[b, k] * _exp(dz * w[k])
    total = _c(e, 0.0)
    for k in range(K):
        d = e[b, k] * _exp(dz * w[k]) / s - (_c(e, 1.0) if k == y_b else _c(e, 0.0))
        total += d * d
    return _c(e, 0.5) * total


@numba.njit(**INLINE)
def _mse_logit_shift(e, b, y_b, k_moved, d):
    """MSE of sample b when only its logit k_moved moves by d."""
    K = e.shape[1]
    s = _c(e, 0.0)
    for k in range(K):
        s += e[b, k] * _exp(d) if k == k_moved else e[b, k]
    total = _c(e, 0.0)
    for k in range(K):
        ek = e[b, k] * _exp(d) if k == k_moved else e[b, k]
        diff = ek / s - (_c(e, 1.0) if k == y_b else _c(e, 0.0))
        total += diff * diff
    return _c(e, 0.5) * total


@numba.njit(**INLINE)
def _max_abs(v, n):
    m = _c(v, 0.0)
    for t in range(n):
        m = max(m, abs(v[t]))
    return m


@numba.njit(**INLINE)
def _fd_scale(B, fd_step, fd_central):
    """1 / (B * 2h) (central) or 1 / (B * h) (forward): summed loss differences to a gradient."""
    return _c(fd_step, 1.0) / (_c(fd_step, B) * (_c(fd_step, 2.0) * fd_step if fd_central else fd_step))


@numba.njit(**INLINE)
def _textbook_difference(Lp, Lm, B, fd_step, fd_central):
    """(L+ - L-) / 2h (central) or (L+ - L) / h (forward) of two summed batch losses, each first made
    a mean: the two numbers subtracted, as the textbook does."""
    nB = _c(fd_step, B)
    return (Lp / nB - Lm / nB) / (_c(fd_step, 2.0) * fd_step if fd_central else fd_step)


@numba.njit(**INLINE)
def _series_change(u, v, c1, c2, c3, c4, c5):
    """K(u) - K(v) less (u - v) times the moved logit's share of the loss, for a cumulant series K cut at degree
    5 (c1: kappa_1 less that share, c_n = kappa_n / n!): u^n - v^n = (u - v) h_{n-1}(u, v) (h: the complete
    homogeneous sums), so it is (u - v) times a sum that loses nothing to cancellation."""
    h1 = u + v
    v2 = v * v
    h2 = u * h1 + v2
    h3 = u * h2 + v2 * v
    h4 = u * h3 + v2 * v2
    return (u - v) * (c1 + (c2 * h1 + (c3 * h2 + (c4 * h3 + c5 * h4))))


@numba.njit(**PARALLEL)
def _output_series(z1, e, y, fd_step, fd_central):
    """_numeric_output_layer of the cross-entropy without a loss epsilon in the exact arithmetic, by the
    cumulant series: a logit k moved by d changes sample b's loss by K(d) - d [k = y], K(d) = log(1 + p (e^d - 1))
    the cumulant generating function of a Bernoulli(p = p_bk) variable, whose cumulants are p, pq, pq (q - p),
    pq (1 - 6pq), pq (q - p)(1 - 12pq) (q = 1 - p, each computed from the other logits' sum, not as 1 - p).
    As in _ce_series (_series_change): its range is 1, so with |d| / 2 <= SERIES_SMALL
    the terms left out are below 1.8e-16 of |d|. No exponential, where there were two per (unit, logit, sample)."""
    B, H = z1.shape
    K = e.shape[1]
    dt = z1.dtype
    one = _c(fd_step, 1.0)
    coef = np.empty((B, K, 5), dt)  # per sample and logit: kappa_1 - [k = y], then kappa_n / n!, n = 2..5
    for b in range(B):
        S = _c(fd_step, 0.0)
        for k in range(K):
            S += e[b, k]
        for k in range(K):
            others = _c(fd_step, 0.0)
            for i in range(K):
                if i != k:
                    others += e[b, i]
            p = e[b, k] / S
            q = others / S
            pq = p * q
            r = q - p
            coef[b, k, 0] = -q if k == y[b] else p
            coef[b, k, 1] = pq * _c(fd_step, 0.5)
            coef[b, k, 2] = pq * r * _c(fd_step, 1.0 / 6.0)
            coef[b, k, 3] = pq * (one - _c(fd_step, 6.0) * pq) * _c(fd_step, 1.0 / 24.0)
            coef[b, k, 4] = pq * r * (one - _c(fd_step, 12.0) * pq) * _c(fd_step, 1.0 / 120.0)
    scale = _fd_scale(B, fd_step, fd_central)
    gW2 = np.empty((H, K), dt)
    gb2 = np.empty(K, dt)
    for j in numba.prange(H + 1):  # row H stands for b2 (a hidden value of 1)
        for k in range(K):
            d = _c(fd_step, 0.0)
            for b in range(B):
                u = fd_step * (z1[b, j] if j < H else one)
                v = -u if fd_central else _c(fd_step, 0.0)
                c = coef[b, k]
                d += _series_change(u, v, c[0], c[1], c[2], c[3], c[4])
            if j < H:
                gW2[j, k] = d * scale
            else:
                gb2[k] = d * scale
    return gW2, gb2


@numba.njit(**SERIAL)
def _numeric_output_layer(z1, a2, m, e, y, fd_step, fd_central, loss, fd_textbook, loss_epsilon):
    """Finite differences of W2 (H, K) and b2 (K,): perturbing W2[j, k] moves only logit
    a2[b, k], by fd_step * z1[b, j] (b2[k]: by fd_step). Returns gW2, gb2. The cross-entropy without a loss
    epsilon in the exact arithmetic by its cumulant series (_output_series) while every move is within its
    bound; else every perturbed exponential."""
    B, H = z1.shape
    if loss != MSE and not fd_textbook and loss_epsilon == 0.0:
        zmax = _c(fd_step, 1.0)  # b2's hidden value
        for b in range(B):
            zmax = max(zmax, _max_abs(z1[b], H))
        if abs(fd_step) * zmax * _c(fd_step, 0.5) <= SERIES_SMALL:
            return _output_series(z1, e, y, fd_step, fd_central)
    return _output_exponentials(z1, a2, m, e, y, fd_step, fd_central, loss, fd_textbook, loss_epsilon)


@numba.njit(**PARALLEL)
def _output_exponentials(z1, a2, m, e, y, fd_step, fd_central, loss, fd_textbook, loss_epsilon):
    """_numeric_output_layer from every perturbed logit's exponential."""
    B, H = z1.shape
    K = e.shape[1]
    scale = _fd_scale(B, fd_step, fd_central)
    zero = _c(fd_step, 0.0)
    gW2 = np.empty((H, K), z1.dtype)
    gb2 = np.empty(K, z1.dtype)
    for j in numba.prange(H + 1):  # row H stands for b2 (a hidden value of 1)
        for k in range(K):
            d = zero  # exact: summed loss differences
            Lp = zero  # textbook: summed perturbed losses
            Lm = zero
            for b in range(B):
                zbj = z1[b, j] if j < H else _c(fd_step, 1.0)
                dp = fd_step * zbj
                dm = -dp if fd_central else zero
                if loss == MSE:
                    lp = _mse_logit_shift(e, b, y[b], k, dp)
                    lm = _mse_logit_shift(e, b, y[b], k, dm)
                    d += lp - lm
                    Lp += lp
                    Lm += lm
                    continue
                sp = zero
                sm = zero
                for kk in range(K):
                    if kk == k:
                        sp += e[b, kk] * _exp(dp)
                        sm += e[b, kk] * _exp(dm)
                    else:
                        sp += e[b, kk]
                        sm += e[b, kk]
                yb = y[b]
                dyp = dp if k == yb else zero
                dym = dm if k == yb else zero
                if fd_textbook:
                    Lp += _cross_entropy(sp, m[b], a2[b, yb], e[b, yb], dyp, loss_epsilon)
                    Lm += _cross_entropy(sm, m[b], a2[b, yb], e[b, yb], dym, loss_epsilon)
                else:
                    d += _ce_change(sp, sm, (dp - dm) if k == yb else zero, dym, e[b, yb], loss_epsilon, False)
            g = _textbook_difference(Lp, Lm, B, fd_step, fd_central) if fd_textbook else d * scale
            if j < H:
                gW2[j, k] = g
            else:
                gb2[k] = g
    return gW2, gb2


# |dz| * max |W2[j]| at most this: the cross-entropy change of a moved hidden value by its cumulant series
# (_ce_series), whose terms beyond degree 5 stay below 6.4 SERIES_SMALL^5 = 1.8e-16 of the change's scale
# |dz| max |w| (see _ce_series); above it, every perturbed logit's exponential is evaluated.
SERIES_SMALL = 1.0 / 2048


@numba.njit(**INLINE)
def _ce_series(e, b, w2j, y_b, dzp, dzm, n, diff):
    """diff[t] = the cross-entropy of sample b with hidden value j moved by dzp[t] less that with it moved by
    dzm[t], t < n, by the cumulant series of the perturbed logits (no exponential evaluated).

    The logits move by dz w_k (w = W2[j]), so log S(dz)/S(0) = log sum_k p_k exp(dz w_k) = K(dz), the
    cumulant generating function of w under the softmax p: K(dz) = sum_n kappa_n dz^n / n!, and the loss
    change is K(u) - K(v) - (u - v) w_y (_series_change). With the central moments mu_n of w, kappa_2 = mu_2,
    kappa_3 = mu_3, kappa_4 = mu_4 - 3 mu_2^2, kappa_5 = mu_5 - 10 mu_3 mu_2, and kappa_1 - w_y =
    sum_k p_k (w_k - w_y). Truncation: for |z| r <= 1 (r = max |w| bounds the centred range)
    the series of K converges with |K| <= 3.2 (the centred mean of exp(z (w - c)) stays at least e^-1 cos 1
    from 0), so the terms beyond degree 5 are at most 6.4 (|dz| r)^6 / (1 - |dz| r) in all: with
    |dz| r <= SERIES_SMALL, below 1.8e-16 |dz| r, a fraction of an ulp of the change's scale."""
    K = w2j.shape[0]
    S = _c(w2j, 0.0)
    for k in range(K):
        S += e[b, k]
    wy = w2j[y_b]
    d1 = _c(w2j, 0.0)  # kappa_1 - w_y
    for k in range(K):
        d1 += e[b, k] * (w2j[k] - wy)
    d1 /= S
    m2 = _c(w2j, 0.0)
    m3 = _c(w2j, 0.0)
    m4 = _c(w2j, 0.0)
    m5 = _c(w2j, 0.0)
    for k in range(K):
        d = (w2j[k] - wy) - d1  # w_k - kappa_1
        d2 = d * d
        pk = e[b, k]
        m2 += pk * d2
        m3 += pk * d2 * d
        m4 += pk * d2 * d2
        m5 += pk * d2 * d2 * d
    m2 /= S
    m3 /= S
    m4 /= S
    m5 /= S
    c2 = m2 * _c(w2j, 0.5)
    c3 = m3 * _c(w2j, 1.0 / 6.0)
    c4 = (m4 - _c(w2j, 3.0) * m2 * m2) * _c(w2j, 1.0 / 24.0)
    c5 = (m5 - _c(w2j, 10.0) * m3 * m2) * _c(w2j, 1.0 / 120.0)
    for t in range(n):
        diff[t] = _series_change(dzp[t], dzm[t], d1, c2, c3, c4, c5)


@numba.njit(**SERIAL)
def _ce_differences(e, m, a2, b, w2j, y_b, wmax, dzp, dzm, n, Sp, Sm, fd_textbook, loss_epsilon, diff, lp, lm):
    """Cross-entropy of sample b with hidden value j moved by dzp[t] and by dzm[t], t < n (w2j = W2[j]
    (K,), wmax = max |w2j|): exact, their difference diff[t] (with loss_epsilon: of -log(p + loss_epsilon)); textbook,
    the two losses themselves, lp[t] and lm[t]. The exact difference of -log p by its series (_ce_series) when the
    moves are small enough (SERIES_SMALL), else, and for the others, from every perturbed exponential."""
    moved = max(_max_abs(dzp, n), _max_abs(dzm, n)) * wmax
    if not fd_textbook and loss_epsilon == 0.0 and moved <= SERIES_SMALL:
        _ce_series(e, b, w2j, y_b, dzp, dzm, n, diff)
    else:
        _ce_exponentials(
            e, m, a2, b, w2j, y_b, moved <= SMALL, dzp, dzm, n, Sp, Sm, fd_textbook, loss_epsilon, diff, lp, lm
        )


@numba.njit(**SERIAL)
def _ce_exponentials(e, m, a2, b, w2j, y_b, small, dzp, dzm, n, Sp, Sm, fd_textbook, loss_epsilon, diff, lp, lm):
    """_ce_differences from every perturbed logit's exponential (`small`: each move |dz w| <= SMALL, so by
    the short polynomial)."""
    K = w2j.shape[0]
    for t in range(n):
        Sp[t] = 0.0
        Sm[t] = 0.0
    for k in range(K):
        w = w2j[k]
        ek = e[b, k]
        if small:
            for t in range(n):
                Sp[t] += ek * _exp_small(dzp[t] * w)
                Sm[t] += ek * _exp_small(dzm[t] * w)
        else:
            for t in range(n):
                Sp[t] += ek * _exp(dzp[t] * w)
                Sm[t] += ek * _exp(dzm[t] * w)
    wy = w2j[y_b]
    ey = e[b, y_b]
    if fd_textbook:  # each loss as a number
        for t in range(n):
            lp[t] = _cross_entropy(Sp[t], m[b], a2[b, y_b], ey, dzp[t] * wy, loss_epsilon)
            lm[t] = _cross_entropy(Sm[t], m[b], a2[b, y_b], ey, dzm[t] * wy, loss_epsilon)
    elif small:  # a loop of its own, and loss_epsilon after it, so that it vectorises
        for t in range(n):
            diff[t] = _ce_change(Sp[t], Sm[t], (dzp[t] - dzm[t]) * wy, dzm[t] * wy, ey, _c(ey, 0.0), True)
        if loss_epsilon != 0.0:
            for t in range(n):
                diff[t] = _with_eps(diff[t], ey * _exp(dzm[t] * wy) / Sm[t], loss_epsilon)
    else:
        for t in range(n):
            diff[t] = _ce_change(Sp[t], Sm[t], (dzp[t] - dzm[t]) * wy, dzm[t] * wy, ey, loss_epsilon, False)


@numba.njit(**INLINE)
def _same_sample(idx, val, ptr, y, mask, b, c):
    """Whether samples b and c have the same lit pixels and values, label and mask row."""
    n = ptr[b + 1] - ptr[b]
    if n != ptr[c + 1] - ptr[c] or y[b] != y[c]:
        return False
    for t in range(n):
        if idx[ptr[b] + t] != idx[ptr[c] + t] or val[ptr[b] + t] != val[ptr[c] + t]:
            return False
    for j in range(mask.shape[1]):
        if mask[b, j] != mask[c, j]:
            return False
    return True


@numba.njit(**INLINE)
def _before(a, b):
    """a sorts before b: ascending, NaN last (np.sort's order)."""
    return a < b or (a == a and b != b)


@numba.njit(**INLINE)
def _sort(s, n):
    """Sort s[:n] in place, ascending and NaN last: a Shell sort (a few lines that Numba compiles in a blink,
    where np.sort costs a second of compile; equal values are equal, so the result is np.sort's)."""
    gap = 1
    while gap < n // 3:
        gap = 3 * gap + 1
    while gap > 0:
        for t in range(gap, n):
            v = s[t]
            r = t
            while r >= gap and _before(v, s[r - gap]):
                s[r] = s[r - gap]
                r -= gap
            s[r] = v
        gap //= 3


@numba.njit(**INLINE)
def _position(uval, u, nu, v):
    """The place of v (not NaN) in the ascending uval[u:u + nu] that holds it: a binary search."""
    lo, hi = 0, nu
    while lo < hi:
        mid = (lo + hi) // 2
        if uval[u + mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(**SERIAL)
def _distinct(idx, val, ptr, y, mask):
    """What the numeric gradient of W1 can share, from the rows of _nonzero(x).

    first[b]: the first sample identical to b (same pixels, label and mask
    row; a batch drawn with replacement repeats samples), b itself if none.
    For each b that is its own first, its distinct values (pixels and the bias
    entry's 1) uval[uptr[b]:uptr[b + 1]], ascending (the rows of repeats are
    empty); for every entry t of the rows, which[t] is its value's place in the
    list of its first sample. A perturbed loss depends on the pixel only
    through its value, so one evaluation per (sample, distinct value) serves
    every pixel with that value, in every copy of the sample.
    """
    B = ptr.shape[0] - 1
    first = np.empty(B, np.int64)
    for b in range(B):
        first[b] = b
        for c in range(b):
            if first[c] == c and _same_sample(idx, val, ptr, y, mask, b, c):
                first[b] = c
                break
    uval = np.empty(val.shape[0], val.dtype)
    uptr = np.empty(B + 1, np.int64)
    which = np.empty(val.shape[0], np.int64)
    s = np.empty(val.shape[0], val.dtype)
    u = 0
    for b in range(B):
        uptr[b] = u
        lo = ptr[b]
        n = ptr[b + 1] - lo
        if first[b] != b:
            for t in range(n):
                which[lo + t] = which[ptr[first[b]] + t]
            continue
        for t in range(n):
            s[t] = val[lo + t]
        _sort(s, n)
        nu = 0
        for t in range(n):
            if t == 0 or s[t] != s[t - 1]:
                uval[u + nu] = s[t]
                nu += 1
        for t in range(n):
            v = val[lo + t]
            which[lo + t] = _position(uval, u, nu, v) if v == v else nu - 1  # NaN: sorted last
        u += nu
    uptr[B] = u
    return first, uval[:u], uptr, which


@numba.njit(**PARALLEL)
def _numeric_step(x, y, idx, val, ptr, flat, H, act, mask, loss, loss_epsilon, knobs, draws, g):
    """The numeric source's step (step_signature), and its kernel for every call of the numeric gradient without
    batch norm: the finite-difference gradient into g (every entry), each perturbed loss re-evaluated
    incrementally; returns the batch loss (that of _loss). knobs: fd_step, fd_central, fd_textbook.

    One kernel, not a chain of them: Numba compiles a kernel with every kernel it calls linked in and
    optimised again, so each layer around this one would cost its compile again.

    Perturbing W1[i, j] (or b1[j], as a pixel of value 1) moves only a1[b, j]
    of the samples with x[b, i] != 0, hence z1[b, j] and their K logits;
    perturbing W2[j, k] (or b2[k]) moves only logit a2[b, k]. The perturbed
    per-sample loss log S' + m - a2'[y] is recomputed from the unperturbed
    forward pass (S' = sum_k exp(a2'[k] - m)); the unaffected samples
    contribute exactly nothing to L(w+h) - L(w-h). For the cross-entropy
    without a loss epsilon in the exact arithmetic, a moved hidden value's loss
    change is the cumulant series of its K perturbed logits (_ce_series): no
    exponential, and more exact than evaluating them; beyond the series' bound,
    and otherwise, every exponential is evaluated (for small arguments by a
    polynomial exact to 1 ulp).
    The MSE loss takes a plain path (every perturbed probability evaluated).
    A perturbed loss is evaluated once per (sample, distinct pixel value) and
    not at all for a repeated sample (_distinct): the pixels and copies that
    share it take the same number. Exact arithmetic: the differences, one row
    per (sample, distinct value) and a column per unit (D), are then summed
    pixel by pixel (_by_pixel), each pixel's samples in sample order as the
    sum per unit did, so bitwise the same; each row of W1's gradient is one
    loop over the units, contiguous, which vectorises, where the sum per unit
    zeroed, scattered into and wrote out a strided column of every pixel.

    `fd_textbook`: each perturbed batch loss is instead summed as a number over
    all samples (the unaffected ones with their unperturbed loss, in sample
    order; every copy of a repeated sample with its own term) and the two sums
    are subtracted (see the module docstring).
    """
    B = ptr.shape[0] - 1
    n_in = x.shape[1]
    K = (flat.shape[0] - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    fd_step = _c(flat, knobs[0])
    fd_central = knobs[1] != 0
    fd_textbook = knobs[2] != 0
    a1, _, z1, a2, _, _ = _forward_lit(idx, val, ptr, W1, b1, W2, b2, act, mask, None, None)
    m, e, S = _softmax_parts(a2)
    base = _sample_losses(a2, m, e, S, y, loss, loss_epsilon)  # textbook: the unaffected samples' losses
    first, uval, uptr, which = _distinct(idx, val, ptr, y, mask)
    max_row = 0
    small_x = np.empty(B, np.bool_)  # the pixel shifts of sample b are small
    for b in range(B):
        max_row = max(max_row, uptr[b + 1] - uptr[b])
        small_x[b] = fd_step * _max_abs(val[ptr[b] :], ptr[b + 1] - ptr[b]) <= SMALL
    scale = _fd_scale(B, fd_step, fd_central)
    dt = W1.dtype

    # exact: per (sample, distinct value) and unit, loss(+) - loss(-) (0 where the unit is dropped)
    D = np.empty((0 if fd_textbook else uval.shape[0], H), dt)
    for j in numba.prange(H):
        n_tb = n_in + 1 if fd_textbook else 0
        Lp = np.zeros(n_tb, dt)  # textbook: summed perturbed losses
        Lm = np.zeros(n_tb, dt)
        last = np.full(n_tb, -1, np.int64)  # textbook: the last sample that moved each entry
        dzp = np.empty(max_row, dt)
        dzm = np.zeros(max_row, dt)  # stays 0 for the forward scheme
        Sp = np.empty(max_row, dt)
        Sm = np.empty(max_row, dt)
        diff = np.empty(0 if fd_textbook else max_row, dt)
        # textbook: per (sample, distinct value), loss(+) and loss(-)
        lps = np.empty(uval.shape[0] if fd_textbook else 0, dt)
        lms = np.empty(uval.shape[0] if fd_textbook else 0, dt)
        wmax = _max_abs(W2[j], K)
        for b in range(B):
            mbj = mask[b, j]
            lit = mbj != 0.0  # a dropped unit: perturbing its inputs changes nothing
            lo = uptr[first[b]]
            if first[b] == b:  # else a repeat: its losses are those of its first copy
                n = uptr[b + 1] - lo
                if not lit:
                    n = 0
                lp = lps[lo : lo + n]  # empty unless textbook
                lm = lms[lo : lo + n]
                _hidden_shift(a1[b, j], z1[b, j], mbj, fd_step, uval, lo, n, act, small_x[b], dzp)
                if fd_central:
                    _hidden_shift(a1[b, j], z1[b, j], mbj, -fd_step, uval, lo, n, act, small_x[b], dzm)
                if loss == MSE:
                    for t in range(n):
                        lmt = _mse_shifted(e, b, y[b], W2[j], dzm[t]) if fd_central else base[b]
                        lpt = _mse_shifted(e, b, y[b], W2[j], dzp[t])
                        if fd_textbook:
                            lp[t] = lpt
                            lm[t] = lmt
                        else:
                            diff[t] = lpt - lmt
                elif n > 0:
                    _ce_differences(
                        e, m, a2, b, W2[j], y[b], wmax, dzp, dzm, n, Sp, Sm, fd_textbook, loss_epsilon, diff, lp, lm
                    )
                if not fd_textbook:
                    for t in range(uptr[b + 1] - lo):
                        D[lo + t, j] = diff[t] if t < n else 0.0
            if fd_textbook:  # every sample's loss enters both sums, each copy of a repeat with its own term
                if lit:
                    for t in range(ptr[b], ptr[b + 1]):
                        i = idx[t]
                        Lp[i] += lps[lo + which[t]]
                        Lm[i] += lms[lo + which[t]]
                        last[i] = b
                for i in range(n_in + 1):
                    if last[i] != b:
                        Lp[i] += base[b]
                        Lm[i] += base[b]
        for i in range(n_tb):
            g[i * H + j] = _textbook_difference(Lp[i], Lm[i], B, fd_step, fd_central)  # W1[i, j]; i = n_in: b1[j]
    if not fd_textbook:  # W1[i, :] (i = n_in: b1) sums its entries' rows of D, in sample order; a dark pixel's
        # row stays as it came, zero (step_signature), as 0 * scale
        order, pptr = _by_pixel(idx, ptr, n_in + 1)
        slot = np.empty(order.shape[0], np.int64)  # the row of D of each entry, the entries in order
        for b in range(B):
            for t in range(ptr[b], ptr[b + 1]):
                slot[t] = uptr[first[b]] + which[t]
        slot = slot[order]
        for i in numba.prange(n_in + 1):
            if pptr[i] == pptr[i + 1]:
                continue
            row = g[i * H : (i + 1) * H]
            row[:] = 0.0
            for s in range(pptr[i], pptr[i + 1]):
                u = slot[s]
                for j in range(H):
                    row[j] += D[u, j]
            for j in range(H):
                row[j] *= scale

    gW2, gb2 = _numeric_output_layer(z1, a2, m, e, y, fd_step, fd_central, loss, fd_textbook, loss_epsilon)
    row = n_in * H + H
    g[row : row + H * K] = gW2.ravel()
    g[row + H * K :] = gb2
    return np.float64(_mean(base))
