"""The process around the work: a damaged Numba cache, output that cannot be printed or written, signals at
any moment, paths that cannot be resolved. Each ends in one line (or degrades), never a traceback."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradsel_cli import sources
from gradsel_cli.cli.commands import cli
from gradsel_cli.config import POLICIES
from gradsel_cli.core import kernel_cache
from gradsel_cli.kernels import forward

TINY = ["--iters", "20", "--test-limit", "200", "--hidden", "10", "--threads", "1"]


def gradsel(*args, env=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """The command in a child process; its stdout and stderr as text (unless given)."""
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run(
        [sys.executable, "-m", "gradsel_cli", *args],
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


# ---- a damaged Numba cache -------------------------------------------------------------------------------


def _cache_dir_under(root) -> str:
    """Where the kernels' cache goes with NUMBA_CACHE_DIR=root (Numba names a folder after the package's)."""
    code = "from gradsel_cli.kernels import forward; print(forward._predict._cache._cache_path)"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(root)},
    ).stdout.strip()


def _damage(paths, how: str) -> None:
    for path in paths:
        size = os.path.getsize(path)
        with open(path, "r+b" if how == "cut" else "wb") as f:
            if how == "garbage":
                f.write(b"garbage\n")
            elif how == "random":
                f.write(os.urandom(200))
            elif how == "cut":
                f.truncate(size // 2)
            # "empty": opened for writing, nothing written


@pytest.fixture(scope="session")
def warm_cache(mnist_raw):
    """The kernels a tiny train calls, compiled into this package's cache (loaded if they are there)."""
    from gradsel_cli.numerics.training import TrainConfig, train

    train(TrainConfig(iters=20, test_limit=200, hidden=10), mnist_raw)


@pytest.fixture
def private_cache(warm_cache, tmp_path):
    """A copy of the package's kernel cache as the NUMBA_CACHE_DIR of a child: (that root, the child's folder)."""
    root = tmp_path / "numba-cache"
    target = _cache_dir_under(root)
    os.makedirs(target, exist_ok=True)
    source = forward._predict._cache._cache_path
    for name in os.listdir(source):
        if name.endswith((".nbi", ".nbc")):
            shutil.copy2(os.path.join(source, name), target)
    return root, target


def _files_of(target, name):
    return sorted(os.path.join(target, f) for f in os.listdir(target) if f.startswith(f"forward.{name}-"))


@pytest.mark.parametrize(
    "what, how",
    [("nbc", "garbage"), ("nbi", "garbage"), ("nbi", "empty"), ("nbc", "empty"), ("nbc", "cut"), ("nbi", "random")],
)
def test_a_damaged_cache_file_is_dropped_compiled_again_and_said_in_one_line(what, how, private_cache):
    root, target = private_cache
    files = [p for p in _files_of(target, "_predict") if p.endswith(what)]
    assert files, os.listdir(target)
    others = {p: Path(target, p).read_bytes() for p in os.listdir(target) if "_predict-" not in p}
    _damage(files, how)
    result = gradsel("train", *TINY, env={"NUMBA_CACHE_DIR": str(root)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Interrupted" not in result.stderr, result.stderr
    said = [line for line in result.stderr.splitlines() if "could not be loaded" in line]
    assert len(said) == 1 and target in said[0], result.stderr
    assert "Compiling Numba kernels, starting with forward._predict" in result.stderr  # what is compiled again
    assert "test accuracy" in result.stdout
    for path, content in others.items():  # nothing but the damaged kernel's files was touched
        assert Path(target, path).read_bytes() == content
    if how == "garbage" and what == "nbc":  # the cache was written sound again
        again = gradsel("train", *TINY, env={"NUMBA_CACHE_DIR": str(root)})
        assert again.returncode == 0 and "could not be loaded" not in again.stderr, again.stderr
        assert "Compiling" not in again.stderr


def test_a_command_does_not_check_the_whole_cache_before_its_work(monkeypatch):
    from click.testing import CliRunner

    def refuse(kernel):
        raise AssertionError("every kernel's cache was loaded to check it")

    monkeypatch.setattr(kernel_cache, "_loads", refuse)  # what the whole-cache check calls for each kernel
    result = CliRunner().invoke(cli, ["train", *TINY])
    assert result.exit_code == 0, result.output
    assert "could not be loaded" not in result.stderr


def test_a_cache_damaged_after_the_check_is_compiled_again_without_an_error(private_cache):
    # No command ran the check (the Python API, a worker process): loading drops the damaged files itself.
    root, target = private_cache
    _damage(_files_of(target, "_predict"), "empty")
    code = (
        "import numpy as np; from gradsel_cli.core import network; from helpers import random_params; "
        "print(network.predict(random_params(3, 784, seed=0), np.zeros((2, 784))).shape)"
    )
    tests = os.path.dirname(__file__)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tests,
        timeout=300,
        env={**os.environ, "NUMBA_CACHE_DIR": str(root), "PYTHONPATH": tests},
    )
    assert result.returncode == 0 and result.stdout.strip() == "(2,)", result.stderr
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gradsel_cli.core import kernel_cache; print(len(kernel_cache.drop_damaged_cache()))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NUMBA_CACHE_DIR": str(root)},
    )
    assert check.stdout.strip() == "0", check.stderr  # what the load stored again loads


