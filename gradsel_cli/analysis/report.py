"""From run records to the numbers people read: compare summaries, paper tables, verdicts.

Pure data in, JSON-able dicts out; rendering is the render package's.
"""

import json
import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import papers, sources
from ..config import DIGITS_FROM, GRID_KEYS, MARGIN, TrainConfig, canonical, counted, images_label
from ..runs.records import identity, run_key, test_set_runs
from . import stats


def settings_of(config: dict) -> dict:
    """The part of a config that is not a grid key: what makes a table a variant."""
    return {k: v for k, v in config.items() if k not in GRID_KEYS}


def _acc(rec) -> float:
    a = rec["accuracy"]
    return float("nan") if a is None else a


def _ci_dict(values) -> dict:
    """Mean and 95% CI of the finite values; diverged runs (nan) are counted apart. One value has no CI:
    lo and hi are None, with the reason (stats.ONE_SEED)."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return {"mean": None, "lo": None, "hi": None, "n": 0, "diverged": len(values)}
    mean, lo, hi = stats.mean_ci(finite)
    one = {"reason": stats.ONE_SEED} if len(finite) == 1 else {}
    return {
        **stats.json_ready({"mean": mean, "lo": lo, "hi": hi}),
        "n": len(finite),
        "diverged": len(values) - len(finite),
        **one,
    }


def not_exact_share(record: dict) -> float:
    """Share of a run's kept updates that came from sources other than the exact gradient (sources.exact())."""
    exact = sources.exact()
    return sum(v for k, v in record["shares"].items() if k != exact)


def power_of(diff: dict, images: int, test_images: int) -> dict:
    """How many seeds a paired t-test needs to tell `images` of `test_images` test images apart at the spread of
    the paired differences `diff` (stats.paired): {images, sd, seeds} (seeds None: no spread to go by)."""
    sd = diff["sd"]
    return {"images": images, "sd": sd, "seeds": stats.seeds_needed(images / test_images, sd)}


def compare_summary(
    records: list[dict],
    methods: list[str],
    margin: float = MARGIN,
    power_images: int | None = None,
    budget: float | None = None,
) -> dict:
    """Per method: accuracy mean and CI, loss, timing, the share of updates not from the exact gradient
    (not_exact_share), select's wins of those; per method versus the baseline (the exact gradient if run,
    else the first method): paired
    difference, its CI, p-values, the share of test images predicted differently, and
    the equivalence test (TOST) within ±`margin`. Each method's iterations and mean cost (the ledger's total,
    None for records made before it) ride along; `budget`: the --budget the runs were given, if any."""
    by_method: defaultdict[str, dict] = defaultdict(dict)  # method -> seed -> record
    for rec in records:
        by_method[rec["config"]["method"]][rec["config"]["seed"]] = rec
    baseline = sources.exact() if sources.exact() in methods else methods[0]
    rows = []
    for m in methods:
        recs = [by_method[m][s] for s in sorted(by_method[m])]
        iters = [r["iterations_done"] for r in recs]
        losses = [r["final_loss"] for r in recs if r["final_loss"] is not None]
        row = {
            "method": m,
            "seeds": sorted(by_method[m]),
            "accuracy": _ci_dict([_acc(r) for r in recs]),
            "final_loss": float(np.mean(losses)) if losses else None,  # of the runs that finished
            "time_per_iter": float(np.mean([r["time_per_iter"] for r in recs])),
            "iterations": int(np.max([r["config"]["iters"] for r in recs])),
            "cost": _mean_cost(recs),
            "not_exact_share": float(np.mean([not_exact_share(r) for r in recs])),
            "select_win_rate": (
                float(np.mean([_not_exact_wins(r) / max(i, 1) for r, i in zip(recs, iters)]))
                if all(r["select_wins"] is not None for r in recs)
                else None
            ),
            "select_tie_rate": (  # the share of iterations whose candidates tied (none known: None)
                float(np.mean([sum(r["select_ties"].values()) / max(i, 1) for r, i in zip(recs, iters)]))
                if all(r.get("select_ties") is not None for r in recs)
                else None
            ),
            "rel_diff_mean": (
                float(np.mean([np.mean(list(r["rel_diff_mean"].values())) for r in recs]))
                if all(r["rel_diff_mean"] for r in recs)
                else None
            ),
            "diverged": sum(r["diverged"] for r in recs),
        }
        if m != baseline:
            # statistics over the pairs where both runs finished; a pair with a diverged run is counted apart
            both = sorted(set(by_method[m]) & set(by_method[baseline]))
            seeds = [s for s in both if not (by_method[m][s]["diverged"] or by_method[baseline][s]["diverged"])]
            a = [_acc(by_method[m][s]) for s in seeds]
            b = [_acc(by_method[baseline][s]) for s in seeds]
            if seeds:
                diff = stats.paired(a, b)
                row["versus"] = {
                    "baseline": baseline,
                    "diverged_pairs": len(both) - len(seeds),
                    **diff,
                    "disagreement": float(
                        np.mean(
                            [
                                stats.disagreement(
                                    by_method[m][s]["predictions"], by_method[baseline][s]["predictions"]
                                )
                                for s in seeds
                            ]
                        )
                    ),
                    "equivalence": stats.equivalence(diff, margin, method=m, baseline=baseline),
                }
                if power_images:
                    test_images = len(by_method[m][seeds[0]]["predictions"])
                    row["versus"]["power"] = power_of(diff, power_images, test_images)
        rows.append(row)
    versus = [r["versus"] for r in rows if "versus" in r]
    holm_family(versus, "p_t", "t-tests")
    holm_family([v["equivalence"] for v in versus], "p_tost", "equivalence tests")
    return {"baseline": baseline, "margin": margin, "budget": budget, "methods": stats.json_ready(rows)}


