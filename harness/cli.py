"""harness: accuracy, speed, memory and energy of open LLMs from one vLLM load.

Start with `harness plan smoke` (a CPU run of tiny built-in models) or, on a GPU,
`harness plan standard --model mistral-7b` to see whether it fits and how long it takes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from harness.commands.parsing import SuggestingParser, silence_broken_pipe, suggest

# The command table: name -> ("module:function", one-line help). The module is imported only when
# its command runs (or its --help is asked for); the function adds the command to the subparsers
# (an existing register_cli(subparsers) works as is). Adding a command is one line here.
_COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("harness.commands.core:register", "list the model presets"),
    "plan": (
        "harness.commands.core:register",
        "show the runs a suite would make, whether they fit, and how long they take",
    ),
    "run": ("harness.commands.core:register", "run a suite: accuracy and performance from one engine load"),
    "runs": ("harness.commands.results:register_cli", "list the runs under the results folder"),
    "show": ("harness.commands.results:register_cli", "print one run's provenance and results"),
    "compare": ("harness.commands.results:register_cli", "two or more runs side by side, with deltas"),
    "dashboard": ("harness.dashboard.cli:register_cli", "write the HTML pages (open dashboards/index.html)"),
    "gate": (
        "harness.commands.gate:register_cli",
        "compare a run with its baseline: exit 0 pass, 1 regression, 2 cannot compare",
    ),
    "baseline": (
        "harness.commands.gate:register_cli",
        "promote a run to the baseline of its model, suite, hardware",
    ),
    "arch": (
        "harness.arch.cli:register_cli",
        "parameters, KV cache, GPU fit and roofline of a model, offline",
    ),
    "export": ("harness.commands.results:register_cli", "write the results as Parquet or CSV tables"),
    "merge": ("harness.commands.core:register", "fold results folders (e.g. from a job array) into one"),
    "schema": ("harness.commands.results:register_cli", "print or check the run record's JSON Schema"),
    "telemetry-check": (
        "harness.telemetry.check:register_cli",
        "prove NVML energy readings on this GPU (~2 min)",
    ),
    "decide": (
        "harness.commands.decide:register_cli",
        "which model and technique to ship at your SLO, and what each answer costs",
    ),
    "import": (
        "harness.interop.cli:register_cli",
        "bring in results of vllm bench serve, GuideLLM, AIPerf or lm-eval as runs",
    ),
    "claims": (
        "harness.claims.cli:register_cli",
        "each efficiency claim of the model families against what was measured",
    ),
}

# Older form: modules whose register_cli(subparsers) adds commands not named in _COMMANDS. They are
# imported on every call, so `harness --help` pays for their imports: prefer a _COMMANDS line.
_FEATURE_CLIS: tuple[str, ...] = ()


def _register(sub: Any, target: str, done: set[str]) -> None:
    if target in done:
        return
    done.add(target)
    module, _, func = target.partition(":")
    getattr(importlib.import_module(module), func or "register_cli")(sub)


def _add_examples(sub: Any) -> None:
    from harness.commands.examples import EXAMPLES

    for name, parser in sub.choices.items():
        if parser.epilog is None and name in EXAMPLES:
            parser.epilog = "example:\n  " + EXAMPLES[name]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `harness` parser with every command's full parser; with `only`, just that command's
    (`""`: none), the others listed by their one-line help, enough for `harness --help`."""
    parser = SuggestingParser(
        prog="harness",
        description=__doc__,
        epilog="Run `harness COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"harness {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    done: set[str] = set()
    wanted = list(_COMMANDS) if only is None else [only] if only in _COMMANDS else []
    for name in wanted:
        _register(sub, _COMMANDS[name][0], done)
    for module in _FEATURE_CLIS:
        _register(sub, module, done)
    for name, (_, help_text) in _COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_text)  # a placeholder: listed in --help, never parsed
    # Keep the table's order (a register function may add its commands in another order).
    sub._choices_actions.sort(key=lambda a: list(_COMMANDS).index(a.dest) if a.dest in _COMMANDS else 99)
    _add_examples(sub)
    return parser


def _version() -> str:
    from harness.version import __version__

    return __version__


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in argv (the first word that is not an option), else None."""
    for word in argv:
        if not word.startswith("-"):
            return word
        if word in ("-h", "--help", "--version"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    known = set(_COMMANDS)
    if command is not None and command not in known and not _FEATURE_CLIS:
        print(f"harness: unknown command {command!r}{suggest(command, known)}", file=sys.stderr)
        print("run `harness --help` for the list of commands", file=sys.stderr)
        return 2
    parser = build_parser(command or "")
    try:
        args = parser.parse_args(argv)
        code = _dispatch(args)
        sys.stdout.flush()  # here, so a reader that left (`| head`) is caught below, not at exit
        return code
    except BrokenPipeError:  # `harness runs | head`: the reader left; that is not an error
        silence_broken_pipe()
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from harness.console import consoles
    from harness.executors.base import ExecutorError
    from harness.model.presets import UnknownModelError
    from harness.spec.suite import SuiteError

    err_console = consoles()[1]
    try:
        return int(args.func(args))
    except (SuiteError, UnknownModelError, FileNotFoundError, IndexError, ExecutorError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
