"""Charts and leaderboard cells for repeats, sweeps, goodput and capacity (plain plotly JSON).

* :func:`latency_vs_load`: median TTFT and TPOT against load, one line per scenario: the pooled
  headline, with its 95 % band (± the Student-t half-width over repeats where there are repeats,
  else the bootstrap interval over requests); invalid points are drawn hollow, reasons on hover;
* :func:`goodput_vs_load`: SLO attainment against load with the target drawn, and vLLM's
  ``request_goodput`` on a second axis, the SLO in the title;
* :func:`capacity_cells`: "capacity at SLO" and "J/token at SLO" for a leaderboard row.

Points come from :func:`load_points`, which reads only the record, so the dashboard's pages
can call these with whatever run they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.record.rigor import CapacityResult
    from harness.record.run_record import RunRecord, ScenarioResult

Spec = dict[str, Any]
COLORS = ("#3366cc", "#dc3912", "#109618", "#990099", "#ff9900", "#0099c6", "#dd4477", "#66aa00")


@dataclass(frozen=True)
class LoadPoint:
    name: str
    scenario: str
    load: float
    by: str  # "concurrency" or "request_rate"
    valid: bool
    reasons: list[str]
    figures: dict[str, tuple[float | None, float | None, float | None]] = field(default_factory=dict)
    slo_attainment: float | None = None
    request_goodput: float | None = None
    slo_text: str | None = None
    attainment_target: float | None = None


def _band(sr: ScenarioResult, key: str) -> tuple[float | None, float | None, float | None]:
    """(value, low, high), drawn on the headline estimator (issue 21 item 6).

    The value is always the record's headline, which pools every repeat's requests. With
    repeats, the band is that headline ± the half-width of the Student-t interval over the
    per-repeat values (the run-to-run noise of the same statistic; the per-repeat mean itself
    sits a few per cent off a pooled tail percentile, so it is not what the line shows); with one
    run, the bootstrap interval over its requests.
    """
    value = getattr(sr, key, None)
    if sr.rigor is not None:
        s = sr.rigor.spread.get(key)
        if s is not None and s.n > 1:
            if value is None:
                value = s.mean
            if s.ci95_low is None or s.ci95_high is None:
                return value, None, None
            half = (s.ci95_high - s.ci95_low) / 2.0
            return value, value - half, value + half
        b = sr.rigor.request_spread.get(key)
        if b is not None:
            return value, b.ci95_low, b.ci95_high
    return value, None, None


def load_points(record: RunRecord) -> list[LoadPoint]:
    """One point per measured scenario point, with its load (closed-loop concurrency or rate)."""
    out = []
    targets = {
        sr.rigor.capacity.scenario: sr.rigor.capacity.attainment_target
        for sr in record.performance.values()
        if sr.rigor is not None and sr.rigor.capacity is not None
    }
    for name, sr in record.performance.items():
        st = sr.settings.load
        if st.request_rate is not None:
            by, load = "request_rate", float(st.request_rate)
        elif st.concurrency is not None:
            by, load = "concurrency", float(st.concurrency)
        else:
            continue
        slo = sr.rigor.goodput.slo if sr.rigor is not None and sr.rigor.goodput is not None else None
        slo_text = None
        if slo is not None:
            parts = [
                f"{k} ≤ {v:g}"
                for k, v in (("TTFT ms", slo.ttft_ms), ("TPOT ms", slo.tpot_ms), ("E2EL ms", slo.e2el_ms))
                if v is not None
            ]
            slo_text = ", ".join(parts) + (f" ({slo.preset})" if slo.preset else "")
        scenario = sr.rigor.point.scenario if sr.rigor is not None else name.split("@", 1)[0]
        out.append(
            LoadPoint(
                name=name,
                scenario=scenario,
                load=load,
                by=by,
                valid=sr.valid is not False,
                reasons=list(sr.validity_reasons),
                figures={k: _band(sr, k) for k in ("median_ttft_ms", "median_tpot_ms")},
                slo_attainment=sr.slo_attainment,
                request_goodput=sr.request_goodput,
                slo_text=slo_text,
                attainment_target=targets.get(scenario),
            )
        )
    return sorted(out, key=lambda p: (p.scenario, p.by, p.load))


def _groups(points: list[LoadPoint]) -> dict[tuple[str, str], list[LoadPoint]]:
    groups: dict[tuple[str, str], list[LoadPoint]] = {}
    for p in points:
        groups.setdefault((p.scenario, p.by), []).append(p)
    return groups


def _marker(points: list[LoadPoint], color: str) -> dict[str, Any]:
    return {
        "color": [color if p.valid else "#ffffff" for p in points],
        "line": {"color": color, "width": 2},
        "size": 9,
        "symbol": "circle",
    }


def _hover_text(p: LoadPoint) -> str:
    text = escape(p.name)
    if not p.valid:
        text += "<br><b>invalid</b>: " + "<br>".join(escape(r) for r in p.reasons)
    return text


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": "#e6e9ef", "zeroline": False, "automargin": True, **extra}


LOAD_AXIS = {"concurrency": "Concurrency (requests in flight)", "request_rate": "Request rate (req/s)"}


def load_kinds(points: list[LoadPoint]) -> list[str]:
    """The kinds of load the points sweep ("concurrency", "request_rate"), in order: one chart each,
    since requests in flight and requests per second do not share an axis."""
    return list(dict.fromkeys(p.by for p in points))


def invalid_points_html(points: list[LoadPoint]) -> str:
    """Why each invalid point is invalid, as a list under the chart (not only on hover)."""
    bad = [p for p in points if not p.valid]
    if not bad:
        return ""
    items = "".join(
        f"<li><b>{escape(p.name)}</b>: {escape('; '.join(p.reasons) or 'invalid')}</li>" for p in bad
    )
    return f'<ul class="invalid-points" aria-label="invalid points">{items}</ul>'


def latency_vs_load(points: list[LoadPoint], by: str | None = None) -> Spec | None:
    """Median TTFT (left) and TPOT (right) against load with 95 % bands; hollow = invalid.
    ``by``: only the points of that kind of load (the x axis says which)."""
    data: list[dict[str, Any]] = []
    if by is not None:
        points = [p for p in points if p.by == by]
    kinds = load_kinds(points)
    xtitle = LOAD_AXIS.get(kinds[0], "Load") if len(kinds) == 1 else "Load (concurrency or req/s)"
    for i, ((scenario, by), pts) in enumerate(_groups(points).items()):
        if len(pts) < 2 and not any(p.figures["median_ttft_ms"][1] is not None for p in pts):
            continue
        color = COLORS[i % len(COLORS)]
        xs = [p.load for p in pts]
        for key, xa, ya in (("median_ttft_ms", "x", "y"), ("median_tpot_ms", "x2", "y2")):
            vals = [p.figures[key] for p in pts]
            lows = [v[1] if v[1] is not None else v[0] for v in vals]
            highs = [v[2] if v[2] is not None else v[0] for v in vals]
            axes = {} if xa == "x" else {"xaxis": xa, "yaxis": ya}
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs + xs[::-1],
                    "y": highs + lows[::-1],
                    "fill": "toself",
                    "fillcolor": color,
                    "opacity": 0.18,
                    "line": {"width": 0},
                    "hoverinfo": "skip",
                    "showlegend": False,
                    "legendgroup": scenario,
                    **axes,
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": xs,
                    "y": [v[0] for v in vals],
                    "name": escape(f"{scenario} ({'concurrency' if by == 'concurrency' else 'req/s'})"),
                    "legendgroup": scenario,
                    "showlegend": key == "median_ttft_ms",
                    "line": {"color": color, "width": 2},
                    "marker": _marker(pts, color),
                    "text": [_hover_text(p) for p in pts],
                    "hovertemplate": "%{text}<br>%{y:.4g} ms<extra></extra>",
                    **axes,
                }
            )
    if not data:
        return None
    return {
        "data": data,
        "layout": {
            "height": 380,
            "margin": {"l": 64, "r": 16, "t": 40, "b": 48},
            "xaxis": _axis(xtitle, domain=[0, 0.46]),
            "xaxis2": _axis(xtitle, domain=[0.54, 1], anchor="y2"),
            "yaxis": _axis("Median TTFT (ms)", rangemode="tozero"),
            "yaxis2": _axis("Median TPOT (ms)", anchor="x2", rangemode="tozero"),
            "annotations": [
                _note(
                    "line: pooled headline · band: 95 % (± Student-t half-width over repeats; one run: "
                    "bootstrap over requests) · hollow: invalid point (listed below)"
                )
            ],
        },
    }


def goodput_vs_load(points: list[LoadPoint]) -> Spec | None:
    """SLO attainment (left axis) and request goodput (right axis) against load, target drawn."""
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    slos = sorted({p.slo_text for p in points if p.slo_text})
    for i, ((scenario, by), pts) in enumerate(
        _groups([p for p in points if p.slo_attainment is not None]).items()
    ):
        color = COLORS[i % len(COLORS)]
        label = escape(f"{scenario} ({'concurrency' if by == 'concurrency' else 'req/s'})")
        common = {"x": [p.load for p in pts], "legendgroup": scenario, "text": [_hover_text(p) for p in pts]}
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "y": [p.slo_attainment for p in pts],
                "name": label + " attainment",
                "line": {"color": color, "width": 2},
                "marker": _marker(pts, color),
                "hovertemplate": "%{text}<br>attainment %{y:.1%}<extra></extra>",
                **common,
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "y": [p.request_goodput for p in pts],
                "name": label + " goodput",
                "yaxis": "y2",
                "line": {"color": color, "width": 1, "dash": "dot"},
                "marker": _marker(pts, color),
                "hovertemplate": "%{text}<br>goodput %{y:.3g} req/s<extra></extra>",
                **common,
            }
        )
        target = next((p.attainment_target for p in pts if p.attainment_target is not None), None)
        if target is not None:
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": target,
                    "y1": target,
                    "line": {"color": color, "dash": "dash", "width": 1},
                }
            )
    if not data:
        return None
    title = "SLO: " + escape("; ".join(slos)) if slos else ""
    return {
        "data": data,
        "layout": {
            "height": 360,
            "margin": {"l": 64, "r": 64, "t": 40, "b": 48},
            "title": {"text": title, "font": {"size": 13}},
            "xaxis": _axis("Load (concurrency or req/s)"),
            "yaxis": _axis("SLO attainment", range=[0, 1.05], tickformat=".0%"),
            "yaxis2": _axis("Request goodput (req/s)", overlaying="y", side="right", rangemode="tozero"),
            "shapes": shapes,
            "legend": {"orientation": "h", "y": -0.2},
            "annotations": [_note("dashed line: target attainment · hollow: invalid point")],
        },
    }


def _note(text: str) -> dict[str, Any]:
    from harness.dashboard.figures import note_annotation

    return note_annotation(text)  # top left: the toolbar takes the top right


def capacity_cells(record: RunRecord) -> dict[str, str]:
    """Leaderboard cells "capacity at SLO" and "J/token at SLO" (a dash where not measured)."""
    caps = [sr.rigor.capacity for sr in record.performance.values() if sr.rigor and sr.rigor.capacity]
    if not caps:
        return {"capacity at SLO": "–", "J/token at SLO": "–"}
    c = caps[0]
    unit = "req/s" if c.over == "request_rate" else "in flight"
    cap = (
        "none passed"
        if c.capacity is None
        else f"{'≥ ' if c.bound == 'lower' else ''}{c.capacity:.3g} {unit}"
    )
    j = c.energy_per_output_token_j
    jtok = f"{j:.3g} J" if j is not None and math.isfinite(j) else f"– ({c.energy_reason or 'unmeasured'})"
    return {"capacity at SLO": cap, "J/token at SLO": jtok, "capacity bound": capacity_bound_text(c)}


def capacity_bound_text(c: CapacityResult) -> str:
    """`resolved` or `lower bound: <why the search stopped>` (records before the field: the reason)."""
    if c.bound == "resolved":
        return "resolved"
    if c.bound == "lower":
        return f"lower bound: {c.stop_reason}"
    return c.stop_reason


def capacity_figures(record: RunRecord) -> dict[str, float | str | None]:
    """Numbers behind the leaderboard's "capacity at SLO" and "J/token at SLO" columns."""
    caps = [sr.rigor.capacity for sr in record.performance.values() if sr.rigor and sr.rigor.capacity]
    if not caps:
        return {"cap": None, "cap_unit": None, "jslo": None, "jslo_reason": None}
    c = caps[0]
    return {
        "cap": c.capacity,
        "cap_unit": ("req/s" if c.over == "request_rate" else "in flight") + f" · {capacity_bound_text(c)}",
        "jslo": c.energy_per_output_token_j,
        "jslo_reason": c.energy_reason,
    }
