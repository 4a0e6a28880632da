"""Means, confidence intervals, paired tests, equivalence tests (TOST) and verdicts over multi-seed results.

Pure functions over NumPy arrays; SciPy supplies the t distribution
(``scipy.special``, quick to import, so ``gradsel table`` starts fast) and, for
more than 100 pairs, the normal approximation of the Wilcoxon signed-rank test.
A paired comparison is over seeds: ``a[i]`` and ``b[i]`` are two methods run
with the same seed (same initial weights, subset and batch order), so ``a - b``
is the effect of the method alone. Bad input (empty, ragged, non-finite)
raises ValueError.
"""

import math
import warnings

import numpy as np
from scipy import special

from ..config import MARGIN
from ..text import json_number

DIRECTIONS = ("greater", "less")

# Subtracting decimals is not exact in binary (0.5094 - 0.5093 and
# 0.1 - 0.0999 differ in the last bits), so differences within this share of
# the data's scale are taken as exactly equal; otherwise rounding noise would
# pass for a real spread or a real difference.
_ROUNDING = 1e-12
_EXACT_LIMIT = 100  # exact Wilcoxon p-values up to this many pairs, the normal approximation above
ONE_SEED = "one seed"  # the reason a result has no interval and no p-values (its `reason`)
# The reasons a result of several pairs has no p-value: no spread, so no test statistic.
IDENTICAL = "identical"  # every paired difference is 0
NO_SPREAD = "no spread"  # every paired difference is the same non-zero number


def _sample(values, name: str) -> np.ndarray:
    """`values` as a 1-D float64 array of finite numbers."""
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers") from None
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds non-finite values (a diverged run?); drop or replace them first")
    return x


def _check_level(level: float, name: str = "level") -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {level!r}")


def _t_interval(n: int, mean: float, sd: float, level: float) -> tuple[float, float]:
    """The Student-t interval mean ± t_{(1+level)/2, n-1} · sd / √n; (nan, nan) for n < 2."""
    if n < 2:
        return math.nan, math.nan
    half = special.stdtrit(n - 1, (1.0 + level) / 2.0) * sd / math.sqrt(n)
    return mean - half, mean + half


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean and its Student-t confidence interval.

    With one value there is no estimate of the spread, so the interval is
    (nan, nan) rather than a zero-width interval that would look certain.
    No values -> ValueError.
    """
    _check_level(level)
    x = _sample(values, "values")
    if x.size == 0:
        raise ValueError("values is empty; a mean needs at least one value")
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else math.nan
    lo, hi = _t_interval(x.size, mean, sd, level)
    return mean, float(lo), float(hi)


def _differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b rounded to a grid of _ROUNDING × the data's scale: equal differences become exactly equal."""
    grid = _ROUNDING * max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    return np.round((a - b) / grid) * grid


