"""``harness dashboard``: build the HTML dashboard from a results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from harness.dashboard.build import build_dashboard

    report = build_dashboard(Path(args.results), Path(args.out), log=print, full=args.full)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(
        f"{report.index} and {len(report.pages) - 1} more page(s), {len(report.rebuilt)} rewritten: {report.runs} run(s) "
        f"({report.failed_runs} failed), {report.models} model(s), {report.leaderboard_rows} leaderboard row(s) "
        f"in {report.timings_s['total_s']:.2f} s; index {report.index_bytes / 1024:.0f} KiB"
        + (f"; {len(report.warnings)} warning(s)" if report.warnings else "")
    )
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "dashboard",
        help="write HTML leaderboards and comparison pages (open dashboards/index.html from disk)",
        description="Build static HTML pages (leaderboard, charts, one page per run) from run records.",
    )
    p.add_argument("--results", default="results", help="results folder to read (default: results)")
    p.add_argument("--out", default="dashboards", help="folder to write the pages into (default: dashboards)")
    p.add_argument(
        "--full",
        action="store_true",
        help="rewrite every page (default: only pages whose records or tables changed since the last build)",
    )
    p.set_defaults(func=_cmd_dashboard)
