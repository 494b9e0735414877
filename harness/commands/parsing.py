"""An argparse parser that suggests the nearest command or flag, and helpers every command shares.

Kept free of heavy imports: `harness --help` imports this module and nothing else of the harness.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `choices` to `word`, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=2, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(close)}?)"


class _Formatter(argparse.HelpFormatter):
    """Wraps prose to the terminal, keeps indented lines (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        out: list[str] = []
        prose: list[str] = []

        def flush() -> None:
            if prose:
                out.append(
                    textwrap.fill(" ".join(prose), width, initial_indent=indent, subsequent_indent=indent)
                )
                prose.clear()

        for line in text.splitlines():
            if not line.strip() or line.startswith(" "):
                flush()
                out.append(indent + line)
            else:
                prose.append(line.strip())
        flush()
        return "\n".join(out)


class SuggestingParser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for an unknown flag or command, and examples kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def _all_flags(self) -> list[str]:
        flags = [s for a in self._actions for s in a.option_strings]
        for action in self._actions:  # the chosen subcommand's flags too (its parser reports them)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    flags += [s for a in sub._actions for s in a.option_strings]
        return flags

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            flags = self._all_flags()
            hints = []
            for token in message.removeprefix("unrecognized arguments: ").split():
                if token.startswith("-") and (hint := suggest(token.split("=")[0], flags)):
                    hints.append(f"{token}{hint}")
            if hints:
                message += "; " + "; ".join(hints)
        elif message.startswith("argument ") and "invalid choice:" in message:
            word = message.split("invalid choice: ", 1)[1].split(" ", 1)[0].strip("'")
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction):
                    message += suggest(word, action.choices)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_json_flag(p: argparse.ArgumentParser, what: str = "the same content") -> None:
    """The `--json` flag every listing command takes."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON (for jq and scripts)")


def print_json(data: Any) -> None:
    """Indented JSON on stdout; dates, paths and other objects as strings."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def require_results(results: str | Path) -> Path:
    """The results folder, or FileNotFoundError naming it (the CLI exits 2 for it)."""
    path = Path(results)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no results folder at {path} (pass --results DIR, or run `harness run smoke` to make one)"
        )
    return path


def silence_broken_pipe() -> None:
    """After `| head` closed stdout: point stdout at /dev/null so the exit flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (tests capture it)
        pass
