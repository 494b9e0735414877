"""`harness import KIND PATH...` and the table behind `harness show RUN --definitions TOOL`.

Thin: the readers parse, :func:`harness.interop.writer.write_import` writes, this prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from harness.interop.common import ImportedRun
    from harness.record.run_record import RunRecord

KINDS = ("vllm-bench", "guidellm", "aiperf", "lm-eval")


def reader(kind: str) -> Callable[[Path], ImportedRun]:
    """The parser of one kind of file (imported on demand)."""
    if kind == "vllm-bench":
        from harness.interop.vllm_bench import read_vllm_bench

        return read_vllm_bench
    if kind == "guidellm":
        from harness.interop.guidellm import read_guidellm

        return read_guidellm
    if kind == "aiperf":
        from harness.interop.aiperf import read_aiperf

        return read_aiperf
    if kind == "lm-eval":
        from harness.interop.lmeval_folder import read_lmeval_folder

        return read_lmeval_folder
    raise ValueError(f"unknown import kind {kind!r}; one of {', '.join(KINDS)}")


def import_files(
    kind: str, paths: list[Path], results: Path, *, hardware: str | None = None, suite: str | None = None
) -> list[Path]:
    """Import every path as one run each; all are parsed before any is written.

    Raises ImportFormatError (file, field, what was expected) and writes nothing when one fails.
    """
    from harness.interop.writer import write_import

    read = reader(kind)
    runs = [read(Path(p)) for p in paths]
    return [write_import(run, results, hardware=hardware, suite=suite) for run in runs]


def register_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "import",
        help="import another tool's results (vllm bench, GuideLLM, AIPerf, lm-eval) as runs",
        description="Each PATH becomes one run record under --results, marked as imported (its source "
        "tool, version and file checksum kept); figures are recomputed from the file's per-request rows.",
    )
    p.add_argument("kind", choices=KINDS, help="what wrote the files")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="vllm-bench: --save-result JSON; guidellm: benchmarks JSON/YAML; aiperf: export folder or "
        "profile_export_aiperf.json; lm-eval: --output_path folder or results_*.json",
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--hardware", help="what served the runs (e.g. '1x H100 80GB'); unknown when not given")
    p.add_argument("--suite", help="suite name to file the runs under (default: imported-<kind>)")
    p.set_defaults(func=_cmd_import)


def _cmd_import(args: argparse.Namespace) -> int:
    from harness.interop.common import ImportFormatError

    try:
        dirs = import_files(
            args.kind,
            [Path(p) for p in args.paths],
            Path(args.results),
            hardware=args.hardware,
            suite=args.suite,
        )
    except ImportFormatError as exc:
        print(f"error: {exc} (nothing imported)", file=sys.stderr)
        return 1
    for d in dirs:
        print(f"imported {d.name}  ({d})")
    return 0


def definitions_rows(
    record: RunRecord, run_dir: Path, tool: str
) -> list[tuple[str, dict[str, float | None]]]:
    """Per scenario: the headline figures under ``tool``'s definitions, from the request table."""
    from harness.interop.definitions import figures
    from harness.loadgen.client import requests_from_parquet

    out: list[tuple[str, dict[str, float | None]]] = []
    for s in record.scenarios:
        if not s.requests_path or not (run_dir / s.requests_path).is_file():
            out.append((s.name, {}))
            continue
        rows = requests_from_parquet(run_dir / s.requests_path)
        out.append((s.name, figures(tool, rows, s.duration)))  # type: ignore[arg-type]
    return out


def print_definitions(record: RunRecord, run_dir: Path, tool: str, console: Console) -> None:
    """The table of `harness show RUN --definitions TOOL`: ours beside the file's own, if imported."""
    from rich.table import Table

    from harness.interop.definitions import FIGURES

    own = record.source.tool_figures if record.source else {}
    names = {"vllm": "vllm-bench", "guidellm": "guidellm", "aiperf": "aiperf"}
    table = Table(title=f"{record.run_id}: figures under {tool}'s definitions (docs/definitions.md)")
    table.add_column("scenario")
    table.add_column("figure")
    table.add_column(f"recomputed ({tool})", justify="right")
    same_tool = record.source is not None and record.source.tool == names[tool]
    if same_tool:
        table.add_column("the file's own", justify="right")
    for name, figs in definitions_rows(record, run_dir, tool):
        if not figs:
            table.add_row(name, "(no request table)", "—")
            continue
        for key in FIGURES:
            row = [name, key, _fmt(figs.get(key))]
            if same_tool:
                row.append(_fmt(own.get(name, {}).get(key)))
            table.add_row(*row)
    console.print(table)


def _fmt(x: float | None) -> str:
    return "null" if x is None else f"{x:.6g}"