def _mean_cost(recs: list[dict]) -> float | None:
    """The runs' mean cost in forward-pass equivalents (their ledgers' totals); None if one has no ledger."""
    return float(np.mean([r["ledger"]["total"] for r in recs])) if all(r.get("ledger") for r in recs) else None


def sweep_view(records: list[dict], configs: list, lists: dict[str, list]) -> dict:
    """The runs_summary of a sweep: each row at the values asked for (`configs`, not the effective config a method
    reads), with the options given several values in `lists` as its columns."""
    shown = [{**r, "config": c.to_dict()} for r, c in zip(records, configs)]
    return runs_summary(shown, [k for k, v in lists.items() if len(v) > 1])


def _cells(records: list[dict]) -> dict:
    """(batch, method, hidden, shots) -> {seed: accuracy}."""
    cells: defaultdict[tuple, dict] = defaultdict(dict)
    for rec in records:
        c = rec["config"]
        cells[(c["batch"], c["method"], c["hidden"], c["shots"])][c["seed"]] = _acc(rec)
    return cells


def matching(records: list[dict], settings: dict) -> list[dict]:
    """The test-set runs (a tune trial is not one) that are the runs of these non-grid settings, mixing the
    sources the papers mixed: whose identity is that of their cell and seed with these settings (an option a run
    does not read may say anything)."""
    studied = ",".join(papers.STUDY_SOURCES)
    return [
        r
        for r in test_set_runs(records)
        if (mine := identity(r["config"])) == identity({**mine, **settings, "sources": studied})
    ]


def paper_table(
    preset: str,
    records: list[dict],
    settings: dict,
    margin: float | None = None,
    power_images: int | None = None,
    run_preset: str | None = None,
) -> dict:
    """The paper-style table of `preset` from the records made with `settings`; claims tested with
    paired verdicts and equivalence tests within ±`margin`, or (None) each claim's own margin
    (papers.claim_margin: below the gain it claims). `run_preset`: the `table` preset that runs its cells, when
    not `preset` itself (a paper's table in a named setting)."""
    lay = papers.layout(preset)
    cells = _cells(matching(records, settings))
    seeds = sorted({s for v in cells.values() for s in v})
    groups, ours_vs_paper, missing = [], [], 0
    for batch in lay.batches:
        rows = []
        for method, hidden in lay.rows:
            row: dict[str, Any] = {"method": method, "hidden": hidden, "cells": []}
            for k in lay.shots:
                accs = cells.get((batch, method, hidden, k), {})
                entry = {
                    "shots": k,
                    "published": papers.published(preset, batch, hidden, method, k),
                    **(_ci_dict(list(accs.values())) if accs else {"mean": None, "lo": None, "hi": None, "n": 0}),
                }
                missing += not accs
                if accs and entry["published"] is not None:
                    ours_vs_paper.append((method == lay.baseline, abs(entry["mean"] - entry["published"])))
                row["cells"].append(entry)
            if lay.has_avg:
                per_seed = [
                    np.mean([cells[(batch, method, hidden, k)][s] for k in lay.shots])
                    for s in seeds
                    if all(s in cells.get((batch, method, hidden, k), {}) for k in lay.shots)
                ]
                printed = papers.published(preset, batch, hidden, method, papers.AVG)
                row["avg"] = {
                    "published": printed,
                    **(_ci_dict(per_seed) if per_seed else {"mean": None, "lo": None, "hi": None, "n": 0}),
                }
            rows.append(row)
        _mark_best(rows, lay)
        groups.append({"batch": batch, "rows": rows})
    base = [d for is_base, d in ours_vs_paper if is_base]
    return {
        "preset": preset,
        "run_preset": run_preset or preset,
        "title": lay.title,
        "settings": settings,
        "seeds": seeds,
        "groups": groups,
        "missing_cells": missing,
        "mad_baseline": float(np.mean(base)) if base else None,
        "mad_all": float(np.mean([d for _, d in ours_vs_paper])) if ours_vs_paper else None,
        "margin": margin,
        "verdicts": verdicts(preset, cells, margin, power_images, settings.get("test_limit", 10_000)),
        "avg_mismatches": papers.avg_check(preset),
    }


def beside_default(table: dict, records: list[dict], settings: dict) -> dict | None:
    """For a paper's table in a named setting: how far the same paper's runs in gradsel's default setting
    (`records`, made with `settings`) are from the published numbers (mean |ours − published| over the baseline
    cells and over all cells) and their seeds; None without such runs."""
    other = paper_table(table["preset"], records, settings)
    if other["mad_all"] is None:
        return None
    return {"mad_baseline": other["mad_baseline"], "mad_all": other["mad_all"], "seeds": other["seeds"]}


