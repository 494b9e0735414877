"""`harness compare --suite S --model M`: what each variant buys and costs, in the terminal.

The same table backs the dashboard's Techniques page. Accuracy deltas are tested per document
(paired) where both runs kept lm-eval's sample logs, else shown with the two stderrs combined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.formatting import fmt


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def _num(kind: str, x: float | None) -> str:
    return fmt(kind, x) or "—"


def render(rows: list[Any], console: Any) -> None:
    """Print one table per model: the variants' deltas against the baseline."""
    from rich.table import Table

    if not rows:
        console.print("no ok runs with variants for that suite and model")
        return
    base = rows[0]
    t = Table(title=f"{base.model} · {base.suite}: variants against {base.baseline} ({base.baseline_run_id})")
    for col in (
        "variant",
        "changes",
        "Δ accuracy",
        "Δ out tok/s",
        "Δ TTFT p50",
        "Δ TPOT p50",
        "Δ J/token",
        "spec accept",
        "KV tokens (pred.)",
        "weights",
    ):
        t.add_column(col)
    for r in rows:
        acc = []
        for d in r.tasks:
            if d.delta is None:
                continue
            if d.paired is not None and d.paired.p_value is not None:
                acc.append(
                    f"{d.task} {d.delta:+.3f} (p={d.paired.p_value:.2g}, +{d.paired.better}/-{d.paired.worse})"
                )
            else:
                se = f" ± {1.96 * d.delta_se:.3f}" if d.delta_se is not None else ""
                acc.append(f"{d.task} {d.delta:+.3f}{se}")
        s = r.scenarios[0] if r.scenarios else None
        kv = r.kv
        kv_text = (
            "—" if kv is None else f"{_num('num', kv.measured_tokens)} ({_num('num', kv.predicted_tokens)})"
        )
        t.add_row(
            r.variant + (" (base)" if r.variant == r.baseline else ""),
            "; ".join(r.changes),
            "\n".join(acc) or "—",
            "\n".join(f"{x.scenario} {_pct(x.output_tps_rel)}" for x in r.scenarios) or "—",
            _pct(s.median_ttft_rel) if s else "—",
            _pct(s.median_tpot_rel) if s else "—",
            _pct(s.energy_per_token_rel) if s else "—",
            "—"
            if s is None or s.spec_acceptance_rate is None
            else f"{100 * s.spec_acceptance_rate:.0f}% (len {s.spec_mean_accepted_length:.2f})",
            kv_text,
            _num("bytes", r.weights_bytes),
        )
    console.print(t)
    from harness.decide.techniques import technique_verdict

    for r in rows:
        v = technique_verdict(r)
        if v.verdict != "baseline":
            console.print(f"{v.verdict}: {v.sentence}", highlight=False, markup=False)


def compare_variants(results: Path, suite: str, model: str, console: Any, as_json: bool = False) -> int:
    """Print the techniques table of one suite and model; exit 1 when no variant run is found."""
    from harness.analysis.techniques import paired_from_logs, technique_rows
    from harness.storage.store import load_records

    loaded = load_records(results)
    rows = technique_rows(loaded.records, suite, model, paired=paired_from_logs(results))
    if as_json:
        import dataclasses
        import json
        import sys

        data = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) else r for r in rows]
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return 0 if rows else 1
    render(rows, console)
    return 0 if rows else 1
