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

from rich.table import Table

from harness.console import consoles

# Modules that contribute subcommands: each defines register_cli(subparsers).
_FEATURE_CLIS: tuple[str, ...] = (
    "harness.dashboard.cli",
    "harness.gate.cli",
    "harness.arch.cli",
    "harness.telemetry.check",
    "harness.results_cli",
    "harness.interop.cli",
)

console, err_console = consoles()


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
    from harness.plan import describe
    from harness.suite import load_suite

    if args.json:
        import json

        from harness.cells import cells_json, plan_cells

        suite = load_suite(args.suite)
        print(
            json.dumps(
                cells_json(suite, plan_cells(suite, args.model or None, args.endpoint, _gpu_list(args))),
                indent=2,
            )
        )
        return 0
    from harness.cells import plan_cells

    cells = plan_cells(
        load_suite(args.suite), args.model or None, endpoint=args.endpoint, endpoint_gpus=_gpu_list(args)
    )
    for cell in cells:
        lines = describe(cell.plan)
        lines.insert(1, f"  cell:    {cell.index} (fingerprint {cell.fingerprint})")
        console.print("\n".join(lines), highlight=False, markup=False)
    console.print(f"{len(cells)} run(s) planned; nothing was started.")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.api import run_campaign
    from harness.executors.base import CellEvent, describe_event
    from harness.report import print_summary

    def on_event(event: CellEvent) -> None:
        # The local executor draws progress bars for its one running cell; a cluster's cells get lines.
        if args.executor != "local" or event.state in ("skipped", "failed"):
            err_console.print(describe_event(event), highlight=False, soft_wrap=True)

    campaign = run_campaign(
        args.suite,
        models=args.model or None,
        results=Path(args.results),
        endpoint=args.endpoint,
        progress=not args.no_progress,
        executor=args.executor,
        ray_address=args.ray_address,
        cell=args.cell,
        resume=args.resume,
        on_event=on_event,
        endpoint_gpus=_gpu_list(args),
    )
    records = campaign.records
    print_summary(records, Path(args.results), console)
    if args.resume:
        done = len(campaign.skipped)
        if not records:
            console.print(
                f"nothing to run: all {done} cell(s) already have an ok record in {args.results} (--resume)"
            )
        else:
            console.print(f"resumed: ran {len(records)} cell(s), skipped {done} with an ok record")
    return 0 if all(r.status == "ok" for r in records) else 1


def _gpu_list(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(g.strip() for g in (args.endpoint_gpus or "").split(",") if g.strip())


_ENDPOINT_GPUS_HELP = (
    "GPU UUIDs (nvidia-smi -L) that the --endpoint server runs on, comma-separated; "
    "without it an endpoint's GPU energy and memory are null"
)


def _cmd_merge(args: argparse.Namespace) -> int:
    from harness.merge import merge_results

    report = merge_results([Path(d) for d in args.dirs], Path(args.results))
    for item in report.items:
        if item.outcome != "added" or args.verbose:
            console.print(f"{item.outcome}: {item.source}" + (f" ({item.detail})" if item.detail else ""))
    console.print(f"merged into {args.results}: {report.summary()}", highlight=False)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"harness {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model presets")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("plan", help="print the runs a suite would make, starting nothing")
    p.add_argument("suite", help="suite name (smoke, standard, or ./suites/<name>.yaml) or a path")
    p.add_argument("--model", action="append", help="preset name or checkpoint dir (repeatable)")
    p.add_argument("--endpoint", help="measure an already-running OpenAI-compatible server")
    p.add_argument("--endpoint-gpus", metavar="UUID,...", help=_ENDPOINT_GPUS_HELP)
    p.add_argument("--json", action="store_true", help="print the cells and their fingerprints as JSON")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("run", help="run a suite: accuracy and performance from one engine load")
    p.add_argument("suite", help="suite name (smoke, standard, or ./suites/<name>.yaml) or a path")
    p.add_argument("--model", action="append", help="preset name or checkpoint dir (repeatable)")
    p.add_argument("--endpoint", help="base URL of an already-running OpenAI-compatible server")
    p.add_argument("--endpoint-gpus", metavar="UUID,...", help=_ENDPOINT_GPUS_HELP)
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where cells run (default: local)"
    )
    p.add_argument(
        "--ray-address", help="Ray cluster: auto (default), HOST:PORT or ray://HOST:10001 (--executor ray)"
    )
    p.add_argument("--cell", help="run one cell only, by index or fingerprint (see `harness plan --json`)")
    p.add_argument("--resume", action="store_true", help="skip cells that already have an ok record")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("merge", help="fold results folders (e.g. from a job array) into one store")
    p.add_argument("dirs", nargs="+", help="results folders, runs/ folders or run folders")
    p.add_argument("--results", default="results", help="store to merge into (default: results)")
    p.add_argument("--verbose", action="store_true", help="also list every run added")
    p.set_defaults(func=_cmd_merge)

    for module in _FEATURE_CLIS:
        importlib.import_module(module).register_cli(sub)
    return parser


def _version() -> str:
    from harness import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    from harness.executors.base import ExecutorError
    from harness.models import UnknownModelError
    from harness.suite import SuiteError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SuiteError, UnknownModelError, FileNotFoundError, IndexError, ExecutorError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
