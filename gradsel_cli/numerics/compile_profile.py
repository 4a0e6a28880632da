"""What compiling costs: each kernel a command compiles on an empty cache, its compile time and specialisations.

``profile_compiles`` runs each scenario (the main command, each gradient source alone, each policy, float32)
in a child process that shares one new, empty Numba cache with the others, in order, as a user meets them: the
first compiles from nothing, each later one only what the cache does not hold yet. A child records Numba's
``numba:compile`` events (a cache miss, not a load) of gradsel's kernels, nested ones included, while it trains
one iteration of its configuration (every kernel a whole run calls: the fused loop, the test-set evaluation).
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from .. import sources
from ..config import POLICIES, TrainConfig


def scenarios() -> list[tuple[str, dict]]:
    """(name, config changes) of each scenario, in the order they run: the README's main command (the defaults:
    alternate over analytic and numeric), each source alone, each policy, the main command in float32."""
    default = TrainConfig()
    out: list[tuple[str, dict]] = [(f"main command ({default.method})", {})]
    out += [(name, {"method": name}) for name in sources.names()]
    out += [(policy, {"method": policy}) for policy in POLICIES if policy != default.method]
    return [*out, ("float32", {"precision": "float32"})]


def compile_shipped(data_dir=None) -> None:
    """Compile every kernel of every scenario into Numba's cache as this process has it (one iteration of each);
    the wheel build runs it with NUMBA_CACHE_DIR set to the directory it ships."""
    for _, changes in scenarios():
        record_compiles(changes, data_dir)


def summarise(events: list[tuple[str, float, float, int]]) -> list[dict]:
    """Per kernel, in the order their first compile started: its compile time without the kernels compiled
    inside it ("seconds"), with them ("inclusive"), and how many specialisations (signatures) were built.
    `events`: (kernel, start, end, depth) of each compile, depth 0 the outermost."""
    kernels: dict[str, dict] = {}
    for i, (name, start, end, depth) in enumerate(events):
        inner = sum(
            e - s for n, s, e, d in events[i + 1 :] if d == depth + 1 and start <= s and e <= end
        )  # the kernels it compiled on the way (their own nested ones are inside them)
        k = kernels.setdefault(name, {"kernel": name, "seconds": 0.0, "inclusive": 0.0, "signatures": 0})
        k["seconds"] += (end - start) - inner
        k["inclusive"] += 0.0 if depth else end - start
        k["signatures"] += 1
    return list(kernels.values())


def record_compiles(changes: dict, data_dir=None) -> dict:
    """In this process: train one iteration of TrainConfig(**changes) and record each compile of gradsel's kernels
    on the way. {"kernels": summarise(...), "seconds": the whole call, "peak_rss_mb": of this process}."""
    from ..core.kernel_cache import recording_compiles
    from ..data import load_mnist_raw
    from .training import train

    raw = load_mnist_raw(data_dir)
    tick = time.perf_counter()
    with recording_compiles() as events:
        train(TrainConfig(**changes).replace(iters=1, test_limit=1), raw)
    seconds = time.perf_counter() - tick
    events.sort(key=lambda e: e[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {"kernels": summarise(events), "seconds": seconds, "peak_rss_mb": round(peak)}


_CHILD = (
    "import json, sys; from gradsel_cli.numerics.compile_profile import record_compiles; "
    "print(json.dumps(record_compiles(json.loads(sys.argv[1]), sys.argv[2] or None)))"
)


def profile_compiles(data_dir=None, progress=None) -> dict:
    """Each scenario in a child process on one new, empty Numba cache, in order (see the module's docstring);
    progress(done, total, name). The record: {"scenarios": [{"name", "changes", "kernels", "seconds",
    "peak_rss_mb"}], "python", "numba"}."""
    from importlib.metadata import version

    found = []
    todo = scenarios()
    with tempfile.TemporaryDirectory(prefix="gradsel-compile-") as cache:
        for done, (name, changes) in enumerate(todo):
            if progress:
                progress(done, len(todo), name)
            child = subprocess.run(
                [sys.executable, "-c", _CHILD, json.dumps(changes), str(data_dir or "")],
                capture_output=True,
                text=True,
                env={**os.environ, "NUMBA_CACHE_DIR": cache},
            )
            if child.returncode != 0:
                last = (child.stderr.strip().splitlines() or ["no message"])[-1]
                raise RuntimeError(f"the {name} scenario failed in its process: {last}")
            found.append({"name": name, "changes": changes, **json.loads(child.stdout.splitlines()[-1])})
    if progress:
        progress(len(todo), len(todo), "done")
    return {"scenarios": found, "python": sys.version.split()[0], "numba": version("numba")}
