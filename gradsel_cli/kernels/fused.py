"""The fused training loop: whole stretches of iterations of plain SGD in one kernel call."""

import math

import numba
import numpy as np

from .backward import _analytic, _analytic_lit
from .differences import _numeric
from .forward import _loss
from .lit import _nonzero
from .policy import EXACT, SERIAL
from .precision import _c

# The fused training loop: whole stretches of iterations of plain SGD in one call, for the
# common configurations (no weight decay, dropout or batch norm). Each iteration computes
# exactly what methods.py computes one call at a time, and the update and the norms are
# rounded as NumPy rounds them (EXACT: no fused multiply-add), so the two loops give
# bitwise the same run. Method codes; the names are mapped in network.py.
ANALYTIC, NUMERIC, ALTERNATE, SELECT = 0, 1, 2, 3


@numba.njit(**EXACT)
def _sgd_into(p, g, lr, lo, hi):
    """g[i] = p[i] - lr * g[i] for lo <= i < hi (NumPy's p - lr * g, each product rounded); whether
    every new value is finite."""
    pp, gg = p[lo:hi], g[lo:hi]  # slices, not computed indices: it vectorises
    finite = True
    for i in range(hi - lo):
        v = pp[i] - lr * gg[i]
        gg[i] = v
        finite &= math.isfinite(v)  # no branch, and no chain of float additions
    return finite


@numba.njit(**EXACT)
def _sgd_rows(p, g, lr, rows, n_rows, H, lo, hi, finite):
    """The SGD step p - lr * g on the rows rows[:n_rows] of length H and on p[lo:hi], where alone g can
    be non-zero; kept only when `finite` (the loss was) and every new value is finite (whether
    returned). g is left zero on the rows. One pass writes the new values and keeps the old ones in
    g, the second clears g (and puts the old values back if the step is not kept)."""
    finite = _sgd_into(p, g, lr, lo, hi) and finite
    for q in range(n_rows):
        pp = p[rows[q] * H : rows[q] * H + H]  # slices, not computed indices: it vectorises
        gg = g[rows[q] * H : rows[q] * H + H]
        for i in range(H):
            v = pp[i] - lr * gg[i]
            gg[i] = pp[i]
            pp[i] = v
            finite &= math.isfinite(v)
    for q in range(n_rows):
        pp = p[rows[q] * H : rows[q] * H + H]
        gg = g[rows[q] * H : rows[q] * H + H]
        for i in range(H):
            if not finite:
                pp[i] = gg[i]
            gg[i] = 0.0
    if finite:
        for i in range(hi - lo):
            p[lo + i] = g[lo + i]
    return finite


@numba.njit(**EXACT)
def _sum_squares_block(v, lo, n):
    """sum of v[i] ** 2, lo <= i < lo + n <= lo + 128, as NumPy sums a block: eight running sums."""
    if n < 8:
        s = _c(v, 0.0)
        for i in range(lo, lo + n):
            s += v[i] * v[i]
        return s
    r = np.empty(8, v.dtype)
    for k in range(8):
        r[k] = v[lo + k] * v[lo + k]
    i = 8
    while i < n - n % 8:
        for k in range(8):
            r[k] += v[lo + i + k] * v[lo + i + k]
        i += 8
    s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        s += v[lo + i] * v[lo + i]
        i += 1
    return s


@numba.njit(**EXACT)
def _sum_squares(v):
    """The sum of v ** 2 in NumPy's pairwise order, bitwise np.sum(v * v): blocks of up to 128 summed
    as _sum_squares_block, longer runs halved at a multiple of 8 and the halves added. Without
    recursion (Numba's cache loads recursive functions broken): a stack of runs to sum, where
    lo = -1 means "add the last two sums"."""
    los = np.empty(192, np.int64)
    ns = np.empty(192, np.int64)
    sums = np.empty(64, v.dtype)
    los[0], ns[0] = 0, v.shape[0]
    top, n_sums = 1, 0
    while top > 0:
        top -= 1
        lo, n = los[top], ns[top]
        if lo < 0:
            n_sums -= 1
            sums[n_sums - 1] = sums[n_sums - 1] + sums[n_sums]
        elif n <= 128:
            sums[n_sums] = _sum_squares_block(v, lo, n)
            n_sums += 1
        else:
            half = n // 2
            half -= half % 8
            los[top], ns[top] = -1, 0
            los[top + 1], ns[top + 1] = lo + half, n - half
            los[top + 2], ns[top + 2] = lo, half
            top += 3
    return sums[0]


