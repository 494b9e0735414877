"""`harness schema`: the run record's JSON Schema (and, as it grows, the commands that read results)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("schema", help="print or check the run record's JSON Schema")
    p.add_argument("--out", help="write it to this file instead of printing it")
    p.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 if FILE differs from the schema the models give (e.g. schema/run_record.v2.json)",
    )
    p.set_defaults(func=_cmd_schema)


def _cmd_schema(args: argparse.Namespace) -> int:
    from harness.records import SCHEMA_VERSION, record_json_schema_text

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
        from harness.store import atomic_write_text

        atomic_write_text(Path(args.out), text)
        print(f"wrote {args.out}")
        return 0
    sys.stdout.write(text)
    return 0
