"""Write docs/cli.md: the --help text of gradsel and of each of its commands.

Run from anywhere: ``python docs/gen_cli_reference.py``. The text is rendered at a fixed width
(WIDTH columns), so the file does not depend on the terminal it was made in; the test
``tests/test_feature_cli_reference.py`` regenerates it in memory and fails when the stored file differs.
Importing the CLI does not import Numba (the commands import their heavy modules when they run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

WIDTH = 80
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "cli.md"

HEADER = """\
# Command-line reference

Every command's `--help`, as printed at {width} columns. This page is generated
from the commands themselves: after changing an option or a docstring, run
`python docs/gen_cli_reference.py` (a test fails while this page is stale).
The [user guide](guide.md) explains what the commands are for.

"""


def _help(command: click.Command, name: str, parent: click.Context | None) -> tuple[str, click.Context]:
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(ctx), ctx


def render() -> str:
    """The whole of docs/cli.md, as a string."""
    from gradsel_cli.cli.commands import cli

    text, root_ctx = _help(cli, "gradsel", None)
    parts = [HEADER.format(width=WIDTH)]
    names = sorted(cli.commands)  # type: ignore[attr-defined]
    parts.append("Commands: " + ", ".join(f"[`{n}`](#gradsel-{n})" for n in names) + ".\n\n")
    parts.append(f"## gradsel\n\n```text\n{text.rstrip()}\n```\n")
    for name in names:
        command = cli.commands[name]  # type: ignore[attr-defined]
        text, _ = _help(command, name, root_ctx)
        parts.append(f"\n## gradsel {name}\n\n```text\n{text.rstrip()}\n```\n")
    return "".join(parts)


def main() -> int:
    text = render()
    if OUT.exists() and OUT.read_text(encoding="utf-8") == text:
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
