"""The terminal consoles every subcommand prints through (rich)."""

from __future__ import annotations

from rich.console import Console


def consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles. Off a terminal (logs, CI) stdout is 160 columns wide, so
    result tables do not wrap."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)
    return out, Console(stderr=True)
