"""The command line: Click commands (commands.py), their options, the steps around their work, errors."""

from .commands import cli

__all__ = ["cli"]