# ---- a cache written in one process, loaded in the next -----------------------------------------------------

# Every source alone and every policy over all of them, in both precisions: a tiny run each, its result printed.
# With --load-first, every kernel in the cache is loaded before anything else, serial kernels first (loading a
# parallel one starts Numba's thread pool, which would hide a serial kernel that cannot load without it).
EVERY_KIND = """
import json, sys
from gradsel_cli import sources
from gradsel_cli.config import POLICIES, TrainConfig
from gradsel_cli.core import kernel_cache
from gradsel_cli.numerics.training import train

if "--load-first" in sys.argv:
    for k in sorted(kernel_cache._CACHED, key=lambda k: bool(k.targetoptions.get("parallel"))):
        for key in k._cache._cache_file._load_index():
            k.compile(key[0])
names = sources.names()
for precision in ("float64", "float32"):
    for method in (*names, *POLICIES):
        also = {"sources": ",".join(names)} if method in POLICIES else {}
        r = train(TrainConfig(method=method, iters=20, hidden=10, test_limit=200, precision=precision, **also))
        print(json.dumps([precision, method, r.final_loss, r.accuracy, r.counts]))
"""


def _every_kind(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", EVERY_KIND, *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def test_kernels_compiled_against_cached_parallel_kernels_load_in_a_later_process(tmp_path):
    # A serial kernel (a source's fused step) compiled in a process where the parallel kernels it calls came
    # from the cache was cached without Numba's hook that starts the thread pool; a later process that loaded
    # it first aborted ("LLVM ERROR: Symbol not found: allocate_sched", exit 134), after the damaged-cache
    # recovery dropped a step's files, say. Here: only the parallel kernels' cache is given, the first child
    # compiles every serial kernel against it, and a fresh child loads them all first, then runs again.
    warm = _every_kind()  # the package's cache holds every kind's parallel kernels (compiled if not)
    assert warm.returncode == 0, warm.stderr
    root = tmp_path / "numba-cache"
    target = _cache_dir_under(root)
    os.makedirs(target, exist_ok=True)
    parallel = [k for k in kernel_cache._CACHED if k.targetoptions.get("parallel")]
    assert parallel
    for kernel in parallel:
        for path in kernel_cache._cache_files(kernel):
            shutil.copy2(path, target)
    env = {"NUMBA_CACHE_DIR": str(root)}
    first = _every_kind(env=env)
    assert first.returncode == 0, first.stderr
    serial = [f for f in os.listdir(target) if f.endswith(".nbi") and ("_step" in f or "_fused" in f)]
    assert serial, os.listdir(target)  # the steps were compiled and cached by the first child
    later = _every_kind("--load-first", env=env)
    assert later.returncode == 0, later.stderr[-2000:]
    assert later.stdout == first.stdout == warm.stdout  # bitwise the same runs, whoever compiled
    assert len(later.stdout.splitlines()) == 2 * (len(sources.names()) + len(POLICIES))


def test_an_end_of_file_inside_a_command_is_an_error_not_an_interrupt(runner, monkeypatch):
    def ends(*args, **kwargs):
        raise EOFError("Ran out of input")

    monkeypatch.setattr("gradsel_cli.cli.commands.prepare", ends)
    result = runner.invoke(cli, ["train", *TINY])
    assert result.exit_code not in (0, 130)
    assert "Interrupted" not in result.output and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error:"), result.stderr


@pytest.mark.parametrize("flags", [[], ["--json"], ["-q"], ["--json", "-q"]])
def test_a_compile_is_said_in_one_line_on_stderr_whatever_the_flags(flags, runner, monkeypatch):
    from gradsel_cli.core import network

    lit_pixels = network.lit_pixels

    def compiling(x):  # as if the run's first kernels were not in the cache: two compiles start
        kernel_cache.on_compile("fused._train_sgd")
        kernel_cache.on_compile("forward._predict")
        return lit_pixels(x)

    monkeypatch.setattr(network, "lit_pixels", compiling)
    result = runner.invoke(cli, ["train", *TINY, *flags])
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if "Compiling" in line]
    assert len(said) == 1 and said[0].startswith("Compiling Numba kernels, starting with fused._train_sgd")
    assert "Compiling" not in result.stdout


