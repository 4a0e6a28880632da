"""Which network did the papers train? The published single-run differences against each condition's.

Each paper printed one run per cell, so each published difference of a method from analytic in a cell (paper A:
alternate; paper B: numeric and select) is one draw of that cell's paired single-run difference, if the paper ran
the condition's network and arithmetic. Against each condition (papers.DIFFERENCE_CONDITIONS) and its paired
runs over seeds, on the same cells, four tests, Holm-adjusted together:

- zeros: the number of published differences that are exactly 0, against its distribution when each published
  difference is one more draw of its cell (stats.stratified_exact: exact, per cell);
- spread: the sum of the published |differences| in test images, the same way;
- location: of the large differences (beyond papers.NEAR_ZERO), the share at B = 1, published against the
  condition's (Fisher's exact test);
- signs: of the non-zero published differences, how many are up, against the condition's own share up
  (binomial test).

A condition is rejected when any of its tests is, after Holm's adjustment over the table's tests; else it is
consistent with the published differences. Besides the tests: each condition's analytic baselines (its mean over
seeds per cell) against the published baselines, mean |ours − published|.
Pure data in, JSON-able dict out.
"""

from collections import defaultdict

import numpy as np

from .. import papers
from ..config import TrainConfig
from ..runs.experiments import condition_config
from ..runs.records import run_key, test_set_runs
from . import stats

ALPHA = 0.05
TESTS = ("zeros", "spread", "location", "signs")


def _images(accuracy: float) -> int:
    return round(accuracy * papers.TEST_IMAGES)


def _draws(base: TrainConfig, name: str, scope: str, by_key: dict, seeds: list[int]) -> dict:
    """Per cell of `scope` that a paper prints a method other than its baseline in: the condition's paired
    differences over seeds in test images, and per baseline cell its accuracies over seeds."""
    diffs: defaultdict[tuple, list[int]] = defaultdict(list)
    baselines: defaultdict[tuple, list[float]] = defaultdict(list)
    for cell in papers.difference_cells(scope):
        paper, lay = cell["paper"], papers.LAYOUTS[cell["paper"]]
        key = (paper, cell["method"], cell["batch"], cell["hidden"], cell["shots"])
        for seed in seeds:
            mine = by_key.get(run_key({"config": condition_config(base, name, cell, seed).to_dict()}))
            if mine is None or mine["diverged"] or mine["accuracy"] is None:
                continue
            if cell["method"] == lay.baseline:
                baselines[key].append(mine["accuracy"])
                continue
            theirs = by_key.get(
                run_key({"config": condition_config(base, name, {**cell, "method": lay.baseline}, seed).to_dict()})
            )
            if theirs is not None and not theirs["diverged"] and theirs["accuracy"] is not None:
                diffs[key].append(_images(mine["accuracy"]) - _images(theirs["accuracy"]))
    return {"diffs": dict(diffs), "baselines": dict(baselines)}


def _published_difference(key: tuple) -> int | None:
    paper, method, batch, hidden, shots = key
    base = papers.LAYOUTS[paper].baseline
    a, b = papers.published(paper, batch, hidden, method, shots), papers.published(paper, batch, hidden, base, shots)
    return None if a is None or b is None else _images(a) - _images(b)


def _row(name: str, scope: str, draws: dict) -> dict | None:
    near = round(papers.NEAR_ZERO * papers.TEST_IMAGES)  # in test images
    strata = [(k, d, p) for k, d in sorted(draws["diffs"].items()) if (p := _published_difference(k)) is not None]
    if not strata:
        return None
    pools = [np.asarray(d) for _, d, _ in strata]
    seen = np.array([p for _, _, p in strata])
    mine = np.concatenate(pools)
    at_one = np.concatenate([np.full(len(d), k[2] == 1) for k, d, _ in strata])
    seen_at_one = np.array([k[2] == 1 for k, _, _ in strata])

    zeros = stats.stratified_exact([(d == 0).astype(int) for d in pools], (seen == 0).astype(int))
    spread = stats.stratified_exact([np.abs(d) for d in pools], np.abs(seen))
    big, seen_big = np.abs(mine) > near, np.abs(seen) > near
    location = None
    if big.any() and seen_big.any():
        table = [
            [int((seen_big & seen_at_one).sum()), int((seen_big & ~seen_at_one).sum())],
            [int((big & at_one).sum()), int((big & ~at_one).sum())],
        ]
        location = {
            "published": table[0][0] / sum(table[0]),
            "condition": table[1][0] / sum(table[1]),
            "p": float(_fisher(table)),
        }
    up, down = int((seen > 0).sum()), int((seen < 0).sum())
    my_up, my_down = int((mine > 0).sum()), int((mine < 0).sum())
    signs = None
    if up + down and my_up + my_down:
        share = my_up / (my_up + my_down)
        signs = {"published_up": up, "published_down": down, "condition": share, "p": _binomial(up, up + down, share)}
    baseline = [
        abs(float(np.mean(accs)) - printed)
        for k, accs in sorted(draws["baselines"].items())
        if (printed := papers.published(k[0], k[2], k[3], k[1], k[4])) is not None
    ]
    return {
        "condition": name,
        "cells": scope,
        "strata": len(strata),
        "pairs": int(mine.size),
        "seeds": max(len(d) for d in pools),
        "zeros": {"published": float(np.mean(seen == 0)), "condition": float(np.mean(mine == 0)), "p": zeros["p"]},
        "spread": {
            "published": float(np.mean(np.abs(seen))) / papers.TEST_IMAGES,
            "condition": float(np.mean(np.abs(mine))) / papers.TEST_IMAGES,
            "p": spread["p"],
        },
        "location": location,
        "signs": signs,
        "baseline": {"cells": len(baseline), "mad": float(np.mean(baseline)) if baseline else None},
    }


def _fisher(table: list[list[int]]) -> float:
    from scipy.stats import fisher_exact  # a second to import: only here

    return float(fisher_exact(table).pvalue)


def _binomial(k: int, n: int, p: float) -> float:
    from scipy.stats import binomtest

    return float(binomtest(k, n, p).pvalue)


def differences_summary(records: list[dict], base: TrainConfig | None = None) -> dict:
    """The comparison: a row per condition and scope of cells (see the module's docstring), its tests
    Holm-adjusted over the table and its verdict; `base` the setting the runs were made in (the papers')."""
    base = base or TrainConfig()
    found = test_set_runs(records)
    by_key: dict[str, dict] = {}
    for rec in found:
        by_key.setdefault(run_key(rec), rec)  # the first record of a run, as results.load keeps
    seeds = sorted({int(r["config"]["seed"]) for r in found})
    rows = []
    for name in papers.DIFFERENCE_CONDITIONS:
        for scope in papers.difference_scopes(name):
            row = _row(name, scope, _draws(base, name, scope, by_key, seeds))
            if row is not None:
                rows.append(row)
    tests = [r[t] for r in rows for t in TESTS if r[t] is not None]
    for t, adjusted in zip(tests, stats.holm([t["p"] for t in tests])):
        t["p_holm"] = adjusted
    for r in rows:
        rejected = [t for t in TESTS if r[t] is not None and r[t]["p_holm"] < ALPHA]
        r["verdict"], r["rejected_by"] = ("rejected" if rejected else "consistent"), rejected
    return {"rows": stats.json_ready(rows), "tests": len(tests), "alpha": ALPHA, "near_zero": papers.NEAR_ZERO}
