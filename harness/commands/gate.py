"""`harness gate` and `harness baseline`: find the runs, call harness.gate, print, exit.

Exit codes: 0 nothing regressed, 1 a regression (or a failed candidate run), 2 the
comparison cannot be made (no baseline, mismatched configuration, unreadable record, bad
thresholds). `--junit` and `--summary` are written in every one of those cases, so a CI job
always has something to show.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

# Only what `harness gate --help` needs is imported here: the gate, the records (pydantic) and the
# statistics (numpy) are imported by the command that uses them, so --help stays fast
# (benchmarks/cli_startup.py; tests/unit/test_cli_imports.py).
if TYPE_CHECKING:
    from rich.console import Console

    from harness.gate import GateReport
    from harness.record.run_record import RunRecord


def resolve_candidate(
    results: Path,
    run: str | None = None,
    model: str | None = None,
    suite: str | None = None,
    warn: Console | None = None,
) -> RunRecord:
    """The record of `run` (id, id prefix, folder or record file), else the latest matching run
    of the run index (:mod:`harness.storage.index`): only that record is read.

    Raises FileNotFoundError when no run matches and ValueError for an unreadable record.
    """
    from rich.markup import escape

    from harness.storage.index import run_index
    from harness.storage.store import find_run, latest_run, read_record

    if run is not None:
        return read_record(find_run(results, run))
    idx = run_index(results)
    if warn is not None:
        for problem in idx.problems:
            warn.print(f"[yellow]warning:[/] skipped {escape(problem)}", highlight=False, soft_wrap=True)
    record = latest_run(idx, model, suite)
    if record is None:
        which = " and ".join(x for x in (model and f"model {model!r}", suite and f"suite {suite!r}") if x)
        raise FileNotFoundError(
            f"no runs under {Path(results) / 'runs'}" + (f" for {which}" if which else "")
        )
    return record


def gate_runs(
    results: Path,
    candidate: RunRecord,
    baseline: str | Path | None = None,
    allow_mismatch: bool = False,
    candidate_dir: Path | None = None,
    inconclusive: str = "fail",
    family: str = "holm",
) -> GateReport:
    """Compare `candidate` with the baseline at `baseline` (a record file or run folder), or with
    the committed baseline of its (model, suite, hardware). Raises BaselineError, GateError or
    ValueError when the comparison cannot be made."""
    from harness.gate import compare
    from harness.rigor.compare import samples_dir_of
    from harness.storage.baseline import baseline_path, find_baseline
    from harness.storage.store import read_record, runs_dir

    base = read_record(Path(baseline)) if baseline is not None else find_baseline(results, candidate)
    base_file = Path(baseline) if baseline is not None else baseline_path(results, candidate)
    cand_dir = candidate_dir or runs_dir(results) / candidate.run_id
    samples = (samples_dir_of(base_file), samples_dir_of(cand_dir))
    return compare(
        base,
        candidate,
        allow_mismatch=allow_mismatch,
        samples=samples,
        inconclusive="pass" if inconclusive == "pass" else "fail",
        family="bh" if family == "bh" else ("none" if family == "none" else "holm"),
    )


def _write_outputs(args: argparse.Namespace, junit: str, markdown: str) -> None:
    from harness.storage.store import atomic_write_text

    if args.junit:
        atomic_write_text(Path(args.junit), junit)
    if args.summary:
        atomic_write_text(Path(args.summary), markdown)


def cmd_gate(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from harness.console import consoles
    from harness.gate import (
        GateError,
        render_error_junit,
        render_error_markdown,
        render_junit,
        render_markdown,
        render_terminal,
    )
    from harness.storage.baseline import BaselineError
    from harness.storage.store import find_run

    out, err = consoles()
    results = Path(args.results)
    try:
        candidate = resolve_candidate(results, args.candidate, args.model, args.suite, warn=err)
        cand_dir = find_run(results, args.candidate) if args.candidate else None
        report = gate_runs(
            results,
            candidate,
            args.baseline,
            args.allow_mismatch,
            cand_dir,
            inconclusive=getattr(args, "inconclusive", "fail"),
            family=getattr(args, "family", "holm"),
        )
    except (GateError, BaselineError, ValueError, FileNotFoundError) as exc:
        message = str(exc)
        err.print(f"[bold yellow]REFUSED (exit 2):[/] {escape(message)}", highlight=False, soft_wrap=True)
        _write_outputs(args, render_error_junit(message), render_error_markdown(message))
        return 2
    if getattr(args, "json", False):
        import dataclasses
        import json
        import sys

        data = dataclasses.asdict(report) | {"status": report.status, "exit_code": report.exit_code}
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render_terminal(report, out)
    _write_outputs(args, render_junit(report), render_markdown(report))
    return report.exit_code


def cmd_baseline_set(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from harness.console import consoles
    from harness.record.hardware import hardware_label
    from harness.rigor.compare import copy_samples
    from harness.storage.baseline import BaselineError, set_baseline
    from harness.storage.store import find_run, runs_dir

    out, err = consoles()
    results = Path(args.results)
    if (args.run is None) == (not args.latest):
        err.print(
            "[bold red]error:[/] name a RUN or pass --latest (not both)", highlight=False, soft_wrap=True
        )
        return 2
    try:
        record = resolve_candidate(results, args.run, args.model, args.suite, warn=err)
        path, previous = set_baseline(results, record)
        # The sample logs travel with the baseline, so later gates compare accuracy per document.
        copy_samples(find_run(results, args.run) if args.run else runs_dir(results) / record.run_id, path)
    except (BaselineError, ValueError, FileNotFoundError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    out.print(
        f"baseline for model {record.model.preset}, suite {record.suite.name}, "
        f"{hardware_label(record.environment)}: run {record.run_id}",
        highlight=False,
        soft_wrap=True,
    )
    replaced = f" (replaces run {previous.run_id})" if previous is not None else ""
    out.print(f"wrote {path}{replaced}; commit it so CI gates against it", highlight=False, soft_wrap=True)
    return 0


def cmd_baseline_list(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from harness.console import consoles
    from harness.record.hardware import hardware_label
    from harness.storage.baseline import list_baselines

    out, err = consoles()
    if not Path(args.results).is_dir():
        err.print(f"[bold red]error:[/] no results folder at {escape(args.results)}", highlight=False)
        return 2
    entries = list_baselines(Path(args.results))
    if getattr(args, "json", False):
        import json
        import sys

        rows = [
            {"file": str(e.path), "problem": e.problem}
            | (
                {}
                if e.record is None
                else {
                    "model": e.record.model.preset,
                    "suite": e.record.suite.name,
                    "hardware": hardware_label(e.record.environment),
                    "run_id": e.record.run_id,
                    "started_at": e.record.started_at.isoformat(),
                }
            )
            for e in entries
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0 if all(e.record is not None for e in entries) else 2
    if not entries:
        out.print(f"no baselines under {Path(args.results) / 'baselines'}", highlight=False, soft_wrap=True)
        return 0
    table = Table(title="Baselines")
    for col in ("file", "model", "suite", "hardware", "run", "started"):
        table.add_column(col)
    for e in entries:
        r = e.record
        if r is None:
            table.add_row(e.path.name, f"[red]{e.problem}[/]", "", "", "", "")
        else:
            table.add_row(
                e.path.name,
                r.model.preset,
                r.suite.name,
                hardware_label(r.environment),
                r.run_id,
                r.started_at.isoformat(timespec="seconds"),
            )
    out.print(table)
    return 0 if all(e.record is not None for e in entries) else 2


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gate",
        help="compare a run with its baseline: exit 0 pass, 1 regression, 2 cannot compare",
        description="Compare a run with the committed baseline of its model, suite and hardware, "
        "metric by metric against thresholds and the runs' noise. Exit 0: nothing regressed; 1: a "
        "regression or a failed candidate run; 2: the comparison cannot be made. --junit and --summary "
        "are written in every case.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--candidate", metavar="RUN", help="run id, id prefix, run folder or record file")
    which.add_argument("--latest", action="store_true", help="the latest run (narrow with --model/--suite)")
    p.add_argument("--model", help="with --latest: only runs of this model preset")
    p.add_argument("--suite", help="with --latest: only runs of this suite")
    p.add_argument(
        "--baseline",
        metavar="PATH",
        help="baseline record file or run folder (default: results/baselines/...)",
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per metric")
    p.add_argument(
        "--summary", metavar="FILE", help="write the report as Markdown (e.g. $GITHUB_STEP_SUMMARY)"
    )
    p.add_argument(
        "--allow-mismatch", action="store_true", help="compare despite configuration differences (listed)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON (for jq and scripts)")
    p.add_argument(
        "--inconclusive",
        choices=("fail", "pass"),
        default="fail",
        help="what a verdict the noise cannot settle does: fail (exit 1, default) or pass",
    )
    p.add_argument(
        "--family",
        choices=("holm", "bh", "none"),
        default="holm",
        help="control over the run's checks: holm (family-wise, default), bh (false discovery rate), none",
    )
    p.set_defaults(func=cmd_gate)

    b = sub.add_parser("baseline", help="promote a run to the baseline of its model, suite and hardware")
    bsub = b.add_subparsers(dest="baseline_command", required=True)
    s = bsub.add_parser("set", help="write results/baselines/<model>__<suite>__<hardware>.json from a run")
    s.add_argument("run", nargs="?", help="run id, id prefix, run folder or record file")
    s.add_argument("--latest", action="store_true", help="the latest run (narrow with --model/--suite)")
    s.add_argument("--model", help="with --latest: only runs of this model preset")
    s.add_argument("--suite", help="with --latest: only runs of this suite")
    s.add_argument("--results", default="results", help="results folder (default: results)")
    s.set_defaults(func=cmd_baseline_set)
    ls = bsub.add_parser("list", help="list the baselines")
    ls.add_argument("--results", default="results", help="results folder (default: results)")
    ls.add_argument("--json", action="store_true", help="print the baselines as JSON (for jq and scripts)")
    ls.set_defaults(func=cmd_baseline_list)
