"""Wheel build hook: ship every stored results file, MNIST decompressed, and the kernels compiled.

results/ stays plain JSON Lines in the repository; the wheel gets gradsel_cli/_results/NAME.jsonl.gz, which
gradsel reads transparently (results.shipped_path), compressed with a fixed timestamp.

MNIST stays gzip-compressed in the repository (data/mnist, 11 MB); the wheel gets the plain IDX files in
gradsel_cli/_data/mnist (55 MB installed; the wheel, a zip, stays about as small): every run reads them, and
decompressing cost 0.15 s of each run's start. The loader checks the same SHA-256 of the IDX bytes either way.

Kernels: a child process trains one iteration of every scenario of `gradsel bench --compile`
(numerics/compile_profile.scenarios: the main command, every gradient source and policy, float32) into a new
Numba cache, and its files go into the wheel's gradsel_cli/kernels/__pycache__, where Numba looks for them: a
first run after installing loads the kernels instead of compiling them (25 s for the main command). Numba
keys each compiled kernel by the source file's content, its own version and the CPU it was compiled for
(name and features), so a wheel installed on another CPU, or beside another Numba, compiles as if it shipped
nothing: never wrong code, at worst the old wait. The build takes that time instead (`pip install .` builds
the wheel on the machine that runs it). An editable install compiles at its first run, into the checkout.
If the kernels cannot be compiled here (no Numba in a build without isolation, say), the wheel ships none and
the build says so.
"""

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_COMPILE = "import sys; from gradsel_cli.numerics.compile_profile import compile_shipped; compile_shipped(sys.argv[1])"


class ShippedResults(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        self._tmp = tempfile.mkdtemp(prefix="gradsel-build-")
        for source in sorted(Path(self.root, "results").glob("*.jsonl")):
            packed = Path(self._tmp, source.name + ".gz")
            with (
                open(source, "rb") as fin,
                open(packed, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as fout,
            ):
                shutil.copyfileobj(fin, fout, 1 << 20)
            build_data["force_include"][str(packed)] = f"gradsel_cli/_results/{packed.name}"
        if version != "editable":  # an editable install reads the checkout's data/mnist and caches its kernels there
            self._ship_mnist(build_data)
            self._ship_kernels(build_data)

    def _ship_mnist(self, build_data):
        source = Path(self.root, "data", "mnist")
        plain = Path(self._tmp, "mnist")
        plain.mkdir()
        build_data["force_include"][str(source / "README.md")] = "gradsel_cli/_data/mnist/README.md"
        for packed in sorted(source.glob("*.gz")):
            out = plain / packed.stem
            with gzip.open(packed, "rb") as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
            build_data["force_include"][str(out)] = f"gradsel_cli/_data/mnist/{out.name}"

    def _ship_kernels(self, build_data):
        cache = Path(self._tmp, "numba")
        self.app.display_info("Compiling gradsel's kernels for this machine (about a minute; the runs load them)")
        path = os.pathsep.join([str(self.root), *sys.path])  # the checkout, then the build environment's packages
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": path}
        env.pop("GRADSEL_DATA_DIR", None)
        child = subprocess.run(
            [sys.executable, "-c", _COMPILE, str(Path(self.root, "data", "mnist"))],
            env=env,
            capture_output=True,
            text=True,
        )
        files = sorted(cache.glob("kernels_*/*.nb[ic]"))  # Numba's directory for gradsel_cli/kernels
        if child.returncode != 0 or not files:
            last = (child.stderr.strip().splitlines() or ["no kernel cached"])[-1]
            self.app.display_warning(f"Kernels not shipped compiled ({last}); a first run compiles them.")
            return
        for path in files:
            build_data["force_include"][str(path)] = f"gradsel_cli/kernels/__pycache__/{path.name}"

    def finalize(self, version, build_data, artifact_path):
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