def test_only_the_outermost_compile_of_gradsels_kernels_is_told(monkeypatch):
    import numba

    def inner(v):
        return v + 1

    def outer(v):
        return kernel(v) * 2

    inner.__module__ = outer.__module__ = "gradsel_cli.kernels.made_here"
    kernel = numba.njit(inner)
    told: list[str] = []
    monkeypatch.setattr(kernel_cache, "on_compile", told.append)
    assert numba.njit(outer)(1) == 4 and kernel(1.5) == 2.5
    assert told == [
        "made_here.test_only_the_outermost_compile_of_gradsels_kernels_is_told.<locals>.outer",
        "made_here.test_only_the_outermost_compile_of_gradsels_kernels_is_told.<locals>.inner",
    ]
    assert numba.njit(lambda v: v)(3) == 3 and len(told) == 2  # not gradsel's: not told


# ---- output that cannot be printed as it is ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_an_encoding_that_is_not_unicode_gets_ascii_for_what_it_cannot_show(encoding, tmp_path):
    out = tmp_path / "run.jsonl"
    result = gradsel("train", *TINY, "--out", str(out), env={"PYTHONIOENCODING": encoding}, encoding=encoding)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "gradsel train - alternate" in result.stdout and "test accuracy" in result.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "gradsel_cli", "runs", str(out)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": encoding},
    )
    assert shown.returncode == 0 and b"Traceback" not in shown.stderr, shown.stderr
    assert "runs" in shown.stdout.decode(encoding)  # all in the encoding: ASCII for what it cannot show