@numba.njit(**EXACT)
def _norm(v):
    """||v|| as NumPy's np.sqrt(np.sum(v * v)), in v's precision, returned as a float64."""
    return np.float64(_c(v, math.sqrt(_sum_squares(v))))


@numba.njit(**SERIAL)
def _blocks(flat, n_in, H, K):
    """W1 (n_in, H), b1 (H,), W2 (H, K), b2 (K,): views into flat (the layout of Params)."""
    row = n_in * H + H
    return (
        flat[: n_in * H].reshape((n_in, H)),
        flat[n_in * H : row],
        flat[row : row + H * K].reshape((H, K)),
        flat[row + H * K : row + H * K + K],
    )


@numba.njit(**SERIAL)
def _numeric_flat(x, y, flat, n_in, H, K, act, mask, fd_step, fd_central, loss, fd_textbook, loss_epsilon):
    """_numeric's gradient as one flat vector (the layout of Params)."""
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    gW1, gb1, gW2, gb2 = _numeric(x, y, W1, b1, W2, b2, act, mask, fd_step, fd_central, loss, fd_textbook, loss_epsilon)
    g = np.empty(flat.shape[0], flat.dtype)
    row = n_in * H + H
    g[: n_in * H] = gW1.ravel()
    g[n_in * H : row] = gb1
    g[row : row + H * K] = gW2.ravel()
    g[row + H * K :] = gb2
    return g


@numba.njit(**SERIAL)
def _gather_lit(rows, lit_idx, lit_val, lit_ptr, idx, val, ptr):
    """The lit pixels of the batch of rows `rows` (as _nonzero would give them) into idx, val, ptr, from
    those of the whole set (lit_idx, lit_val, lit_ptr); returns how many."""
    n = 0
    for b in range(rows.shape[0]):
        lo, hi = lit_ptr[rows[b]], lit_ptr[rows[b] + 1]
        ptr[b] = n
        idx[n : n + hi - lo] = lit_idx[lo:hi]
        val[n : n + hi - lo] = lit_val[lo:hi]
        n += hi - lo
    ptr[rows.shape[0]] = n
    return n


@numba.njit(**SERIAL)
def _select_step(x, y, flat, H, act, mask, loss, loss_epsilon, fd_step, fd_central, fd_textbook, lr, xs, ys, ms):
    """One select iteration on the batch x, y: both gradients, both SGD candidates, the one with the lower
    loss on xs, ys (mask ms) kept in flat (ties: analytic) unless the loss or it is not finite.
    Returns the batch loss, whether it was kept, whether numeric, and ||g_num - g_ana|| / ||g_ana||."""
    P = flat.shape[0]
    n_in = x.shape[1]
    K = (P - n_in * H - H) // (H + 1)
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    value, ga = _analytic(x, y, W1, b1, W2, b2, act, mask, loss, loss_epsilon, None, None)
    gn = _numeric_flat(x, y, flat, n_in, H, K, act, mask, fd_step, fd_central, loss, fd_textbook, loss_epsilon)
    norm = _norm(ga)
    rel = _norm(gn - ga) / norm if norm > 0 else _norm(gn)
    finite_a = _sgd_into(flat, ga, lr, 0, P)  # ga, gn: now the two candidate weights
    finite_n = _sgd_into(flat, gn, lr, 0, P)
    Wa = _blocks(ga, n_in, H, K)
    Wn = _blocks(gn, n_in, H, K)
    la = _loss(xs, ys, Wa[0], Wa[1], Wa[2], Wa[3], act, ms, loss, loss_epsilon, None, None)
    ln = _loss(xs, ys, Wn[0], Wn[1], Wn[2], Wn[3], act, ms, loss, loss_epsilon, None, None)
    numeric = ln < la
    ok = math.isfinite(value) and (finite_n if numeric else finite_a)
    if ok:
        flat[:] = gn if numeric else ga
    return value, ok, numeric, rel


