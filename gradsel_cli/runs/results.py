"""The results store: one run = one JSON line (records.py), appended safely; loading and resume.

Appends take an exclusive lock, write the line (a short write is continued),
then fsync; on a failure (a full disk) the file is cut back to its size before: a record is written whole or
not at all, and two processes never interleave. A grid appends through a
Store, which never writes a run another process stored meanwhile. Outputs are
probed before any work, and only regular files are read or written.

A run is stored once: its key (run_key) is what it reads (records.identity)
and what it was evaluated on (the test set unless a record says otherwise, as
tune's trials do), writers skip a run already stored and load() keeps the first record of
each run, saying how many duplicates it skipped.

On load every record is checked (records.check_record); a bad or cut-off
line is reported by line number, control characters escaped, and skipped. Besides JSON Lines, load()
reads a file of JSON documents (what ``--json`` prints: one record, pretty-
printed, or a list of them) and a gzip-compressed ``.jsonl.gz``.
"""

import errno
import fcntl
import gzip
import json
import os
import re
import stat
import warnings
import zlib
from pathlib import Path

from ..config import Notice
from ..text import printable
from .records import check_record, run_key, test_set_runs, upgrade

SHIPPED = Path(__file__).resolve().parents[1] / "_results"  # the stored runs the wheel ships (gzip-compressed)
CHECKOUT = Path(__file__).resolve().parents[2] / "results"  # the same runs in a checkout


def shipped_path(name: str) -> Path | None:
    """The stored runs shipped with gradsel under `name` (alternate, select, conditions, compare, ...), or None.

    Read-only reference data: inside the installed package, or results/ of the checkout gradsel runs from.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return None
    for path in (SHIPPED / f"{name}.jsonl.gz", SHIPPED / f"{name}.jsonl", CHECKOUT / f"{name}.jsonl"):
        if path.is_file():
            return path
    return None


def user_path(preset: str) -> Path:
    """Where `table --run` stores a user's runs without --results: a file of the current directory (never the
    shipped results)."""
    return Path(f"gradsel-{preset}.jsonl")


def default_path(preset: str, for_writing: bool = False) -> Path:
    """The runs of a paper table: the user's file to write (`for_writing`), else the shipped runs (or the user's
    file when nothing is shipped)."""
    if for_writing:
        return user_path(preset)
    return shipped_path(preset) or user_path(preset)


def exists(path) -> bool:
    """Whether `path` exists; a name the system cannot look up (too long, a symlink loop) is a StoreError."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"cannot read {printable(str(path))}: {_why(exc)}; give another path") from None
    return True


def readable(path) -> Path:
    """`path` if it exists, else the shipped copy when it names one as the docs do (results/compare.jsonl
    outside the checkout), else `path` unchanged."""
    path = Path(path)
    try:
        if path.exists() or path.parent.name != "results" or not path.name.endswith(".jsonl"):
            return path
    except OSError:  # a name too long, a symlink loop: whoever opens it says what it is
        return path
    return shipped_path(path.name[: -len(".jsonl")]) or path


def is_shipped(path) -> bool:
    """Whether `path` is one of the shipped (read-only) results files."""
    try:
        path = Path(path).resolve()
    except (OSError, RuntimeError):
        return False
    return path.parent in (SHIPPED, CHECKOUT) and shipped_path(path.name.split(".")[0]) == path


