"""Chart specifications as plain plotly JSON (``{"data": [...], "layout": {...}}``).

Specs are built as dicts rather than ``plotly.graph_objects`` figures: a thousand run pages
with a few charts each would spend most of the build validating objects. :func:`validate`
runs a spec through plotly's own validation; the tests call it on every kind of chart.

Every string taken from a record is HTML-escaped here, because plotly.js reads a subset of
HTML in names, labels and hover text; escaped, such text shows literally (``&lt;`` as ``<``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.dashboard.data import (
    Palette,
    RunView,
    ScenarioView,
    iso,
    pareto_front,
    started_of,
)
from harness.dashboard.html import esc

if TYPE_CHECKING:
    pass

Spec = dict[str, Any]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
GRID = "#e6e9ef"
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "star", "hexagon", "x")


def r4(x: float | None) -> float | None:
    """Round to 4 significant digits: enough for a chart, a third of the JSON."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.4g}")


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "standoff": 8},
        "gridcolor": GRID,
        "zeroline": False,
        "linecolor": "#c9ced6",
        "automargin": True,
        **extra,
    }


LEGEND_RIGHT = {
    "orientation": "v",
    "x": 1.02,
    "xanchor": "left",
    "y": 1,
    "yanchor": "top",
    "font": {"size": 11},
}
LEGEND_BELOW = {
    "orientation": "h",
    "x": 0,
    "xanchor": "left",
    "y": -0.18,
    "yanchor": "top",
    "font": {"size": 11},
}


def layout(
    xtitle: str = "", ytitle: str = "", height: int = 360, legend: str = "right", **extra: Any
) -> dict[str, Any]:
    """The common look: white, light grid, legend to the right (or ``legend="below"``). The top
    margin is the plotly toolbar's strip (it shows at the top right on hover), so it never covers
    a legend or a note."""
    return {
        "height": height,
        "margin": {"l": 64, "r": 16, "t": TOOLBAR_MARGIN_PX, "b": 48},
        "font": {"family": FONT, "size": 12, "color": "#1f2933"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "hovermode": "closest",
        "hoverlabel": {"font": {"family": FONT}},
        "legend": LEGEND_RIGHT if legend == "right" else LEGEND_BELOW,
        "xaxis": _axis(xtitle),
        "yaxis": _axis(ytitle),
        **extra,
    }


TOOLBAR_MARGIN_PX = 36  # plotly's toolbar is about 30 px tall, drawn at the top right of the figure


def corner_note(lay: dict[str, Any], text: str) -> None:
    """A small note above the plot's top-left corner (a legend for line styles or error bars); the
    toolbar takes the top right."""
    lay["annotations"] = [note_annotation(text)]
    lay["margin"] = {**lay["margin"], "t": max(lay["margin"].get("t", 0), TOOLBAR_MARGIN_PX)}


def note_annotation(text: str) -> dict[str, Any]:
    """The annotation of `corner_note`: top left, in the margin above the plot."""
    return {
        "text": text,
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "y": 1.02,
        "yanchor": "bottom",
        "showarrow": False,
        "xanchor": "left",
        "font": {"size": 11, "color": "#616e7c"},
    }


def bound_axis(axis: dict[str, Any], low: float | None = 0.0, high: float | None = None) -> None:
    """Keep an autoranged axis inside [low, high] (accuracy in [0, 1], energy and times >= 0)."""
    if low == 0.0:
        axis["rangemode"] = "nonnegative"
    opts = {k: v for k, v in (("minallowed", low), ("maxallowed", high)) if v is not None}
    if opts:
        axis["autorangeoptions"] = opts


def _hover(lines: Sequence[str]) -> str:
    return "<br>".join(lines) + "<extra></extra>"


# ---------------------------------------------------------------- leaderboard charts


def accuracy_scatter(
    rows: Sequence[RunView],
    labels: Sequence[str],
    palette: Palette,
    x_of: Callable[[RunView], float | None],
    xtitle: str,
    x_higher: bool,
) -> Spec | None:
    """Average accuracy against an efficiency figure, one point per row (rows of one suite), with the
    Pareto frontier. Colour is the model, marker shape the hardware; frontier points are larger."""
    pts = [
        (i, x, r.acc_avg) for i, r in enumerate(rows) if (x := x_of(r)) is not None and r.acc_avg is not None
    ]
    if not pts:
        return None
    data: list[dict[str, Any]] = []
    front = pareto_front([(x, y) for _, x, y in pts], x_higher=x_higher, y_higher=True)
    if len(front) > 1:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [r4(pts[k][1]) for k in front],
                "y": [r4(pts[k][2]) for k in front],
                "line": {
                    "color": "#9aa5b1",
                    "dash": "dot",
                    "width": 1.5,
                    "shape": "hv" if x_higher else "vh",
                },
                "name": "Pareto frontier",
                "hoverinfo": "skip",
            }
        )
    on_front = {pts[k][0] for k in front}
    hardware = sorted({r.hardware for r in rows})
    for i, x, y in pts:
        r = rows[i]
        headline = r.headline
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [r4(x)],
                "y": [r4(y)],
                "name": esc(labels[i]),
                "marker": {
                    "size": 14 if i in on_front else 10,
                    "color": palette(r.model),
                    "symbol": SYMBOLS[hardware.index(r.hardware) % len(SYMBOLS)],
                    "line": {"width": 1.5 if i in on_front else 0.5, "color": "#1f2933"},
                },
                "customdata": [[r.page]],
                "hovertemplate": _hover(
                    [
                        f"<b>{esc(r.model)}</b>",
                        f"{esc(r.suite)} · {esc(r.hardware)}",
                        f"{xtitle}: %{{x:.4g}} ({esc(headline.name) if headline else ''})",
                        "avg accuracy: %{y:.3f}",
                        f"run {esc(r.run_id)}",
                    ]
                ),
            }
        )
    lay = layout(xtitle, "Average accuracy", showlegend=True)
    ys = {y for _, _, y in pts if y is not None}
    if len(ys) == 1 and 0 <= min(ys) <= 1:  # one level: plotly would span ±1 around it
        lay["yaxis"]["range"] = [0, 1]
    return {"data": data, "layout": lay}


