"""A run's record and its schema: what one JSON line of a results file holds, and the check of a line read back.

A record carries the run's full configuration, a stable ``config_hash`` of
it, the results (long histories thinned to window means), wall time and
versions. A run's key (run_key) is the configuration and what it was
evaluated on: the test set unless a record says otherwise, as tune's trials
do. On load every record is checked against SCHEMA (types, ranges, the
config through TrainConfig.validate).
"""

import hashlib
import json
import math
import platform
from importlib import metadata

import numpy as np

from ..config import TrainConfig, canonical
from ..text import json_number

FORMAT = 1  # bump when the record layout changes


HISTORY_POINTS = 200


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
        "counts": result.counts,
        "select_wins": result.select_wins,
        "numeric_share": result.numeric_share,
        "rel_diff_mean": json_number(result.rel_diff_mean),
        "loss_history": thin(result.loss_history),
        "acc_curve": [[t, a] for t, a in result.acc_curve],
        "rel_diff_history": thin(result.rel_diffs) if np.any(~np.isnan(result.rel_diffs)) else None,
        "numeric_share_history": thin(result.sources) if result.config.method == "select" else None,
        "predictions": "".join(str(int(p)) if p >= 0 else "-" for p in result.predictions),
        "versions": versions(),
    }


TEST_SET = "test"  # what a record without "evaluated_on" (every one but tune's trials) was evaluated on


def evaluated_on(record: dict) -> str:
    """What a record's accuracy was measured on: the test set, or (tune) a validation split."""
    return record.get("evaluated_on") or TEST_SET


def on_test_set(record: dict) -> bool:
    return evaluated_on(record) == TEST_SET


def test_set_runs(records: list[dict]) -> list[dict]:
    """The records evaluated on the test set: only these stand for a run in tables, statistics and resume."""
    return [r for r in records if on_test_set(r)]


def run_key(record: dict) -> str:
    """A run's identity: the hash of its configuration with every field (older layouts get the defaults filled
    in), and what it was evaluated on unless that is the test set (so a tune trial is never a test-set run)."""
    key = config_hash(canonical(record["config"]))
    return key if on_test_set(record) else f"{key} on {evaluated_on(record)}"


def check_record(rec) -> str | None:
    """Why a record read from a file cannot be used (not a record, another format, a bad config or result), or None."""
    if not isinstance(rec, dict) or not isinstance(rec.get("config"), dict) or "config_hash" not in rec:
        return "not a gradsel run record"
    if rec.get("format") != FORMAT:
        return f"record format {rec.get('format')!r}, this gradsel reads format {FORMAT}"
    if config_hash(rec["config"]) != rec["config_hash"]:
        return "config does not match its config_hash"
    try:
        TrainConfig.from_dict(canonical(rec["config"])).validate()
    except (ValueError, TypeError) as exc:
        return f"invalid config: {exc}"
    return _check_results(rec, canonical(rec["config"]))


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


def _counts(x) -> bool:
    return isinstance(x, dict) and all(_whole(x.get(k)) and x[k] >= 0 for k in ("analytic", "numeric"))


# What the tables, compare and the figures read from a record: key -> (test, what it must be, required).
SCHEMA = {
    "diverged": (lambda x: isinstance(x, bool), "true or false", True),
    "accuracy": (_or_none(_share), "a number in [0, 1] (null if diverged)", True),
    "final_loss": (_or_none(_number), "a finite number or null", True),
    "iterations_done": (lambda x: _whole(x) and x >= 0, "a whole number >= 0", True),
    "wall_time": (lambda x: _number(x) and x >= 0, "a finite number >= 0", True),
    "time_per_iter": (lambda x: _number(x) and x >= 0, "a finite number >= 0", True),
    "counts": (_counts, "an object of analytic and numeric counts", True),
    "select_wins": (_or_none(_counts), "null or an object of analytic and numeric counts", True),
    "numeric_share": (_share, "a number in [0, 1]", True),
    "rel_diff_mean": (_or_none(lambda x: _number(x) and x >= 0), "a finite number >= 0 or null", True),
    "loss_history": (_thinned, 'an object {"every": N, "values": [...]}', True),
    "acc_history": (_curve, "a list of [iteration, accuracy in [0, 1]]", False),  # records before acc_curve
    "acc_curve": (_curve, "a list of [iteration, accuracy in [0, 1]]", False),
    "rel_diff_history": (_or_none(_thinned), 'null or an object {"every": N, "values": [...]}', False),
    "numeric_share_history": (_or_none(_thinned), 'null or an object {"every": N, "values": [...]}', False),
    "predictions": (
        lambda x: isinstance(x, str) and set(x) <= set("0123456789-"),
        "a string of digits 0-9 and '-'",
        True,
    ),
    "evaluated_on": (lambda x: isinstance(x, str) and x != "", "a description of the images scored", False),
}


def _check_results(rec: dict, config: dict) -> str | None:
    """Why the results part of a record cannot be used (a wrong type, a number out of range), or None."""
    for key, (test, what, required) in SCHEMA.items():
        if key not in rec:
            if required:
                return f"no {key!r}"
            continue
        if not test(rec[key]):
            return f"{key!r} must be {what}"
    if rec["diverged"] != (rec["accuracy"] is None):
        return "'accuracy' must be null exactly when the run diverged"
    if rec["iterations_done"] > config["iters"]:
        return f"'iterations_done' {rec['iterations_done']} is more than the {config['iters']} iterations"
    if on_test_set(rec) and len(rec["predictions"]) != config["test_limit"]:  # tune: a validation split
        return f"'predictions' has {len(rec['predictions'])} digits, the run evaluated {config['test_limit']}"
    return None
