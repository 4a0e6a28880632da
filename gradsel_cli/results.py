"""The results store: one run = one JSON line, appended safely; loading and resume.

A record carries the run's full configuration, a stable ``config_hash`` of
it, the results, wall time and versions. Appends take an exclusive lock and
write the whole line in one call, then fsync: a record is written whole or
not at all, and two processes never interleave. A last line cut off by a
crash is reported (by line number) and skipped, so that run is redone.
"""

import fcntl
import hashlib
import json
import os
import platform
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

FORMAT = 1  # bump when the record layout changes
HISTORY_POINTS = 200


def versions() -> dict[str, str]:
    """Versions of everything that can change a result."""
    def v(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"gradsel": v("gradsel"), "numpy": v("numpy"), "numba": v("numba"),
            "python": platform.python_version(), "platform": platform.platform()}


def default_path(preset: str, for_writing: bool = False) -> Path:
    """Where a paper table's runs are: results/<preset>.jsonl here (always, when writing), else the copy
    shipped inside the package (or beside it, in a checkout)."""
    local = Path("results") / f"{preset}.jsonl"
    if for_writing or local.exists():
        return local
    here = Path(__file__).resolve().parent
    for shipped in (here / "_results" / f"{preset}.jsonl", here.parent / "results" / f"{preset}.jsonl"):
        if shipped.exists():
            return shipped
    return local


def config_hash(config: dict) -> str:
    """A stable short hash of a configuration (keys sorted, floats by repr)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def thin(values: np.ndarray, points: int = HISTORY_POINTS) -> dict:
    """Window means of a long history: {"every": n, "values": [...]}; a non-finite mean is null."""
    values = np.asarray(values, dtype=np.float64)
    n = max(1, int(np.ceil(len(values) / points)))
    windows = [values[i:i + n] for i in range(0, len(values), n)]
    with np.errstate(over="ignore", invalid="ignore"):
        means = [float((w / len(w)).sum()) for w in windows]  # divide first: huge finite losses stay finite
    return {"every": n, "values": [_num(m) for m in means]}


def _num(x):
    """JSON has no NaN: a non-finite number is stored as null."""
    return None if x is None or not np.isfinite(x) else float(x)


def run_record(result) -> dict:
    """The JSON-able record of a RunResult."""
    config = result.config.to_dict()
    return {
        "format": FORMAT,
        "config_hash": config_hash(config),
        "config": config,
        "accuracy": _num(result.accuracy),
        "final_loss": _num(result.final_loss),
        "diverged": result.diverged,
        "iterations_done": result.iterations_done,
        "wall_time": result.wall_time,
        "time_per_iter": result.time_per_iter,
        "compile_time": result.compile_time,
        "counts": result.counts,
        "select_wins": result.select_wins,
        "numeric_share": result.numeric_share,
        "rel_diff_mean": _num(result.rel_diff_mean),
        "loss_history": thin(result.loss_history),
        "acc_history": [[t, a] for t, a in result.acc_history],
        "acc_curve": [[t, a] for t, a in result.acc_curve],
        "rel_diff_history": thin(result.rel_diffs) if np.any(~np.isnan(result.rel_diffs)) else None,
        "numeric_share_history": thin(result.sources) if result.config.method == "select" else None,
        "predictions": "".join(str(int(p)) if p >= 0 else "-" for p in result.predictions),
        "versions": versions(),
    }


def append(path, record: dict) -> None:
    """Append one record as a line: locked, written in one call, flushed and fsynced."""
    line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            _terminate_cut_line(fd)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _terminate_cut_line(fd: int) -> None:
    """If the file ends mid-line (a crash cut the last write), end that line first."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")


def load(path) -> list[dict]:
    """Every whole record of a results file; bad lines are skipped with a warning naming them.

    Reading never changes the file: a skipped line stays where it is (for a
    person to look at), and its run is simply not counted as done.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):  # bad JSON or bytes; absurdly deep nesting
                cut = not raw.endswith(b"\n")
                warnings.warn(f"{path}:{number}: {'cut-off' if cut else 'unreadable'} line skipped (that run will be redone)",
                              stacklevel=2)
                continue
            problem = _check(rec)
            if problem:
                warnings.warn(f"{path}:{number}: {problem}; line skipped", stacklevel=2)
                continue
            records.append(rec)
    return records


def _check(rec) -> str | None:
    if not isinstance(rec, dict) or not isinstance(rec.get("config"), dict) or "config_hash" not in rec:
        return "not a gradsel run record"
    if rec.get("format") != FORMAT:
        return f"record format {rec.get('format')!r}, this gradsel reads format {FORMAT}"
    if config_hash(rec["config"]) != rec["config_hash"]:
        return "config does not match its config_hash"
    return None
