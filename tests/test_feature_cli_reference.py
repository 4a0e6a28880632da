"""docs/cli.md is the --help of every command; it must be regenerated when an option or docstring changes."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "gen_cli_reference.py"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render_fresh(columns: str = "80") -> str:
    """The reference rendered in a new process: Click keeps each command's help option once made, so a test
    that invoked a command on its own (without the group's -h) would change what this process renders."""
    code = f"import runpy; print(runpy.run_path({str(SCRIPT)!r})['render'](), end='')"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"COLUMNS": columns, "PATH": "", "PYTHONPATH": str(ROOT)},
    ).stdout


def test_cli_reference_is_current():
    stored = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert _render_fresh() == stored, "docs/cli.md is stale: run python docs/gen_cli_reference.py"


def test_cli_reference_covers_every_command():
    from gradsel_cli.cli.commands import cli

    text = _generator().render()
    for name in cli.commands:
        assert f"\n## gradsel {name}\n" in text
        assert f"Usage: gradsel {name} [OPTIONS]" in text


def test_cli_reference_does_not_depend_on_the_terminal():
    assert _render_fresh("40") == _render_fresh("200")


def test_rendering_the_reference_does_not_import_numba():
    code = f"import runpy, sys; runpy.run_path({str(SCRIPT)!r})['render'](); print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
