"""`python -m gradsel_cli`: the same as the `gradsel` command."""

from .cli import cli

cli()
