"""The per-run parts of the overview pages, serialised once per shard and joined per page.

The run list, the history page and the model pages show every run. Building them from 10,000
views on every build was most of an incremental build, so each shard
(:mod:`harness.dashboard.shards`) keeps its runs' parts as JSON text:

* ``top.runs`` / ``model.runs``: run-list rows (links from the top folder, and from ``models/``),
  newest first, each as ``[start, run id, row JSON]``;
* ``top.hist``: per suite, hardware and history metric, the points of the shard's successful runs;
* ``model.points``: per model-page chart and series (suite, name, hardware), the points.

A page joins the text of every shard: rows are merged newest first, and a chart line's points
are concatenated (in shard order) and sorted by time in the browser (``data-sort="x"``), so no
build re-reads a run it has not changed. Points are ``[x, y, customdata]`` text with their
count and time span, which is all the chart layout needs.
"""

from __future__ import annotations

import heapq
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from harness.dashboard.columns import runs_row
from harness.dashboard.data import RunView, iso
from harness.dashboard.figures import _hover, layout, r4
from harness.dashboard.html import RawJson, esc, json_text
from harness.dashboard.shards import order, started_of

SEP = "\x1f"  # joins the parts of a series key (suite, name, hardware)

HISTORY_METRICS: tuple[tuple[str, str, Callable[[RunView], float | None]], ...] = (
    ("acc", "Average accuracy", lambda v: v.acc_avg),
    ("tps", "Output tokens/s", lambda v: v.headline.output_tps if v.headline else None),
    ("ttft50", "TTFT p50 (ms)", lambda v: v.headline.ttft_p50_ms if v.headline else None),
    ("ttft99", "TTFT p99 (ms)", lambda v: v.headline.ttft_p99_ms if v.headline else None),
    ("tpot50", "TPOT p50 (ms)", lambda v: v.headline.tpot_p50_ms if v.headline else None),
    ("jpt", "Energy per output token (J)", lambda v: v.headline.energy_per_token_j if v.headline else None),
    (
        "rss",
        "Peak engine RSS (GiB)",
        lambda v: v.peak_rss_bytes / 2**30 if v.peak_rss_bytes is not None else None,
    ),
    (
        "gpumem",
        "Peak GPU memory (GiB)",
        lambda v: v.peak_gpu_memory_bytes / 2**30 if v.peak_gpu_memory_bytes is not None else None,
    ),
)

MODEL_CHARTS: tuple[tuple[str, str, str | None], ...] = (
    ("acc", "Accuracy by task", None),
    ("tps", "Output tokens/s", "output_tps"),
    ("ttft50", "TTFT p50 (ms)", "ttft_p50_ms"),
    ("ttft99", "TTFT p99 (ms)", "ttft_p99_ms"),
    ("tpot50", "TPOT p50 (ms)", "tpot_p50_ms"),
    ("tpot99", "TPOT p99 (ms)", "tpot_p99_ms"),
    ("jpt", "Energy per output token (J)", "energy_per_token_j"),
    ("mem", "Peak memory (GiB)", None),
)


class Points(NamedTuple):
    """One line's points from one shard, as JSON text without the brackets."""

    x: str
    y: str
    customdata: str
    n: int
    t_min: float
    t_max: float


def points(pairs: Iterable[tuple[RunView, float | None]]) -> list[Any] | None:
    """The points of (run, value) pairs that have a value, as a JSON-ready :class:`Points`."""
    pts = [(r, v) for r, v in pairs if v is not None]
    if not pts:
        return None
    ts = [order(r)[0] for r, _ in pts]
    return list(
        Points(
            ",".join(f'"{r.started_iso}"' for r, _ in pts),
            json_text([r4(v) for _, v in pts])[1:-1],
            json_text([[r.run_id_html, r.page] for r, _ in pts])[1:-1],
            len(pts),
            min(ts),
            max(ts),
        )
    )


def shard_fragments(views: Sequence[RunView]) -> dict[str, dict[str, Any]]:
    """The parts of one shard's runs (oldest first, pages named) that the overview pages join:
    ``top`` for the run list and history (``runs``, ``hist``), ``model`` for their model's page
    (``runs``, ``points``). Kept apart so that adding a run reads one model's points, not all."""
    newest = list(reversed(views))
    ok = [v for v in views if v.ok]
    hist: dict[str, dict[str, dict[str, Any]]] = {}
    groups: dict[tuple[str, str], list[RunView]] = {}
    for v in ok:
        groups.setdefault((v.suite, v.hardware), []).append(v)
    for (suite, hw), runs in groups.items():
        metrics = {key: points((r, get(r)) for r in runs) for key, _title, get in HISTORY_METRICS}
        hist.setdefault(suite, {})[hw] = {k: p for k, p in metrics.items() if p is not None}
    return {
        "top": {"runs": [[*order(v), json_text(runs_row(v), 6)] for v in newest], "hist": hist},
        "model": {
            "runs": [[*order(v), json_text(runs_row(v, "../"), 6)] for v in newest],
            "points": _model_points(ok),
        },
    }