def missing_note(table: dict, path, ran: bool) -> str | None:
    """Which cells of a paper table have no stored runs in `path`, and how to fill them; None when every cell has
    runs, or when only some are empty after --run (`ran`) computed what it could."""
    total = sum(len(row["cells"]) for g in table["groups"] for row in g["rows"])
    if table["missing_cells"] == total:
        return (
            f"No stored runs in {path} match these settings: every cell is empty. "
            "Run them with --run, or read another file with --results FILE."
        )
    if table["missing_cells"] and not ran:
        has = "has" if table["missing_cells"] == 1 else "have"
        return (
            f"{table['missing_cells']} of {counted(total, 'cell')} {has} no stored runs in {path}; --run computes them."
        )
    return None


def sources_note(sources: list[tuple]) -> str:
    """Which runs a table shows: (path, shipped?, runs shown from it) per file read."""

    several = sum(shipped for _, shipped, _ in sources) > 1  # a study reading two presets' runs names each

    def one(path, shipped, n):
        runs = f"{n:,} run{'' if n == 1 else 's'}"
        named = f" ({Path(path).name.split('.')[0]})" if several else ""
        return f"{runs} shipped with gradsel{named}" if shipped else f"{runs} from {path}"

    parts = [one(*s) for s in sources]
    return "Runs shown: " + (" and ".join(parts) if parts else "none (no results file)") + "."


PRINTED_DIGITS = 4  # the tables print means to 4 decimals


def _mark_best(rows: list[dict], lay) -> None:
    """Bold the best mean of each column among rows of the same hidden size, as in a paper
    (only a strict best at the printed precision: when the top means print the same, as
    0.62102 and 0.6210199999999999 do, nothing is bold)."""
    keys = [("cells", i) for i in range(len(lay.shots))] + ([("avg", None)] if lay.has_avg else [])
    for hidden in {r["hidden"] for r in rows}:
        group = [r for r in rows if r["hidden"] == hidden]
        for part, i in keys:
            entries = [r[part][i] if i is not None else r[part] for r in group]
            printed = [None if e["mean"] is None else round(e["mean"], PRINTED_DIGITS) for e in entries]
            means = [m for m in printed if m is not None]
            top = max(means) if means else None
            unique = means.count(top) == 1 and len(group) > 1
            for e, m in zip(entries, printed):
                e["best"] = unique and m == top


def verdicts(
    preset: str, cells: dict, margin: float | None = None, power_images: int | None = None, test_images: int = 10_000
) -> list[dict]:
    """A verdict per claim of the preset's paper, from per-seed means over the claim's cells, each
    comparison also with its equivalence test (TOST) within ±`margin`, or (None) the claim's own margin
    (papers.claim_margin); both families Holm-adjusted over the table (holm_family)."""
    claims = []
    for claim in papers.claims(preset):

        def per_seed(method, claim=claim):
            got = [cells.get((c["batch"], method, c["hidden"], c["shots"]), {}) for c in claim.cells]
            seeds = set.intersection(*(set(g) for g in got)) if got else set()
            return {s: float(np.mean([g[s] for g in got])) for s in seeds}

        mine = per_seed(claim.method)
        parts: list[dict[str, Any]] = []
        for base in claim.baselines:
            theirs = per_seed(base)
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                parts.append(
                    {
                        "baseline": base,
                        "supported": None,
                        "outcome": "no data",
                        "words": f"no data: no seed has both {claim.method} and {base} in every cell",
                    }
                )
                continue
            diff = stats.paired([mine[s] for s in seeds], [theirs[s] for s in seeds])
            v = stats.verdict(diff, claim.direction, method=claim.method, baseline=base)
            within = papers.claim_margin(claim, base, MARGIN) if margin is None else margin
            e = stats.equivalence(diff, within, method=claim.method, baseline=base)
            e["claimed"] = papers.claimed_gain(claim, base)  # the published gain the margin is set below
            parts.append({"baseline": base, "n": diff["n"], **v, "equivalence": e})
            if power_images:
                parts[-1]["power"] = power_of(diff, power_images, test_images)
        claims.append((claim, parts))
    tested = [p for _, parts in claims for p in parts if "n" in p]
    holm_family(tested, "p_t", "claims")
    holm_family([p["equivalence"] for p in tested], "p_tost", "equivalence tests")
    out = []
    for claim, parts in claims:
        support = [p["supported"] for p in parts]
        overall = True if all(s is True for s in support) else (False if any(s is False for s in support) else None)
        out.append({"id": claim.id, "text": claim.text, "supported": overall, **_overall(parts), "comparisons": parts})
    return stats.json_ready(out)


ALPHA = 0.05  # the level of every test a table shows, after Holm's adjustment over the table's family


