"""Wheel build hook: ship every stored results file (results/*.jsonl) gzip-compressed inside the package.

results/ stays plain JSON Lines in the repository; the wheel gets gradsel_cli/_results/NAME.jsonl.gz, which
gradsel reads transparently (results.shipped_path). Compressed with a fixed timestamp: the same checkout gives
the same wheel.
"""

import gzip
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ShippedResults(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        self._tmp = tempfile.mkdtemp(prefix="gradsel-results-")
        for source in sorted(Path(self.root, "results").glob("*.jsonl")):
            packed = Path(self._tmp, source.name + ".gz")
            with (
                open(source, "rb") as fin,
                open(packed, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as fout,
            ):
                shutil.copyfileobj(fin, fout, 1 << 20)
            build_data["force_include"][str(packed)] = f"gradsel_cli/_results/{packed.name}"

    def finalize(self, version, build_data, artifact_path):
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
