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


def test_cli_reference_is_current():
    stored = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert _generator().render() == stored, "docs/cli.md is stale: run python docs/gen_cli_reference.py"


def test_cli_reference_covers_every_command():
    from gradsel_cli.cli import cli

    text = _generator().render()
    for name in cli.commands:
        assert f"\n## gradsel {name}\n" in text
        assert f"Usage: gradsel {name} [OPTIONS]" in text


def test_cli_reference_does_not_depend_on_the_terminal():
    code = f"import runpy; print(runpy.run_path({str(SCRIPT)!r})['render'](), end='')"
    env_widths = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                                 env={"COLUMNS": cols, "PATH": "", "PYTHONPATH": str(ROOT)}).stdout
                  for cols in ("40", "200")]
    assert env_widths[0] == env_widths[1] == _generator().render()


def test_rendering_the_reference_does_not_import_numba():
    code = (f"import runpy, sys; runpy.run_path({str(SCRIPT)!r})['render'](); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