def latency_under_load(
    rows: Sequence[RunView], labels: Sequence[str], palette: Palette, by: str
) -> Spec | None:
    """TTFT and TPOT (median solid, p99 dashed) against concurrency (``by="concurrency"``) or
    request rate (``by="rate"``), one line per row and request shape."""
    panels = (("ttft", "TTFT (ms)", "x", "y"), ("tpot", "TPOT (ms)", "x2", "y2"))
    data: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        groups: dict[str, list[tuple[float, ScenarioView]]] = {}
        for s in r.scenarios.values():
            # An open-loop scenario's concurrency is only a cap: it belongs on the rate chart.
            closed = s.concurrency if s.request_rate is None else None
            x = closed if by == "concurrency" else s.request_rate
            if x is not None:
                groups.setdefault(s.shape, []).append((float(x), s))
        many_shapes = len(groups) > 1
        for k, (shape, pts) in enumerate(groups.items()):
            first = True
            pts.sort(key=lambda p: p[0])
            name = esc(labels[i] + (f" · {shape}" if many_shapes else ""))
            for metric, _, xa, ya in panels:
                for pct, dash in (("p50", "solid"), ("p99", "dash")):
                    ys = [r4(getattr(s, f"{metric}_{pct}_ms")) for _, s in pts]
                    if all(y is None for y in ys):
                        continue
                    trace: dict[str, Any] = {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "x": [x for x, _ in pts],
                        "y": ys,
                        "name": name,
                        "legendgroup": f"g{i}.{k}",
                        "showlegend": first,
                        "line": {"color": palette(r.model), "dash": dash, "width": 2},
                        "text": [esc(s.name) for _, s in pts],
                        "hovertemplate": f"<b>%{{fullData.name}}</b><br>%{{text}}<br>{metric.upper()} "
                        f"{'median' if pct == 'p50' else 'p99'}: %{{y:.4g}} ms<extra></extra>",
                    }
                    if xa != "x":
                        trace["xaxis"], trace["yaxis"] = xa, ya
                    data.append(trace)
                    first = False
    if not data:
        return None
    xtitle = "Concurrency (requests in flight)" if by == "concurrency" else "Request rate (req/s)"
    n_legend = sum(1 for d in data if d["showlegend"])
    lay = layout(height=380 + 22 * math.ceil(n_legend / 3), legend="below", showlegend=True)
    xs = [x for d in data for x in d["x"]]
    # Concurrency sweeps are geometric (1, 8, 64): a log axis spaces them evenly.
    log = by == "concurrency" and min(xs) > 0 and max(xs) / min(xs) >= 4
    ticks: dict[str, Any] = {}
    if log:  # label the measured levels (1, 8, 64), not plotly's 1-2-5 log ticks
        levels = sorted(set(xs))
        ticks = {"tickvals": levels, "ticktext": [f"{x:g}" for x in levels]}
    lay["xaxis"] = _axis(xtitle, domain=[0, 0.46], type="log" if log else "linear", **ticks)
    lay["xaxis2"] = _axis(xtitle, domain=[0.54, 1], anchor="y2", type=lay["xaxis"]["type"], **ticks)
    lay["yaxis"] = _axis("TTFT (ms)", rangemode="tozero")
    lay["yaxis2"] = _axis("TPOT (ms)", anchor="x2", rangemode="tozero")
    corner_note(lay, "solid: median · dashed: p99")
    return {"data": data, "layout": lay}


