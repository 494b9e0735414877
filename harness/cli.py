"""The `harness` command: parse arguments, call the Python API, print. Nothing else lives here.

Feature modules add their own subcommands through a ``register_cli(subparsers)`` function
(listed in ``_FEATURE_CLIS``); each sets ``func`` to a callable ``(args) -> int`` exit code.
Those modules import their heavy dependencies inside the functions, so `harness --help`
stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

# Modules that contribute subcommands: each defines register_cli(subparsers).
_FEATURE_CLIS: tuple[str, ...] = (
    "harness.dashboard.cli",
    "harness.gate_cli",
    "harness.arch.cli",
    "harness.telemetry.check",
)

console = Console()
if not console.is_terminal:  # logs and CI: wide enough that result tables do not wrap
    console = Console(width=160)
err_console = Console(stderr=True)


def _cmd_models(args: argparse.Namespace) -> int:
    from harness.models import PRESETS

    table = Table(title="Model presets")
    for col in ("name", "family", "source", "hub id", "engine args", "features"):
        table.add_column(col)
    for p in PRESETS.values():
        table.add_row(
            p.name,
            p.family,
            p.source + (" (gated)" if p.gated else ""),
            p.hub_id or "-",
            " ".join(p.engine.as_cli()),
            ", ".join(p.features),
        )
    console.print(table)
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from harness.plan import describe, plan_runs
    from harness.suite import load_suite

    plans = plan_runs(
        load_suite(args.suite), args.model or None, endpoint=args.endpoint, endpoint_gpus=_gpu_list(args)
    )
    for plan in plans:
        console.print("\n".join(describe(plan)), highlight=False)
    console.print(f"{len(plans)} run(s) planned; nothing was started.")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.api import run_suite
    from harness.report import print_summary

    records = run_suite(
        args.suite,
        models=args.model or None,
        results=Path(args.results),
        endpoint=args.endpoint,
        progress=not args.no_progress,
        endpoint_gpus=_gpu_list(args),
    )
    print_summary(records, Path(args.results), console)
    return 0 if all(r.status == "ok" for r in records) else 1


def _gpu_list(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(g.strip() for g in (args.endpoint_gpus or "").split(",") if g.strip())


_ENDPOINT_GPUS_HELP = (
    "GPU UUIDs (nvidia-smi -L) that the --endpoint server runs on, comma-separated; "
    "without it an endpoint's GPU energy and memory are null"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"harness {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model presets")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("plan", help="print the runs a suite would make, starting nothing")
    p.add_argument("suite", help="suite name (suites/<name>.yaml) or path")
    p.add_argument("--model", action="append", help="preset name or checkpoint dir (repeatable)")
    p.add_argument("--endpoint", help="measure an already-running OpenAI-compatible server")
    p.add_argument("--endpoint-gpus", metavar="UUID,...", help=_ENDPOINT_GPUS_HELP)
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("run", help="run a suite: accuracy and performance from one engine load")
    p.add_argument("suite", help="suite name (suites/<name>.yaml) or path")
    p.add_argument("--model", action="append", help="preset name or checkpoint dir (repeatable)")
    p.add_argument("--endpoint", help="base URL of an already-running OpenAI-compatible server")
    p.add_argument("--endpoint-gpus", metavar="UUID,...", help=_ENDPOINT_GPUS_HELP)
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_run)

    for module in _FEATURE_CLIS:
        importlib.import_module(module).register_cli(sub)
    return parser


def _version() -> str:
    from harness import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    from harness.models import UnknownModelError
    from harness.suite import SuiteError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SuiteError, UnknownModelError, FileNotFoundError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
