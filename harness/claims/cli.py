"""``harness claims``: every claim of the registry with its verdict, evidence and what is missing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "claims",
        help="the efficiency claims (sliding window, GQA, MoE, MLA, quantization, ...) against measured runs",
        description=(
            "One row per claim of harness/claims/registry.yaml: holds, does not hold, inconclusive, or not "
            "measured here with the reason (a GPU, Hub weights, runs to make), the evidence and the runs. "
            "`harness run claims-cpu` measures the mechanism claims on a CPU in minutes."
        ),
    )
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--registry", help="a claims registry file (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="print the verdicts and their figures as JSON")
    p.set_defaults(func=_cmd_claims)


def _cmd_claims(args: argparse.Namespace) -> int:
    from harness.claims.evaluate import evaluate_claims
    from harness.claims.spec import RegistryError, load_registry
    from harness.console import consoles

    console, err_console = consoles()
    try:
        registry = load_registry(Path(args.registry) if args.registry else None)
    except RegistryError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=False)
        return 2
    results = evaluate_claims(Path(args.results), registry)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2, default=str))
        return 0
    for line in render(results):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def verdict_label(result: Any) -> str:
    """E.g. ``holds (in part; mechanism)``."""
    notes = []
    if result.partial:
        notes.append("in part")
    scopes = sorted({p.scope for p in result.parts if p.scope})
    if scopes == ["mechanism"]:
        notes.append("tiny models")
    return result.verdict + (f" ({'; '.join(notes)})" if notes else "")


def render(results: list[Any]) -> list[str]:
    """Plain text: a summary row per claim, one block per claim, then the measured context sweeps."""
    width = max(len(r.id) for r in results) if results else 5
    lines = [f"{'claim':<{width}}  {'verdict':<32}  parts measured", "-" * (width + 52)]
    for r in results:
        done = [p.name for p in r.parts if p.scope]
        lines.append(f"{r.id:<{width}}  {verdict_label(r):<32}  {len(done)}/{len(r.parts)} {', '.join(done)}")
    lines.append("")
    for r in results:
        lines.append(f"{r.id}: {verdict_label(r).upper()}")
        lines.append(f"  claim    {r.statement}")
        lines.append(f"  source   {r.source_title} <{r.source_url}>")
        for p in r.parts:
            where = f", {p.scope}" if p.scope else ""
            lines.append(f"  - {p.name}: {p.verdict}{where}")
            if p.scope:
                lines.append(f"      evidence  {p.evidence}")
                lines.append(f"      runs      {', '.join(p.runs)}")
                if p.note:
                    lines.append(f"      note      {p.note}")
            for why in p.not_measured:
                lines.append(f"      to measure {why}")
        lines.append("")
    for r in results:
        for p in r.parts:
            sweep = p.figures.get("sweep")
            if sweep:
                lines += sweep_table(r.id, p.figures)
    return lines


def sweep_table(claim_id: str, figures: dict[str, Any]) -> list[str]:
    """KV per sequence against context: measured beside the prediction with and without the window."""
    out = [
        f"{claim_id}: KV cache per sequence against context (tokens; window {figures.get('window')}, "
        f"block {figures.get('block_size')}, bound {figures.get('bound_tokens')})",
        "  measured: engine KV gauge × slots ÷ running sequences, median over decode polls; predicted: "
        "'no window' every token, 'window' min(context, window), 'blocks' vLLM's whole-block accounting "
        "halfway through decode",
        f"  {'model':<14} {'scenario':<10} {'context':>7} {'measured':>9} {'peak':>6} {'polls':>5} "
        f"{'no window':>9} {'window':>7} {'blocks':>7} {'KV MiB':>7} {'TTFT ms':>8} {'TPOT ms':>8}",
    ]

    def num(x: float | None, fmt: str = ".0f") -> str:
        return "—" if x is None else format(x, fmt)

    for model, points in figures["sweep"].items():
        for pt in points:
            kv_mib = pt["measured_kv_bytes"] / 2**20 if pt["measured_kv_bytes"] is not None else None
            out.append(
                f"  {model:<14} {pt['scenario']:<10} {pt['context_tokens']:>7} {num(pt['measured_kv_tokens']):>9} "
                f"{num(pt['peak_kv_tokens']):>6} {pt['polls']:>5} {pt['predicted_tokens_full']:>9} "
                f"{num(pt['predicted_tokens_windowed']):>7} {num(pt.get('predicted_tokens_blocks')):>7} {num(kv_mib, '.2f'):>7} "
                f"{num(pt['median_ttft_ms'], '.1f'):>8} {num(pt['median_tpot_ms'], '.2f'):>8}"
            )
    out.append("")
    return out