def task_heatmap(rows: Sequence[RunView], labels: Sequence[str]) -> Spec | None:
    """Rows × tasks, coloured by score; a task a row lacks is left blank."""
    tasks = sorted({t for r in rows for t in r.accuracy})
    if not tasks or not rows:
        return None
    z = [[r4(r.accuracy[t].value) if t in r.accuracy else None for t in tasks] for r in rows]
    text = [[f"{v:.3f}" if v is not None else "" for v in line] for line in z]
    height = max(260, 90 + 30 * len(rows))
    lay = layout(height=height)
    # Task names are long: slanted past three columns so neighbours never overlap; automargin
    # gives them the room they need above the cells.
    lay["xaxis"] = _axis("", side="top", tickangle=-40 if len(tasks) > 3 else 0, automargin=True)
    lay["yaxis"] = _axis("", autorange="reversed")
    longest = max(len(t) for t in tasks)
    lay["margin"] = {"l": 16, "r": 16, "t": max(64, 24 + 5 * longest if len(tasks) > 3 else 64), "b": 16}
    lay["height"] = height + lay["margin"]["t"] - 64
    return {
        "data": [
            {
                "type": "heatmap",
                "x": [esc(t) for t in tasks],
                "y": [esc(label) for label in labels],
                "z": z,
                "text": text,
                "texttemplate": "%{text}",
                "colorscale": "YlGnBu",
                "reversescale": True,  # higher score, darker cell
                "hoverongaps": False,
                "colorbar": {"title": {"text": "score"}, "thickness": 12},
                "hovertemplate": "%{y}<br>%{x}: %{z:.3f}<extra></extra>",
                "xgap": 2,
                "ygap": 2,
            }
        ],
        "layout": lay,
    }


# ---------------------------------------------------------------- history


def history(
    lines: Sequence[tuple[str, str, list[str], Sequence[Any]]],
    ytitle: str,
    height: int = 300,
    bounds: tuple[float | None, float | None] = (0.0, None),
    marks: Sequence[tuple[str, str, float | None, tuple[float, float] | None, str]] = (),
) -> Spec | None:
    """One metric over time, one line per (label, colour, where its points are, the
    ``[count, first, last]`` of each shard's points), in legend order. The points stay in the
    shards' data files: dashboard.js fills ``x``, ``y`` and ``customdata`` from the place
    ``meta`` names (:mod:`harness.dashboard.fragments`). Lines without points are left out;
    None when no line has one."""
    data: list[dict[str, Any]] = []
    t_min, t_max = math.inf, -math.inf
    for label, colour, fill, metas in lines:
        metas = [m for m in metas if m and m[0]]
        if not metas:
            continue
        t_min = min(t_min, *(m[1] for m in metas))
        t_max = max(t_max, *(m[2] for m in metas))
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [],
                "y": [],
                "customdata": [],
                "meta": fill,
                "name": esc(label),
                "line": {"color": colour, "width": 2},
                "marker": {"size": 6},
                "hovertemplate": _hover(
                    [f"<b>{esc(label)}</b>", "%{x}", f"{esc(ytitle)}: %{{y:.4g}}", "run %{customdata[0]}"]
                ),
            }
        )
    if not data:
        return None
    lay = layout("", ytitle, height=height, showlegend=len(data) > 1)
    lay["xaxis"]["type"] = "date"
    bound_axis(lay["yaxis"], *bounds)  # every history metric is >= 0; accuracy also <= 1
    shapes: list[dict[str, Any]] = []
    banded = False
    for _label, colour, value, band, _text in marks:  # (line label, colour, baseline value, gate band, note)
        if value is None:
            continue
        if band is not None:
            banded = True
            shapes.append(
                {"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": band[0], "y1": band[1],
                 "fillcolor": colour, "opacity": 0.12, "line": {"width": 0}, "layer": "below"}
            )  # fmt: skip
        shapes.append(
            {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value,
             "line": {"color": colour, "dash": "dash", "width": 1.5}}
        )  # fmt: skip
    if shapes:
        lay["shapes"] = shapes
        # Short, so it stays clear of the toolbar; the card's caption names each baseline.
        corner_note(lay, "dashed: baseline" + (" · band: what its gates allow" if banded else ""))
    if t_min == t_max:
        # A single moment: plotly would zoom to milliseconds; show the day around it instead.
        t = started_of(t_min)
        lay["xaxis"]["range"] = [iso(t - timedelta(days=1)), iso(t + timedelta(days=1))]
    return {"data": data, "layout": lay}


# ---------------------------------------------------------------- run detail