def _model_points(ok: Sequence[RunView]) -> dict[str, dict[str, list[Any]]]:
    """Per model-page chart, per series ``suite SEP name SEP hardware``: points, and where the
    series first appears (start, run id, position in the run) to order the legend."""
    charts: dict[str, dict[str, list[tuple[RunView, float | None]]]] = {key: {} for key, _, _ in MODEL_CHARTS}
    first: dict[str, dict[str, tuple[float, str, int]]] = {key: {} for key, _, _ in MODEL_CHARTS}

    def add(chart: str, v: RunView, name: str, value: float | None, i: int) -> None:
        series = f"{v.suite}{SEP}{name}{SEP}{v.hardware}"
        charts[chart].setdefault(series, []).append((v, value))
        first[chart].setdefault(series, (*order(v), i))

    for v in ok:
        for i, (task, tv) in enumerate(v.accuracy.items()):
            add("acc", v, task, tv.value, i)
        for key, _title, attr in MODEL_CHARTS:
            if attr is None:
                continue
            for i, s in enumerate(v.scenarios.values()):
                add(key, v, s.name, getattr(s, attr), i)
        add("mem", v, "engine RSS", v.peak_rss_bytes / 2**30 if v.peak_rss_bytes else None, 0)
        add("mem", v, "GPU", v.peak_gpu_memory_bytes / 2**30 if v.peak_gpu_memory_bytes else None, 1)
    out: dict[str, dict[str, list[Any]]] = {}
    for chart, series in charts.items():
        kept = {}
        for name, pairs in series.items():
            p = points(pairs)
            if p is not None:
                kept[name] = [*p, *first[chart][name]]
        if kept:
            out[chart] = kept
    return out


# ---------------------------------------------------------------- joining


def join_rows(shards: Sequence[Sequence[list[Any]]]) -> RawJson:
    """The run-list rows of every shard, newest first, as a JSON array."""
    merged = heapq.merge(*shards, key=lambda r: (r[0], r[1]), reverse=True)
    return RawJson("[" + ",".join(r[2] for r in merged) + "]")


def history_spec(
    lines: Sequence[tuple[str, str, Sequence[list[Any]]]], ytitle: str, height: int = 300
) -> RawJson | None:
    """One metric over time: ``lines`` are (label, colour, the points of each shard) in legend
    order; lines without points are left out, and None when no line has one."""
    token = secrets.token_hex(8)  # stands in for the joined points while the layout is serialised
    data: list[dict[str, Any]] = []
    joined: dict[str, str] = {}
    t_min, t_max = float("inf"), float("-inf")
    for label, colour, parts in lines:
        parts = [Points(*p[:6]) for p in parts if p]
        if not parts:
            continue
        i = len(data)
        for axis in ("x", "y", "customdata"):
            joined[f"\x00{token}{axis}{i}"] = "[" + ",".join(getattr(p, axis) for p in parts if p.n) + "]"
        t_min = min(t_min, *(p.t_min for p in parts))
        t_max = max(t_max, *(p.t_max for p in parts))
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": f"\x00{token}x{i}",
                "y": f"\x00{token}y{i}",
                "name": esc(label),
                "line": {"color": colour, "width": 2},
                "marker": {"size": 6},
                "customdata": f"\x00{token}customdata{i}",
                "hovertemplate": _hover(
                    [f"<b>{esc(label)}</b>", "%{x}", f"{esc(ytitle)}: %{{y:.4g}}", "run %{customdata[0]}"]
                ),
            }
        )
    if not data:
        return None
    lay = layout("", ytitle, height=height, showlegend=len(data) > 1)
    lay["xaxis"]["type"] = "date"
    if t_min == t_max:
        # A single moment: plotly would zoom to milliseconds; show the day around it instead.
        t = started_of(t_min)
        lay["xaxis"]["range"] = [iso(t - timedelta(days=1)), iso(t + timedelta(days=1))]
    text = json_text({"data": data, "layout": lay})
    quoted = {json_text(k): v for k, v in joined.items()}
    return RawJson(re.sub("|".join(map(re.escape, quoted)), lambda m: quoted[m.group(0)], text))