@numba.njit(**SERIAL)
def _train_sgd(
    flat,
    H,
    x_train,
    y_train,
    batches,
    t0,
    method,
    numeric_every,
    lr,
    act,
    loss,
    loss_epsilon,
    fd_step,
    fd_central,
    fd_textbook,
    select_on_train,
    losses,
    sources,
    rel_diffs,
):
    """Iterations t0 + 1, ..., t0 + len(batches) of SGD with the gradient of `method`.

    flat : (P,) the weights (layout of Params), updated in place
    x_train : (N, n_in), y_train : (N,) the few-shot set; batches : (T, B) indices into it
    losses, sources, rel_diffs : (iters,) each iteration's batch loss, 1 where the kept update
        was numeric, and select's ||g_num - g_ana|| / ||g_ana|| (written at t - 1)

    Returns the iterations done and whether the last of them diverged (a loss or a new weight
    not finite: its loss is written, the weights stay those before it). The analytic update
    touches only the rows of W1 whose gradient can be non-zero (the batch's lit pixels).
    """
    P = flat.shape[0]
    n_in = x_train.shape[1]
    K = (P - n_in * H - H) // (H + 1)
    row = n_in * H + H
    W1, b1, W2, b2 = _blocks(flat, n_in, H, K)
    ones = np.ones((batches.shape[1], H), flat.dtype)
    x = np.empty((batches.shape[1], n_in), flat.dtype)
    y = np.empty(batches.shape[1], np.int64)
    ones_train = np.ones((x_train.shape[0], H), flat.dtype)
    g = np.zeros(P, flat.dtype)  # the analytic gradient (zero but on the rows just written), then the update
    seen = np.full(n_in + 1, -1, np.int64)  # the iteration that last wrote each row of W1 (row n_in: b1)
    lit_idx, lit_val, lit_ptr = _nonzero(x_train)
    longest = 0
    for r in range(x_train.shape[0]):
        longest = max(longest, lit_ptr[r + 1] - lit_ptr[r])
    idx = np.empty(batches.shape[1] * longest, np.int64)
    val = np.empty(batches.shape[1] * longest, flat.dtype)
    ptr = np.empty(batches.shape[1] + 1, np.int64)
    rows = np.empty(n_in + 1, np.int64)
    for i in range(batches.shape[0]):
        t = t0 + i + 1
        numeric = method == NUMERIC or (method == ALTERNATE and t % numeric_every == 0)
        for b in range(batches.shape[1]):  # the batch (x copied row by row: Numba's x_train[rows] is slower)
            y[b] = y_train[batches[i, b]]
            if numeric or method == SELECT:
                x[b] = x_train[batches[i, b]]
        if method == SELECT:
            xs, ys, ms = (x_train, y_train, ones_train) if select_on_train else (x, y, ones)
            value, ok, kept_numeric, rel = _select_step(
                x, y, flat, H, act, ones, loss, loss_epsilon, fd_step, fd_central, fd_textbook, lr, xs, ys, ms
            )
            if ok:
                sources[t - 1] = kept_numeric
                rel_diffs[t - 1] = rel
        elif numeric:
            gn = _numeric_flat(x, y, flat, n_in, H, K, act, ones, fd_step, fd_central, loss, fd_textbook, loss_epsilon)
            value = _loss(x, y, W1, b1, W2, b2, act, ones, loss, loss_epsilon, None, None)
            ok = _sgd_into(flat, gn, lr, 0, P) and math.isfinite(value)
            if ok:
                flat[:] = gn
                sources[t - 1] = 1
        else:
            n = _gather_lit(batches[i], lit_idx, lit_val, lit_ptr, idx, val, ptr)
            value, _, _ = _analytic_lit(
                idx[:n], val[:n], ptr, y, W1, b1, W2, b2, act, ones, loss, loss_epsilon, None, None, g
            )
            n_rows = 0
            for e in range(n):
                if seen[idx[e]] != t:
                    seen[idx[e]] = t
                    rows[n_rows] = idx[e]
                    n_rows += 1
            ok = _sgd_rows(flat, g, lr, rows, n_rows, H, row, P, math.isfinite(value))
        losses[t - 1] = value
        if not ok:
            return i + 1, True
    return batches.shape[0], False