def _cdf(values: Any, max_points: int = 150) -> tuple[list[float | None], list[float]]:
    """Empirical CDF of the finite ``values`` (a sequence or array; None and NaN left out),
    thinned to about ``max_points`` steps; two empty lists where none is finite."""
    arr = np.asarray(values, dtype=float)  # None becomes NaN
    vals = np.sort(arr[np.isfinite(arr)])
    n = len(vals)
    if n == 0:
        return [], []
    step = max(1, math.ceil(n / max_points))
    idx = np.arange(0, n, step)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return list(_round4(vals[idx])), np.round((idx + 1) / n, 4).tolist()


def _round4(arr: Any) -> list[float]:
    """:func:`r4` over a finite float array, vectorised (10^(3 - exponent) scaling)."""
    out = np.zeros(len(arr))
    nz = arr != 0
    digits = 3 - np.floor(np.log10(np.abs(arr[nz])))
    up = digits >= 0  # scale by an exact power of ten: multiply below 10^4, divide above
    big = 10.0 ** np.abs(digits)
    vals = arr[nz]
    with np.errstate(over="ignore", invalid="ignore"):  # np.where computes both branches
        out[nz] = np.where(up, np.round(vals * big) / big, np.round(vals / big) * big)
    rounded: list[float] = out.tolist()
    return rounded


def latency_cdf(tables: dict[str, dict[str, Any]]) -> Spec | None:
    """CDF of TTFT and end-to-end latency per scenario, from per-request tables."""
    colours = Palette.BASE
    data: list[dict[str, Any]] = []
    in_legend: set[str] = set()
    for k, (scenario, cols) in enumerate(tables.items()):
        for col, xa, ya in (("ttft_ms", "x", "y"), ("e2el_ms", "x2", "y2")):
            xs, ys = _cdf(cols.get(col, []))
            if not xs:
                continue
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs,
                    "y": ys,
                    "xaxis": xa,
                    "yaxis": ya,
                    "name": esc(scenario),
                    "legendgroup": esc(scenario),
                    "showlegend": scenario not in in_legend,
                    "line": {"color": colours[k % len(colours)], "width": 2, "shape": "hv"},
                    "hovertemplate": _hover(
                        [f"<b>{esc(scenario)}</b>", "%{x:.4g} ms", "%{y:.1%} of requests"]
                    ),
                }
            )
            in_legend.add(scenario)
    if not data:
        return None
    lay = layout(height=360, legend="below", showlegend=True)
    lay["xaxis"] = _axis("Time to first token (ms)", domain=[0, 0.46])
    lay["xaxis2"] = _axis("End-to-end latency (ms)", domain=[0.54, 1], anchor="y2")
    lay["yaxis"] = _axis("Fraction of requests", range=[0, 1.02], tickformat=".0%")
    lay["yaxis2"] = _axis("", anchor="x2", range=[0, 1.02], tickformat=".0%")
    return {"data": data, "layout": lay}


def gpu_timeseries(cols: dict[str, list[Any]]) -> Spec | None:
    """Power (W) and memory used (GiB) over the run, one line per GPU, from the telemetry samples."""
    t = cols.get("t_s") or []
    if not t:
        return None
    gpu = cols.get("gpu_index") or [0] * len(t)
    data: list[dict[str, Any]] = []
    for g in sorted({x for x in gpu if x is not None}):
        idx = [i for i in range(len(t)) if gpu[i] == g]
        step = max(1, math.ceil(len(idx) / 1500))
        idx = idx[::step]
        colour = Palette.BASE[int(g) % len(Palette.BASE)]
        for col, xa, ya, scale in (("power_w", "x", "y", 1.0), ("memory_used_bytes", "x2", "y2", 1 / 2**30)):
            vals = cols.get(col)
            if not vals:
                continue
            ys = [r4(float(vals[i]) * scale) if vals[i] is not None else None for i in idx]
            if all(y is None for y in ys):
                continue
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [r4(float(t[i])) for i in idx],
                    "y": ys,
                    "xaxis": xa,
                    "yaxis": ya,
                    "name": f"GPU {g}",
                    "legendgroup": f"gpu{g}",
                    "showlegend": col == "power_w",
                    "line": {"color": colour, "width": 1.5},
                }
            )
    if not data:
        return None
    lay = layout(height=340, legend="below", showlegend=True, hovermode="x unified")
    lay["xaxis"] = _axis("Seconds since telemetry start", domain=[0, 0.46])
    lay["xaxis2"] = _axis("Seconds since telemetry start", domain=[0.54, 1], anchor="y2")
    lay["yaxis"] = _axis("Power (W)", rangemode="tozero")
    lay["yaxis2"] = _axis("Memory used (GiB)", anchor="x2", rangemode="tozero")
    return {"data": data, "layout": lay}


def validate(spec: Spec) -> None:
    """Raise ValueError if plotly rejects ``spec`` (an unknown property, a bad value)."""
    import plotly.graph_objects as go  # lazy: plotly is heavy and only needed here

    go.Figure(spec)