def _midranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `v`, ties sharing the mean of their ranks (scipy.stats.rankdata's default)."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def _signed_rank_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences `d`, zeros split ("zsplit")."""
    if d.size > _EXACT_LIMIT:
        from scipy import stats as sps

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(sps.wilcoxon(d, zero_method="zsplit", method="asymptotic").pvalue)
    # Exact over the 2^n sign flips, ties and zeros included: the p-value of SciPy's exact and
    # permutation methods, from the distribution of the rank sum, which takes milliseconds where
    # SciPy's permutation test takes seconds (n = 13 with ties).
    ranks2 = np.rint(2.0 * _midranks(np.abs(d))).astype(np.int64)  # midranks are multiples of 1/2
    moving = ranks2[d != 0]  # a zero's split rank is the same under every sign flip
    observed = int(ranks2[d > 0].sum())
    prob = np.zeros(int(moving.sum()) + 1)  # prob[w]: P(sum of positive doubled ranks = w)
    prob[0] = 1.0
    for r in moving:
        flipped = np.zeros_like(prob)
        flipped[r:] = prob[:-r]
        prob = 0.5 * (prob + flipped)
    tail = min(prob[: observed + 1].sum(), prob[observed:].sum())
    return float(min(1.0, 2.0 * tail))


def paired(a, b, level: float = 0.95) -> dict:
    """Paired comparison of `a` and `b` (same seeds, same order): the difference a - b.

    Returns a dict:

    - ``n``: number of pairs; ``difference``: mean of a - b; ``sd``: its
      standard deviation (ddof 1, nan for n = 1); ``ci``: (lo, hi) Student-t
      interval at `level` (nan, nan for n = 1); ``level``; ``reason``: why
      the interval and p-values are nan (ONE_SEED for n = 1), else None.
    - ``p_t``: two-sided paired t-test (the one-sample t-test of the
      differences against 0, which is what ``scipy.stats.ttest_rel`` computes).
      n = 1 -> nan (one pair is no test); equal differences, zero or not
      (zero variance: the statistic is undefined) -> nan.
    - ``p_wilcoxon``: two-sided Wilcoxon signed-rank test with zeros split
      (``zero_method="zsplit"``): a seed where the two methods tie counts as
      evidence of no difference (its rank is split between the two signs)
      instead of being dropped, which with few seeds and frequent ties would
      overstate significance. Exact over all sign flips up to 100 pairs, ties
      and zeros included (the p-value ``scipy.stats.wilcoxon`` gives with its
      exact or permutation method, computed without enumerating the flips);
      SciPy's normal approximation above, its warnings silenced. n = 1 ->
      nan (its exact p-value is 1 whatever the difference); all differences
      zero -> nan (every sign flip gives the same statistic: no test), with
      ``reason`` IDENTICAL.

    Differences equal up to floating-point rounding (0.5094 - 0.5093 and
    0.1 - 0.0999 are different doubles) are taken as equal.
    """
    _check_level(level)
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired (same length), got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("a and b are empty; a comparison needs at least one pair")
    d = _differences(a, b)
    n = d.size
    constant = bool(np.all(d == d[0]))
    # with equal differences the sd is exactly 0 (d.std() would leave a rounding residue)
    mean = float(d[0]) if constant else float(d.mean())
    sd = math.nan if n == 1 else 0.0 if constant else float(d.std(ddof=1))
    lo, hi = _t_interval(n, mean, sd, level)

    identical = n > 1 and not d.any()
    if n > 1 and sd > 0.0:
        t = mean / (sd / math.sqrt(n))  # the one-sample t statistic of the differences against 0
        p_t = float(2.0 * special.stdtr(n - 1, -abs(t)))
    else:
        p_t = math.nan  # one pair, or no spread: no t statistic
    p_w = _signed_rank_p(d) if n > 1 and not identical else math.nan
    return dict(
        n=n,
        difference=mean,
        sd=sd,
        ci=(float(lo), float(hi)),
        level=level,
        p_t=p_t,
        p_wilcoxon=p_w,
        reason=ONE_SEED if n == 1 else IDENTICAL if identical else None,
    )


def _signed(x: float, digits: int) -> str:
    return "nan" if math.isnan(x) else f"{x:+.{digits}f}"


def p_text(p: float) -> str:
    """'= 0.01', '= 0.003', '< 0.001' or '= n/a'."""
    if math.isnan(p):
        return "= n/a"
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"


def verdict(
    diff_result: dict,
    claim_direction: str = "greater",
    alpha: float = 0.05,
    *,
    method: str = "the method",
    baseline: str = "the baseline",
    digits: int = 4,
) -> dict:
    """Whether a paired difference (from :func:`paired`) supports the claim `method` > `baseline` (< for "less").

    The rule, with the two-sided Student-t interval at level 1 - `alpha`
    (recomputed from the result's n, difference and sd, so `alpha` need not
    match the level `paired` was called with):

    - **supported** (``supported=True``) iff the interval excludes 0 on the
      claimed side (lo > 0 for ``"greater"``, hi < 0 for ``"less"``);
    - **contradicted** (``supported=False``) iff it excludes 0 on the other side;
    - **not supported** (``supported=None``) otherwise: 0 is inside the
      interval, the difference is within seed noise;
    - **inconclusive** (``supported=None``, ``reason`` ONE_SEED) when there
      is no interval (n = 1).

    Returns a dict: ``difference``, ``ci`` (lo, hi), ``p_t``, ``p_wilcoxon``,
    ``supported``, ``outcome`` (one of the four words above), ``reason``
    (ONE_SEED or None) and ``words``, one
    line of plain English quoting the difference (method - baseline, with
    `digits` decimals), the interval and the t-test p-value.
    """
    if claim_direction not in DIRECTIONS:
        raise ValueError(f"claim_direction must be one of {', '.join(DIRECTIONS)}, got {claim_direction!r}")
    _check_level(alpha, "alpha")
    try:
        n, diff, sd = int(diff_result["n"]), float(diff_result["difference"]), float(diff_result["sd"])
        p_t, p_w = float(diff_result["p_t"]), float(diff_result["p_wilcoxon"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"diff_result must be a result of paired(); missing or bad {exc}") from None
    lo, hi = _t_interval(n, diff, sd, 1.0 - alpha)

    sign = 1.0 if claim_direction == "greater" else -1.0
    if math.isnan(lo):
        supported, outcome = None, "inconclusive"
    elif sign * lo > 0 and sign * hi > 0:
        supported, outcome = True, "supported"
    elif sign * lo < 0 and sign * hi < 0:
        supported, outcome = False, "contradicted"
    else:
        supported, outcome = None, "not supported"

    claim = f"{method} beats {baseline}" if sign > 0 else f"{method} is below {baseline}"
    opposite = f"{baseline} beats {method}" if sign > 0 else f"{method} is above {baseline}"
    d = _signed(diff, digits)
    pct = f"{round(100.0 * (1.0 - alpha), 6):g}"
    ci = (
        f"{pct}% CI {_signed(lo, digits)} to {_signed(hi, digits)}, p {p_text(p_t)}"
        if n < 2 or sd > 0.0
        else f"the same difference in all {n} pairs: no spread, no p-value"
    )
    words = {
        "supported": f"supported: {claim} by {d} ({ci})",
        "contradicted": f"contradicted: the difference {d} ({ci}) shows {opposite}",
        "not supported": (
            f"not supported: identical accuracy on all {n} seeds (difference 0)"
            if diff == 0 and sd == 0
            else f"not supported: the difference {d} ({ci}) is within seed noise"
        ),
        "inconclusive": f"inconclusive ({ONE_SEED}): one paired run gives no confidence interval (difference {d})",
    }[outcome]
    return dict(
        difference=diff,
        ci=(float(lo), float(hi)),
        p_t=p_t,
        p_wilcoxon=p_w,
        supported=supported,
        outcome=outcome,
        reason=ONE_SEED if n < 2 else None,
        words=words,
    )


EQUIVALENCE_OUTCOMES = ("equivalent", "better", "worse", "inconclusive")


def equivalence(
    diff_result: dict,
    margin: float = MARGIN,
    alpha: float = 0.05,
    *,
    method: str = "the method",
    baseline: str = "the baseline",
    digits: int = 4,
) -> dict:
    """Two one-sided tests (TOST) of a paired difference (from :func:`paired`) against the margin ±`margin`.

    The lower test has H0: difference <= -margin, the upper test H0:
    difference >= +margin, each a one-sided paired t-test at level `alpha`;
    both reject exactly when the (1 - 2 alpha) Student-t interval (90% for
    alpha = 0.05) lies inside (-margin, +margin). The outcome, from that interval:

    - **equivalent**: inside (-margin, +margin): the method changes accuracy by
      less than the margin (both one-sided p-values below alpha);
    - **better** / **worse**: not equivalent, and the interval excludes 0 above
      (lo > 0) / below (hi < 0): a difference, and not shown to be below the margin;
    - **inconclusive**: otherwise, or with one pair (no interval; ``reason``
      ONE_SEED).

    Equal differences (sd 0) give a point interval, which decides the outcome, and no p-values (no spread, no
    test statistic): ``reason`` IDENTICAL when they are all 0, NO_SPREAD otherwise.
    Returns a dict: ``difference``, ``margin``, ``ci`` (lo, hi) at ``level``
    (1 - 2 alpha), ``p_lower`` (H0: difference <= -margin), ``p_upper`` (H0:
    difference >= +margin), ``p_tost`` (the larger), ``outcome`` (one of
    EQUIVALENCE_OUTCOMES), ``reason`` (ONE_SEED when there is no interval; IDENTICAL or NO_SPREAD when there
    are no p-values; else None), ``numbers`` (difference, interval and p-values as text) and
    ``words``, one line of plain English with the numbers.
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be positive and finite, got {margin!r}")
    _check_level(alpha, "alpha")
    if alpha >= 0.5:
        raise ValueError(f"alpha must be below 0.5 (the interval is at 1 - 2 alpha), got {alpha!r}")
    try:
        n, diff, sd = int(diff_result["n"]), float(diff_result["difference"]), float(diff_result["sd"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"diff_result must be a result of paired(); missing or bad {exc}") from None
    level = 1.0 - 2.0 * alpha
    lo, hi = _t_interval(n, diff, sd, level)
    if n < 2 or sd == 0.0:
        p_lower = p_upper = math.nan
    else:
        se = sd / math.sqrt(n)
        p_lower = float(special.stdtr(n - 1, -(diff + margin) / se))  # P(T >= t_lower)
        p_upper = float(special.stdtr(n - 1, (diff - margin) / se))  # P(T <= t_upper)
    if math.isnan(lo):
        outcome = "inconclusive"
    elif -margin < lo and hi < margin:
        outcome = "equivalent"
    elif lo > 0:
        outcome = "better"
    elif hi < 0:
        outcome = "worse"
    else:
        outcome = "inconclusive"
    pct = f"{round(100.0 * level, 6):g}"
    if n < 2:
        numbers, reason = f"difference {_signed(diff, digits)}; {ONE_SEED} gives no interval and no p-values", ONE_SEED
    elif sd == 0.0:
        same = "identical in every one" if diff == 0 else f"difference {_signed(diff, digits)} in every one"
        numbers, reason = f"{same} of the {n} pairs: no spread, so no p-value", IDENTICAL if diff == 0 else NO_SPREAD
    else:
        numbers, reason = (
            (
                f"difference {_signed(diff, digits)}, {pct}% CI {_signed(lo, digits)} to {_signed(hi, digits)}, "
                f"p lower {p_text(p_lower)}, p upper {p_text(p_upper)}"
            ),
            None,
        )
    words = {
        "equivalent": f"{method} is equivalent to {baseline} within ±{margin:g}",
        "better": f"{method} is better than {baseline}, not shown to be within ±{margin:g}",
        "worse": f"{method} is worse than {baseline}, not shown to be within ±{margin:g}",
        "inconclusive": (
            f"inconclusive ({ONE_SEED}): one paired run gives no interval"
            if n < 2
            else f"inconclusive: neither equivalence within ±{margin:g} nor a difference is shown"
        ),
    }[outcome]
    p_tost = max(p_lower, p_upper)
    return dict(
        difference=diff,
        margin=float(margin),
        ci=(float(lo), float(hi)),
        level=level,
        p_lower=p_lower,
        p_upper=p_upper,
        p_tost=p_tost,
        outcome=outcome,
        reason=reason,
        numbers=numbers,
        words=f"{words} ({numbers})",
    )


POWER = 0.8  # the power a seeds_needed answer is for
MAX_SEEDS = 100_000


def t_power(n: int, effect: float, sd: float, alpha: float = 0.05) -> float:
    """The power of the two-sided paired t-test at level `alpha` with `n` pairs to detect a true mean difference
    `effect` when the differences spread with standard deviation `sd` (the noncentral t distribution)."""
    from scipy import stats as sps

    df = n - 1
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    nc = effect / (sd / math.sqrt(n))
    return float(sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc))


def seeds_needed(effect: float, sd: float, alpha: float = 0.05, power: float = POWER) -> int | None:
    """The fewest seeds (pairs, at least 2) with which the paired t-test at `alpha` detects a difference of
    `effect` with at least `power`, at the spread `sd` of the paired differences; None when there is no spread
    to go by (sd 0 or not finite) or more than MAX_SEEDS would be needed."""
    if not (math.isfinite(sd) and sd > 0) or effect <= 0:
        return None
    lo, hi = 2, 2
    while t_power(hi, effect, sd, alpha) < power:  # doubling, then bisection: power grows with n
        lo, hi = hi, hi * 2
        if hi > MAX_SEEDS:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if t_power(mid, effect, sd, alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    return hi


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (Holm 1979): the i-th smallest of the m tests made is
    multiplied by m - i + 1 (i from 1), made non-decreasing in that order and capped at 1; rejecting where the
    adjusted p is below alpha keeps the chance of any false rejection in the family at most alpha. A nan (a
    comparison with no test: one seed, no spread) is no test: it stays nan and does not count in m."""
    values = [float(p) for p in p_values]
    tests = sorted((p, i) for i, p in enumerate(values) if not math.isnan(p))
    m = len(tests)
    adjusted = list(values)
    running = 0.0
    for rank, (p, i) in enumerate(tests):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def stratified_exact(pools, observed) -> dict:
    """The exact test of one observed value per stratum against the stratum's draws (a stratified permutation
    test): under the null hypothesis the observed value of stratum c is one more draw of it, so which of its
    len(pools[c]) + 1 values is the observed one is uniform, independently across strata. The statistic is the
    sum of the observed values; its null distribution is the convolution of the strata's (values are
    non-negative integers: counts, test images). Returns {statistic, expected, p} with p two-sided:
    min(1, 2 min(P(T <= t), P(T >= t))). Exact, with no random draws."""
    if len(pools) != len(observed) or not pools:
        raise ValueError("stratified_exact needs one observed value per stratum and at least one stratum")
    dist = np.ones(1)  # the null distribution of the sum so far: dist[t] = P(T = t)
    expected = 0.0
    for pool, seen in zip(pools, observed):
        values = np.append(np.asarray(pool, dtype=np.int64), int(seen))
        if values.min() < 0:
            raise ValueError("stratified_exact takes non-negative integer values (counts, test images)")
        support, counts = np.unique(values, return_counts=True)
        step = np.zeros(len(dist) + int(support[-1]))
        for v, n in zip(support, counts):
            step[v : v + len(dist)] += dist * (n / len(values))
        dist = step
        expected += float(values.mean())
    t = int(sum(int(v) for v in observed))
    below, above = float(dist[: t + 1].sum()), float(dist[t:].sum())
    return {"statistic": t, "expected": expected, "p": min(1.0, 2.0 * min(below, above))}


def json_ready(obj):
    """`obj` (dicts, lists, tuples of numbers and strings) with every float through text.json_number: JSON has
    no NaN, and a number that cannot be estimated (no interval from one seed) is null, its `reason` beside it."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return json_number(obj) if isinstance(obj, float) else obj


def predictions_array(pred, name: str = "predictions") -> np.ndarray:
    """A prediction array, or a record's digit string ('0'-'9', '-' for none -> -1), as a 1-D array."""
    if isinstance(pred, str):
        if not set(pred) <= set("0123456789-"):
            raise ValueError(f"{name} must be a string of digits '0'-'9' and '-', got other characters")
        codes = np.frombuffer(pred.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
        codes[codes == ord("-") - ord("0")] = -1  # the same code training uses for "no prediction"
        return codes
    x = np.asarray(pred)
    if x.ndim != 1 or x.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be a 1-D array of predicted digits or a digit string")
    return x


def disagreement(pred_a, pred_b) -> float:
    """The share of test images on which two predictions differ.

    Each argument is an array of predicted digits or a record's digit string
    (one character per test image, '-' where the run made no prediction). A
    position differs when the stored values differ, so '-' against a digit
    differs and '-' against '-' does not.
    """
    a, b = predictions_array(pred_a, "pred_a"), predictions_array(pred_b, "pred_b")
    if a.shape != b.shape:
        raise ValueError(f"predictions must have the same length, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("predictions are empty")
    return float(np.mean(a != b))
