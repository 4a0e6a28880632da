"""From run records to the numbers people read: compare summaries, paper tables, verdicts.

Pure data in, JSON-able dicts out; rendering is render.py's.
"""

import warnings
from collections import defaultdict

import numpy as np

from . import papers, stats
from .config import DIGITS_FROM, canonical

GRID_KEYS = ("method", "shots", "batch", "hidden", "seed")
MARGIN = 0.002  # equivalence margin on test accuracy: 20 of the 10,000 test images


def settings_of(config: dict) -> dict:
    """The part of a config that is not a grid key: what makes a table a variant."""
    return {k: v for k, v in config.items() if k not in GRID_KEYS}


def _acc(rec) -> float:
    a = rec["accuracy"]
    return float("nan") if a is None else a


def _ci_dict(values) -> dict:
    """Mean and 95% CI of the finite values; diverged runs (nan) are counted apart."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return {"mean": None, "lo": None, "hi": None, "n": 0, "diverged": len(values)}
    mean, lo, hi = stats.mean_ci(finite)
    return {"mean": mean, "lo": lo, "hi": hi, "n": len(finite), "diverged": len(values) - len(finite)}


def compare_summary(records: list[dict], methods: list[str], margin: float = MARGIN) -> dict:
    """Per method: accuracy mean and CI, loss, timing, numeric share, select wins;
    per method versus the baseline (analytic if run, else the first method): paired
    difference, its CI, p-values, the share of test images predicted differently, and
    the equivalence test (TOST) within ±`margin`."""
    by_method = defaultdict(dict)  # method -> seed -> record
    for rec in records:
        by_method[rec["config"]["method"]][rec["config"]["seed"]] = rec
    baseline = "analytic" if "analytic" in methods else methods[0]
    rows = []
    for m in methods:
        recs = [by_method[m][s] for s in sorted(by_method[m])]
        iters = [r["iterations_done"] for r in recs]
        row = {
            "method": m,
            "seeds": sorted(by_method[m]),
            "accuracy": _ci_dict([_acc(r) for r in recs]),
            "final_loss": float(np.mean([r["final_loss"] if r["final_loss"] is not None else np.nan for r in recs])),
            "time_per_iter": float(np.mean([r["time_per_iter"] for r in recs])),
            "numeric_share": float(np.mean([r["numeric_share"] for r in recs])),
            "select_win_rate": (float(np.mean([r["select_wins"]["numeric"] / max(i, 1) for r, i in zip(recs, iters)]))
                                if m == "select" else None),
            "rel_diff_mean": (float(np.mean([r["rel_diff_mean"] for r in recs]))
                              if all(r["rel_diff_mean"] is not None for r in recs) else None),
            "diverged": sum(r["diverged"] for r in recs),
        }
        if m != baseline:
            seeds = sorted(set(by_method[m]) & set(by_method[baseline]))
            a = [_acc(by_method[m][s]) for s in seeds]
            b = [_acc(by_method[baseline][s]) for s in seeds]
            if seeds:
                diff = stats.paired(a, b)
                row["versus"] = {
                    "baseline": baseline,
                    **diff,
                    "disagreement": float(np.mean([stats.disagreement(by_method[m][s]["predictions"],
                                                                      by_method[baseline][s]["predictions"])
                                                   for s in seeds])),
                    "equivalence": stats.equivalence(diff, margin, method=m, baseline=baseline),
                }
        rows.append(row)
    return {"baseline": baseline, "margin": margin, "methods": rows}


def sweep_summary(records: list[dict], varied: list[str]) -> dict:
    """One row per cell (records equal but for the seed), in first-seen order: the values of the
    `varied` keys, accuracy mean and CI, mean final loss of the finished runs, runs, diverged runs."""
    groups = defaultdict(list)
    for rec in records:
        cell = {k: v for k, v in rec["config"].items() if k != "seed"}
        groups[tuple(sorted(cell.items()))].append(rec)
    cells = []
    for recs in groups.values():
        config = recs[0]["config"]
        losses = [r["final_loss"] for r in recs if r["final_loss"] is not None]
        cells.append({
            "values": {k: config[k] for k in varied},
            "accuracy": _ci_dict([_acc(r) for r in recs]),
            "final_loss": float(np.mean(losses)) if losses else None,
            "runs": len(recs),
            "diverged": sum(r["diverged"] for r in recs),
        })
    return {"varied": varied, "cells": cells}


def _cells(records: list[dict]) -> dict:
    """(batch, method, hidden, shots) -> {seed: accuracy}."""
    cells = defaultdict(dict)
    for rec in records:
        c = rec["config"]
        cells[(c["batch"], c["method"], c["hidden"], c["shots"])][c["seed"]] = _acc(rec)
    return cells


def matching(records: list[dict], settings: dict) -> list[dict]:
    """The records made with exactly these non-grid settings."""
    return [r for r in records if settings_of(canonical(r["config"])) == settings]


def paper_table(preset: str, records: list[dict], settings: dict, margin: float = MARGIN) -> dict:
    """The paper-style table of `preset` from the records made with `settings`; claims tested with
    paired verdicts and equivalence tests within ±`margin`."""
    lay = papers.layout(preset)
    cells = _cells(matching(records, settings))
    seeds = sorted({s for v in cells.values() for s in v})
    groups, ours_vs_paper, missing = [], [], 0
    for batch in lay.batches:
        rows = []
        for method, hidden in lay.rows:
            row = {"method": method, "hidden": hidden, "cells": []}
            for k in lay.shots:
                accs = cells.get((batch, method, hidden, k), {})
                entry = {"shots": k, "published": papers.published(preset, batch, hidden, method, k),
                         **(_ci_dict(list(accs.values())) if accs else {"mean": None, "lo": None, "hi": None, "n": 0})}
                missing += not accs
                if accs and entry["published"] is not None:
                    ours_vs_paper.append((method == lay.baseline, abs(entry["mean"] - entry["published"])))
                row["cells"].append(entry)
            if lay.has_avg:
                per_seed = [np.mean([cells[(batch, method, hidden, k)][s] for k in lay.shots])
                            for s in seeds if all(s in cells.get((batch, method, hidden, k), {}) for k in lay.shots)]
                printed = papers.published(preset, batch, hidden, method, papers.AVG)
                row["avg"] = {"published": printed,
                              **(_ci_dict(per_seed) if per_seed else {"mean": None, "lo": None, "hi": None, "n": 0})}
            rows.append(row)
        _mark_best(rows, lay)
        groups.append({"batch": batch, "rows": rows})
    base = [d for is_base, d in ours_vs_paper if is_base]
    return {
        "preset": preset, "title": lay.title, "settings": settings, "seeds": seeds,
        "groups": groups, "missing_cells": missing,
        "mad_baseline": float(np.mean(base)) if base else None,
        "mad_all": float(np.mean([d for _, d in ours_vs_paper])) if ours_vs_paper else None,
        "margin": margin,
        "verdicts": verdicts(preset, cells, margin),
        "avg_mismatches": papers.avg_check(preset),
    }


def _mark_best(rows: list[dict], lay) -> None:
    """Bold the best mean of each column among rows of the same hidden size, as in a paper
    (only a strict best: when the top means tie, nothing is bold)."""
    keys = [("cells", i) for i in range(len(lay.shots))] + ([("avg", None)] if lay.has_avg else [])
    for hidden in {r["hidden"] for r in rows}:
        group = [r for r in rows if r["hidden"] == hidden]
        for part, i in keys:
            entries = [r[part][i] if i is not None else r[part] for r in group]
            means = [e["mean"] for e in entries if e["mean"] is not None]
            top = max(means) if means else None
            unique = means.count(top) == 1 and len(group) > 1
            for e in entries:
                e["best"] = unique and e["mean"] == top


def verdicts(preset: str, cells: dict, margin: float = MARGIN) -> list[dict]:
    """A verdict per claim of the preset's paper, from per-seed means over the claim's cells, each
    comparison also with its equivalence test (TOST) within ±`margin`."""
    out = []
    for claim in papers.claims(preset):
        def per_seed(method):
            got = [cells.get((c["batch"], method, c["hidden"], c["shots"]), {}) for c in claim.cells]
            seeds = set.intersection(*(set(g) for g in got)) if got else set()
            return {s: float(np.mean([g[s] for g in got])) for s in seeds}

        mine = per_seed(claim.method)
        parts = []
        for base in claim.baselines:
            theirs = per_seed(base)
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                parts.append({"baseline": base, "supported": None, "outcome": "no data",
                              "words": f"no data: no seed has both {claim.method} and {base} in every cell"})
                continue
            diff = stats.paired([mine[s] for s in seeds], [theirs[s] for s in seeds])
            v = stats.verdict(diff, claim.direction, method=claim.method, baseline=base)
            parts.append({"baseline": base, "n": diff["n"], **v,
                          "equivalence": stats.equivalence(diff, margin, method=claim.method, baseline=base)})
        support = [p["supported"] for p in parts]
        overall = True if all(s is True for s in support) else (False if any(s is False for s in support) else None)
        out.append({"id": claim.id, "text": claim.text, "supported": overall, "comparisons": parts})
    return out


# --- pictures: learning curves and the digits to show ------------------------------

def _band(series: list[list]) -> dict:
    """Mean, min and max across seeds of equally spaced series (None: not computed), cut to the shortest."""
    n = min(len(s) for s in series)
    a = np.array([[np.nan if v is None else v for v in s[:n]] for s in series], dtype=np.float64)
    a = a.reshape(len(series), n)  # (seeds, points), also when n == 0
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns (diverged windows) stay nan
        return {"mean": np.nanmean(a, axis=0).tolist(), "lo": np.nanmin(a, axis=0).tolist(),
                "hi": np.nanmax(a, axis=0).tolist()}


def _thinned(recs: list[dict], key: str) -> dict | None:
    """The window means `key` of every record, on one iteration axis (window centres), or None."""
    hists = [r.get(key) for r in recs]
    if not recs or any(h is None for h in hists):
        return None
    every = hists[0]["every"]
    if any(h["every"] != every for h in hists):
        return None
    band = _band([h["values"] for h in hists])
    centres = [i * every + (every + 1) / 2 for i in range(len(band["mean"]))]
    return {"every": every, "iterations": centres, **band}


def _acc_curve(recs: list[dict]) -> dict | None:
    """Test accuracy at the recorded iterations: the accuracy curve, else the eval_every history."""
    curves = [r.get("acc_curve") or r["acc_history"] for r in recs]
    if not recs or not all(curves):
        return None
    common = sorted(set.intersection(*({t for t, _ in c} for c in curves)))
    if not common:
        return None
    series = [[dict(c)[t] for t in common] for c in curves]
    return {"iterations": common, **_band(series)}


def curves(records: list[dict], methods: list[str]) -> dict:
    """Per method, over seeds: the training loss (window means), the test accuracy where it
    was recorded, and for select the share of numeric updates and ||g_num - g_ana|| / ||g_ana||
    per window. Each series is a mean with a min-max band over seeds."""
    by_method = defaultdict(list)
    for rec in records:
        by_method[rec["config"]["method"]].append(rec)
    rows = []
    for m in methods:
        recs = sorted(by_method[m], key=lambda r: r["config"]["seed"])
        if not recs:
            continue
        rows.append({
            "method": m,
            "seeds": [r["config"]["seed"] for r in recs],
            "loss": _thinned(recs, "loss_history"),
            "accuracy": _acc_curve(recs),
            "numeric_share": _thinned(recs, "numeric_share_history"),
            "rel_diff": _thinned(recs, "rel_diff_history"),
        })
    return {"methods": rows, "missing_accuracy": sum(1 for r in records if not (r.get("acc_curve")
                                                                               or r["acc_history"]))}


def parse_predictions(text: str) -> np.ndarray:
    """A record's predictions string as digits; '-' (a diverged run) is -1."""
    return np.array([-1 if c == "-" else int(c) for c in text], dtype=np.int64)


def pick_digits(predictions: dict[str, np.ndarray], n: int, how: str = "first",
                seed: int = 0) -> tuple[np.ndarray, str]:
    """Indices of `n` test images to show, and a note ('' or why the choice fell back).

    first: the first n; random: n drawn without replacement (seeded), in order;
    disagree: the first n where the methods' predictions differ, or the first n
    when they agree everywhere."""
    if how not in DIGITS_FROM:
        raise ValueError(f"unknown digit choice {how!r}; choose one of: {', '.join(DIGITS_FROM)}")
    preds = np.array(list(predictions.values()))  # (methods, N)
    total = preds.shape[1]
    n = min(n, total)
    if how == "random":
        return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False)), ""
    if how == "disagree":
        differ = np.flatnonzero(np.any(preds != preds[0], axis=0))
        if len(differ):
            note = "" if len(differ) >= n else f"the methods disagree on only {len(differ)} of {total} test images"
            return differ[:n], note
        return np.arange(n), (f"the methods predict the same digit on all {total} test images; "
                              f"showing the first {n} instead")
    return np.arange(n), ""
