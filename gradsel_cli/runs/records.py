"""A run's record and its schema: what one JSON line of a results file holds, and the check of a line read back.

A record carries the run's full configuration, a stable ``config_hash`` of
it, the results (long histories thinned to window means), wall time and
versions. A run's key (run_key) is what it reads (its identity: the
configuration with every option the run does not read at its default) and
what it was evaluated on: the test set unless a record says otherwise, as
tune's trials do. On load every record is checked against SCHEMA (types, ranges, the
config through TrainConfig.validate).
"""

import hashlib
import json
import math
import platform
from importlib import metadata

import numpy as np

from ..config import TrainConfig
from ..text import json_number

FORMAT = 2  # bump when the record layout changes; older formats are read through upgrade()
# 1: the two sources analytic and numeric wired in: "sources" absent, "counts" and "select_wins" over both,
#    "numeric_share" (and its history), "rel_diff_mean" a number. 2: over the run's own list of sources.


HISTORY_POINTS = 200
FORMAT_1_SOURCES = ("analytic", "numeric")  # all format 1 knew: a record of it naming another source is refused
SHARES_SUM = 1e-9  # how far from 1 the shares of a record may add up (each is a count over the iterations)


def versions() -> dict[str, str]:
    """Versions of everything that can change a result."""

    def v(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "gradsel": v("gradsel"),
        "numpy": v("numpy"),
        "numba": v("numba"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def config_hash(config: dict) -> str:
    """A stable short hash of a configuration (keys sorted, floats by repr)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def thin(values: np.ndarray, points: int = HISTORY_POINTS) -> dict:
    """Window means of a long history: {"every": n, "values": [...]}; a non-finite mean is null."""
    values = np.asarray(values, dtype=np.float64)
    n = max(1, int(np.ceil(len(values) / points)))
    windows = [values[i : i + n] for i in range(0, len(values), n)]
    with np.errstate(over="ignore", invalid="ignore"):
        means = [float((w / len(w)).sum()) for w in windows]  # divide first: huge finite losses stay finite
    return {"every": n, "values": [json_number(m) for m in means]}


def run_record(result) -> dict:
    """The JSON-able record of a RunResult."""
    config = result.config.to_dict()
    return {
        "format": FORMAT,
        "config_hash": config_hash(config),
        "config": config,
        "accuracy": json_number(result.accuracy),
        "final_loss": json_number(result.final_loss),
        "diverged": result.diverged,
        "iterations_done": result.iterations_done,
        "wall_time": result.wall_time,
        "time_per_iter": result.time_per_iter,
        "compile_time": result.compile_time,
        "sources": list(result.sources),
        "counts": result.counts,
        "select_wins": result.select_wins,
        "select_ties": result.select_ties,
        "shares": result.shares,
        "rel_diff_mean": None
        if result.rel_diff_mean is None
        else {k: json_number(v) for k, v in result.rel_diff_mean.items()},
        "loss_history": thin(result.loss_history),
        "acc_curve": [[t, a] for t, a in result.acc_curve],
        "train_acc_curve": [[t, a] for t, a in result.train_acc_curve],
        "rel_diff_history": {
            name: thin(result.rel_diffs[:, q])
            for q, name in enumerate(result.sources[1:])
            if np.any(~np.isnan(result.rel_diffs[:, q]))
        }
        or None,
        "share_history": {name: thin(result.kept == q) for q, name in enumerate(result.sources) if q}
        if result.config.method == "select"
        else None,
        "predictions": "".join(str(int(p)) if p >= 0 else "-" for p in result.predictions),
        "hidden_histograms": None
        if result.hidden_histograms is None
        else {k: None if h is None else _histogram_json(h) for k, h in result.hidden_histograms.items()},
        "ledger": result.ledger,
        "probe": None if result.probe is None else _probe_json(result.probe),
        "versions": versions(),
    }


def _probe_json(probe: dict) -> dict:
    """The probe's series with NaN (a zero gradient's cosine) as null."""
    return {
        k: v if k in ("every", "iterations") else {n: [json_number(x) for x in xs] for n, xs in v.items()}
        for k, v in probe.items()
    }


def _histogram_json(h: dict) -> dict:
    return {**h, "mean": json_number(h["mean"]), "std": json_number(h["std"])}


TEST_SET = "test"  # what a record without "evaluated_on" (every one but tune's trials) was evaluated on


def evaluated_on(record: dict) -> str:
    """What a record's accuracy was measured on: the test set, or (tune) a validation split."""
    return record.get("evaluated_on") or TEST_SET


def on_test_set(record: dict) -> bool:
    return evaluated_on(record) == TEST_SET


def test_set_runs(records: list[dict]) -> list[dict]:
    """The records evaluated on the test set: only these stand for a run in tables, statistics and resume."""
    return [r for r in records if on_test_set(r)]


def identity(config: dict) -> dict:
    """What a run reads, as a config: a stored config with every field (older layouts get the defaults filled in)
    and every option the run does not read at its default (TrainConfig.effective)."""
    return TrainConfig.from_dict(config).effective().to_dict()


def run_key(record: dict) -> str:
    """A run's key: the hash of its identity (what it reads), and what it was evaluated on unless that is the
    test set (so a tune trial is never a test-set run). Two records of one key are the same run, whatever the
    options it does not read say; a record's own config_hash is of its config as stored."""
    key = config_hash(identity(record["config"]))
    return key if on_test_set(record) else f"{key} on {evaluated_on(record)}"


def check_record(rec) -> str | None:
    """Why a record read from a file cannot be used (not a record, another format, a bad config or result), or None."""
    if not isinstance(rec, dict) or not isinstance(rec.get("config"), dict) or "config_hash" not in rec:
        return "not a gradsel run record"
    if not _whole(rec.get("format")) or rec["format"] not in (1, FORMAT):  # true is no format 1
        return f"record format {rec.get('format')!r}, this gradsel reads formats 1 to {FORMAT}"
    if config_hash(rec["config"]) != rec["config_hash"]:
        return "config does not match its config_hash"
    try:
        config = TrainConfig.from_dict(rec["config"]).validate()
    except (ValueError, TypeError) as exc:
        return f"invalid config: {exc}"
    return _check_results(rec, config.to_dict(), SCHEMA if rec["format"] == FORMAT else SCHEMA_1, config)


def upgrade(rec: dict) -> dict:
    """A checked record in the current format (a new dict; a current one comes back as it is). Format 1 knew
    two sources: its counts and wins keep those of the run's sources, its numeric share becomes the shares,
    its relative difference (numeric to analytic) that of the second source."""
    if rec["format"] == FORMAT:
        return rec
    out = {k: v for k, v in rec.items() if k not in ("numeric_share", "numeric_share_history")}
    names = TrainConfig.from_dict(rec["config"]).run_sources()
    share = rec["numeric_share"]  # numeric's, by name: whatever the order of the run's sources
    shares = {"numeric": share, "analytic": _rest(share, rec["iterations_done"])}
    out.update(
        format=FORMAT,
        sources=list(names),
        counts={k: rec["counts"][k] for k in names},
        select_wins=None if rec["select_wins"] is None else {k: rec["select_wins"][k] for k in names},
        shares={names[0]: 1.0} if len(names) == 1 else {k: shares[k] for k in names},
    )
    if len(names) > 1:
        other = names[1]
        numeric_second = other == "numeric"  # format 1's difference and share history are numeric's to analytic
        if numeric_second and rec["rel_diff_mean"] is not None:
            out["rel_diff_mean"] = {other: rec["rel_diff_mean"]}
        if numeric_second and rec.get("rel_diff_history") is not None:
            out["rel_diff_history"] = {other: rec["rel_diff_history"]}
        if not numeric_second:  # numeric's difference to analytic is not analytic's to numeric: not carried over
            out["rel_diff_mean"] = out["rel_diff_history"] = None
        history = rec.get("numeric_share_history")
        if history is not None:
            out["share_history"] = {other: history if numeric_second else _complement(history)}
    return out


def _complement(thinned: dict) -> dict:
    """The share history of the other of two sources: 1 - each window's share (null stays null)."""
    return {"every": thinned["every"], "values": [None if v is None else 1.0 - v for v in thinned["values"]]}


def _rest(share: float, done: int) -> float:
    """1 - share, as the count of the other iterations over `done` (as a new record computes a share), not
    1 - share's rounding."""
    return (done - round(share * done)) / done if done else 0.0


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _share(x) -> bool:
    return _number(x) and 0 <= x <= 1


def _or_none(test):
    return lambda x: x is None or test(x)


def _thinned(x) -> bool:
    return (
        isinstance(x, dict)
        and _whole(x.get("every"))
        and x["every"] >= 1
        and isinstance(x.get("values"), list)
        and all(v is None or _number(v) for v in x["values"])
    )


def _curve(x) -> bool:
    return isinstance(x, list) and all(isinstance(p, list) and len(p) == 2 and _whole(p[0]) and _share(p[1]) for p in x)


def _counts_1(x) -> bool:  # format 1: the counts of the two sources it knew
    return isinstance(x, dict) and all(_whole(x.get(k)) and x[k] >= 0 for k in ("analytic", "numeric"))


def _mapping(test):
    """A test of an object of source names to values that each pass `test`."""
    return lambda x: isinstance(x, dict) and all(isinstance(k, str) and test(v) for k, v in x.items())


# What the tables, compare and the figures read from a record of format 1: key -> (test, what it must be, required).
SCHEMA_1 = {
    "diverged": (lambda x: isinstance(x, bool), "true or false", True),
    "accuracy": (_or_none(_share), "a number in [0, 1] (null if diverged)", True),
    "final_loss": (_or_none(_number), "a finite number or null", True),
    "iterations_done": (lambda x: _whole(x) and x >= 0, "a whole number >= 0", True),
    "wall_time": (lambda x: _number(x) and x >= 0, "a finite number >= 0", True),
    "time_per_iter": (lambda x: _number(x) and x >= 0, "a finite number >= 0", True),
    "counts": (_counts_1, "an object of analytic and numeric counts", True),
    "select_wins": (_or_none(_counts_1), "null or an object of analytic and numeric counts", True),
    "numeric_share": (_share, "a number in [0, 1]", True),
    "rel_diff_mean": (_or_none(lambda x: _number(x) and x >= 0), "a finite number >= 0 or null", True),
    "loss_history": (_thinned, 'an object {"every": N, "values": [...]}', True),
    "acc_history": (_curve, "a list of [iteration, accuracy in [0, 1]]", False),  # records before acc_curve
    "acc_curve": (_curve, "a list of [iteration, accuracy in [0, 1]]", False),
    "train_acc_curve": (_curve, "a list of [iteration, accuracy in [0, 1]]", False),  # records since lab overfit
    "rel_diff_history": (_or_none(_thinned), 'null or an object {"every": N, "values": [...]}', False),
    "numeric_share_history": (_or_none(_thinned), 'null or an object {"every": N, "values": [...]}', False),
    "predictions": (
        lambda x: isinstance(x, str) and set(x) <= set("0123456789-"),
        "a string of digits 0-9 and '-'",
        True,
    ),
    "evaluated_on": (lambda x: isinstance(x, str) and x != "", "a description of the images scored", False),
}


def _histogram(x) -> bool:
    return (
        isinstance(x, dict)
        and isinstance(x.get("range"), list)
        and len(x["range"]) == 2
        and all(_number(v) for v in x["range"])
        and isinstance(x.get("counts"), list)
        and all(_whole(c) and c >= 0 for c in x["counts"])
        and all(_whole(x.get(k)) and x[k] >= 0 for k in ("zeros", "below", "above"))
        and all(x.get(k) is None or _number(x[k]) for k in ("mean", "std"))
    )


def _histograms(x) -> bool:
    return isinstance(x, dict) and _histogram(x.get("init")) and _or_none(_histogram)(x.get("trained"))


_count = _mapping(lambda v: _whole(v) and v >= 0)


def _probe(x) -> bool:
    if not (isinstance(x, dict) and isinstance(x.get("iterations"), list) and _whole(x.get("every"))):
        return False
    n = len(x["iterations"])
    series = _mapping(lambda v: isinstance(v, list) and len(v) == n and all(e is None or _number(e) for e in v))
    return all(series(v) for k, v in x.items() if k not in ("every", "iterations"))


def _ledger(x) -> bool:
    cost = _mapping(lambda v: _number(v) and v >= 0)
    return (
        isinstance(x, dict)
        and cost(x.get("per_gradient"))
        and cost(x.get("by_source"))
        and all(_number(x.get(k)) and x[k] >= 0 for k in ("comparisons_per_iteration", "comparisons", "total"))
    )


_thinned_by_source = _or_none(_mapping(_thinned))
SCHEMA = {  # the current format: every mapping is over the run's sources (checked in _check_results)
    **{k: v for k, v in SCHEMA_1.items() if k not in ("numeric_share", "numeric_share_history")},
    "sources": (lambda x: isinstance(x, list) and all(isinstance(n, str) for n in x), "a list of source names", True),
    "counts": (_count, "an object of counts by source", True),
    "select_wins": (_or_none(_count), "null or an object of counts by source", True),
    # records since ties were counted: how many of select_wins were ties (null for the other methods)
    "select_ties": (_or_none(_count), "null or an object of counts by source", False),
    "shares": (_mapping(_share), "an object of shares in [0, 1] by source", True),
    "rel_diff_mean": (
        _or_none(_mapping(lambda v: v is None or (_number(v) and v >= 0))),
        "null or an object of finite numbers >= 0 by source",
        True,
    ),
    "rel_diff_history": (_thinned_by_source, 'null or an object of {"every": N, "values": [...]} by source', False),
    "share_history": (_thinned_by_source, 'null or an object of {"every": N, "values": [...]} by source', False),
    "probe": (  # records since the fidelity probe, of runs made with --probe-every
        _or_none(_probe),
        'null or an object {"every", "iterations", "cosine", "rel_error", ...}',
        False,
    ),
    "ledger": (  # records since the cost ledger: what the run cost in forward-pass equivalents
        _or_none(_ledger),
        'null or an object {"unit", "per_gradient", "by_source", "total", ...} of numbers >= 0',
        False,
    ),
    "hidden_histograms": (  # records since gradsel lab: the hidden activations at initialisation and trained
        _or_none(_histograms),
        'null or an object {"init": histogram, "trained": histogram or null}',
        False,
    ),
}


def _contradiction(rec: dict, names: list[str], select: bool) -> str | None:
    """Where a record's counts, shares and wins contradict its iterations (a hand edit, a foreign writer): every
    run source has a count; select computes each source every iteration, the others one source an iteration;
    the shares sum to 1; select's wins add up to its iterations. None when they agree."""
    done, counts, shares, wins = rec["iterations_done"], rec["counts"], rec["shares"], rec["select_wins"]
    low = max(done - 1, 0) if rec["diverged"] else done  # the iteration that diverged may have computed less

    def per_iteration(n: int) -> bool:
        return low <= n <= done

    if set(counts) != set(names) or set(shares) != set(names):
        return f"'counts' and 'shares' must be given for each of the run's sources {names!r}"
    if select and not all(per_iteration(counts[n]) for n in names):
        return f"'counts' {counts!r}: select computes every source at each of its {done} iterations"
    if not select and not per_iteration(sum(counts.values())):
        return f"'counts' {counts!r} add up to {sum(counts.values())}, not the {done} iterations done"
    if done and abs(sum(shares.values()) - 1.0) > SHARES_SUM:
        return f"'shares' {shares!r} add up to {sum(shares.values()):g}, not 1"
    if wins is not None and (not select or set(wins) != set(names) or not per_iteration(sum(wins.values()))):
        return f"'select_wins' {wins!r}: select keeps one update at each of its {done} iterations, the others none"
    ties = rec.get("select_ties")
    if ties is not None and (wins is None or set(ties) != set(wins) or any(ties[n] > wins[n] for n in ties)):
        return f"'select_ties' {ties!r}: select's ties are some of its wins, {wins!r}, by source"
    return None


def _check_results(rec: dict, config: dict, schema: dict, train_config: TrainConfig) -> str | None:
    """Why the results part of a record cannot be used (a wrong type, a number out of range), or None."""
    for key, (test, what, required) in schema.items():
        if key not in rec:
            if required:
                return f"no {key!r}"
            continue
        if not test(rec[key]):
            return f"{key!r} must be {what}"
    names = list(train_config.run_sources())
    if schema is SCHEMA_1 and not set(names) <= set(FORMAT_1_SOURCES):
        return f"record format 1 knew only the sources {' and '.join(FORMAT_1_SOURCES)}, not {', '.join(names)}"
    if schema is SCHEMA:
        if rec["sources"] != names:
            return f"'sources' {rec['sources']!r} are not the run's sources {names!r}"
        for key in (
            "counts",
            "select_wins",
            "select_ties",
            "shares",
            "rel_diff_mean",
            "rel_diff_history",
            "share_history",
        ):
            if isinstance(rec.get(key), dict) and not set(rec[key]) <= set(names):
                return f"{key!r} names a source the run did not compute"
        if (problem := _contradiction(rec, names, train_config.method == "select")) is not None:
            return problem
    if rec["diverged"] != (rec["accuracy"] is None):
        return "'accuracy' must be null exactly when the run diverged"
    if rec["iterations_done"] > config["iters"]:
        return f"'iterations_done' {rec['iterations_done']} is more than the {config['iters']} iterations"
    if on_test_set(rec) and len(rec["predictions"]) != config["test_limit"]:  # tune: a validation split
        return f"'predictions' has {len(rec['predictions'])} digits, the run evaluated {config['test_limit']}"
    return None
