"""A decision as a terminal table, Markdown (for a PR comment) and JSON.

One table per (suite, hardware label). A missing figure prints as ``—`` and its reason is
listed under the table once per distinct reason, so nothing null goes unexplained.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from harness.decide.verdicts import Decided, Decision

MISSING = "—"


def _acc(d: Decided) -> str:
    r = d.row
    if r.accuracy is None:
        return MISSING
    ci = r.accuracy_ci95
    n = f"n={r.n_samples}" if r.n_samples is not None else "n=?"
    return f"{r.accuracy:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] {n}" if ci else f"{r.accuracy:.3f} {n}"


def _num(x: float | None, spec: str = ".3g") -> str:
    return MISSING if x is None else format(x, spec)


def _capacity(d: Decided) -> str:
    r = d.row
    if r.capacity is None:
        return MISSING
    unit = "req/s" if r.capacity_over == "request_rate" else "in flight"
    return f"{r.capacity:g} {unit} ({r.bound})"


def _label(d: Decided, ref: str | None) -> str:
    tags = []
    if d.row.key == ref:
        tags.append("ref")
    if d.row.random_weights:
        tags.append("random weights")
    return d.row.key + (f" [{', '.join(tags)}]" if tags else "")


def _verdict(d: Decided) -> str:
    return f"dominated by {d.dominated_by}" if d.verdict == "dominated" and d.dominated_by else d.verdict


def table_rows(dec: Decision) -> list[list[str]]:
    """The cells of a decision's table, one list per row (the column order of :data:`HEADERS`)."""
    out = []
    for d in dec.rows:
        r = d.row
        frontier = "$" if d.on_cost_frontier else ""
        frontier += "J" if d.on_energy_frontier else ""
        out.append(
            [
                _verdict(d),
                _label(d, dec.reference),
                _acc(d),
                r.accuracy_at,
                d.vs_reference.describe() if d.vs_reference else MISSING,
                _capacity(d),
                _num(r.tok_s_per_gpu if r.gpus else r.tok_s),
                _num(r.j_per_token),
                _num(r.j_per_correct),
                _num(r.usd_per_mtok),
                frontier or MISSING,
                d.reason,
            ]
        )
    return out


HEADERS = (
    "verdict",
    "model@variant",
    "accuracy [95% CI] n",
    "accuracy at",
    "vs reference",
    "capacity@SLO (bound)",
    "tok/s/GPU (CPU: run)",
    "J/tok",
    "J/correct",
    "$/Mtok",
    "front.",
    "reason",
)


def missing_reasons(dec: Decision) -> list[str]:
    """Each distinct reason a column is null, with the rows it applies to."""
    seen: dict[str, list[str]] = {}
    for d in dec.rows:
        r = d.row
        for col, value, why in (
            ("capacity", r.capacity, r.capacity_reason),
            ("tok/s per GPU", r.tok_s_per_gpu, r.tok_s_reason),
            ("J/token", r.j_per_token, r.j_per_token_reason),
            ("J/correct", r.j_per_correct, r.j_per_correct_reason),
            ("$/Mtok", r.usd_per_mtok, r.usd_reason),
        ):
            if value is None and why:
                seen.setdefault(f"{col}: {why}", []).append(r.key)
    n = len(dec.rows)
    return [f"{k} ({'all rows' if len(v) == n else ', '.join(v)})" for k, v in seen.items()]


def accuracy_sources(dec: Decision) -> list[str]:
    """Where each row's accuracy was measured (at its load point or idle), and why."""
    out = [f"{d.row.key}: accuracy {d.row.accuracy_source}" for d in dec.rows if d.row.accuracy_source]
    for d in dec.rows:
        for t in d.row.tasks:
            if t.vs_idle:
                out.append(f"{d.row.key}: {t.task} at {t.source}: {t.vs_idle}")
    kinds = {d.row.accuracy_at == "idle" for d in dec.rows if d.row.accuracy is not None}
    if len(kinds) > 1:
        out.append(
            "some rows' accuracy is at their load point and others' idle: each paired test pairs the same "
            "documents and says where each side was measured"
        )
    return out


def _title(dec: Decision) -> str:
    slo = next((d.row.slo for d in dec.rows if d.row.slo), None)
    slo_text = ", ".join(f"{k} {v}" for k, v in (slo or {}).items()) or "no SLO recorded"
    return f"{dec.suite} · {dec.hardware} · SLO {slo_text} · reference {dec.reference or 'none'}"


def render_rich(decisions: Sequence[Decision], console: Any) -> None:
    from rich.table import Table

    for dec in decisions:
        t = Table(title=_title(dec), show_lines=False)
        for h in HEADERS[:-1]:  # the reasons follow the table, one line each: they need the width
            t.add_column(h, overflow="fold", no_wrap=h == "model@variant")
        for cells in table_rows(dec):
            t.add_row(*cells[:-1])
        console.print(t)
        for d in dec.rows:
            console.print(f"  {d.row.key}: {_verdict(d)}: {d.reason}", highlight=False, markup=False)
        for line in accuracy_sources(dec):
            console.print(f"  {line}", highlight=False, markup=False)
        ship = dec.ship
        console.print(
            f"decision: ship {ship.row.key}: {ship.reason}"
            if ship
            else "decision: nothing to ship (see the reasons)"
        )
        for line in dec.notes + missing_reasons(dec):
            console.print(f"  note: {line}")


def render_markdown(decisions: Sequence[Decision]) -> str:
    parts = []
    for dec in decisions:
        parts.append(f"### {_title(dec)}\n")
        parts.append("| " + " | ".join(HEADERS) + " |")
        parts.append("|" + "---|" * len(HEADERS))
        for cells in table_rows(dec):
            parts.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        ship = dec.ship
        parts.append("")
        parts.append(
            f"**Decision:** ship `{ship.row.key}`: {ship.reason}"
            if ship
            else "**Decision:** nothing to ship."
        )
        for line in accuracy_sources(dec) + dec.notes + missing_reasons(dec):
            parts.append(f"- {line}")
        parts.append("")
    return "\n".join(parts)


def decision_dict(dec: Decision) -> dict[str, Any]:
    """Plain data of a decision (what ``--json`` prints and the Decision page reads)."""
    rows = []
    for d in dec.rows:
        row = dataclasses.asdict(d.row)
        row["accuracy_ci95"] = list(d.row.accuracy_ci95) if d.row.accuracy_ci95 else None
        rows.append(
            {
                **row,
                "verdict": d.verdict,
                "reason": d.reason,
                "dominated_by": d.dominated_by,
                "on_cost_frontier": d.on_cost_frontier,
                "on_energy_frontier": d.on_energy_frontier,
                "vs_reference": dataclasses.asdict(d.vs_reference) if d.vs_reference else None,
            }
        )
    return {
        "suite": dec.suite,
        "hardware": dec.hardware,
        "reference": dec.reference,
        "ship": dec.ship.row.key if dec.ship else None,
        "cost_axis": dec.cost_axis,
        "constraints": dataclasses.asdict(dec.constraints),
        "notes": dec.notes + missing_reasons(dec),
        "accuracy_sources": accuracy_sources(dec),
        "rows": rows,
    }


def render_json(decisions: Sequence[Decision]) -> str:
    return json.dumps([decision_dict(d) for d in decisions], indent=2, allow_nan=False)
