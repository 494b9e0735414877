"""The architecture page's charts: KV cache and parameters per model, decode against the
roofline, measured minus published scores. Plain plotly JSON, built like :mod:`harness.dashboard.figures`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.dashboard.figures import LEGEND_BELOW, Spec, _axis, _hover, corner_note, layout, r4
from harness.dashboard.html import esc
from harness.formatting import finite, fmt, human_bytes, human_count

if TYPE_CHECKING:
    from harness.dashboard.archdata import Comparison, RooflineView


ATTENTION_COLOURS = {"MHA": "#4e79a7", "GQA": "#59a14f", "MLA": "#f28e2b"}
MHA_GREY = "#cfd6de"
MOE_COLOUR = "#e15759"


def _log_ticks(values: Sequence[float], step: float, label: Callable[[float], str]) -> dict[str, Any]:
    """Tick values ``step**k`` spanning ``values`` on a log axis, labelled by ``label``."""
    lo = math.floor(math.log(min(values), step))
    hi = math.ceil(math.log(max(values), step))
    ticks = [step**k for k in range(lo, hi + 1)]
    return {"type": "log", "tickvals": ticks, "ticktext": [label(t) for t in ticks]}


def _bar_layout(names: Sequence[str], xtitle: str, per_row: int = 34) -> dict[str, Any]:
    lay = layout(xtitle, "", height=max(300, 110 + per_row * len(names)), legend="below", showlegend=True)
    lay["barmode"] = "group"
    lay["bargap"] = 0.25
    lay["yaxis"] = _axis("", categoryorder="array", categoryarray=list(names), autorange="reversed")
    # Above the plot: a legend below would need an offset that depends on the chart's height.
    lay["legend"] = {**LEGEND_BELOW, "y": 1.0, "yanchor": "bottom"}
    lay["margin"] = {**lay["margin"], "t": 40}
    return lay


def _hbar(
    names: Sequence[str],
    x: Sequence[float],
    name: str,
    group: str,
    colour: str,
    custom: list[list[str]],
    hover: Sequence[str],
    text: list[str] | None = None,
) -> dict[str, Any]:
    """One horizontal bar trace; ``text`` goes past the end of each bar."""
    trace: dict[str, Any] = {
        "type": "bar",
        "orientation": "h",
        "y": list(names),
        "x": list(x),
        "name": name,
        "offsetgroup": group,
        "marker": {"color": colour},
        "customdata": custom,
        "hovertemplate": _hover(hover),
    }
    if text is not None:
        trace.update({"text": text, "textposition": "outside", "cliponaxis": False})
    return trace


def kv_bars(rows: Sequence[dict[str, Any]]) -> Spec | None:
    """KV-cache bytes per token of each model as built, beside what full multi-head attention would need.

    ``rows`` are :func:`harness.dashboard.archdata.arch_rows`; the x axis is logarithmic because
    a miniature test model and a 13 B model differ by orders of magnitude.
    """
    rows = [r for r in rows if r.get("error") is None and finite(r.get("kv_bytes_per_token"))]
    if not rows:
        return None
    names = [esc(r["name"]) for r in rows]
    data = [
        _hbar(
            names,
            [r["kv_bytes_per_token_mha"] for r in rows],
            "full multi-head equivalent",
            "mha",
            MHA_GREY,
            [[human_bytes(r["kv_bytes_per_token_mha"])] for r in rows],
            ["<b>%{y}</b>", "full multi-head attention: %{customdata[0]} per token"],
        )
    ]
    for kind in sorted({str(r["attention"]) for r in rows}):
        sel = [r for r in rows if r["attention"] == kind]
        text, custom = [], []
        for r in sel:
            factor = finite(r.get("kv_saving_factor"))
            label = f"÷{factor:.3g}" if factor is not None and factor > 1.001 else ""
            window = ""
            if r.get("sliding_window"):
                window = f"window {r['sliding_window']:,} tokens on {r['windowed_layers']}/{r['num_layers']} layers"
                label += (" · " if label else "") + f"window {r['sliding_window']:,}"
            text.append(label)
            custom.append(
                [
                    human_bytes(r["kv_bytes_per_token"]),
                    f"{factor:.3g}× smaller than full multi-head"
                    if factor and factor > 1.001
                    else "full multi-head",
                    esc(str(r.get("dtype"))),
                    window or "no sliding window",
                ]
            )
        data.append(
            _hbar(
                [esc(r["name"]) for r in sel],
                [r["kv_bytes_per_token"] for r in sel],
                f"as built: {esc(kind)}",
                "built",
                ATTENTION_COLOURS.get(kind, "#b07aa1"),
                custom,
                [
                    f"<b>%{{y}}</b> ({esc(kind)})",
                    "%{customdata[0]} per token at %{customdata[2]}",
                    "%{customdata[1]}",
                    "%{customdata[3]}",
                ],
                text,
            )
        )
    lay = _bar_layout(names, "KV-cache bytes per token (log scale)")
    values = [v for r in rows for v in (r["kv_bytes_per_token"], r["kv_bytes_per_token_mha"])]
    lay["xaxis"] = _axis("KV-cache bytes per token (log scale)", **_log_ticks(values, 4, human_bytes))
    lay["margin"] = {**lay["margin"], "r": 90}  # room for the labels past the longest bar
    return {"data": data, "layout": lay}


def param_bars(rows: Sequence[dict[str, Any]]) -> Spec | None:
    """Total against active (per token) parameters; mixture-of-experts models get their own colour."""
    rows = [r for r in rows if r.get("error") is None and finite(r.get("total_params"))]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (-r["total_params"], r["name"]))
    names = [esc(r["name"]) for r in rows]
    data = [
        _hbar(
            names,
            [r["total_params"] for r in rows],
            "total parameters",
            "total",
            MHA_GREY,
            [[human_count(r["total_params"])] for r in rows],
            ["<b>%{y}</b>", "%{customdata[0]} parameters in all"],
        )
    ]
    for moe, name, colour in (
        (False, "active per token: dense", "#4e79a7"),
        (True, "active per token: mixture of experts", MOE_COLOUR),
    ):
        sel = [r for r in rows if (r.get("num_experts") is not None) == moe]
        if not sel:
            continue
        text, custom = [], []
        for r in sel:
            share = r["active_params"] / r["total_params"]
            experts = (
                f"top-{r['experts_per_token']} of {r['num_experts']} experts" if moe else "every parameter"
            )
            text.append(f"{share:.0%} active · {experts}" if moe else "")
            custom.append([human_count(r["active_params"]), f"{share:.0%}", experts])
        data.append(
            _hbar(
                [esc(r["name"]) for r in sel],
                [r["active_params"] for r in sel],
                name,
                "active",
                colour,
                custom,
                ["<b>%{y}</b>", "%{customdata[0]} active per token (%{customdata[1]})", "%{customdata[2]}"],
                text,
            )
        )
    lay = _bar_layout(names, "Parameters (log scale)")
    values = [v for r in rows for v in (r["total_params"], r["active_params"])]
    lay["xaxis"] = _axis("Parameters (log scale)", **_log_ticks(values, 10, human_count))
    lay["margin"] = {**lay["margin"], "r": 170}
    return {"data": data, "layout": lay}


def roofline_bars(entries: Sequence[RooflineView], labels: Sequence[str]) -> Spec | None:
    """Measured batch-1 decode speed as a fraction of its roofline, one bar per run that has both figures.

    A fraction rather than tokens/s: a 135 M model's roofline is 25 times a 7 B model's, and on
    one linear axis the larger models' bars would vanish. The dashed line is the roofline itself.
    """
    pts = [
        (r, label, (r.fraction, r.measured_tps, r.roofline_tps))
        for r, label in zip(entries, labels, strict=True)
        if r.fraction is not None and r.measured_tps is not None and r.roofline_tps is not None
    ]
    if not pts:
        return None
    names = [esc(label) for _, label, _ in pts]
    text, custom, colours = [], [], []
    for r, _, (frac, measured, roof) in pts:
        fit = f"weights do not fit on {r.tensor_parallel_size or 1} GPU(s)" if r.fits is False else ""
        text.append(
            f"{frac:.0%} · {fmt('tps', measured)} of {fmt('tps', roof)} tok/s" + (f" · {fit}" if fit else "")
        )
        colours.append("#c05621" if r.fits is False else "#2f6fad")
        custom.append(
            [
                esc(r.view.hardware),
                esc(r.gpu or ""),
                esc(r.scenario or ""),
                r.context_tokens,
                r4(r.measured_tps),
                r4(r.roofline_tps),
                fit or "weights fit",
                r.view.page,
            ]
        )
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": names,
            "x": [r4(frac) for _, _, (frac, _, _) in pts],
            "name": "measured ÷ roofline",
            "marker": {"color": colours},
            "text": text,
            "textposition": "outside",
            "cliponaxis": False,
            "customdata": custom,
            "hovertemplate": _hover(
                [
                    "<b>%{y}</b>",
                    "%{customdata[0]} (roofline of %{customdata[1]})",
                    "scenario %{customdata[2]}, mean context %{customdata[3]} tokens",
                    "measured %{customdata[4]} tok/s, roofline %{customdata[5]} tok/s: %{x:.0%}",
                    "%{customdata[6]}",
                ]
            ),
        }
    ]
    lay = _bar_layout(names, "Measured decode speed ÷ roofline")
    lay["showlegend"] = False
    lay["margin"] = {**lay["margin"], "t": 40, "r": 40}
    top = max(1.0, *(frac for _, _, (frac, _, _) in pts))
    lay["xaxis"] = _axis("Measured decode speed ÷ roofline", tickformat=".0%", range=[0, top * 1.45])
    lay["shapes"] = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": 1,
            "x1": 1,
            "y0": 0,
            "y1": 1,
            "line": {"color": "#52606d", "width": 1.5, "dash": "dash"},
        }
    ]
    lay["annotations"] = [
        {
            "text": "roofline",
            "xref": "x",
            "yref": "paper",
            "x": 1,
            "y": 1,
            "yanchor": "bottom",
            "showarrow": False,
            "font": {"size": 11, "color": "#52606d"},
        }
    ]
    return {"data": data, "layout": lay}


def reported_deltas(
    groups: Sequence[tuple[str, str, Sequence[Comparison]]], colour_of: Callable[[str], str]
) -> Spec | None:
    """Measured minus published score per task, one bar series per (label, run page), with 95% error bars.

    Only comparable tasks (same metric and shot count) are drawn; the tables list the rest.
    """
    data: list[dict[str, Any]] = []
    for label, page, comps in groups:
        pts = [c for c in comps if c.comparable and c.delta is not None]
        if not pts:
            continue
        data.append(
            {
                "type": "bar",
                "x": [esc(c.task) for c in pts],
                "y": [r4(c.delta) for c in pts],
                "name": esc(label),
                "marker": {"color": colour_of(label)},
                "error_y": {
                    "type": "data",
                    "array": [r4(1.96 * c.measured_stderr) if c.measured_stderr else None for c in pts],
                    "visible": True,
                    "color": "#52606d",
                    "thickness": 1.2,
                    "width": 4,
                },
                "customdata": [
                    [
                        f"{c.reported:.3f}" if c.reported is not None else "",
                        c.reported_shots,
                        esc(c.source),
                        f"{c.measured:.3f}" if c.measured is not None else "",
                        f" ± {c.measured_stderr:.3f}" if c.measured_stderr else "",
                        esc(c.verdict),
                        page,
                    ]
                    for c in pts
                ],
                "hovertemplate": _hover(
                    [
                        f"<b>{esc(label)}</b>",
                        "%{x}: measured %{customdata[3]}%{customdata[4]}",
                        "published %{customdata[0]} (%{customdata[1]}-shot, %{customdata[2]})",
                        "measured − published: %{y:+.3f} (%{customdata[5]})",
                    ]
                ),
            }
        )
    if not data:
        return None
    lay = layout("", "Measured − published", height=380, legend="below", showlegend=True)
    lay["yaxis"] = _axis(
        "Measured − published", tickformat="+.2f", zeroline=True, zerolinecolor="#52606d", zerolinewidth=1.5
    )
    lay["barmode"] = "group"
    corner_note(lay, "error bars: ±1.96 standard errors of the measurement")
    return {"data": data, "layout": lay}
