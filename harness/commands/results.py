"""Commands that read results: `harness runs`, `show`, `compare`, `export`, and `schema`.

Thin: each parses its arguments, calls harness.analysis.tables, harness.analysis.compare or harness.record.run_record, and
prints through harness.commands.report (or as JSON with --json). A missing results folder exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands.parsing import add_json_flag, print_json, require_results

if TYPE_CHECKING:
    from rich.console import Console

    from harness.record.run_record import RunRecord


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def results_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--results", default="results", help="results folder (default: results)")

    p = sub.add_parser("runs", help="list the runs under the results folder")
    results_arg(p)
    p.add_argument("--model", help="only this model (preset name, or a local checkpoint's name or path)")
    p.add_argument("--suite", help="only this suite")
    p.add_argument("--status", choices=("ok", "failed"), help="only runs with this status")
    add_json_flag(p, "each run's id, model, suite, hardware, status and headline figures")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("show", help="print one run's provenance and results")
    p.add_argument("run", help="run id, unique id prefix, run folder or record.json path")
    results_arg(p)
    add_json_flag(p, "the whole record")
    p.add_argument(
        "--definitions",
        choices=("vllm", "guidellm", "aiperf"),
        help="recompute each scenario's headline figures from its request rows under this tool's definitions",
    )
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "compare",
        help="two or more runs side by side, with deltas",
        description="Two or more runs side by side, with deltas against the first; or, with --suite and "
        "--model, every technique variant of a model against its baseline variant.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids, id prefixes, folders or record paths")
    p.add_argument("--suite", help="with --model: compare the variants this suite ran")
    p.add_argument("--model", help="with --suite: the model preset whose variants to compare")
    results_arg(p)
    add_json_flag(p, "the provenance and every figure with its delta")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "export",
        help="write the results as Parquet or CSV tables",
        description="Write the results as two tables: runs x scenarios and runs x tasks. Exit 1 when "
        "there is no run to export.",
    )
    results_arg(p)
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="default: parquet")
    p.add_argument("--out", required=True, help="folder for runs.<format> and tasks.<format>")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("schema", help="print or check the run record's JSON Schema")
    p.add_argument("--out", help="write it to this file instead of printing it")
    p.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 if FILE differs from the schema the models give (e.g. schema/run_record.v4.json)",
    )
    p.set_defaults(func=_cmd_schema)


def _console() -> Console:
    from harness.console import consoles

    return consoles()[0]


def _read(results: str, run: str) -> tuple[Path, RunRecord]:
    from harness.storage.store import find_run, read_record

    run_dir = find_run(Path(results), run)
    try:
        return run_dir, read_record(run_dir)
    except ValueError as exc:  # unreadable or newer record: name it, like a missing one
        raise FileNotFoundError(str(exc)) from exc


def _run_summary(rec: RunRecord) -> dict[str, Any]:
    from harness.analysis.tables import model_label
    from harness.record.hardware import hardware_label

    return {
        "run_id": rec.run_id,
        "started_at": rec.started_at.isoformat(),
        "model": model_label(rec),
        "variant": rec.variant.name if rec.variant else None,
        "suite": rec.suite.name,
        "hardware": hardware_label(rec.environment),
        "status": rec.status,
        "tasks": list(rec.tasks),
        "scenarios": list(rec.scenarios),
        "duration_s": rec.duration_s,
    }


def _cmd_runs(args: argparse.Namespace) -> int:
    import warnings

    from harness.analysis.tables import select_runs
    from harness.commands.report import print_runs

    require_results(args.results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = select_runs(args.results, model=args.model, suite=args.suite, status=args.status)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.json:
        print_json([_run_summary(r) for r in records])
    else:
        print_runs(records, _console())
    if not records:
        wanted = [
            f"{k} {v!r}"
            for k, v in (("model", args.model), ("suite", args.suite), ("status", args.status))
            if v
        ]
        print(
            f"no runs under {args.results}" + (f" match {', '.join(wanted)}" if wanted else ""),
            file=sys.stderr,
        )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from harness.commands.report import print_record

    run_dir, rec = _read(args.results, args.run)
    if args.json:
        print_json(rec.model_dump(mode="json"))
        return 0
    print_record(rec, run_dir, _console())
    if getattr(args, "definitions", None):
        from harness.interop.cli import print_definitions

        print_definitions(rec, run_dir, args.definitions, _console())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.analysis.compare import compare_records
    from harness.commands.comparing import comparison_json, noise_hints
    from harness.commands.report import print_comparison

    if args.suite or args.model:
        if not (args.suite and args.model) or args.runs:
            print("error: compare --suite S --model M takes both options and no run ids", file=sys.stderr)
            return 2
        from harness.commands.techniques import compare_variants

        require_results(args.results)
        return compare_variants(Path(args.results), args.suite, args.model, _console(), as_json=args.json)
    if len(args.runs) < 2:
        print("error: compare needs two or more runs (the first is the reference)", file=sys.stderr)
        return 2
    records = [_read(args.results, run)[1] for run in args.runs]
    comparison = compare_records(records)
    if args.json:
        print_json(comparison_json(comparison))
        return 0
    console = _console()
    print_comparison(comparison, console)
    for hint in noise_hints(comparison):
        console.print(f"[yellow]{hint}[/]", highlight=False)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import warnings

    from harness.analysis.tables import export_tables, select_runs

    require_results(args.results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if not select_runs(args.results):
            print(f"error: no runs under {args.results} to export; nothing written", file=sys.stderr)
            return 1
        paths = export_tables(args.results, args.out, args.format)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from harness.record.run_record import SCHEMA_VERSION, record_json_schema_text

    text = record_json_schema_text()
    if args.check:
        path = Path(args.check)
        if not path.is_file() or path.read_text() != text:
            print(
                f"{path} does not match the record models (schema v{SCHEMA_VERSION}); regenerate it with "
                f"`harness schema --out {path}` and review the change (does it need a version bump?)",
                file=sys.stderr,
            )
            return 1
        print(f"{path} matches the record models (schema v{SCHEMA_VERSION})")
        return 0
    if args.out:
        from harness.storage.store import atomic_write_text

        atomic_write_text(Path(args.out), text)
        print(f"wrote {args.out}")
        return 0
    sys.stdout.write(text)
    return 0
