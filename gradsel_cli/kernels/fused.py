"""The fused training loop: whole stretches of iterations of plain SGD in one kernel call."""

import math

import numba
import numpy as np

from .forward import _blocks, _forward_lit, _mean_loss
from .policy import EXACT, INLINE, SERIAL
from .precision import _c

# The fused training loop: whole stretches of iterations of plain SGD in one call, for the
# common configurations (no weight decay, dropout or batch norm). Each iteration computes
# exactly what methods.py computes one call at a time, and the update and the norms are
# rounded as NumPy rounds them (EXACT: no fused multiply-add), so the two loops give
# bitwise the same run. The gradient sources come as their steps (first-class functions of
# STEP_SIGNATURE, compiled by core/kernel_cache.py), the policy as its code.
PLAIN, ALTERNATE, SELECT = 0, 1, 2  # the policy codes; the names are mapped in network.py
STEPS = 4  # the loop takes this many steps (unused ones repeat the first): one specialisation per precision


def step_signature(dtype):
    """The signature every source's fused step has, for weights of `dtype`:

    step(x (B, n_in), y (B,), idx, val, ptr (the batch's lit pixels as lit._nonzero gives them), flat (the
    weights, Params' layout), H, act, mask (B, H), loss, loss_epsilon, knobs (float64: the source's
    settings), draws (uint64: the source's words of this iteration, Source.draws of them; kernels/draws.py
    makes directions of them), g) -> the batch loss at flat, as a float64.

    g is zero on entry on W1 and b1; the step writes its gradient into it: every entry, or (a sparse
    source) W1's rows of the batch's lit pixels and b1 added, W2 and b2 assigned, the rest left zero.
    """
    t = numba.from_dtype(np.dtype(dtype))
    i64 = numba.types.int64
    vec, mat = t[::1], t[:, ::1]
    words = numba.types.uint64[::1]
    return numba.types.float64(
        mat, i64[::1], i64[::1], vec, i64[::1], vec, i64, i64, mat, i64, t, numba.types.float64[::1], words, vec
    )


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


