"""The per-run data of the overview pages, in one data file per shard that the pages load.

The run list, the history page and the model pages show every run. Building them from 10,000
views on every build was most of an incremental build, so the pages hold no runs: each shard
(:mod:`harness.dashboard.shards`) writes its runs' data to ``data/<shard>.js`` (run-list rows,
history points) and ``data/<shard>.model.js`` (the model page's points), and a page lists the
data files it needs in ``<script src>`` tags (which load from disk, offline). dashboard.js
joins the shards: table rows are concatenated and sorted like any table; a chart line names
its points (``meta``: which file part and key) and they are concatenated and sorted by time.
Adding a run rewrites one shard's data files and the small pages that count runs.

The pages need, without reading the data, which lines have points and the time span: that
is the shard's ``meta``, kept in its summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from harness.dashboard.columns import runs_row
from harness.dashboard.data import RunView
from harness.dashboard.figures import r4
from harness.dashboard.html import clean, json_text
from harness.dashboard.manifest import shard_files

PREFIX = "(window.HARNESS_SHARDS = window.HARNESS_SHARDS || []).push(\n"
SUFFIX = "\n);\n"

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


def points(pairs: Iterable[tuple[RunView, float | None]]) -> tuple[list[Any], list[Any]] | None:
    """The (run, value) pairs that have a value, as a line's ``[x, y, customdata]`` arrays and
    their ``[count, first time, last time]`` (seconds since the epoch); None when none has one."""
    pts = [(r, v) for r, v in pairs if v is not None]
    if not pts:
        return None
    ts = [r.ts for r, _ in pts]
    data = [
        [r.started_iso for r, _ in pts],
        [r4(v) for _, v in pts],
        [[r.run_id_html, r.page] for r, _ in pts],
    ]
    return data, [len(pts), min(ts), max(ts)]


def shard_fragments(views: Sequence[RunView]) -> dict[str, dict[str, Any]]:
    """One shard's runs (oldest first, pages named) as the pages use them:

    * ``top``, for ``data/<shard>.js``: ``runs`` (run-list rows, newest first, links from the
      top folder) and ``hist`` (suite -> ``model SEP hardware`` -> metric -> points);
    * ``model``, for ``data/<shard>.model.js``: ``points`` (model chart -> series -> points);
    * ``meta``, for the summary: the same keys with ``[count, first, last]`` in place of points
      (and, for model series, where the series first appears, to order the legend).
    """
    ok = [v for v in views if v.ok]
    hist: dict[str, dict[str, dict[str, Any]]] = {}
    hist_meta: dict[str, dict[str, dict[str, Any]]] = {}
    groups: dict[tuple[str, str], list[RunView]] = {}
    for v in ok:
        groups.setdefault((v.suite, f"{v.model}{SEP}{v.hardware}"), []).append(v)
    for (suite, group), runs in groups.items():
        for key, _title, get in HISTORY_METRICS:
            p = points((r, get(r)) for r in runs)
            if p is not None:
                hist.setdefault(suite, {}).setdefault(group, {})[key] = p[0]
                hist_meta.setdefault(suite, {}).setdefault(group, {})[key] = p[1]
    pts, pts_meta = _model_points(ok)
    return {
        "top": {"runs": [clean(runs_row(v), 6) for v in reversed(views)], "hist": hist},
        "model": {"points": pts},
        "meta": {"hist": hist_meta, "points": pts_meta},
    }


def _model_points(ok: Sequence[RunView]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per model-page chart, per series ``suite SEP name SEP hardware``: points, and their meta
    with where the series first appears (start, run id, position in the run)."""
    charts: dict[str, dict[str, list[tuple[RunView, float | None]]]] = {key: {} for key, _, _ in MODEL_CHARTS}
    first: dict[str, dict[str, tuple[float, str, int]]] = {key: {} for key, _, _ in MODEL_CHARTS}

    perf = [(key, attr) for key, _title, attr in MODEL_CHARTS if attr is not None]
    for v in ok:
        pre, post, where = f"{v.suite}{SEP}", f"{SEP}{v.hardware}", (v.ts, v.run_id)
        named = [("acc", task, tv.value, i) for i, (task, tv) in enumerate(v.accuracy.items())]
        for i, s in enumerate(v.scenarios.values()):
            named += [(key, s.name, getattr(s, attr), i) for key, attr in perf]
        named.append(("mem", "engine RSS", v.peak_rss_bytes / 2**30 if v.peak_rss_bytes else None, 0))
        named.append(("mem", "GPU", v.peak_gpu_memory_bytes / 2**30 if v.peak_gpu_memory_bytes else None, 1))
        for chart, name, value, i in named:
            series = pre + name + post
            got = charts[chart].get(series)
            if got is None:
                charts[chart][series] = got = []
                first[chart][series] = (*where, i)
            got.append((v, value))
    data: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for chart, by_series in charts.items():
        for key, pairs in by_series.items():
            p = points(pairs)
            if p is not None:
                data.setdefault(chart, {})[key] = p[0]
                meta.setdefault(chart, {})[key] = [*p[1], *first[chart][key]]
    return data, meta


def data_file(obj: dict[str, Any]) -> str:
    """A data file: a script that adds ``obj`` to the page's shards (its numbers already rounded:
    rows to six digits, points to four)."""
    return PREFIX + json_text(obj) + SUFFIX


def data_src(sid: str, part: str) -> str:
    """A data file's path relative to the dashboard folder (``part``: ``top`` or ``model``)."""
    return shard_files(sid)[1 if part == "top" else 2]
