"""The Techniques page: per model, each serving-time variant against its baseline variant, and a
Pareto view of accuracy against speed (and energy) across every variant of every model."""

from __future__ import annotations

from collections.abc import Sequence

from harness.analysis.techniques import TechniqueRow, paired_in, technique_rows
from harness.dashboard.data import Palette, RunView
from harness.dashboard.figures import accuracy_scatter
from harness.dashboard.html import esc
from harness.dashboard.layout import cell, chart_card, frame, plain_table


def _pct_cell(x: float | None, ci: tuple[float, float] | None = None) -> str:
    if x is None:
        return cell("num", None)
    spread = f"95% {100 * ci[0]:+.0f}…{100 * ci[1]:+.0f}%" if ci else None
    return cell("text", f"{100 * x:+.1f}%", spread)


def _acc_cell(row: TechniqueRow) -> str:
    parts = []
    for d in row.tasks:
        if d.delta is None:
            continue
        if d.paired is not None and d.paired.p_value is not None:
            parts.append(
                f"{esc(d.task)} {d.delta:+.3f} <span class=se>p={d.paired.p_value:.2g}, "
                f"{d.paired.better} better / {d.paired.worse} worse</span>"
            )
        else:
            se = f" <span class=se>± {1.96 * d.delta_se:.3f}</span>" if d.delta_se is not None else ""
            parts.append(f"{esc(d.task)} {d.delta:+.3f}{se}")
    return f"<td>{'<br>'.join(parts) or '—'}</td>"


def _model_table(rows: list[TechniqueRow]) -> str:
    out = []
    for r in rows:
        s = r.scenarios[0] if r.scenarios else None
        kv = r.kv
        spec = None
        if s is not None and s.spec_acceptance_rate is not None:
            spec = f"{100 * s.spec_acceptance_rate:.0f}% · len {s.spec_mean_accepted_length:.2f}"
        name = esc(r.variant) + (" <span class=se>baseline</span>" if r.variant == r.baseline else "")
        out.append(
            f"<tr><td>{name}</td><td>{esc('; '.join(r.changes))}</td>{_acc_cell(r)}"
            + "".join(_pct_cell(x.output_tps_rel, x.tps_ci95) for x in r.scenarios[:2])
            + _pct_cell(s.median_ttft_rel if s else None)
            + _pct_cell(s.median_tpot_rel if s else None)
            + _pct_cell(s.energy_per_token_rel if s else None)
            + cell("text", spec)
            + cell(
                "num",
                kv.measured_tokens if kv else None,
                f"predicted {kv.predicted_tokens}" if kv and kv.predicted_tokens else None,
            )
            + cell("bytes", r.weights_bytes)
            + "</tr>"
        )
    scen = [f"Δ tok/s {esc(x.scenario)}" for x in (rows[0].scenarios[:2] if rows else [])]
    headers = [
        "Variant",
        "Changes",
        "Δ accuracy",
        *scen,
        "Δ TTFT p50",
        "Δ TPOT p50",
        "Δ J/token",
        "Spec accept",
        "KV tokens",
        "Weights",
    ]
    return plain_table(headers, out, num_from=3)


def verdict_list(rows: Sequence[TechniqueRow]) -> str:
    """Each variant's verdict against the baseline, in the decision's words (:mod:`harness.decide.techniques`)."""
    from harness.decide.techniques import technique_verdict

    items = []
    for r in rows:
        v = technique_verdict(r)
        if v.verdict == "baseline":
            continue
        items.append(
            f'<li class="verdict verdict-{esc(v.verdict.replace(" ", "-"))}"><b>{esc(v.verdict)}</b> '
            f"{esc(v.sentence)}</li>"
        )
    return f'<h3>Verdicts</h3><ul class="verdicts">{"".join(items)}</ul>' if items else ""


def techniques_page(views: Sequence[RunView], palette: Palette, generated: str) -> str:
    """Every (suite, model) that ran variants: a table of deltas and a Pareto chart."""
    # Only variant runs are read in full (their label carries "@variant"), so an incremental build
    # of thousands of plain runs does not load every record for this page.
    views = [v for v in views if "@" in v.model]
    records = [v.record for v in views]
    run_dirs = {v.run_id: v.run_dir for v in views}
    pairs = sorted({(r.suite.name, r.model.preset) for r in records if r.variant is not None})
    body = [
        '<section class="hero"><h1>Techniques</h1><p class="context">Each serving-time technique as a variant '
        "of one model on its own engine load, against the suite's baseline variant: accuracy per task "
        "(paired per document where both sample logs exist, else ± 1.96 × the combined stderr), speed, "
        "energy per token, KV-cache capacity (measured, with the capacity the architecture predicts for the "
        "same cache bytes) and weights.</p></section>"
    ]
    if not pairs:
        body.append(
            '<section class="card"><p class="empty">No run with variants yet. The shipped suite '
            "<code>techniques-cpu</code> runs a baseline and its variants on a CPU in minutes: "
            "<code>harness run techniques-cpu</code>, then <code>harness dashboard</code>. On a GPU: "
            "<code>harness run techniques</code>. Your own: add <code>variants:</code> to a suite "
            "(docs/suites.md).</p></section>"
        )
    for suite, model in pairs:
        rows = technique_rows(records, suite, model, paired=paired_in(lambda rec: run_dirs.get(rec.run_id)))
        if not rows:
            continue
        body.append(
            f'<section class="card"><h2>{esc(model)} · {esc(suite)}</h2><p class=note>Against '
            f"<code>{esc(rows[0].baseline)}</code> (run {esc(rows[0].baseline_run_id)}).</p>{_model_table(rows)}"
            f"{verdict_list(rows)}</section>"
        )
    latest: dict[str, RunView] = {}
    for v in sorted(views, key=lambda v: v.started_at):
        if v.ok and v.record.variant is not None:
            latest[f"{v.suite}/{v.model}"] = v
    pts = list(latest.values())
    labels = [f"{v.model} ({v.suite})" for v in pts]
    tps = accuracy_scatter(
        pts,
        labels,
        palette,
        lambda v: v.headline.output_tps if v.headline else None,
        "Output tok/s (first scenario)",
        True,
    )
    joules = accuracy_scatter(
        pts,
        labels,
        palette,
        lambda v: v.headline.energy_per_token_j if v.headline else None,
        "J per output token (first scenario)",
        False,
    )
    body.append('<div class="grid2">')
    body.append(
        chart_card(
            "chart-tech-tps",
            "Accuracy against speed, every variant",
            "Average accuracy against output tok/s; the dotted line is the Pareto frontier.",
            tps,
            empty="No variant run with both accuracy and speed.",
        )
    )
    body.append(
        chart_card(
            "chart-tech-j",
            "Accuracy against energy, every variant",
            "Needs GPU energy (NVML).",
            joules,
            empty="No variant run with energy figures (no NVIDIA GPU).",
        )
    )
    body.append("</div>")
    return frame(
        "harness: techniques",
        "\n".join(body),
        root="",
        active="techniques",
        generated=generated,
        charts=bool(tps or joules),
    )