def holm_family(results: list[dict], key: str, what: str) -> int:
    """Holm-adjust the p-values `key` of a table's family of tests in place (stats.holm): each result gains
    ``p_holm`` and ``tests`` (the tests made: results without a p-value are none), and an outcome that the
    adjustment takes back is changed: a claim supported or contradicted becomes not supported, an equivalence
    inconclusive, its words saying why. Returns the number of tests made."""
    adjusted = stats.holm([r[key] for r in results])
    m = sum(not math.isnan(a) for a in adjusted)
    for r, a in zip(results, adjusted):
        r["p_holm"], r["tests"] = a, m
        if math.isnan(a) or "outcome" not in r:  # no test, or a test with no outcome to take back (compare's t-test)
            continue
        said = f"Holm-adjusted over the {m} {what} of this table: p {stats.p_text(a)}"
        if a >= ALPHA and r["outcome"] in ("supported", "contradicted"):
            r.update(
                outcome="not supported", supported=None, words=f"not supported after correction: {r['words']}; {said}"
            )
            continue
        if a >= ALPHA and r["outcome"] == "equivalent":
            r.update(outcome="inconclusive", words=f"inconclusive after correction: {r['words']}")
        r["numbers" if "numbers" in r else "words"] += f"; {said}"
    return m


def _overall(parts: list[dict]) -> dict:
    """A claim's outcome from its comparisons': contradicted by any; else not supported when any is; else
    inconclusive when any is (with its reason, one seed) or has no data; no data when none has; else supported."""
    outcomes = [p["outcome"] for p in parts]
    if all(o == "no data" for o in outcomes):
        return {"outcome": "no data", "reason": None}
    for outcome in ("contradicted", "not supported"):
        if outcome in outcomes:
            return {"outcome": outcome, "reason": None}
    if "inconclusive" in outcomes or "no data" in outcomes:
        reasons = {p.get("reason") for p in parts if p["outcome"] == "inconclusive"}
        return {"outcome": "inconclusive", "reason": reasons.pop() if len(reasons) == 1 else None}
    return {"outcome": "supported", "reason": None}


def runs_summary(records: list[dict], varied: list[str] | None = None) -> dict:
    """A summary of any results file or sweep: one row per configuration (records equal but for the seed), in
    first-seen order, with the options that vary (`varied`: by default those that vary across the records),
    runs, seeds, accuracy mean and 95% CI, mean final loss of the finished runs and diverged runs; `fixed`: the
    options every run shares."""
    configs = [canonical(r["config"]) for r in records]
    if any("evaluated_on" in r for r in records):  # tune's trials: apart from the test-set runs of their config
        configs = [{**c, "evaluated_on": r.get("evaluated_on") or "test"} for r, c in zip(records, configs)]
    keys = [k for k in (configs[0] if configs else {}) if k != "seed"]
    if varied is None:
        varied = [k for k in keys if len({json.dumps(c[k]) for c in configs}) > 1]
    groups = defaultdict(list)
    for rec, c in zip(records, configs):
        groups[json.dumps([c[k] for k in varied])].append((rec, c))
    rows = []
    for members in groups.values():
        recs = [rec for rec, _ in members]
        losses = [r["final_loss"] for r in recs if r["final_loss"] is not None and np.isfinite(r["final_loss"])]
        acc = _ci_dict([_acc(r) for r in recs])
        rows.append(
            {
                "values": {k: members[0][1][k] for k in varied},
                "runs": len(recs),
                "seeds": sorted({c["seed"] for _, c in members}),
                "accuracy": acc,
                "final_loss": float(np.mean(losses)) if losses else None,
                "diverged": sum(bool(r["diverged"]) for r in recs),
            }
        )
    fixed = {k: configs[0][k] for k in keys if k not in varied} if configs else {}
    return {"runs": len(records), "varied": varied, "fixed": fixed, "rows": rows}


# --- pictures: learning curves and the digits to show ------------------------------


def _band(series: list[list]) -> dict:
    """Mean, min and max across seeds of equally spaced series (None: not computed), cut to the shortest."""
    n = min(len(s) for s in series)
    a = np.array([[np.nan if v is None else v for v in s[:n]] for s in series], dtype=np.float64)
    a = a.reshape(len(series), n)  # (seeds, points), also when n == 0
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns (diverged windows) stay nan
        return {
            "mean": np.nanmean(a, axis=0).tolist(),
            "lo": np.nanmin(a, axis=0).tolist(),
            "hi": np.nanmax(a, axis=0).tolist(),
        }


def _thinned(recs: list[dict], key: str) -> dict | None:
    """The window means `key` of every record, on one iteration axis (window centres), or None."""
    hists: list[Any] = [r.get(key) for r in recs]
    if not recs or any(h is None for h in hists):
        return None
    every = hists[0]["every"]
    if any(h["every"] != every for h in hists):
        return None
    band = _band([h["values"] for h in hists])
    centres = [i * every + (every + 1) / 2 for i in range(len(band["mean"]))]
    return {"every": every, "iterations": centres, **band}


def _by_source(recs: list[dict], key: str) -> dict:
    """_thinned of every source's series under `key` (an object by source in each record), those all have."""
    maps = [r.get(key) or {} for r in recs]
    names = [n for n in maps[0] if all(n in m for m in maps)] if maps else []
    out = {n: _thinned([{key: m[n]} for m in maps], key) for n in names}
    return {n: v for n, v in out.items() if v is not None}