class StoreError(ValueError):
    """A results file (or another output) that cannot be read or written; the message names it and the fix."""


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _is_regular_or_new(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return True  # a name too long, a missing directory: probe() says what it is


def check_output_path(path) -> None:
    """Accept a regular file or a new path; a device, FIFO or directory is refused (reading one never ends)."""
    if path is not None and not _is_regular_or_new(Path(path)):
        raise StoreError(
            f"{printable(str(path))} is not a regular file (a device, pipe or directory); give the path of a file"
        )


def _check_appendable(path: Path) -> None:
    """A compressed file is read, never appended to (a plain line would break it)."""
    if path.name.endswith(".gz"):
        raise StoreError(
            f"{printable(str(path))} is compressed: gradsel reads it but does not append to it; "
            "give a .jsonl file (nothing was run)"
        )


def probe(*paths) -> None:
    """Check, before any work, that every given output can be written; one error names the first that cannot.

    An existing file is opened for appending (and left unchanged); a new one is
    created and removed again, so nothing is left behind.
    """
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        check_output_path(path)
        if path.suffix == ".gz":
            _check_appendable(path)
        try:
            if not path.exists():
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                except FileExistsError:  # another run made it just now (two at once): append to it too
                    pass
                else:
                    path.unlink(missing_ok=True)
                    continue
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            raise StoreError(
                f"cannot write {printable(str(path))}: {_why(exc)}; choose another path (nothing was run)"
            ) from None


def make_parent(path) -> None:
    """Create the directory `path` goes into (results/ for a table), or say in one line why it cannot be."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory of {printable(str(path))}: {_why(exc)}; give --results FILE elsewhere"
        ) from None


def write_each(writers) -> list[str]:
    """Run write() of every (path, write) whose path is given, even after one fails; the failures, one line each."""
    failed = []
    for path, write in writers:
        if not path:
            continue
        try:
            write()
        except OSError as exc:
            failed.append(f"cannot write {printable(str(path))}: {_why(exc)}")
        except StoreError as exc:
            failed.append(str(exc))
    return failed


def _encode(record: dict) -> bytes:
    return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written: a short write continues, no progress at all is ENOSPC."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def _open_for_append(path: Path) -> int:
    check_output_path(path)
    _check_appendable(path)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced by a device or pipe since the check
        os.close(fd)
        raise StoreError(f"{printable(str(path))} is not a regular file; give the path of a file")
    return fd


def _append_locked(fd: int, path: Path, line: bytes) -> None:
    """Write `line` at the end (the lock held); on any failure the file is cut back to its size before."""
    size = os.fstat(fd).st_size
    try:
        _terminate_cut_line(fd, size)
        _write_all(fd, line)
        os.fsync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)  # no half record: everything written before this append is kept as it was
        except OSError:
            pass
        raise StoreError(
            f"cannot append to {printable(str(path))}: {_why(exc)}; the records already in it are kept"
        ) from None


def append(path, record: dict) -> None:
    """Append one record as a line: locked, written whole (or not at all), flushed and fsynced.

    Raises StoreError naming the file and the reason (a full disk, a
    read-only file system); the file is then as it was before the call.
    """
    path = Path(path)
    line = _encode(record)
    try:
        fd = _open_for_append(path)
    except OSError as exc:
        raise StoreError(f"cannot append to {printable(str(path))}: {_why(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            _append_locked(fd, path, line)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Store:
    """A results file that a grid appends to, never twice for the same configuration.

    Another process may append to the same file at the same time (two
    identical commands): under the append lock the lines added since the last
    look are read, and a record whose run is already there is not written.
    """

    def __init__(self, path):
        check_store(path)
        self.path = Path(path)
        self.seen: set[str] = set()
        self.offset = 0  # bytes of the file already looked at

    def _catch_up(self, fd: int) -> None:
        end = os.fstat(fd).st_size
        if end < self.offset:  # the file was replaced or cut: look at all of it again
            self.offset, self.seen = 0, set()
        if self.offset == 0:  # the first look: every record, whatever the layout (load reads it)
            with os.fdopen(os.dup(fd), "rb") as fh:
                fh.seek(0)
                self.seen = {run_key(r) for r in _read(fh, self.path, quiet=True)}
            self.offset = end
            return
        with os.fdopen(os.dup(fd), "rb") as fh:
            fh.seek(self.offset)
            for raw in _lines(fh):
                if not raw.endswith(b"\n"):
                    break  # a line being written right now, or cut: looked at again next time
                self.offset = fh.tell()
                rec, problem = _parse(raw)
                if problem is None:
                    assert rec is not None  # _parse gives a record or a problem
                    self.seen.add(run_key(rec))

    def append(self, record: dict) -> bool:
        """Append `record` unless its run is in the file already; whether it was written."""
        line = _encode(record)
        try:
            fd = _open_for_append(self.path)
        except OSError as exc:
            raise StoreError(f"cannot append to {printable(str(self.path))}: {_why(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                self._catch_up(fd)
                key = run_key(record)
                if key in self.seen:
                    return False
                _append_locked(fd, self.path, line)
                self.offset = os.fstat(fd).st_size
                self.seen.add(key)
                return True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def holds_no_record(path) -> bool:
    """Whether `path` is a file with content and nothing of a run record in it (notes, a figure, a summary); a
    results file whose records are all damaged is still one (its runs are redone, its lines kept). Every record
    names its config_hash, so the bytes tell without parsing the file (the grid that stores in it loads it anyway)."""
    if path is None or not Path(path).is_file():
        return False
    try:
        with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as fh:
            content = fh.read()
    except (OSError, EOFError, zlib.error):
        return False  # unreadable: the reader or the append says why
    return bool(content.strip()) and b'"config_hash"' not in content


def check_store(path) -> None:
    """StoreError when `path` holds content but no run record: runs appended to it would be mixed into a file
    that is not a results file."""
    if holds_no_record(path):
        raise StoreError(
            f"{printable(str(path))} holds no run record; runs are appended only to a results file: give a new "
            "file name or an existing results file"
        )


def _terminate_cut_line(fd: int, size: int) -> None:
    """If the file ends mid-line (a crash cut the last write), end that line first."""
    if size and os.pread(fd, 1, size - 1) != b"\n":
        _write_all(fd, b"\n")


MAX_LINE = 1 << 22  # bytes: a record is a few tens of KB; a longer line is not one (a device, a hostile file)


def _lines(fh):
    """The lines of a binary file, each at most MAX_LINE + 1 bytes; a longer one is yielded cut, then skipped."""
    while True:
        raw = fh.readline(MAX_LINE + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while True:  # skip the rest of the overlong line, MAX_LINE bytes at a time
                rest = fh.readline(MAX_LINE)
                if not rest or rest.endswith(b"\n"):
                    break
            yield raw[:MAX_LINE] + b"\x00too long\n"
            continue
        yield raw


class StoreWarning(Notice):
    """A results file's line that is skipped, or duplicates that are: the command goes on without them."""


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        warnings.warn(printable(message), StoreWarning, stacklevel=3)


SAID_LINES = 10  # skipped lines of a file named one by one; past them, the rest are counted in one line
MAX_DOCUMENT = 1 << 26  # bytes: a file of JSON documents (--json output) is read whole up to this size


def load(path, redo: bool = False, quiet: bool = False) -> list[dict]:
    """Every whole, valid record of a results file, each run once; bad lines are skipped with a warning naming
    them, duplicates with one warning counting them (`redo`: the command will run what was skipped; `quiet`:
    no warnings).

    Reading never changes the file: a skipped line stays where it is (for a
    person to look at), and its run is simply not counted as done. Only a
    regular file is read (a device or pipe would never end), a line at most
    MAX_LINE bytes. A missing file has no records.
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            check_output_path(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read {printable(str(path))}: {_why(exc)}") from None
    try:
        fh = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise StoreError(f"cannot read {printable(str(path))}: {_why(exc)}") from None
    try:
        with fh:
            return _read(fh, path, redo, quiet)
    except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz: its header (OSError), cut, or its stream
        raise StoreError(f"cannot read {printable(str(path))}: {exc}") from None


def load_sources(paths, redo: bool = False, quiet: bool = False) -> list[list[dict]]:
    """The test-set records of each file of `paths` (several, as the shipped runs and a user's), each run once
    over all of them: a run already in an earlier file is not taken again from a later one."""
    seen, out = set(), []
    for path in paths:
        mine = []
        for rec in test_set_runs(load(path, redo, quiet)):
            if (key := run_key(rec)) not in seen:
                seen.add(key)
                mine.append(rec)
        out.append(mine)
    return out


def _read(fh, path, redo: bool = False, quiet: bool = False) -> list[dict]:
    """The records of an open binary file (JSON Lines, or JSON documents), each run once."""
    redone = " (that run will be redone)" if redo else ""
    found = _documents(fh, path, quiet)
    if found is None:
        found, skipped = [], 0
        for number, raw in enumerate(_lines(fh), start=1):
            if not raw.strip():
                continue
            rec, problem = _parse(raw)
            if problem:
                skipped += 1
                if skipped <= SAID_LINES:
                    _say(f"{path}:{number}: {problem}{redone}", quiet)
                continue
            assert rec is not None  # _parse gives a record or a problem
            found.append(rec)
        if skipped > SAID_LINES:
            n = skipped - SAID_LINES
            _say(f"{path}: {n} more line{'s' if n > 1 else ''} skipped, {skipped} in all{redone}", quiet)
    records, seen = [], set()
    for rec in found:
        key = run_key(rec)
        if key not in seen:
            seen.add(key)
            records.append(rec)
    if len(found) > len(records):
        n = len(found) - len(records)
        _say(
            f"{path}: {n} duplicate record{'s' if n > 1 else ''} skipped (a run stored more than once counts once)",
            quiet,
        )
    return records


def _documents(fh, path, quiet: bool) -> list[dict] | None:
    """The records of a file of JSON documents (a pretty-printed record, a list of records, several of them), or
    None when it is JSON Lines (its first line is a JSON value, or it is not JSON at all); `fh` is left at the
    start."""
    first = b""
    for first in _lines(fh):
        if first.strip():
            break
    fh.seek(0)
    if first.lstrip()[:1] not in (b"{", b"[") or first.endswith(b"\x00too long\n"):
        return None
    try:
        json.loads(first)
        return None  # one document a line: JSON Lines
    except (ValueError, RecursionError):
        pass
    text = fh.read(MAX_DOCUMENT + 1)
    fh.seek(0)
    if len(text) > MAX_DOCUMENT:
        return None
    decoder, values, at = json.JSONDecoder(), [], 0
    try:
        text = text.decode()
        while True:
            at = len(text) - len(text[at:].lstrip())
            if at >= len(text):
                break
            value, at = decoder.raw_decode(text, at)
            values.append(value)
    except (ValueError, RecursionError):
        return None  # not JSON documents either: read line by line, each bad line named
    records = []
    for number, value in enumerate((v for d in values for v in _runs_of(d)), start=1):
        problem = check_record(value)
        if problem:
            if isinstance(value, dict) and "config_hash" not in value:
                problem = (
                    "a JSON document with no run record (a summary; the --json of train, compare, sweep and tune "
                    "holds the runs, and --out or --results FILE stores them)"
                )
            _say(f"{path}: record {number}: {problem}; skipped", quiet)
            continue
        records.append(upgrade(value))
    return records


def _runs_of(document) -> list:
    """The run records of one JSON document: a list of records, one record, or the output of compare or tune
    --json (a summary whose "runs" are its records)."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and "config_hash" not in document and isinstance(document.get("runs"), list):
        return document["runs"]
    return [document]


def _parse(raw: bytes) -> tuple[dict | None, str | None]:
    """(record, None) for a valid line, else (None, why it is skipped)."""
    if raw.endswith(b"\x00too long\n"):
        return None, f"line longer than {MAX_LINE:,} bytes skipped"
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON or bytes; absurdly deep nesting
        cut = not raw.endswith(b"\n")
        return None, f"{'cut-off' if cut else 'unreadable'} line skipped"
    problem = check_record(rec)
    if problem:
        return None, f"{problem}; line skipped"
    return upgrade(rec), None