@pytest.mark.parametrize(
    "env",
    [
        {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"},  # a minimal container
        {"PYTHONIOENCODING": "ascii:surrogateescape"},
    ],
    ids=["C-locale", "ascii-surrogateescape"],
)
def test_the_c_locale_without_utf8_mode_runs_with_ascii_output(env, tmp_path):
    out = tmp_path / "run.jsonl"
    ours = ("LC_", "LANG", "PYTHONUTF8", "PYTHONIOENCODING")  # the locale of the test run itself left out
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(ours)}, **env}
    result = subprocess.run(
        [sys.executable, "-m", "gradsel_cli", "train", *TINY, "--out", str(out)],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"codec" not in result.stderr
    assert b"test accuracy" in result.stdout and max(result.stdout) < 128  # ASCII only
    shown = subprocess.run(
        [sys.executable, "-m", "gradsel_cli", "runs", str(out)], capture_output=True, env=env, timeout=300
    )
    assert shown.returncode == 0 and b"1 run" in shown.stdout and max(shown.stdout) < 128, shown.stderr


@pytest.mark.parametrize("columns", ["1", "2", "3", "9"])
@pytest.mark.parametrize(
    "command",
    [
        ["train", *TINY],
        ["table"],
        ["table", "--preset", "conditions"],
        ["sweep", *TINY, "--lr", "0.1,0.2", "--seeds", "1", "--workers", "1"],
    ],
)
def test_any_width_down_to_one_column_prints_without_crashing(command, columns, runner):
    result = runner.invoke(cli, command, env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "run.jsonl"
    assert gradsel("train", *TINY, "-q", "--out", str(path)).returncode == 0
    return path


@pytest.mark.parametrize("args", [["--json"], []])
def test_a_full_stdout_is_one_line_saying_what_was_stored(args, tmp_path):
    out = tmp_path / "run.jsonl"
    with open("/dev/full", "w") as full:
        result = gradsel("train", *TINY, *args, "--out", str(out), stdout=full)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and lines[-1].startswith("Error:"), result.stderr
    assert "No space left on device" in lines[-1] and str(out) in lines[-1]
    assert len(out.read_text().splitlines()) == 1  # the run is kept


@pytest.mark.parametrize("args", [[], ["--json"], ["--csv"]])
def test_runs_into_a_full_stdout_is_one_line_and_a_closed_pipe_is_quiet(args, run_file):
    with open("/dev/full", "w") as full:
        result = gradsel("runs", str(run_file), *args, stdout=full)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: could not write the output to stdout: No space left on device (nothing was stored)"
    ]
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "gradsel_cli", "runs", str(run_file), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader_gone.stdout.close()  # as `| head -0` would
    _, err = reader_gone.communicate(timeout=120)
    assert reader_gone.returncode == 141 and err == b"", err  # as SIGPIPE ends a Unix tool: 128 + 13


def test_a_closed_pipe_ends_a_long_table_quietly_as_sigpipe_ends_a_unix_tool():
    # Rich's console ends a broken pipe itself with status 1; the reader of `gradsel table | head -1` gone
    # after the first line is the usual end of a pipeline, not an error.
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "gradsel_cli", "table", "--preset", "select"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader_gone.stdout.readline()
    reader_gone.stdout.close()
    _, err = reader_gone.communicate(timeout=120)
    assert reader_gone.returncode in (0, 141), err  # 0: the table fitted in the pipe before the reader left
    assert b"Error" not in err and b"Traceback" not in err, err


@pytest.mark.parametrize("command", [["runs", "RUN"], ["train", *TINY, "--out", "OUT"]])
def test_a_closed_stdout_is_one_line_saying_what_was_stored(command, run_file, tmp_path):
    out = tmp_path / "out.jsonl"
    args = " ".join(str(run_file) if a == "RUN" else str(out) if a == "OUT" else a for a in command)
    result = subprocess.run(
        ["sh", "-c", f"{sys.executable} -m gradsel_cli {args} >&-"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and lines[-1].startswith("Error: could not write the output"), lines
    assert "it is closed" in lines[-1]
    if command[0] == "train":
        assert f"stored: {out}" in lines[-1] and len(out.read_text().splitlines()) == 1


# ---- SIGTERM and Ctrl-C from the first moment -------------------------------------------------------------


def _catches(pid: int, sig: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask >> (sig - 1) & 1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(
    "command", [["train", "--iters", "100000"], ["sweep", "--seeds", "2", "--workers", "1"], ["tune", "--trials", "3"]]
)
def test_a_signal_at_the_first_moment_it_can_be_caught_is_the_same_one_line_and_exit_130(command, sig, tmp_path):
    # The earliest moment the process can catch SIGTERM (it says so in /proc), and a few moments later on
    # (imports, loading the data, the first runs): every time the one line and exit code 130.
    for delay in (0, 0.05, 0.3, 1.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradsel_cli", *command, "--hidden", "10", "--test-limit", "200"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 60
        while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        # -2: now and then (a signal landing in an import) CPython ends by SIGINT after the line, which a shell
        # shows as $? 130 too; never -15, the silent death
        assert proc.returncode in (130, -signal.SIGINT), (delay, proc.returncode, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert "Traceback" not in err and lines[-1].startswith("Interrupted"), (delay, err)


# ---- paths that cannot be resolved -----------------------------------------------------------------------

PATH_OPTIONS = [
    ["train", *TINY, "--out"],
    ["train", *TINY, "--save-model"],
    ["train", *TINY, "--plot"],
    ["compare", *TINY, "--seeds", "1", "--plot"],
    ["compare", *TINY, "--seeds", "1", "--figure"],
    ["compare", *TINY, "--seeds", "1", "--results"],
    ["sweep", *TINY, "--seeds", "1", "--results"],
    ["tune", *TINY, "--trials", "1", "--results"],
    ["table", "--run", "--seeds", "1", "--results"],
    ["table", "--results"],
    ["gradcheck", "--iters", "20", "--hidden", "10", "--plot"],
    ["train", *TINY, "--data-dir"],
    ["runs"],
]


@pytest.fixture
def bad_paths(tmp_path):
    """Paths no file can be made at: through a symlink loop, the loop itself, a name over the system's limit (as
    the file and as a folder), a folder that is a file."""
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "afile").write_text("")
    long = "x" * 300
    return {
        "through a loop": tmp_path / "loop1" / "f",
        "the loop": tmp_path / "loop1",
        "a long name": tmp_path / long,
        "in a long folder": tmp_path / long / "f",
        "in a file": tmp_path / "afile" / "f",
    }


@pytest.mark.parametrize("command", PATH_OPTIONS, ids=lambda c: f"{c[0]} {c[-1]}")
def test_a_path_that_cannot_be_resolved_is_one_line_and_exit_2(command, bad_paths, runner, monkeypatch):
    from test_feature_faults import no_training

    no_training(monkeypatch)
    renamed = command[-1] in ("--plot", "--figure", "--save-model")  # loop1.png, loop1.npz: files that can be made
    for what, path in bad_paths.items():
        if what == "the loop" and renamed:
            continue
        suffix = ".png" if command[-1] in ("--plot", "--figure") else ".jsonl"
        result = runner.invoke(cli, [*command, f"{path}{suffix}" if what != "the loop" else str(path)])
        assert result.exit_code == 2, (what, result.output)
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), (what, result.stderr)


def test_ctrl_c_during_bench_with_background_load_is_the_parents_one_line_only():
    from terminal import run_at_terminal

    screen = run_at_terminal(
        ["bench", "--hidden", "10,20,30", "--batch", "1,8", "--repeat", "200", "--background", "2"],
        interrupt_when="bench",
        timeout=300,
    )
    assert screen.exit_code == 130, screen.text
    assert "Traceback" not in screen.text and "KeyboardInterrupt" not in screen.text, screen.text
    after = screen.text.split("^C", 1)[-1]
    lines = [line for line in after.splitlines() if line.strip() and "━" not in line and "bench" not in line]
    assert lines == ["Interrupted."], lines


def test_a_signal_as_the_command_ends_leaves_its_exit_code_and_output(tmp_path):
    # Signals at moments up to past the end of a short command: each either interrupts it (the one line, 130)
    # or comes after its work, when the output is complete and the exit code is the command's own.
    done = gradsel("runs", str(tmp_path / "none.jsonl"))  # an error: one line, exit 2, in a fraction of a second
    assert done.returncode == 2
    for delay in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradsel_cli", "runs", str(tmp_path / "none.jsonl")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (2, 130), (delay, proc.returncode, err)
        assert "Traceback" not in err and err.strip(), (delay, err)