def _acc_curve(recs: list[dict], key: str = "acc_curve") -> dict | None:
    """Test accuracy at the recorded iterations (acc_curve; acc_history in records made before it), or the
    accuracy on the training images (key train_acc_curve)."""
    curves: list[Any] = [r.get(key) or (r.get("acc_history") if key == "acc_curve" else None) for r in recs]
    if not recs or not all(curves):
        return None
    common = sorted(set.intersection(*({t for t, _ in c} for c in curves)))
    if not common:
        return None
    series = [[dict(c)[t] for t in common] for c in curves]
    return {"iterations": common, **_band(series)}


def _not_exact_wins(record: dict) -> int:
    """select's strict wins of the sources other than the exact one: the iterations where one of them had the
    lowest loss alone (a tie, kept by list order, is no win; records made before ties were counted have none)."""
    exact, ties = sources.exact(), record.get("select_ties") or {}
    return sum(v - ties.get(k, 0) for k, v in record["select_wins"].items() if k != exact)


def curves(records: list[dict], methods: list[str], x_axis: str = "iterations", by=None) -> dict:
    """Per method, over seeds: the training loss (window means), the test accuracy where it
    was recorded, and for select the share of each other source's kept updates and its
    ||g_s - g_first|| / ||g_first||, per window. Each series is a mean with a min-max band over seeds, at its
    iterations and at its "x": the iterations, the forward-pass equivalents spent by then (x_axis "budget":
    the cost ledger, NaN for records made before it) or the seconds (x_axis "time": the iterations times the
    runs' mean time per iteration). `by(record)`: the method a record counts under (default: its config's)."""
    by_method = defaultdict(list)
    for rec in records:
        by_method[by(rec) if by else rec["config"]["method"]].append(rec)
    rows = []
    for m in methods:
        recs = sorted(by_method[m], key=lambda r: r["config"]["seed"])
        if not recs:
            continue
        rows.append(
            {
                "method": m,
                "seeds": [r["config"]["seed"] for r in recs],
                "loss": _thinned(recs, "loss_history"),
                "accuracy": _acc_curve(recs),
                "shares": _by_source(recs, "share_history"),
                "rel_diffs": _by_source(recs, "rel_diff_history"),
                "probe": _probe_bands(recs),
            }
        )
        _place_on(rows[-1], recs, x_axis)
    return {
        "x_axis": x_axis,
        "methods": rows,
        "missing_accuracy": sum(1 for r in records if not (r.get("acc_curve") or r.get("acc_history"))),
    }


def _probe_bands(recs: list[dict]) -> dict:
    """The fidelity probe of a method's runs (numerics/probe.py): each measure's band over seeds by source, at
    the probe's iterations; {} when a run has none."""
    if not recs or not all(r.get("probe") for r in recs):
        return {}
    probes: list[dict] = [r["probe"] for r in recs]
    if any(p["iterations"] != probes[0]["iterations"] for p in probes):
        return {}
    out: dict = {}
    for measure in (k for k in probes[0] if k not in ("every", "iterations")):
        out[measure] = {
            name: {"iterations": probes[0]["iterations"], **_band([p[measure][name] for p in probes])}
            for name in probes[0][measure]
        }
    return out


def _place_on(row: dict, recs: list[dict], x_axis: str) -> None:
    """Each series of a method's row given its "x" on the axis `x_axis` (its runs share one configuration but
    the seed, so one run's ledger serves all)."""
    from ..numerics.ledger import spent_curve

    probed = [s for measure in row["probe"].values() for s in measure.values()]
    series = [row["loss"], row["accuracy"], *row["shares"].values(), *row["rel_diffs"].values(), *probed]
    per_iteration = float(np.mean([r["time_per_iter"] for r in recs])) if x_axis == "time" else 0.0
    for s in series:
        if s is None:
            continue
        its = np.asarray(s["iterations"], dtype=np.float64)
        if x_axis == "budget":
            whole = np.floor(its).astype(np.int64)  # a window centre: what its first whole iteration had spent
            s["x"] = spent_curve(recs[0], whole).tolist()
        elif x_axis == "time":
            s["x"] = (its * per_iteration).tolist()
        else:
            s["x"] = its.tolist()


def parse_predictions(text: str) -> np.ndarray:
    """A record's predictions string as digits; '-' (a diverged run) is -1 (stats.predictions_array)."""
    return stats.predictions_array(text, "predictions")


def pick_digits(
    predictions: dict[str, np.ndarray], n: int, how: str = "first", seed: int = 0
) -> tuple[np.ndarray, str]:
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
        return np.arange(n), (
            f"the methods predict the same digit on all {total} test images; showing the first {n} instead"
        )
    return np.arange(n), ""


def digits_view(records: list[dict], methods: list[str], n: int, how: str, x_test, y_test) -> tuple[dict, str]:
    """The test images to show with each method's predictions for the first seed, and a note ('' or why the
    choice fell back)."""
    seed = min(r["config"]["seed"] for r in records)
    first = {r["config"]["method"]: r for r in records if r["config"]["seed"] == seed}
    predictions = {m: parse_predictions(first[m]["predictions"]) for m in methods}
    indices, note = pick_digits(predictions, n, how, seed)
    c = first[methods[0]]["config"]
    title = (
        f"Test images and predictions — {images_label(c)}, B={c['batch']}, H={c['hidden']}, "
        f"{counted(c['iters'], 'iteration', ',')}, seed {seed}; digits from: {how}"
    )
    return {
        "seed": seed,
        "how": how,
        "indices": indices,
        "images": x_test,
        "labels": y_test,
        "predictions": predictions,
        "title": title,
    }, note