@numba.njit(**INLINE)
def _gather_lit(rows, lit_idx, lit_val, lit_ptr, idx, val, ptr):
    """The lit pixels of the batch of rows `rows` (as lit._nonzero would give them) into idx, val, ptr, from
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


@numba.njit(**INLINE)
def _source_at(t, policy, n_sources, every):
    """The source of iteration t (1-based) under plain or alternate: the first, but on every `every`-th
    iteration the next of the others in turn (the second, of two)."""
    if policy == PLAIN or t % every != 0:
        return 0
    return 1 + (t // every - 1) % (n_sources - 1)


@numba.njit(**SERIAL)
def _calls_of(t0, T, policy, n_sources, every):
    """How many of iterations t0 + 1 ... t0 + T compute each source: under select every one each, else the one
    of _source_at."""
    calls = np.zeros(n_sources, np.int64)
    for t in range(t0 + 1, t0 + T + 1):
        if policy == SELECT:
            calls += 1
        else:
            calls[_source_at(t, policy, n_sources, every)] += 1
    return calls


@numba.njit(**SERIAL)
def _train_sgd(
    flat,
    H,
    x_train,
    y_train,
    lit_idx,
    lit_val,
    lit_ptr,
    batches,
    t0,
    policy,
    steps,
    n_sources,
    dense,
    sparse,
    knobs,
    draws,
    every,
    lr,
    act,
    loss,
    loss_epsilon,
    select_on_train,
    losses,
    sources,
    rel_diffs,
    ties,
):
    """Iterations t0 + 1, ..., t0 + len(batches) of SGD with the gradient of the `policy` over the first
    n_sources of `steps` (plain: the first alone; alternate: _source_at; select: every one, the update
    with the lowest loss kept, ties to the first).

    flat : (P,) the weights (layout of Params), updated in place
    x_train : (N, n_in), y_train : (N,) the few-shot set; batches : (T, B) indices into it
    lit_idx, lit_val, lit_ptr : the lit pixels of x_train (_nonzero(x_train)), made once per run by the
        caller: a call costs what its iterations cost, whatever the size of the training set
    dense, sparse : (n,) whether each source's step reads x, and whether its gradient is zero on the
        rows of W1 of dark pixels (then only the batch's lit rows are updated)
    knobs : (n, m) float64, each source's settings
    draws : (T, n, d) uint64, each source's words of each iteration (seeding.draws; its first Source.draws)
    losses, sources : (iters,) each iteration's batch loss and the kept update's source (its position)
    rel_diffs : (iters, n - 1) select's ||g_s - g_0|| / ||g_0|| of each other source s (written at t - 1)
    ties : (iters,) select: whether another candidate's loss equalled the kept one's, bitwise (written at t - 1)

    Returns the iterations done and whether the last of them diverged (a loss or a new weight
    not finite: its loss is written, the weights stay those before it).
    """
    P = flat.shape[0]
    n_in = x_train.shape[1]
    K = (P - n_in * H - H) // (H + 1)
    row = n_in * H + H
    B = batches.shape[1]
    ones = np.ones((B, H), flat.dtype)
    # the batch's pixels, gathered only when a step declares it reads them (dense); otherwise NaN, never stale
    # memory, so that a step that reads x without saying so makes the run's loss NaN instead of silently wrong
    x = np.full((B, n_in), np.nan, flat.dtype)
    y = np.empty(B, np.int64)
    ones_train = np.ones((x_train.shape[0] if select_on_train else 0, H), flat.dtype)  # select's --select-on train
    g = np.zeros(P, flat.dtype)  # a gradient (zero on W1 and b1 but the rows just written), then the update
    G = np.zeros((n_sources if policy == SELECT else 0, P), flat.dtype)  # select: each source's, then candidate
    finite = np.empty(n_sources, np.bool_)
    rel = np.empty(max(n_sources - 1, 0), np.float64)
    candidate_loss = np.empty(n_sources, np.float64)  # select: each candidate's loss
    seen = np.full(n_in + 1, -1, np.int64)  # the iteration that last wrote each row of W1 (row n_in: b1)
    longest = 0
    for r in range(x_train.shape[0]):
        longest = max(longest, lit_ptr[r + 1] - lit_ptr[r])
    idx = np.empty(B * longest, np.int64)
    val = np.empty(B * longest, flat.dtype)
    ptr = np.empty(B + 1, np.int64)
    rows = np.empty(n_in + 1, np.int64)
    # 0 as an int64, not a literal: a literal argument makes Numba compile a callee once for Literal[int](0)
    # and again for int64
    start = np.int64(0)
    for i in range(batches.shape[0]):
        t = t0 + i + 1
        s = _source_at(t, policy, n_sources, every) if policy != SELECT else 0
        need_x = dense[s]
        if policy == SELECT:
            for q in range(n_sources):
                need_x |= dense[q]
        for b in range(B):  # the batch (x copied row by row: Numba's x_train[rows] is slower)
            y[b] = y_train[batches[i, b]]
            if need_x:
                x[b] = x_train[batches[i, b]]
        n = _gather_lit(batches[i], lit_idx, lit_val, lit_ptr, idx, val, ptr)
        if policy == SELECT:  # the candidates' losses on the batch's lit pixels, or on the whole set's
            if select_on_train:
                li, lv, lp, ys, ms = lit_idx, lit_val, lit_ptr, y_train, ones_train
            else:
                li, lv, lp, ys, ms = idx[:n], val[:n], ptr, y, ones
            value = 0.0
            for q in range(n_sources):
                G[q, :] = 0.0
                v = steps[q](
                    x, y, idx[:n], val[:n], ptr, flat, H, act, ones, loss, loss_epsilon, knobs[q], draws[i, q], G[q]
                )
                if q == 0:
                    value = v
            norm = _norm(G[0])
            for q in range(1, n_sources):
                rel[q - 1] = _norm(G[q] - G[0]) / norm if norm > 0 else _norm(G[q])
            best, best_loss = 0, 0.0
            for q in range(n_sources):  # G[q]: now the candidate weights
                finite[q] = _sgd_into(flat, G[q], lr, start, P)
                W = _blocks(G[q], n_in, H, K)
                a2 = _forward_lit(li, lv, lp, W[0], W[1], W[2], W[3], act, ms, None, None)[3]
                lq = np.float64(_mean_loss(a2, ys, loss, loss_epsilon))
                candidate_loss[q] = lq
                if q == 0 or lq < best_loss:
                    best, best_loss = q, lq
            tied = False
            for q in range(n_sources):
                tied |= q != best and candidate_loss[q] == best_loss
            ok = math.isfinite(value) and finite[best]
            if ok:
                flat[:] = G[best]
                sources[t - 1] = best
                rel_diffs[t - 1, :] = rel
                ties[t - 1] = tied
        else:
            value = steps[s](
                x, y, idx[:n], val[:n], ptr, flat, H, act, ones, loss, loss_epsilon, knobs[s], draws[i, s], g
            )
            if sparse[s]:
                n_rows = start
                for e in range(n):
                    if seen[idx[e]] != t:
                        seen[idx[e]] = t
                        rows[n_rows] = idx[e]
                        n_rows += 1
                ok = _sgd_rows(flat, g, lr, rows, n_rows, H, row, P, math.isfinite(value))
            else:
                ok = _sgd_into(flat, g, lr, start, P) and math.isfinite(value)
                if ok:
                    flat[:] = g
                g[:row] = 0.0
            if ok:
                sources[t - 1] = s
        losses[t - 1] = value
        if not ok:
            return i + 1, True
    return batches.shape[0], False
