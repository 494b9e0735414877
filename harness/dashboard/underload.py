"""Accuracy against load beside latency against load, per model and variant (plotly JSON specs).

Three panels share the concurrency axis: each task's headline metric at each load point (with its
95 % interval, the idle value dashed), the share of documents whose answer changed at all, and the
load generator's p99 TTFT at the same points (its own requests only: the evaluation's are counted
apart). :func:`under_load_section` is the run page's card; :func:`accuracy_vs_load` takes any set
of records (one line per model, variant and task) for pages that compare runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.dashboard.figures import Spec, _axis, corner_note, layout, r4
from harness.dashboard.html import esc
from harness.dashboard.layout import chart_card, plain_table
from harness.formatting import MISSING
from harness.record.run_record import RunRecord
from harness.record.underload import TaskUnderLoad

COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def _label(rec: RunRecord) -> str:
    model = rec.model.preset if rec.model.preset != "local" else rec.model.served_name
    return f"{model} · {rec.variant.name}" if rec.variant is not None else model


def _points(rec: RunRecord) -> list[tuple[float, str, Any]]:
    """(concurrency, point, scenario) of every closed-loop point measured under load, by load."""
    out = []
    for s in rec.scenarios:
        if (
            s.accuracy_under_load is None
            or s.settings.load.concurrency is None
            or s.settings.load.request_rate
        ):
            continue
        out.append((float(s.settings.load.concurrency), s.name, s))
    return sorted(out, key=lambda p: p[0])


def accuracy_vs_load(records: Sequence[RunRecord]) -> Spec | None:
    """Accuracy, answers-changed share and p99 TTFT against concurrency; None without data."""
    data: list[dict[str, Any]] = []
    xs: list[float] = []
    line = 0
    for rec in records:
        pts = _points(rec)
        if not pts:
            continue
        label = _label(rec)
        xs += [x for x, _, _ in pts]
        tasks = list(dict.fromkeys(t.task for _, _, s in pts for t in s.accuracy_under_load.tasks))
        for task in tasks:
            color = COLORS[line % len(COLORS)]
            line += 1
            rows: list[tuple[float, str, TaskUnderLoad]] = [
                (x, n, t) for x, n, s in pts for t in s.accuracy_under_load.tasks if t.task == task
            ]
            name = esc(f"{label} · {task}")
            group = f"{label}.{task}"
            err_plus = [r4((t.ci95_high - t.value) if t.ci95_high is not None else None) for _, _, t in rows]
            err_minus = [r4((t.value - t.ci95_low) if t.ci95_low is not None else None) for _, _, t in rows]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": [x for x, _, _ in rows],
                    "y": [r4(t.value) for _, _, t in rows],
                    "error_y": {"type": "data", "array": err_plus, "arrayminus": err_minus, "visible": True},
                    "name": name,
                    "legendgroup": group,
                    "line": {"color": color, "width": 2},
                    "text": [
                        esc(
                            f"{n}: {t.metric} {t.value:.3f}"
                            + (
                                f"; worse {t.paired.flips_worse}, better {t.paired.flips_better}, "
                                f"p = {t.paired.p_value:.3g}"
                                if t.paired
                                else ""
                            )
                        )
                        for _, n, t in rows
                    ],
                    "hovertemplate": "<b>%{fullData.name}</b><br>%{text}<extra></extra>",
                }
            )
            idle = rec.accuracy.get(task)
            if idle is not None:
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": [rows[0][0], rows[-1][0]],
                        "y": [r4(idle.value), r4(idle.value)],
                        "name": name,
                        "legendgroup": group,
                        "showlegend": False,
                        "line": {"color": color, "dash": "dash", "width": 1},
                        "hovertemplate": f"idle {esc(task)}: {idle.value:.3f}<extra></extra>",
                    }
                )
            changed = [r4(t.paired.answers_changed_share) if t.paired else None for _, _, t in rows]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": [x for x, _, _ in rows],
                    "y": changed,
                    "name": name,
                    "legendgroup": group,
                    "showlegend": False,
                    "xaxis": "x2",
                    "yaxis": "y2",
                    "line": {"color": color, "width": 2},
                    "hovertemplate": "<b>%{fullData.name}</b><br>answers changed: %{y:.1%}<extra></extra>",
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [x for x, _, _ in pts],
                "y": [r4(s.p99_ttft_ms) for _, _, s in pts],
                "name": esc(f"{label} · p99 TTFT"),
                "xaxis": "x3",
                "yaxis": "y3",
                "line": {"color": "#1f2933", "width": 2},
                "hovertemplate": "<b>%{fullData.name}</b><br>%{y:.4g} ms<extra></extra>",
            }
        )
    if not data:
        return None
    lay = layout(height=420, legend="below", showlegend=True)
    log = min(xs) > 0 and max(xs) / min(xs) >= 4
    levels = sorted(set(xs))
    ticks = {"tickvals": levels, "ticktext": [f"{x:g}" for x in levels]}
    kind = "log" if log else "linear"
    title = "Concurrency"
    lay["xaxis"] = _axis(title, domain=[0, 0.3], type=kind, **ticks)
    lay["xaxis2"] = _axis(title, domain=[0.36, 0.64], anchor="y2", type=kind, **ticks)
    lay["xaxis3"] = _axis(title, domain=[0.7, 1], anchor="y3", type=kind, **ticks)
    lay["yaxis"] = _axis("Accuracy at load (dashed: idle)")
    lay["yaxis2"] = _axis("Answers changed (share)", anchor="x2", rangemode="tozero", tickformat=".0%")
    lay["yaxis3"] = _axis("p99 TTFT, load generator (ms)", anchor="x3", rangemode="tozero")
    corner_note(lay, "bars: 95 % interval · dashed: idle")
    return {"data": data, "layout": lay}


def _cell(v: float | int | None, spec: str) -> str:
    return f"<td class=num>{MISSING if v is None else esc(format(v, spec))}</td>"


def under_load_section(rec: RunRecord, root: str = "../") -> str:
    """The run page's card: the chart and one table row per point and task, then the probe."""
    pts = [s for s in rec.scenarios if s.accuracy_under_load is not None or s.invariance is not None]
    if not pts:
        return ""
    rows = []
    for s in pts:
        acc = s.accuracy_under_load
        inv = s.invariance
        probe = f"{inv.identical}/{inv.prompts}" if inv is not None and inv.error is None else MISSING
        traffic = acc.traffic if acc is not None else None
        for t in acc.tasks if acc is not None else []:
            p = t.paired
            rows.append(
                f"<tr><td>{esc(s.name)}</td><td>{esc(t.task)}</td>"
                + _cell(p.idle_value if p else None, ".3f")
                + _cell(t.value, ".3f")
                + _cell(p.flips_better if p else None, "d")
                + _cell(p.flips_worse if p else None, "d")
                + _cell(p.p_value if p else None, ".3g")
                + _cell(p.answers_changed_share if p else None, ".1%")
                + _cell(p.generated_text_changed_share if p else None, ".1%")
                + _cell(p.max_abs_delta_loglik if p else None, ".3g")
                + _cell(traffic.requests if traffic else None, "d")
                + _cell(traffic.during_load_share if traffic else None, ".0%")
                + f"<td>{esc(probe)}</td></tr>"
            )
        if acc is None or not acc.tasks:
            rows.append(
                f"<tr><td>{esc(s.name)}</td><td>{MISSING}</td>"
                + "<td></td>" * 10
                + f"<td>{esc(probe)}</td></tr>"
            )
    table = plain_table(
        [
            "point",
            "task",
            "idle",
            "at load",
            "better",
            "worse",
            "p",
            "answers changed",
            "text changed",
            "max |Δ loglik|",
            "eval requests",
            "beside load",
            "probe identical",
        ],
        rows,
        num_from=2,
    )
    note = (
        "The same tasks, arguments and documents as the idle evaluation, run by lm-eval beside each "
        "load point and paired document by document (exact McNemar for 0/1 metrics, sign-flip "
        "permutation otherwise). Latency is the load generator's own requests."
    )
    chart = chart_card(
        "chart-under-load", "Accuracy against load", note, accuracy_vs_load([rec]), root=root, wide=True
    )
    return f'<div class="grid2">{chart}</div><section class="card wide"><h3>Paired with the idle run</h3>{table}</section>'