def digits_json(digits: dict) -> dict:
    """The JSON form of a digits view: indices, labels and each method's predictions."""
    idx = digits["indices"]
    return {
        "seed": digits["seed"],
        "from": digits["how"],
        "indices": [int(i) for i in idx],
        "labels": [int(digits["labels"][i]) for i in idx],
        "predictions": {m: [int(p[i]) for i in idx] for m, p in digits["predictions"].items()},
    }


def compare_record(config: dict, summary: dict, digits: dict | None = None, records: list | None = None) -> dict:
    """What ``compare --json`` prints: the configuration, the summary, when shown the digits, and the run
    records it summarises ("runs": what `gradsel runs` reads of it)."""
    return {
        "config": config,
        **summary,
        **({"digits": digits_json(digits)} if digits is not None else {}),
        **({"runs": records} if records is not None else {}),
    }


def conditions_summary(records: list[dict], margin: float = MARGIN) -> dict:
    """The study: per condition and method, its runs against analytic's on the same cell and seed.

    Per condition × method: the share of test predictions that differ from analytic, the accuracy
    difference pooled by seed (each seed's mean over the cells) with its 95% CI and TOST verdict, how
    many cells are equivalent on their own, the single runs within papers.NEAR_ZERO of analytic and the
    largest single-run difference (the papers printed single runs), and select's numeric share.
    """
    exact = papers.STUDY_SOURCES[0]
    found = test_set_runs(records)
    by_run: dict[str, dict] = {}
    for rec in found:
        by_run.setdefault(run_key(rec), rec)  # the first record of a run, as results.load keeps
    runs: defaultdict[tuple, dict] = defaultdict(dict)  # (condition, method) -> (batch, hidden, shots, seed) -> record
    base: defaultdict[tuple, dict] = defaultdict(dict)  # the same -> analytic's run of that cell and seed
    for rec in found:
        c = canonical(rec["config"])  # records stored before a field existed hold its default
        name = papers.condition_of(c)
        if name is None or c["method"] == exact:
            continue
        cell = (c["batch"], c["hidden"], c["shots"], c["seed"])
        runs[(name, c["method"])][cell] = rec
        # analytic reads no finite-difference option: its run under one condition may be another's, found by what
        # it reads, not by the condition its stored config names
        if (partner := by_run.get(run_key({"config": {**c, "method": exact}}))) is not None:
            base[(name, c["method"])][cell] = partner
    rows = []
    for name in papers.CONDITIONS:
        for method in papers.STUDY_METHODS[1:]:
            mine, theirs = runs.get((name, method), {}), base.get((name, method), {})
            keys = sorted(k for k in mine if k in theirs)
            if keys:
                rows.append({"condition": name, "method": method, **_versus(mine, theirs, keys, margin)})
    # two families: the pooled equivalence tests of the rows, and every row's per-cell ones
    pooled = holm_family([r["tost"] for r in rows if r["tost"] is not None], "p_tost", "pooled equivalence tests")
    per_cell = holm_family([e for r in rows for e in r["cell_tests"]], "p_tost", "per-cell equivalence tests")
    for r in rows:
        r["cells_equivalent"] = sum(e["outcome"] == "equivalent" for e in r.pop("cell_tests"))
    return {
        "margin": margin,
        "near_zero": papers.NEAR_ZERO,
        "rows": stats.json_ready(rows),
        "tests": {"pooled": pooled, "cells": per_cell},  # the equivalence tests made (pairs with no spread make none)
        "published": papers.published_pattern(),
        "cross_paper": papers.cross_paper_analytic(),
    }


def _versus(mine: dict, base: dict, keys: list, margin: float) -> dict:
    finished = [k for k in keys if not (mine[k]["diverged"] or base[k]["diverged"])]
    diffs = {k: mine[k]["accuracy"] - base[k]["accuracy"] for k in finished}
    seeds = sorted({k[3] for k in finished})
    cells = sorted({k[:3] for k in finished})
    complete = [s for s in seeds if all((*c, s) in diffs for c in cells)]

    def per_seed(recs):
        return [float(np.mean([recs[(*c, s)]["accuracy"] for c in cells])) for s in complete]

    pooled = stats.paired(per_seed(mine), per_seed(base)) if complete else None  # one seed: no interval
    cell_tests = []  # each cell's own equivalence test, over its seeds (Holm-adjusted with the table's others)
    for c in cells:
        ss = [s for s in seeds if (*c, s) in diffs]
        if len(ss) > 1:
            r = stats.paired([mine[(*c, s)]["accuracy"] for s in ss], [base[(*c, s)]["accuracy"] for s in ss])
            cell_tests.append(stats.equivalence(r, margin))
    largest = max(diffs.values(), key=abs) if diffs else None
    shares = [not_exact_share(mine[k]) for k in finished]
    return {
        "pairs": len(keys),
        "diverged": len(keys) - len(finished),
        "cells": len(cells),
        "seeds": len(complete),
        "predictions_differ": float(
            np.mean([stats.disagreement(mine[k]["predictions"], base[k]["predictions"]) for k in finished])
        )
        if finished
        else None,
        "difference": None if pooled is None else pooled["difference"],
        "ci": None if pooled is None else list(pooled["ci"]),
        "tost": None if pooled is None else stats.equivalence(pooled, margin),
        "cell_tests": cell_tests,
        "runs_within": sum(abs(d) <= papers.NEAR_ZERO + 1e-12 for d in diffs.values()),
        "largest": largest,
        f"{papers.STUDY_SOURCES[1]}_share": float(np.mean(shares)) if shares else None,
        "reason": None if pooled is None else pooled["reason"],
    }


