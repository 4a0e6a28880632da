"""stats.py against hand-computed values: intervals, paired tests, the degenerate cases, verdict words, disagreement."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from gradsel_cli.analysis.stats import disagreement, equivalence, mean_ci, paired, verdict

# Student-t quantiles t_{q, df}, from tables (not from scipy)
T_975_2 = 4.302652729749464
T_975_3 = 3.182446305284263
T_975_4 = 2.7764451051977987
T_950_3 = 2.353363434801823
T_950_4 = 2.131846786326649

SD_1234 = 1.2909944487358056  # sample sd (ddof 1) of [1, 2, 3, 4]: sqrt(5/3)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# mean_ci ---------------------------------------------------------------------------------------


def test_mean_ci_hand_computed():
    mean, lo, hi = mean_ci([1, 2, 3, 4])
    half = T_975_3 * SD_1234 / 2  # sd / sqrt(4)
    assert mean == 2.5
    assert lo == pytest.approx(2.5 - half, rel=1e-12)
    assert hi == pytest.approx(2.5 + half, rel=1e-12)


def test_mean_ci_other_level():
    _mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0, 4.0]), level=0.90)
    assert (lo, hi) == pytest.approx((2.5 - T_950_3 * SD_1234 / 2, 2.5 + T_950_3 * SD_1234 / 2), rel=1e-12)


def test_mean_ci_one_value_has_no_interval(no_warnings):
    mean, lo, hi = mean_ci([0.53])
    assert mean == 0.53 and math.isnan(lo) and math.isnan(hi)


def test_mean_ci_equal_values_give_a_point():
    mean, lo, hi = mean_ci([0.5, 0.5, 0.5])
    assert (mean, lo, hi) == pytest.approx((0.5, 0.5, 0.5), abs=1e-15)


@pytest.mark.parametrize("values", [[], [[1.0, 2.0]], [1.0, math.nan], [1.0, math.inf], ["a", "b"]])
def test_mean_ci_bad_values(values):
    with pytest.raises(ValueError):
        mean_ci(values)


@pytest.mark.parametrize("level", [0.0, 1.0, 95])
def test_mean_ci_bad_level(level):
    with pytest.raises(ValueError, match="level"):
        mean_ci([1, 2, 3], level=level)


# paired ----------------------------------------------------------------------------------------


def test_paired_hand_computed(no_warnings):
    # differences 0.01, 0.02, 0.00: mean 0.01, sd 0.01, t = 0.01 / (0.01 / sqrt 3) = sqrt 3 on 2 df.
    # t on 2 df has CDF 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - sqrt(3/5).
    r = paired([0.60, 0.62, 0.58], [0.59, 0.60, 0.58])
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert r["n"] == 3 and r["level"] == 0.95
    assert r["difference"] == pytest.approx(0.01, rel=1e-9)
    assert r["sd"] == pytest.approx(0.01, rel=1e-9)
    assert r["ci"] == pytest.approx((0.01 - half, 0.01 + half), rel=1e-9)
    assert r["p_t"] == pytest.approx(1 - math.sqrt(0.6), rel=1e-9)
    # zsplit: ranks 1 (the zero, split 1/2 each way), 2, 3. Over the 4 sign patterns of the nonzero
    # differences the smaller rank sum is 0.5, 2.5, 2.5, 0.5; the observed 0.5 -> p = 2/4.
    assert r["p_wilcoxon"] == pytest.approx(0.5)


def test_paired_matches_ttest_rel():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 0.6, 7)
    b = a - rng.normal(0.005, 0.01, 7)
    r = paired(a, b)
    assert r["p_t"] == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
    assert r["difference"] == pytest.approx(np.mean(a - b), rel=1e-12)


def test_paired_wilcoxon_exact():
    # differences +0.01, +0.02, +0.03, -0.005: ranks 2, 3, 4 positive, 1 negative; smaller sum 1.
    # Of the 16 sign patterns, 2 give a smaller sum <= 1 on each side: p = 4/16.
    r = paired([0.51, 0.52, 0.53, 0.495], [0.5, 0.5, 0.5, 0.5])
    assert r["p_wilcoxon"] == pytest.approx(0.25)


def test_paired_all_zero_differences(no_warnings):
    a = [0.5094, 0.6001, 0.55, 0.5]
    r = paired(a, list(a))
    assert r["difference"] == 0.0 and r["sd"] == 0.0
    assert r["ci"] == (0.0, 0.0)
    # no spread: every sign flip gives the same statistics, so there is no test and no p-value
    assert math.isnan(r["p_t"]) and math.isnan(r["p_wilcoxon"]) and r["reason"] == "identical"


def test_paired_rounding_noise_is_not_an_effect(no_warnings):
    # 0.5094 - 0.5093 and 0.1 - 0.0999 are not the same double; they are the same difference
    a, b = [0.5094, 0.1, 0.7003], [0.5093, 0.0999, 0.7002]
    assert len({x - y for x, y in zip(a, b)}) > 1
    r = paired(a, b)
    assert r["sd"] == 0.0
    assert r["ci"][0] == r["ci"][1] == r["difference"] == pytest.approx(1e-4)
    assert math.isnan(r["p_t"])  # zero variance: the t statistic is undefined
    assert r["p_wilcoxon"] == pytest.approx(0.25)  # 3 positive of 3: 2 of 8 sign patterns as extreme


def test_paired_equal_nonzero_differences(no_warnings):
    r = paired([0.61] * 5, [0.60] * 5)
    assert r["sd"] == 0.0 and math.isnan(r["p_t"])
    assert r["p_wilcoxon"] == pytest.approx(2 / 32)  # all 5 positive: 2 of 32 sign patterns


def test_paired_one_pair(no_warnings):
    r = paired([0.6], [0.5])
    assert r["n"] == 1 and r["difference"] == pytest.approx(0.1)
    assert math.isnan(r["sd"]) and all(math.isnan(x) for x in r["ci"])
    assert math.isnan(r["p_t"]) and math.isnan(r["p_wilcoxon"])  # one pair is no test (exact Wilcoxon: 1 always)
    assert r["reason"] == "one seed"


def test_one_pair_of_equal_runs_has_no_p_values(no_warnings):
    """Nor do identical runs of several seeds: no spread, no statistic."""
    r = paired([0.6], [0.6])
    assert math.isnan(r["p_t"]) and math.isnan(r["p_wilcoxon"]) and r["reason"] == "one seed"
    two = paired([0.6, 0.5], [0.6, 0.5])
    assert math.isnan(two["p_t"]) and math.isnan(two["p_wilcoxon"]) and two["reason"] == "identical"
    assert paired([0.6, 0.5], [0.6, 0.4])["reason"] is None


def test_paired_wilcoxon_matches_scipy_with_ties_and_zeros():
    rng = np.random.default_rng(0)
    for n in range(2, 9):
        for _ in range(5):
            d = rng.integers(-2, 3, n) * 0.01  # many ties and zeros: SciPy's permutation method
            if not d.any():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = sps.wilcoxon(d, zero_method="zsplit").pvalue
            assert paired(0.5 + d, np.full(n, 0.5))["p_wilcoxon"] == pytest.approx(expected, rel=1e-9)


def test_paired_wilcoxon_many_pairs_is_scipys_normal_approximation(no_warnings):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 0.6, 150).round(4)
    b = (a - rng.normal(0.001, 0.01, 150)).round(4)
    d = np.round(a - b, 10)
    expected = sps.wilcoxon(d, zero_method="zsplit", method="asymptotic").pvalue
    assert paired(a, b)["p_wilcoxon"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [1.0]), ([], []), ([1.0, math.nan], [1.0, 2.0])])
def test_paired_bad_input(a, b):
    with pytest.raises(ValueError):
        paired(a, b)


samples = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_paired_is_antisymmetric(data):
    a = data.draw(samples)
    b = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(a), max_size=len(a)))
    ab, ba = paired(a, b), paired(b, a)
    assert ab["difference"] == pytest.approx(-ba["difference"], abs=1e-12)
    assert ab["p_t"] == pytest.approx(ba["p_t"], nan_ok=True)
    assert ab["p_wilcoxon"] == pytest.approx(ba["p_wilcoxon"], nan_ok=True)
    flipped = {True: False, False: True, None: None}
    assert verdict(ab)["supported"] == flipped[verdict(ba)["supported"]]


@settings(max_examples=60, deadline=None)
@given(samples)
def test_mean_ci_contains_the_mean(values):
    mean, lo, hi = mean_ci(values)
    assert lo <= mean + 1e-12 and mean <= hi + 1e-12


# verdict ---------------------------------------------------------------------------------------


def result(difference, half, p_t, n=5, p_wilcoxon=0.06):
    """A paired() result whose 95% interval is difference ± half."""
    return dict(
        n=n,
        difference=difference,
        sd=half * math.sqrt(n) / T_975_4,
        ci=None,
        level=0.95,
        p_t=p_t,
        p_wilcoxon=p_wilcoxon,
    )


def test_verdict_supported():
    v = verdict(result(0.012, 0.008, 0.01), method="alternate", baseline="analytic", digits=3)
    assert v["supported"] is True and v["outcome"] == "supported"
    assert v["words"] == "supported: alternate beats analytic by +0.012 (95% CI +0.004 to +0.020, p = 0.01)"
    assert v["ci"] == pytest.approx((0.004, 0.020))
    assert (v["difference"], v["p_t"], v["p_wilcoxon"]) == (0.012, 0.01, 0.06)


def test_verdict_not_supported():
    v = verdict(result(0.002, 0.012, 0.70), method="alternate", baseline="analytic", digits=3)
    assert v["supported"] is None and v["outcome"] == "not supported"
    assert v["words"] == (
        "not supported: the difference +0.002 (95% CI -0.010 to +0.014, p = 0.70) is within seed noise"
    )


def test_verdict_contradicted():
    v = verdict(result(-0.012, 0.008, 0.01), method="alternate", baseline="analytic", digits=3)
    assert v["supported"] is False and v["outcome"] == "contradicted"
    assert v["words"] == (
        "contradicted: the difference -0.012 (95% CI -0.020 to -0.004, p = 0.01) shows analytic beats alternate"
    )


def test_verdict_claim_less():
    v = verdict(result(-0.012, 0.008, 0.0004), "less", method="numeric", baseline="analytic", digits=3)
    assert v["supported"] is True
    assert v["words"] == "supported: numeric is below analytic by -0.012 (95% CI -0.020 to -0.004, p < 0.001)"
    assert verdict(result(0.012, 0.008, 0.01), "less")["supported"] is False


def test_verdict_alpha_recomputes_the_interval():
    r = result(0.009, 0.010, 0.07)  # 95% interval -0.001 to +0.019
    assert verdict(r)["supported"] is None
    v = verdict(r, alpha=0.10)
    half = 0.010 * T_950_4 / T_975_4
    assert v["ci"] == pytest.approx((0.009 - half, 0.009 + half))
    assert v["supported"] is True and "(90% CI +0.0013 to +0.0167, p = 0.07)" in v["words"]


def test_verdict_one_run_is_inconclusive():
    v = verdict(paired([0.6], [0.5]))
    assert v["supported"] is None and v["outcome"] == "inconclusive"
    assert v["words"] == "inconclusive (one seed): one paired run gives no confidence interval (difference +0.1000)"
    assert v["reason"] == "one seed"


def test_verdict_of_identical_runs_is_not_supported():
    v = verdict(paired([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]), method="alternate", baseline="analytic")
    assert v["supported"] is None
    assert v["words"] == "not supported: identical accuracy on all 3 seeds (difference 0)"


def test_verdict_of_a_zero_mean_difference_with_spread_is_seed_noise():
    v = verdict(paired([0.5, 0.6, 0.7], [0.51, 0.6, 0.69]), method="alternate", baseline="analytic")
    assert v["supported"] is None
    assert v["words"].endswith("is within seed noise")


def test_verdict_p_value_formats():
    assert "p = 0.003)" in verdict(result(0.012, 0.008, 0.003))["words"]
    assert "p = n/a)" in verdict(result(0.012, 0.008, math.nan))["words"]


def test_verdict_end_to_end():
    a = [0.56, 0.57, 0.55, 0.58, 0.56]
    b = [0.55, 0.555, 0.54, 0.565, 0.55]
    v = verdict(paired(a, b), method="alternate", baseline="analytic")
    assert v["supported"] is True and v["words"].startswith("supported: alternate beats analytic by +0.0120")


@pytest.mark.parametrize("kwargs", [dict(claim_direction="up"), dict(alpha=0.0), dict(alpha=1.5)])
def test_verdict_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        verdict(result(0.01, 0.005, 0.01), **kwargs)


def test_verdict_needs_a_paired_result():
    with pytest.raises(ValueError, match="paired"):
        verdict({"difference": 0.01})


# disagreement ----------------------------------------------------------------------------------


def test_disagreement_of_digit_strings():
    assert disagreement("0123", "0133") == 0.25
    assert disagreement("0123456789", "0123456789") == 0.0
    assert disagreement("01-3", "01-3") == 0.0  # both made no prediction there
    assert disagreement("0123", "-123") == 0.25


def test_disagreement_of_arrays_and_mixed():
    assert disagreement(np.array([0, 1, 2, 3]), np.array([3, 1, 2, 0])) == 0.5
    assert disagreement("0123", np.array([0, 1, 2, 4])) == 0.25
    assert disagreement("7-", np.array([7, -1])) == 0.0  # '-' is stored as -1 by training


@pytest.mark.parametrize("a, b", [("012", "01"), ("", ""), ("01a", "012"), (np.zeros((2, 2)), np.zeros((2, 2)))])
def test_disagreement_bad_input(a, b):
    with pytest.raises(ValueError):
        disagreement(a, b)


# equivalence (TOST) ------------------------------------------------------------------------------

MARGIN = 0.002
TOST_RTOL = 1e-10  # our p-values and interval vs scipy.stats and the tabled quantile: rounding only


def test_equivalence_hand_computed():
    # d = 0.001 * [1, 2, 3, 4]: mean 0.0025, sd 0.001 * SD_1234, se = sd / 2; margin 0.004.
    d = 0.001 * np.array([1.0, 2.0, 3.0, 4.0])
    e = equivalence(paired(d, np.zeros(4)), margin=0.004)
    half = T_950_3 * 0.001 * SD_1234 / 2  # the 90% interval (alpha = 0.05 on each side)
    assert e["level"] == pytest.approx(0.90)
    assert e["ci"] == pytest.approx((0.0025 - half, 0.0025 + half), rel=TOST_RTOL)
    # 0.0025 + half = 0.004019 > 0.004: not equivalent; lo = 0.00098 > 0: better
    assert e["outcome"] == "better"
    se = 0.001 * SD_1234 / 2
    assert e["p_lower"] == pytest.approx(sps.t.sf((0.0025 + 0.004) / se, 3), rel=TOST_RTOL)
    assert e["p_upper"] == pytest.approx(sps.t.cdf((0.0025 - 0.004) / se, 3), rel=TOST_RTOL)
    assert e["p_tost"] == max(e["p_lower"], e["p_upper"])
    assert e["p_upper"] > 0.05 > e["p_lower"]  # the upper test fails, as the interval says


@pytest.mark.parametrize("seed", range(4))
def test_equivalence_p_values_are_scipys_one_sided_t_tests(seed):
    gen = np.random.default_rng(seed)
    a = gen.normal(0.55, 0.01, 10)
    b = a + gen.normal(0.0003 * seed, 0.0015, 10)
    e = equivalence(paired(a, b), margin=MARGIN)
    d = a - b
    assert e["p_lower"] == pytest.approx(sps.ttest_1samp(d, -MARGIN, alternative="greater").pvalue, rel=1e-9)
    assert e["p_upper"] == pytest.approx(sps.ttest_1samp(d, MARGIN, alternative="less").pvalue, rel=1e-9)
    # both one-sided tests reject at 0.05 exactly when the 90% interval lies inside the margin
    inside = e["ci"][0] > -MARGIN and e["ci"][1] < MARGIN
    assert inside == (e["p_tost"] < 0.05) == (e["outcome"] == "equivalent")


def test_equivalence_of_identical_runs_is_equivalent(no_warnings):
    e = equivalence(paired([0.55] * 10, [0.55] * 10))
    assert e["outcome"] == "equivalent"
    assert e["ci"] == (0.0, 0.0) and math.isnan(e["p_lower"]) and math.isnan(e["p_upper"]) and math.isnan(e["p_tost"])
    assert e["reason"] == "identical" and "identical in every one of the 10 pairs" in e["numbers"]
    assert "EQUIVALENT" not in e["words"] and "equivalent" in e["words"] and "±0.002" in e["words"]
    assert "p lower" not in e["words"] and "< 0.001" not in e["words"]


def test_equivalence_words_for_each_outcome():
    base = np.linspace(0.5, 0.6, 8)
    spread = np.array([1, -1, 2, -2, 1, -1, 2, -2]) * 1e-4
    assert equivalence(paired(base + 0.01 + spread, base))["outcome"] == "better"
    assert equivalence(paired(base - 0.01 + spread, base))["outcome"] == "worse"
    assert equivalence(paired(base + spread, base))["outcome"] == "equivalent"
    wide = np.array([1, -1, 2, -2, 1, -1, 2, -2]) * 1e-2
    assert equivalence(paired(base + wide, base))["outcome"] == "inconclusive"
    e = equivalence(paired(base - 0.01 + spread, base), method="numeric", baseline="analytic")
    assert e["words"].startswith("numeric is worse than analytic")
    assert "90% CI" in e["words"] and "p lower" in e["words"] and "p upper" in e["words"]
    assert e["numbers"] in e["words"]


def test_equivalence_equal_nonzero_differences_beyond_the_margin(no_warnings):
    e = equivalence(paired([0.56] * 5, [0.55] * 5), margin=MARGIN)
    assert e["outcome"] == "better" and math.isnan(e["p_lower"]) and math.isnan(e["p_upper"])
    assert e["reason"] == "no spread" and "difference +0.0100 in every one of the 5 pairs" in e["numbers"]


def test_equivalence_of_one_pair_is_inconclusive(no_warnings):
    e = equivalence(paired([0.56], [0.55]))
    assert e["outcome"] == "inconclusive" and math.isnan(e["p_tost"]) and math.isnan(e["ci"][0])
    assert e["reason"] == "one seed" and e["words"].startswith("inconclusive (one seed)")
    assert "nan" not in e["numbers"] and "n/a" not in e["numbers"]


@pytest.mark.parametrize(
    "kwargs", [dict(margin=0), dict(margin=-0.1), dict(margin=math.inf), dict(alpha=0.5), dict(alpha=0)]
)
def test_equivalence_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        equivalence(paired([0.5, 0.6], [0.5, 0.6]), **kwargs)


def test_holm_adjusts_step_down_and_leaves_no_test_out():
    from gradsel_cli.analysis.stats import holm

    # m = 4 tests (the nan is none): 0.01*4, 0.02*3, 0.03*2 -> 0.06, then 0.04*1 -> kept non-decreasing at 0.06
    got = holm([0.03, math.nan, 0.01, 0.04, 0.02])
    assert math.isnan(got[1])
    assert [got[2], got[4], got[0], got[3]] == pytest.approx([0.04, 0.06, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.001]) == [0.001] and holm([]) == []
    gen = np.random.default_rng(4)
    ps = gen.uniform(0, 0.02, 12)
    adj = np.array(holm(ps))
    assert np.all(adj >= ps) and np.all(np.diff(adj[np.argsort(ps)]) >= 0)  # never below the raw, monotone
    # a rejection at 0.05 after the adjustment is one the step-down procedure makes: p_(i) < 0.05 / (m - i + 1)
    order = np.argsort(ps)
    steps = [ps[j] < 0.05 / (len(ps) - k) for k, j in enumerate(order)]
    rejected = np.zeros(len(ps), bool)
    for k, j in enumerate(order):
        if not steps[k]:
            break
        rejected[j] = True
    assert np.array_equal(adj < 0.05, rejected)


def test_seeds_needed_is_the_fewest_with_the_power_asked_for():
    """Checked against the noncentral t by simulation-free definition, and against the normal approximation
    n ~ ((z_a/2 + z_b) sd / effect)^2 it approaches for many seeds."""
    from scipy import stats as sps

    from gradsel_cli.analysis.stats import seeds_needed, t_power

    n = seeds_needed(0.001, 0.002)
    assert t_power(n, 0.001, 0.002) >= 0.8 > t_power(n - 1, 0.001, 0.002)
    approx = ((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * 0.002 / 0.001) ** 2
    assert approx <= n <= approx + 3
    assert seeds_needed(0.01, 0.001) == 3  # a large effect: the fewest a t-test can have and still reach 80%
    assert seeds_needed(0.001, 0.0) is None and seeds_needed(0.0, 0.002) is None
    assert seeds_needed(1e-9, 1.0) is None  # beyond MAX_SEEDS


# stratified_exact ------------------------------------------------------------------------------


def _enumerated(pools, observed):
    """The same test by listing every choice of one value per stratum (each equally likely)."""
    import itertools

    strata = [[*pool, seen] for pool, seen in zip(pools, observed)]
    sums = [sum(choice) for choice in itertools.product(*strata)]
    t = sum(observed)
    below = sum(s <= t for s in sums) / len(sums)
    above = sum(s >= t for s in sums) / len(sums)
    return min(1.0, 2 * min(below, above))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers(0, 6)), min_size=1, max_size=4)
)
def test_stratified_exact_equals_enumeration(strata):
    from gradsel_cli.analysis.stats import stratified_exact

    pools, observed = [p for p, _ in strata], [o for _, o in strata]
    got = stratified_exact(pools, observed)
    assert got["p"] == pytest.approx(_enumerated(pools, observed), rel=1e-12, abs=1e-15)
    assert got["statistic"] == sum(observed)
    assert got["expected"] == pytest.approx(sum(np.mean([*p, o]) for p, o in zip(pools, observed)))


def test_stratified_exact_an_observed_value_no_draw_reaches():
    """Every draw 0, the observed values 3 in two strata of ten draws: only choosing both observed values
    reaches the sum 6, so P(T >= 6) = (1/11)^2."""
    from gradsel_cli.analysis.stats import stratified_exact

    got = stratified_exact([[0] * 10, [0] * 10, [0] * 10], [3, 3, 0])
    assert got["p"] == pytest.approx(2 / 121, rel=1e-12)
    assert stratified_exact([[1, 2], [5]], [2, 5])["p"] == 1.0  # the middle of its distribution


@pytest.mark.parametrize("pools, observed", [([], []), ([[1]], [1, 2]), ([[-1, 2]], [1])])
def test_stratified_exact_refuses_bad_input(pools, observed):
    from gradsel_cli.analysis.stats import stratified_exact

    with pytest.raises(ValueError):
        stratified_exact(pools, observed)