def subsets_summary(records: list[dict]) -> dict:
    """Subset sensitivity: per B = 1 cell of paper A, analytic over random few-shot subsets (one per seed):
    where the published baseline and gradsel's first-k mean fall in that distribution (percentiles), and
    where the published baseline falls among the first-k runs (which differ only in their seeds)."""
    by_cell: defaultdict[tuple, Any] = defaultdict(list)
    first_k: dict[tuple, list] = defaultdict(list)
    for rec in test_set_runs(records):
        c = rec["config"]
        if c["method"] != papers.STUDY_SOURCES[0] or c["batch"] != 1 or rec["accuracy"] is None:
            continue
        (by_cell if c["subset"] == "random" else first_k)[(c["hidden"], c["shots"])].append(rec["accuracy"])
    first_k = dict(first_k)
    rows = []
    for (hidden, shots), accs in sorted(by_cell.items()):
        accs = np.sort(accs)
        published_value = papers.published("alternate", 1, hidden, papers.STUDY_SOURCES[0], shots)
        first_k.setdefault((hidden, shots), [])
        ours = float(np.mean(first_k[(hidden, shots)])) if first_k[(hidden, shots)] else None

        def pct(v, among=accs):
            among = np.asarray(among)
            return None if v is None or not among.size else float(100 * np.mean(among < v) + 50 * np.mean(among == v))

        rows.append(
            {
                "hidden": hidden,
                "shots": shots,
                "subsets": len(accs),
                "mean": float(accs.mean()),
                "lo": float(accs[0]),
                "hi": float(accs[-1]),
                "published": published_value,
                "published_percentile": pct(published_value),
                "first_k_runs": len(first_k[(hidden, shots)]),
                "first_k_mean": ours,
                "first_k_mean_percentile": pct(ours),
                "published_percentile_first_k": pct(published_value, first_k[(hidden, shots)]),
            }
        )
    return {"rows": rows}


def sources_summary(records: list[dict], margin: float = MARGIN) -> dict:
    """The sources study (sources_study.py): per setting and regime (equal iterations, equal compute, the random
    sources' long runs against the exact source's equal-compute runs), each method as compare_summary gives it
    against the exact source on the same seeds (accuracy, iterations, cost, the paired difference and its TOST
    verdict, the share of predictions that differ, select's strict wins and ties), with the fidelity probe's
    mean cosine and median relative error of its other source, and how much its accuracy rose over the second
    half of its iterations."""
    from .. import sources_study as study

    labels = [study.label({**cell, "sources": cell.get("sources", "")}) for cell in study.methods()]
    groups: defaultdict[tuple, list[dict]] = defaultdict(list)
    for rec in test_set_runs(records):
        setting = study.setting_of(rec["config"])
        if setting is None or study.label(rec["config"]) not in labels:
            continue
        named = {**rec, "config": {**rec["config"], "method": study.label(rec["config"])}}
        groups[(tuple(setting.values()), study.regime(rec))].append(named)
    budgets = {"budget": study.BUDGET, "long": study.LONG_BUDGET}
    rows = []
    for setting in study.SETTINGS:
        for regime in study.REGIMES:
            recs = groups.get((tuple(setting.values()), regime), [])
            if regime == "long" and recs:  # the exact source's baseline: its converged equal-compute runs
                exact = groups.get((tuple(setting.values()), "budget"), [])
                recs = [r for r in exact if r["config"]["method"] == sources.exact()] + recs
            present = [m for m in labels if any(r["config"]["method"] == m for r in recs)]
            if not present:
                continue
            summary = compare_summary(recs, present, margin, budget=budgets.get(regime))
            for row in summary["methods"]:
                mine = [r for r in recs if r["config"]["method"] == row["method"]]
                row["probe"], row["rise"] = _probe_means(mine), _late_rise(mine)
            rows.append({**setting, "regime": regime, **summary})
    return {
        "rows": rows,
        "margin": margin,
        "budget": study.BUDGET,
        "long_budget": study.LONG_BUDGET,
        "iters": study.ITERS,
    }


def _late_rise(recs: list[dict]) -> float | None:
    """The mean over a method's runs of its test accuracy at the end less that at the curve's reading nearest
    half its iterations: near 0 once it has levelled off (None when no run has a curve of two readings)."""
    rises = []
    for r in recs:
        curve = r.get("acc_curve") or []
        if len(curve) >= 2:
            its = np.array([p[0] for p in curve], dtype=float)
            half = int(np.argmin(np.abs(its - its[-1] / 2)))
            rises.append(curve[-1][1] - curve[half][1])
    return float(np.mean(rises)) if rises else None


def _probe_means(recs: list[dict]) -> dict | None:
    """Over a method's runs and all their probe readings: the mean cosine and median relative error of the
    source its probe reads (None when no run has a probe reading of one)."""
    cosines = [c for r in recs for xs in ((r.get("probe") or {}).get("cosine") or {}).values() for c in xs]
    errors = [e for r in recs for xs in ((r.get("probe") or {}).get("rel_error") or {}).values() for e in xs]
    cosines, errors = [c for c in cosines if c is not None], [e for e in errors if e is not None]
    if not cosines:
        return None
    return {"cosine": float(np.mean(cosines)), "rel_error": float(np.median(errors)), "readings": len(cosines)}


def study_summary(
    preset: str, records: list[dict], margin: float, path, base: TrainConfig | None = None
) -> tuple[dict, str | None]:
    """The summary of a study (conditions, subsets, sources or differences) from the records of `path`, and a
    note when it has no runs; `base`: the setting the differences comparison's runs were made in."""
    studies = {"conditions": conditions_summary, "sources": sources_summary}
    if preset == "differences":
        from .differences import differences_summary

        summary = differences_summary(records, base)
    else:
        summary = studies[preset](records, margin) if preset in studies else subsets_summary(records)
    note = (
        None
        if summary["rows"]
        else (
            f"No stored runs of the {preset} study in {path}; run them with --run, "
            "or read another file with --results FILE."
        )
    )
    return summary, note


def _histograms(config: dict, record: dict) -> dict:
    """A histograms preset's cell: the textbook's deep stack at its activation and initialisation (seed 0), and
    the hidden activations of its first seed's run at initialisation and trained (None: not in the record)."""
    from ..numerics import activity

    textbook = activity.deep_stack(config["activation"], config["init"], config["init_std"])
    return {"textbook": textbook, "network": record.get("hidden_histograms")}


def lab_summary(preset: str, configs: list, records: list[dict], seeds: int) -> dict:
    """gradsel lab: per cell of the preset (records in the order of `configs`: cell by cell, `seeds` each), its
    label and panel, test accuracy (mean, 95% CI), final training loss (mean over the seeds that did not
    diverge), and its curves over the seeds: training loss (window means), test accuracy and the accuracy on
    the training images."""
    from ..lab import PRESETS, cell_label, epoch

    p = PRESETS[preset]
    cells = []
    for i, cell in enumerate(p.cells):
        recs = records[i * seeds : (i + 1) * seeds]
        config = configs[i * seeds].to_dict()
        losses = [r["final_loss"] for r in recs if r["final_loss"] is not None]
        cells.append(
            {
                "label": cell_label(cell),
                "panel": None if p.panel is None else config[p.panel],
                "cell": cell,
                "accuracy": _ci_dict([_acc(r) for r in recs]),
                "final_loss": float(np.mean(losses)) if losses else None,
                "loss": _thinned(recs, "loss_history"),
                "accuracy_curve": _acc_curve(recs),
                "train_curve": _acc_curve(recs, "train_acc_curve"),
                **(_histograms(config, recs[0]) if p.figure == "histograms" else {}),
            }
        )
    base = configs[0].to_dict()
    return {
        "preset": preset,
        "epoch": epoch(base),  # iterations per epoch: one pass over the training images
        "panel": p.panel,  # the field whose value gives each cell its panel (None: one panel)
        "config": {k: v for k, v in base.items() if k not in p.varies() and k != "seed"},
        "seeds": seeds,
        "caption": p.caption,
        "cells": cells,
    }


def lab_search_summary(preset: str, searched: dict) -> dict:
    """gradsel lab's search preset (hyperparameters): `gradsel tune`'s summary of the search (its trials best first,
    each with its final accuracy on its training images; the best, or the tied; the split) and, for the preset's
    best trials, their validation accuracy and accuracy on their training images per point."""
    from ..lab import PRESETS, epoch

    p = PRESETS[preset]
    runs = searched["runs"]  # in trial order
    trials = []
    for row in searched["trials"]:
        trained = runs[row["trial"]].get("train_acc_curve")
        trials.append({**row, "train_accuracy": trained[-1][1] if trained else None})
    n_best = p.search.best if p.search is not None else 0
    return {
        "preset": preset,
        "epoch": epoch(searched["config"]),
        "panel": None,
        "config": {k: v for k, v in searched["config"].items() if k not in p.varies() and k != "seed"},
        "seeds": 1,
        "caption": p.caption,
        "split": searched["split"],
        "trials": trials,
        "best": searched["best"],
        "tied": searched["tied"],
        "curves": [
            {
                **row,
                "accuracy_curve": _acc_curve([runs[row["trial"]]]),
                "train_curve": _acc_curve([runs[row["trial"]]], "train_acc_curve"),
            }
            for row in trials[:n_best]
        ],
    }
