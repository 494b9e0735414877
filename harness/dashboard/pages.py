"""The HTML pages, as strings. No plotly here: charts are JSON specs drawn by plotly.js in the browser.

Escaping rules, in one place:

* text in HTML goes through :func:`esc` (``html.escape`` with quotes);
* data for the browser goes in ``<script type="application/json">`` blocks written by
  :func:`json_script`, which escapes ``<``, ``>`` and ``&`` so no record text can close the
  block; the page script then inserts it with ``textContent`` only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from harness.dashboard import figures
from harness.dashboard.archdata import ReportedView, RooflineView, reported_view, roofline_view
from harness.dashboard.data import (
    MISSING,
    LeaderRow,
    Palette,
    RunView,
    ScenarioView,
    finite,
    human_bytes,
    human_count,
    iso,
    row_labels,
    slug,
)
from harness.records import RunRecord

Spec = dict[str, Any]


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def clean(obj: Any, digits: int | None = None) -> Any:
    """``obj`` with every NaN or infinity replaced by None (JSON has neither), floats rounded
    to ``digits`` significant digits when given."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.{digits}g}") if digits else obj
    if isinstance(obj, dict):
        return {str(k): clean(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v, digits) for v in obj]
    return obj


def json_text(obj: Any, digits: int | None = None) -> str:
    """Compact JSON that is safe inside a ``<script>`` element.

    NaN and infinity become null; with ``digits``, floats keep that many significant digits
    (tables show at most four, and long floats triple the bytes).
    """
    if digits is None:
        try:
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError:  # a NaN or infinity somewhere: the slow path replaces them
            text = json.dumps(clean(obj), separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(clean(obj, digits), separators=(",", ":"), ensure_ascii=False)
    # No record text may close the script element or open a comment; U+2028/9 break old parsers.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def json_script(id_: str, obj: Any, digits: int | None = None) -> str:
    return f'<script type="application/json" id="{esc(id_)}">{json_text(obj, digits)}</script>'


# ---------------------------------------------------------------- formatting (mirrors dashboard.js)


def _fixed(v: float) -> int:
    a = abs(v)
    return 0 if a >= 100 else 1 if a >= 10 else 2


def fmt(kind: str, value: Any) -> str | None:
    """A figure as the tables show it; None for a missing one."""
    if value is None:
        return None
    if kind in ("acc", "delta", "tps", "ms", "j", "int", "bytes", "s"):
        v = finite(value)
        if v is None:
            return None
        if kind == "acc":
            return f"{v:.3f}"
        if kind == "delta":
            return f"{v:+.3f}"
        if kind in ("tps", "ms"):
            return f"{v:.{_fixed(v)}f}"
        if kind == "j":
            return f"{v:,.0f}" if abs(v) >= 100 else "0" if v == 0 else f"{v:.3g}"
        if kind == "int":
            return str(round(v))
        if kind == "s":
            return f"{v:.0f} s" if v >= 100 else f"{v:.1f} s"
        gib = v / 2**30
        return f"{gib:.2f} GiB" if gib >= 1 else f"{v / 2**20:.0f} MiB"
    return str(value)


def cell(kind: str, value: Any, spread: str | None = None, cls: str = "num") -> str:
    text = fmt(kind, value)
    if text is None:
        return f'<td class="missing" title="not measured">{MISSING}</td>'
    extra = f'<span class="se">{esc(spread)}</span>' if spread else ""
    return f'<td class="{cls}">{esc(text)}{extra}</td>'


def pm(kind: str, se: Any) -> str | None:
    t = fmt(kind, se)
    return f"± {t}" if t is not None else None


# ---------------------------------------------------------------- page frame

NAV = (
    ("index.html", "Leaderboard", "index"),
    ("history.html", "History", "history"),
    ("runs.html", "All runs", "runs"),
    ("architecture.html", "Architecture", "architecture"),
)


def frame(title: str, body: str, *, root: str, active: str, generated: str, charts: bool) -> str:
    """A complete page: head with the shared assets (relative to ``root``), nav bar, body, footer."""
    nav = "".join(
        f'<a href="{root}{href}"{" class=active" if key == active else ""}>{label}</a>'
        for href, label, key in NAV
    )
    # dashboard.js first: it fills the tables while the browser is still compiling plotly.js.
    plotly = f'\n<script src="{root}plotly.min.js" defer></script>' if charts else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}dashboard.css">
<script src="{root}dashboard.js" defer></script>{plotly}
</head>
<body>
<header class="top"><div class="brand">harness <span>LLM accuracy &amp; efficiency</span></div><nav>{nav}</nav>
<div class="gen">generated {esc(generated)}</div></header>
<main>
<noscript><p class="card">These pages need JavaScript for their tables and charts.</p></noscript>
{body}
</main>
<footer>Written by <code>harness dashboard</code> from run records; every figure links back to its run.</footer>
</body>
</html>
"""


def chart_card(
    id_: str,
    title: str,
    note: str,
    spec: Spec | None,
    root: str = "",
    empty: str = "No data yet.",
    wide: bool = False,
    section_id: str | None = None,
) -> str:
    """A card with a heading, a caption and a chart (or a line saying why there is none); ``wide`` spans
    the grid; ``section_id`` gives the card an id to link to."""
    head = f"<h3>{esc(title)}</h3><p class=note>{note}</p>"
    attrs = f'class="{"card wide" if wide else "card"}"' + (f' id="{esc(section_id)}"' if section_id else "")
    if spec is None:
        return (
            f'<section {attrs}>{head}<p class="empty" data-no-chart="{esc(id_)}">{esc(empty)}</p></section>'
        )
    return (
        f'<section {attrs}>{head}<div class="chart" id="{esc(id_)}" data-spec="{esc(id_)}-spec" '
        f'data-root="{root}"></div>{json_script(id_ + "-spec", spec)}</section>'
    )


def table(id_: str, config: dict[str, Any]) -> str:
    return f'<div class="dtable" id="{esc(id_)}" data-config="{esc(id_)}-data"></div>{json_script(id_ + "-data", config, 6)}'


def plain_table(headers: Sequence[str], rows: Iterable[str], num_from: int = 99) -> str:
    ths = "".join(f"<th{' class=num' if i >= num_from else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    return f'<div class="table-wrap"><table class="plain"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v) if v not in (None, '') else MISSING}</td></tr>" for k, v in pairs
    )
    return f'<table class="kv"><tbody>{body}</tbody></table>'


# ---------------------------------------------------------------- row data for the tables


def _search(v: RunView) -> str:
    return " ".join(
        x for x in (v.model, v.suite, v.hardware, v.engine, v.run_id, v.status, v.error or "") if x
    ).lower()


def _perf(s: ScenarioView) -> dict[str, Any]:
    return {
        "tps": s.output_tps,
        "rps": s.request_tps,
        "ttft50": s.ttft_p50_ms,
        "ttft90": s.ttft_p90_ms,
        "ttft99": s.ttft_p99_ms,
        "ttftsd": s.ttft_std_ms,
        "tpot50": s.tpot_p50_ms,
        "tpot99": s.tpot_p99_ms,
        "tpotsd": s.tpot_std_ms,
        "jpt": s.energy_per_token_j,
    }


def runs_href(model: str, prefix: str = "") -> str:
    return f"{prefix}runs.html#q={quote(model, safe='')}"


def leaderboard_config(rows: Sequence[LeaderRow], prefix: str = "") -> dict[str, Any]:
    """Columns and rows of the leaderboard table (see dashboard.js for the column keys)."""
    views = [r.latest for r in rows]
    tasks = sorted({t for v in views for t in v.accuracy})
    scen_names: list[str] = []
    scen_labels: dict[str, str] = {}
    for v in views:
        for s in v.scenarios.values():
            if s.name not in scen_labels:
                scen_names.append(s.name)
                scen_labels[s.name] = f"{s.name} ({s.load}; {s.shape})"
    data_rows = []
    for r in rows:
        v = r.latest
        rep = reported_view(v)
        flag = None
        if r.last_failed is not None:
            flag = f"newer run failed ({iso(r.last_failed.started_at)[:10]})"
        data_rows.append(
            {
                "model": v.model,
                "model_href": prefix + v.model_page,
                "suite": v.suite,
                "hardware": v.hardware,
                "engine": v.engine,
                "run_id": v.run_id,
                "run_href": prefix + v.page,
                "started": iso(v.started_at),
                "runs": r.n_runs,
                "runs_href": runs_href(v.model, prefix),
                "flag": flag,
                "acc": {t: [tv.value, tv.stderr] for t, tv in v.accuracy.items()},
                "acc_avg": v.acc_avg,
                "acc_avg_se": v.acc_avg_se,
                "rep": rep.mean_delta,
                "rep_n": f"{len(rep.comparable)} task{'s' if len(rep.comparable) != 1 else ''}",
                "rep_href": f"{prefix}architecture.html#reported",
                "perf": {s.name: _perf(s) for s in v.scenarios.values()},
                "headline": v.headline.name if v.headline else None,
                "rss": v.peak_rss_bytes,
                "gpumem": v.peak_gpu_memory_bytes,
                "search": _search(v),
            }
        )
    any_gpu_mem = any(v.peak_gpu_memory_bytes is not None for v in views)
    columns: list[dict[str, Any]] = [
        {
            "key": "model",
            "label": "Model",
            "path": ["model"],
            "fmt": "text",
            "href": ["model_href"],
            "flag": ["flag"],
        },
        {"key": "suite", "label": "Suite", "path": ["suite"], "fmt": "text"},
        {
            "key": "acc_avg",
            "label": "Avg accuracy",
            "path": ["acc_avg"],
            "se": ["acc_avg_se"],
            "fmt": "acc",
            "num": True,
            "better": "high",
            "title": "Mean over the tasks the run has ± its standard error",
        },
        {
            "key": "rep",
            "label": "Δ vs published",
            "path": ["rep"],
            "fmt": "delta",
            "num": True,
            "hideEmpty": True,
            "href": ["rep_href"],
            "sub": {"path": ["rep_n"], "label": "over", "fmt": "text"},
            "title": "Mean of measured − published score over the tasks with a published figure at the same "
            "metric and shots; details on the Architecture page",
        },
        {
            "key": "tps",
            "label": "Output tok/s",
            "path": ["perf", "$scenario", "tps"],
            "fmt": "tps",
            "num": True,
            "better": "high",
            "title": "Output tokens per second in the selected scenario",
        },
        {
            "key": "ttft50",
            "label": "TTFT p50 (ms)",
            "path": ["perf", "$scenario", "ttft50"],
            "fmt": "ms",
            "num": True,
            "better": "low",
            "sub": {"path": ["perf", "$scenario", "ttftsd"], "label": "σ"},
            "title": "Median time to first token; σ is the standard deviation",
        },
        {
            "key": "ttft99",
            "label": "TTFT p99 (ms)",
            "path": ["perf", "$scenario", "ttft99"],
            "fmt": "ms",
            "num": True,
            "better": "low",
            "sub": {"path": ["perf", "$scenario", "ttft90"], "label": "p90"},
            "title": "99th percentile time to first token (p90 below)",
        },
        {
            "key": "tpot50",
            "label": "TPOT p50 (ms)",
            "path": ["perf", "$scenario", "tpot50"],
            "fmt": "ms",
            "num": True,
            "better": "low",
            "sub": {"path": ["perf", "$scenario", "tpotsd"], "label": "σ"},
            "title": "Median time per output token after the first; σ is the standard deviation",
        },
        {
            "key": "jpt",
            "label": "Energy (J/tok)",
            "path": ["perf", "$scenario", "jpt"],
            "fmt": "j",
            "num": True,
            "better": "low",
            "title": "GPU energy per output token in the selected scenario (needs an NVIDIA GPU)",
        },
        {
            "key": "rss",
            "label": "Peak RSS",
            "path": ["rss"],
            "fmt": "bytes",
            "num": True,
            "better": "low",
            "title": "Peak resident memory of the engine's process tree over the run",
        },
    ]
    if any_gpu_mem:
        columns.append(
            {
                "key": "gpumem",
                "label": "Peak GPU mem",
                "path": ["gpumem"],
                "fmt": "bytes",
                "num": True,
                "better": "low",
                "title": "Peak GPU memory used (NVML)",
            }
        )
    for t in tasks:
        columns.append(
            {
                "key": f"acc:{t}",
                "label": t,
                "path": ["acc", t, 0],
                "se": ["acc", t, 1],
                "fmt": "acc",
                "num": True,
                "better": "high",
                "hideEmpty": True,
                "title": f"{t}: headline metric ± standard error",
            }
        )
    columns += [
        {"key": "engine", "label": "Engine", "path": ["engine"], "fmt": "text"},
        {"key": "hardware", "label": "Hardware", "path": ["hardware"], "fmt": "text"},
        {
            "key": "runs",
            "label": "Runs",
            "path": ["runs"],
            "fmt": "int",
            "num": True,
            "href": ["runs_href"],
            "title": "All runs of this model (opens the run list)",
        },
        {
            "key": "started",
            "label": "Latest run",
            "path": ["started"],
            "fmt": "date",
            "href": ["run_href"],
            "title": "Start of the run shown (UTC); opens its detail page",
        },
    ]
    scenarios = [{"name": "", "label": "each suite's first scenario"}]
    scenarios += [{"name": n, "label": scen_labels[n]} for n in scen_names]
    return {
        "columns": columns,
        "rows": data_rows,
        "filters": ["suite", "hardware"],
        "scenarios": scenarios,
        "scenario": "",
        "sort": {"key": "acc_avg", "dir": "desc"},
        "empty": "No successful runs match.",
    }


def runs_config(views: Sequence[RunView], prefix: str = "", hash_filters: bool = True) -> dict[str, Any]:
    """The run list: every run, newest first, failed ones included with their error.

    No best-value shading here: the list mixes suites and scenarios, whose figures do not compare.
    """
    rows = []
    for v in reversed(views):
        h = v.headline
        rows.append(
            {
                "started": iso(v.started_at),
                "run_href": prefix + v.page,
                "model": v.model,
                "model_href": prefix + v.model_page,
                "suite": v.suite,
                "status": v.status,
                "acc_avg": v.acc_avg,
                "scenario": h.name if h else None,
                "tps": h.output_tps if h else None,
                "ttft99": h.ttft_p99_ms if h else None,
                "hardware": v.hardware,
                "engine": v.engine,
                "run_id": v.run_id,
                "duration": v.record.duration_s,
                "error": v.error,
                "search": _search(v),
            }
        )
    columns = [
        {
            "key": "started",
            "label": "Started (UTC)",
            "path": ["started"],
            "fmt": "date",
            "href": ["run_href"],
        },
        {"key": "model", "label": "Model", "path": ["model"], "fmt": "text", "href": ["model_href"]},
        {"key": "suite", "label": "Suite", "path": ["suite"], "fmt": "text"},
        {"key": "status", "label": "Status", "path": ["status"], "fmt": "status"},
        {
            "key": "acc_avg",
            "label": "Avg accuracy",
            "path": ["acc_avg"],
            "fmt": "acc",
            "num": True,
        },
        {
            "key": "tps",
            "label": "Output tok/s",
            "path": ["tps"],
            "fmt": "tps",
            "num": True,
            "title": "In the suite's first scenario",
        },
        {
            "key": "ttft99",
            "label": "TTFT p99 (ms)",
            "path": ["ttft99"],
            "fmt": "ms",
            "num": True,
            "title": "In the suite's first scenario",
        },
        {"key": "scenario", "label": "Scenario", "path": ["scenario"], "fmt": "text"},
        {"key": "hardware", "label": "Hardware", "path": ["hardware"], "fmt": "text"},
        {"key": "engine", "label": "Engine", "path": ["engine"], "fmt": "text"},
        {"key": "duration", "label": "Duration", "path": ["duration"], "fmt": "s", "num": True},
        {"key": "run_id", "label": "Run id", "path": ["run_id"], "fmt": "text", "href": ["run_href"]},
        {"key": "error", "label": "Error", "path": ["error"], "fmt": "text", "clip": 90},
    ]
    return {
        "columns": columns,
        "rows": rows,
        "filters": ["suite", "hardware", "status"],
        "sort": {"key": "started", "dir": "desc"},
        "hash": hash_filters,
        "empty": "No runs match.",
    }


# ---------------------------------------------------------------- pages


def _context_line(views: Sequence[RunView], models: bool = True) -> str:
    n_models = len({v.model for v in views})
    failed = sum(not v.ok for v in views)
    parts = [f"<b>{n_models}</b> model{'s' if n_models != 1 else ''}"] if models else []
    parts.append(f"<b>{len(views)}</b> run{'s' if len(views) != 1 else ''}")
    if failed:
        parts.append(f'<a href="{"" if models else "../"}runs.html#status=failed"><b>{failed}</b> failed</a>')
    if views:
        parts.append(f"latest {esc(when(views[-1].started_at))}")
    return " · ".join(parts)


def when(t: Any) -> str:
    """A timestamp as the pages show it: ``2025-03-01 09:00 UTC``."""
    return iso(t)[:16].replace("T", " ") + " UTC"


def _pills(label: str, values: Iterable[str]) -> str:
    return "".join(f'<span class="pill" title="{esc(label)}">{esc(v)}</span>' for v in sorted(set(values)))


def warnings_card(problems: Sequence[str], limit: int = 20) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{esc(p)}</li>" for p in problems[:limit])
    more = f"<p class=note>… and {len(problems) - limit} more.</p>" if len(problems) > limit else ""
    return (
        f'<section class="card warnings" id="warnings"><h2>{len(problems)} unreadable file(s) skipped</h2>'
        f"<p class=note>These record files or tables could not be read; the pages leave them out.</p>"
        f"<ul>{items}</ul>{more}</section>"
    )


def _by_suite(rows: Sequence[LeaderRow]) -> list[tuple[str, list[RunView]]]:
    """Leaderboard runs grouped by suite, the suite with most rows first."""
    groups: dict[str, list[RunView]] = {}
    for r in rows:
        groups.setdefault(r.latest.suite, []).append(r.latest)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def suite_charts(suite: str, latest: Sequence[RunView], palette: Palette) -> str:
    """The comparison charts of one suite: accuracy vs efficiency, per-task heatmap, latency under load."""
    labels = row_labels(latest)
    sid = slug(suite)
    cards = [
        chart_card(
            f"chart-acc-tps-{sid}",
            "Accuracy vs throughput",
            "Average accuracy against output tokens/s in the suite's first load scenario. The dotted line is the "
            "Pareto frontier: no other model is both more accurate and faster. Marker shape is the hardware; "
            "click a point for its run.",
            figures.accuracy_scatter(
                latest,
                labels,
                palette,
                lambda v: v.headline.output_tps if v.headline else None,
                "Output tokens/s",
                x_higher=True,
            ),
            empty="No run in this suite has both accuracy and throughput.",
        )
    ]
    energy = figures.accuracy_scatter(
        latest,
        labels,
        palette,
        lambda v: v.headline.energy_per_token_j if v.headline else None,
        "Energy per output token (J)",
        x_higher=False,
    )
    if energy is not None:
        cards.append(
            chart_card(
                f"chart-acc-energy-{sid}",
                "Accuracy vs energy",
                "Average accuracy against GPU energy per "
                "output token in the first load scenario; up and to the left is better. The dotted line is the "
                "Pareto frontier.",
                energy,
            )
        )
    cards.append(
        chart_card(
            f"chart-heatmap-{sid}",
            "Per-task accuracy",
            "Each task's headline metric; a blank cell is a task the run did not evaluate.",
            figures.task_heatmap(latest, labels),
            empty="No accuracy results in this suite.",
            wide=len({t for v in latest for t in v.accuracy}) > 4,
        )
    )
    conc = figures.latency_under_load(latest, labels, palette, "concurrency")
    rate = figures.latency_under_load(latest, labels, palette, "rate")
    if conc is not None or rate is None:
        cards.append(
            chart_card(
                f"chart-load-concurrency-{sid}",
                "Latency under load: concurrency",
                "TTFT and TPOT against requests in flight (closed-loop scenarios), one line per model.",
                conc,
                empty="No load scenarios in this suite.",
                wide=rate is None,
            )
        )
    if rate is not None:
        cards.append(
            chart_card(
                f"chart-load-rate-{sid}",
                "Latency under load: request rate",
                "TTFT and TPOT against the "
                "offered Poisson request rate (open-loop scenarios), one line per model.",
                rate,
            )
        )
    hws = ", ".join(sorted({v.hardware for v in latest}))
    return (
        f'<section class="suite" id="suite-{esc(sid)}"><h2 class="suite-head">Suite <span>{esc(suite)}</span></h2>'
        f'<p class="note">{len(latest)} model{"s" if len(latest) != 1 else ""} · {esc(hws)}</p>'
        f'<div class="grid2">{"".join(cards)}</div></section>'
    )


def index_page(
    views: Sequence[RunView],
    rows: Sequence[LeaderRow],
    problems: Sequence[str],
    palette: Palette,
    generated: str,
) -> str:
    """Leaderboard, then per suite: accuracy vs efficiency, task heatmap, latency under load; recent runs."""
    latest = [r.latest for r in rows]
    body = [
        '<section class="hero"><h1>Open LLM leaderboard: accuracy and efficiency</h1>',
        f'<p class="context">{_context_line(views)}</p>',
        f'<div class="pills">{_pills("suite", (v.suite for v in views))}{_pills("hardware", (v.hardware for v in views))}'
        f"{_pills('engine', (v.engine for v in latest))}</div></section>",
        warnings_card(problems),
        '<section class="card"><h2>Leaderboard</h2><p class=note>Latest successful run of each model per suite and '
        "hardware; older runs under <i>Runs</i>. Accuracy is the task's headline metric ± its standard error. "
        "Performance columns come from the load scenario picked on the right. — means not measured; "
        "the best value in each column is shaded.</p>",
        table("leaderboard", leaderboard_config(rows)),
        "</section>",
    ]
    body += [suite_charts(suite, runs, palette) for suite, runs in _by_suite(rows)]
    body.append(_recent_runs(views))
    return frame(
        "harness leaderboard",
        "\n".join(body),
        root="",
        active="index",
        generated=generated,
        charts=bool(rows),
    )


def _recent_runs(views: Sequence[RunView], n: int = 12) -> str:
    recent = list(reversed(views))[:n]
    rows = []
    for v in recent:
        badge = f'<span class="badge badge-{"ok" if v.ok else "failed"}">{esc(v.status)}</span>'
        err = esc((v.error or "")[:140] + ("…" if v.error and len(v.error) > 140 else ""))
        rows.append(
            f'<tr{" class=failed" if not v.ok else ""}><td><a href="{esc(v.page)}">{esc(iso(v.started_at)[:16].replace("T", " "))}</a></td>'
            f'<td><a href="{esc(v.model_page)}">{esc(v.model)}</a></td><td>{esc(v.suite)}</td><td>{badge}</td>'
            f'<td>{esc(v.hardware)}</td><td title="{esc(v.error or "")}">{err}</td></tr>'
        )
    return (
        f'<section class="card" id="recent"><h2>Recent runs</h2><p class=note>The {len(recent)} newest of '
        f'{len(views)} runs, failed ones included. <a href="runs.html">All runs →</a></p>'
        + (
            plain_table(["Started (UTC)", "Model", "Suite", "Status", "Hardware", "Error"], rows)
            if rows
            else "<p class=empty>No runs yet: run <code>make eval</code>.</p>"
        )
        + "</section>"
    )


def runs_page(views: Sequence[RunView], problems: Sequence[str], generated: str) -> str:
    body = (
        f'<section class="hero"><h1>All runs</h1><p class="context">{_context_line(views)}</p></section>'
        + warnings_card(problems)
        + '<section class="card"><h2>Runs</h2><p class=note>Every run record, newest first. Throughput and TTFT come '
        "from the suite's first load scenario. Failed runs keep what they measured; their error is on the right.</p>"
        + table("runs", runs_config(views))
        + "</section>"
    )
    return frame("harness: all runs", body, root="", active="runs", generated=generated, charts=False)


HISTORY_METRICS: tuple[tuple[str, str, Any], ...] = (
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


def history_page(views: Sequence[RunView], palette: Palette, generated: str) -> str:
    """Each headline metric over time, per suite, one line per model (and hardware)."""
    sections = []
    suites: dict[str, list[RunView]] = {}
    for v in views:
        if v.ok:
            suites.setdefault(v.suite, []).append(v)
    for suite, runs in sorted(suites.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        groups: dict[tuple[str, str, str], list[RunView]] = {}
        for v in runs:
            groups.setdefault(v.key, []).append(v)
        labels = row_labels([g[0] for g in groups.values()])
        colour = {label: palette(g[0].model) for label, g in zip(labels, groups.values(), strict=True)}
        sid = slug(suite)
        cards = []
        for key, title, get in HISTORY_METRICS:
            spec = figures.history(
                {label: [(r, get(r)) for r in g] for label, g in zip(labels, groups.values(), strict=True)},
                colour.__getitem__,
                title,
            )
            if spec is not None:
                cards.append(
                    chart_card(
                        f"chart-history-{key}-{sid}",
                        title,
                        "One point per successful run; "
                        "performance from the suite's first load scenario. Click a point for its run.",
                        spec,
                    )
                )
        sections.append(
            f'<section class="suite" id="suite-{esc(sid)}"><h2 class="suite-head">Suite <span>{esc(suite)}</span></h2>'
            f'<p class="note">{len(runs)} successful runs of {len(groups)} model/hardware pairs</p>'
            f'<div class="grid2">{"".join(cards)}</div></section>'
        )
    if not sections:
        sections.append('<section class="card"><p class="empty">No successful runs yet.</p></section>')
    body = (
        '<section class="hero"><h1>History</h1><p class="context">Every successful run of each model over time, '
        f"so a regression shows as a step. {_context_line(views)}</p></section>" + "".join(sections)
    )
    return frame(
        "harness: history", body, root="", active="history", generated=generated, charts=bool(suites)
    )


def model_page(model: str, views: Sequence[RunView], palette: Palette, generated: str) -> str:
    """One model: its runs and every metric over them (each task, each scenario)."""
    ok = [v for v in views if v.ok]
    suites = {v.suite for v in views}
    hws = {v.hardware for v in views}

    def tag(v: RunView, name: str) -> str:
        parts = [name]
        if len(suites) > 1:
            parts.insert(0, v.suite)
        if len(hws) > 1:
            parts.append(v.hardware)
        return " · ".join(parts)

    def by_label(
        points: Iterable[tuple[str, RunView, float | None]],
    ) -> dict[str, list[tuple[RunView, float | None]]]:
        out: dict[str, list[tuple[RunView, float | None]]] = {}
        for label, v, val in points:
            out.setdefault(label, []).append((v, val))
        return out

    task_pts = by_label((tag(v, t), v, tv.value) for v in ok for t, tv in v.accuracy.items())
    charts: list[tuple[str, str, dict[str, list[tuple[RunView, float | None]]]]] = [
        ("acc", "Accuracy by task", task_pts)
    ]
    for key, title, attr in (
        ("tps", "Output tokens/s", "output_tps"),
        ("ttft50", "TTFT p50 (ms)", "ttft_p50_ms"),
        ("ttft99", "TTFT p99 (ms)", "ttft_p99_ms"),
        ("tpot50", "TPOT p50 (ms)", "tpot_p50_ms"),
        ("tpot99", "TPOT p99 (ms)", "tpot_p99_ms"),
        ("jpt", "Energy per output token (J)", "energy_per_token_j"),
    ):
        charts.append(
            (
                key,
                title,
                by_label((tag(v, s.name), v, getattr(s, attr)) for v in ok for s in v.scenarios.values()),
            )
        )
    mem = by_label(
        [(tag(v, "engine RSS"), v, v.peak_rss_bytes / 2**30 if v.peak_rss_bytes else None) for v in ok]
        + [
            (tag(v, "GPU"), v, v.peak_gpu_memory_bytes / 2**30 if v.peak_gpu_memory_bytes else None)
            for v in ok
        ]
    )
    charts.append(("mem", "Peak memory (GiB)", mem))
    cards = []
    for key, title, series in charts:
        colours = Palette(list(series))
        spec = figures.history(series, colours, title)
        if spec is not None:
            cards.append(
                chart_card(
                    f"chart-model-{key}",
                    title,
                    "One point per successful run; click for the run.",
                    spec,
                    root="../",
                )
            )
    latest = ok[-1] if ok else None
    stats = ""
    if latest is not None:
        h = latest.headline
        stats = _stats(
            [
                ("Avg accuracy (latest)", fmt("acc", latest.acc_avg), pm("acc", latest.acc_avg_se)),
                ("Output tok/s", fmt("tps", h.output_tps if h else None), h.name if h else None),
                ("TTFT p50", _ms(h.ttft_p50_ms if h else None), None),
                ("Energy / token", _unit(fmt("j", h.energy_per_token_j if h else None), "J"), None),
                ("Peak RSS", fmt("bytes", latest.peak_rss_bytes), None),
            ]
        )
    body = (
        f'<section class="hero"><h1><span class="swatch" style="background:{palette(model)}"></span>{esc(model)}</h1>'
        f'<p class="context">{esc(views[-1].record.model.family)} · {esc(views[-1].record.model.source)} · '
        f"{_context_line(views, models=False)}</p>"
        f'<div class="pills">{_pills("suite", suites)}{_pills("hardware", hws)}</div></section>'
        + stats
        + f'<section class="card"><h2>Runs of {esc(model)}</h2><p class=note>Newest first, failed runs included.</p>'
        + table("model-runs", runs_config(views, prefix="../", hash_filters=False))
        + "</section>"
        + f'<div class="grid2">{"".join(cards)}</div>'
    )
    return frame(f"harness: {model}", body, root="../", active="", generated=generated, charts=bool(cards))


def _ms(v: float | None) -> str | None:
    return _unit(fmt("ms", v), "ms")


def _unit(text: str | None, unit: str) -> str | None:
    return f"{text} {unit}" if text is not None else None


def _stats(items: Sequence[tuple[str, str | None, str | None]]) -> str:
    out = []
    for label, value, spread in items:
        v = (
            f'<div class="value">{esc(value)}</div>'
            if value is not None
            else f'<div class="value missing">{MISSING}</div>'
        )
        s = f'<div class="spread">{esc(spread)}</div>' if spread else ""
        out.append(f'<div class="stat"><div class="label">{esc(label)}</div>{v}{s}</div>')
    return f'<div class="stats">{"".join(out)}</div>'


# ---------------------------------------------------------------- run detail


def run_page(
    view: RunView,
    request_tables: dict[str, dict[str, list[Any]]],
    gpu_samples: dict[str, list[Any]] | None,
    notes: Sequence[str],
    generated: str,
) -> str:
    """Everything about one run: summary, accuracy, performance, latency distribution, resources, config, provenance."""
    rec: RunRecord = view.record
    h = view.headline
    badge = f'<span class="badge badge-{"ok" if view.ok else "failed"}">{esc(view.status)}</span>'
    parts = [
        f'<section class="hero"><h1><a href="../{esc(view.model_page)}">{esc(view.model)}</a> · {esc(view.suite)}{badge}</h1>',
        f'<p class="context">run <code>{esc(view.run_id)}</code> · started {esc(when(rec.started_at))} · '
        f"{esc(fmt('s', rec.duration_s))} · {esc(view.hardware)} · {esc(view.engine)}</p></section>",
    ]
    if rec.error:
        parts.append(
            f'<section class="card"><h2>Error</h2><div class="error-box">{esc(rec.error)}</div></section>'
        )
    parts.append(
        _stats(
            [
                ("Avg accuracy", fmt("acc", view.acc_avg), pm("acc", view.acc_avg_se)),
                ("Output tok/s", fmt("tps", h.output_tps if h else None), h.name if h else None),
                ("TTFT p50 / p99", _pair(h.ttft_p50_ms, h.ttft_p99_ms) if h else None, None),
                ("TPOT p50 / p99", _pair(h.tpot_p50_ms, h.tpot_p99_ms) if h else None, None),
                (
                    "Energy / token",
                    _unit(fmt("j", h.energy_per_token_j if h else None), "J"),
                    _energy_reason(rec),
                ),
                ("Peak engine RSS", fmt("bytes", view.peak_rss_bytes), None),
            ]
        )
    )
    parts.append(_accuracy_section(rec))
    parts.append(reported_section(reported_view(view)))
    parts.append(_perf_section(view))
    parts.append(_architecture_section(view))
    cdf = figures.latency_cdf(request_tables)
    charts = cdf is not None
    note = "From the per-request tables: the fraction of requests answered within each time."
    if notes:
        note += " " + " ".join(esc(n) for n in notes)
    parts.append('<div class="grid2">')
    parts.append(
        chart_card(
            "chart-latency-cdf",
            "Latency distribution",
            note,
            cdf,
            root="../",
            empty="No per-request table for this run.",
        )
    )
    gpu = figures.gpu_timeseries(gpu_samples) if gpu_samples else None
    if gpu is not None:
        charts = True
        parts.append(
            chart_card("chart-gpu", "Power and memory over the run", "NVML samples per GPU.", gpu, root="../")
        )
    parts.append("</div>")
    parts.append(_resources_section(rec))
    parts.append(_config_section(rec))
    parts.append(_provenance_section(rec))
    return frame(
        f"harness: {view.model} · {view.suite} · {view.run_id}",
        "\n".join(parts),
        root="../",
        active="",
        generated=generated,
        charts=charts,
    )


def _pair(a: float | None, b: float | None) -> str | None:
    if a is None and b is None:
        return None
    return f"{fmt('ms', a) or MISSING} / {fmt('ms', b) or MISSING} ms"


def _energy_reason(rec: RunRecord) -> str | None:
    if rec.resources is not None and rec.resources.energy is not None:
        return rec.resources.energy.reason
    return None


def _accuracy_section(rec: RunRecord) -> str:
    if not rec.accuracy:
        return '<section class="card"><h2>Accuracy</h2><p class="empty">No accuracy results in this run.</p></section>'
    rows = [
        f"<tr><td>{esc(t.task)}</td><td>{esc(t.metric)}</td>{cell('acc', t.value, pm('acc', t.stderr))}"
        f"{cell('int', t.n_samples)}{cell('int', t.num_fewshot)}<td>{'higher' if t.higher_is_better else 'lower'}</td>"
        f"<td>{esc(t.version) if t.version else MISSING}</td></tr>"
        for t in rec.accuracy.values()
    ]
    return (
        '<section class="card"><h2>Accuracy</h2><p class=note>Headline metric per task ± its standard error, '
        "as lm-eval reports it.</p>"
        + plain_table(["Task", "Metric", "Value", "Samples", "Few-shot", "Better", "Version"], rows)
        + "</section>"
    )


def reported_table(rv: ReportedView, page: str | None = None) -> str:
    """Task, published figure (source, shots), measured ± stderr (shots), delta and verdict, one row per task."""
    rows = []
    for c in rv.comparisons:
        shots = f"{c.reported_shots}-shot" if c.reported_shots is not None else ""
        source = f'<span class="sub">{esc(c.source)}, {esc(shots)}</span>' if c.source else ""
        measured = cell("acc", c.measured, pm("acc", c.measured_stderr))
        if c.measured is not None and c.measured_shots is not None:
            measured = (
                f'<td class="num">{esc(fmt("acc", c.measured))}'
                + (
                    f'<span class="se">{esc(pm("acc", c.measured_stderr))}</span>'
                    if c.measured_stderr
                    else ""
                )
                + f'<span class="sub">{c.measured_shots}-shot</span></td>'
            )
        delta = cell("delta", c.delta, cls="num" + ("" if c.comparable else " weak"))
        verdict_cls = "ok" if c.z is not None and abs(c.z) <= 2 else "off" if c.z is not None else "na"
        task = esc(c.task) if page is None else f'<a href="{esc(page)}">{esc(c.task)}</a>'
        rows.append(
            f"<tr><td>{task}</td><td>{esc(c.metric)}</td>"
            f'<td class="num" title="{esc(c.settings)}">{esc(fmt("acc", c.reported) or MISSING)}{source}</td>'
            f'{measured}{delta}<td class="verdict {verdict_cls}">{esc(c.verdict)}</td></tr>'
        )
    return plain_table(["Task", "Metric", "Published", "Measured ± SE", "Δ", "Verdict"], rows)


def reported_section(rv: ReportedView) -> str:
    """The run page's comparison with published scores, or the sentence saying why there is none."""
    head = '<section class="card" id="reported"><h2>Measured vs published</h2>'
    if not rv.comparisons:
        return f'{head}<p class="empty">{esc(rv.message or "Nothing to compare.")}</p></section>'
    note = (
        "The run's score on each task with a published figure for this model, and measured − published. "
        "A difference is only comparable at the same metric and shot count; within 2 standard errors "
        "(SE) the run reproduces the published figure as well as its sample size can tell. "
        "Hover a published figure for its evaluation settings."
    )
    if rv.computed_now:
        note += " This record predates the analytics section: compared with the scores this harness ships."
    summary = ""
    if rv.comparable:
        worst = rv.worst
        summary = _stats(
            [
                ("Mean Δ (comparable tasks)", fmt("delta", rv.mean_delta), f"{len(rv.comparable)} task(s)"),
                ("Within 2 SE", f"{rv.within_2se} of {len(rv.comparable)}", None),
                (
                    "Largest |Δ|",
                    fmt("delta", worst.delta) if worst else None,
                    worst.task if worst else None,
                ),
            ]
        )
    return f"{head}<p class=note>{esc(note)}</p>{summary}{reported_table(rv)}</section>"


def _architecture_section(view: RunView) -> str:
    """The model's architecture facts and the batch-1 decode speed against the roofline, from the analytics."""
    analytics = view.record.analytics
    if not analytics:
        return ""
    facts = analytics.get("architecture")
    pairs: list[tuple[str, Any]] = []
    if isinstance(facts, dict):
        kv, mha = finite(facts.get("kv_bytes_per_token")), finite(facts.get("kv_bytes_per_token_mha"))
        total, active = finite(facts.get("total_params")), finite(facts.get("active_params"))
        pairs += [
            ("Attention", facts.get("attention")),
            (
                "Parameters",
                f"{human_count(total)} total, {human_count(active)} active per token"
                if total and active
                else None,
            ),
            (
                "KV cache per token",
                f"{human_bytes(kv)} at {facts.get('dtype')} (full multi-head: {human_bytes(mha)})"
                if kv and mha
                else None,
            ),
        ]
        window = finite(facts.get("sliding_window"))
        if window:
            layers = f"{facts.get('windowed_layers')}/{facts.get('num_layers')}"
            pairs.append(("Sliding window", f"{window:,.0f} tokens on {layers} layers"))
    else:
        pairs.append(("Architecture", analytics.get("architecture_reason") or MISSING))
    r: RooflineView = roofline_view(view)
    if r.has_roofline:
        pairs.append(
            (
                "Decode vs roofline",
                f"{fmt('tps', r.measured_tps)} tok/s measured ({r.scenario}, ~{r.context_tokens} tokens of context) "
                f"against {fmt('tps', r.roofline_tps)} tok/s on {r.gpu}: {r.fraction:.0%} of the roofline"
                if r.fraction is not None
                else None,
            )
        )
        if r.fits is False:
            pairs.append(("Weights fit", r.fit_reason or "no"))
    else:
        measured = f"{fmt('tps', r.measured_tps)} tok/s measured; " if r.measured_tps is not None else ""
        pairs.append(("Decode vs roofline", f"{measured}not set against a roofline: {r.reason or 'unknown'}"))
    return (
        '<section class="card" id="architecture"><h2>Architecture and roofline</h2><p class=note>From the record\'s '
        'analytics; <a href="../architecture.html">all models →</a></p>' + kv_table(pairs) + "</section>"
    )


def _perf_section(view: RunView) -> str:
    rec = view.record
    if not rec.performance:
        return '<section class="card"><h2>Performance</h2><p class="empty">No load scenarios in this run.</p></section>'
    rows = []
    for name, s in rec.performance.items():
        sv = view.scenarios[name]
        rows.append(
            f"<tr><td>{esc(name)}</td><td>{esc(sv.load)}</td><td>{esc(sv.shape)}</td>"
            f"{cell('int', s.completed)}{cell('int', s.failed)}{cell('tps', sv.output_tps)}{cell('tps', sv.request_tps)}"
            f"{cell('ms', s.median_ttft_ms, _sd(s.std_ttft_ms))}{cell('ms', s.p90_ttft_ms)}{cell('ms', s.p99_ttft_ms)}"
            f"{cell('ms', s.median_tpot_ms, _sd(s.std_tpot_ms))}{cell('ms', s.p99_tpot_ms)}"
            f"{cell('ms', s.median_itl_ms, _sd(s.std_itl_ms))}{cell('ms', s.p99_itl_ms)}"
            f"{cell('ms', s.median_e2el_ms, _sd(s.std_e2el_ms))}{cell('ms', s.p99_e2el_ms)}"
            f"{cell('j', sv.energy_per_token_j)}{cell('int', s.max_concurrency_reached)}</tr>"
        )
    errors = [
        f"<li><b>{esc(name)}</b>: {esc(err)}</li>"
        for name, s in rec.performance.items()
        for err in s.errors[:10]
    ]
    err_html = f"<h3>Request errors</h3><ul>{''.join(errors)}</ul>" if errors else ""
    headers = [
        "Scenario",
        "Load",
        "Shape",
        "Done",
        "Failed",
        "Out tok/s",
        "Req/s",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "ITL p50",
        "ITL p99",
        "E2E p50",
        "E2E p99",
        "J/tok",
        "Max in flight",
    ]
    return (
        '<section class="card"><h2>Performance</h2><p class=note>Per load scenario, with vLLM bench serve\'s '
        "definitions; times in ms, σ is the standard deviation.</p>"
        + plain_table(headers, rows, num_from=3)
        + err_html
        + "</section>"
    )


def _sd(v: float | None) -> str | None:
    t = fmt("ms", v)
    return f"σ {t}" if t is not None else None


def _resources_section(rec: RunRecord) -> str:
    res = rec.resources
    phases = dict(res.phases) if res is not None else {}
    for name, s in rec.performance.items():
        # The runner names scenario windows "scenario:<name>"; older records may only carry them
        # on the scenario itself.
        if s.resources is not None and name not in phases and f"scenario:{name}" not in phases:
            phases[name] = s.resources
    if not phases:
        return ""
    rows = []
    for name, p in phases.items():
        why = p.energy.reason if p.energy is not None else ""
        rows.append(
            f"<tr><td>{esc(name)}</td>{cell('s', p.duration_s)}{cell('s', p.engine_cpu_s)}"
            f"{cell('bytes', p.engine_peak_rss_bytes)}{cell('j', p.energy_j)}<td>{esc(why)}</td></tr>"
        )
    total = ""
    if res is not None:
        total = (
            f"<p class=note>Whole run: peak engine RSS {esc(fmt('bytes', res.engine_peak_rss_bytes) or MISSING)}, "
            f"energy {esc(_unit(fmt('j', res.energy_j), 'J') or MISSING)}"
            + (f" ({esc(res.energy.reason)})" if res.energy is not None else "")
            + ".</p>"
        )
    return (
        '<section class="card"><h2>Resources by phase</h2>'
        + total
        + plain_table(["Phase", "Duration", "Engine CPU", "Peak RSS", "Energy (J)", "Why no energy"], rows)
        + "</section>"
    )


def _pretty(obj: Any) -> str:
    return esc(json.dumps(clean(obj), indent=2, ensure_ascii=False, default=str))


def _config_section(rec: RunRecord) -> str:
    m = rec.model
    model = kv_table(
        [
            ("Preset", m.preset),
            ("Family", m.family),
            ("Source", m.source),
            ("Revision", m.revision),
            ("Checksum (sha256)", m.checksum_sha256),
            ("Served name", m.served_name),
        ]
    )
    engine = "<p class=empty>The run ended before an engine was started.</p>"
    if rec.engine is not None:
        en = rec.engine
        engine = (
            kv_table(
                [
                    ("Kind", en.kind),
                    ("Endpoint", en.endpoint),
                    ("Start-up", fmt("s", en.startup_s)),
                    ("Command", " ".join(en.command) if en.command else None),
                    ("Log", en.log_path),
                ]
            )
            + f"<details><summary>Engine arguments</summary><pre class=json>{_pretty(en.args)}</pre></details>"
        )
    suite = kv_table([("Suite", rec.suite.name), ("File", rec.suite.path), ("sha256", rec.suite.sha256)])
    return (
        '<section class="card"><h2>Configuration</h2><div class="grid2" style="margin:0">'
        f"<div><h3>Model</h3>{model}</div><div><h3>Engine</h3>{engine}</div></div>"
        f"<h3>Suite</h3>{suite}<details><summary>Suite as run</summary><pre class=json>{_pretty(rec.suite.spec)}</pre></details>"
        + (
            f"<details><summary>Architecture analytics</summary><pre class=json>{_pretty(rec.analytics.model_dump(mode='json'))}</pre></details>"
            if rec.analytics
            else ""
        )
        + "</section>"
    )


def _provenance_section(rec: RunRecord) -> str:
    env = rec.environment
    gpus = ", ".join(
        f"#{g.index} {g.name}" + (f" ({fmt('bytes', g.memory_total_bytes)})" if g.memory_total_bytes else "")
        for g in env.gpus
    )
    pairs: list[tuple[str, Any]] = [
        ("Schema version", rec.schema_version),
        ("harness", env.harness_version),
        ("git", (env.git_sha or MISSING) + (" (dirty)" if env.git_dirty else "")),
        ("Python", env.python),
        ("Platform", env.platform),
        ("Host", env.hostname),
        ("CPU", f"{env.cpu_model or MISSING}" + (f" × {env.cpu_count} cores" if env.cpu_count else "")),
        ("Memory", fmt("bytes", env.memory_total_bytes)),
        ("GPUs", gpus or env.gpu_reason or "none"),
        ("Driver", next((g.driver_version for g in env.gpus if g.driver_version), None)),
        ("Started", when(rec.started_at)),
        ("Finished", when(rec.finished_at)),
    ]
    pkgs = kv_table(sorted((k, v or "not installed") for k, v in env.packages.items()))
    return (
        '<section class="card"><h2>Provenance</h2><div class="grid2" style="margin:0">'
        f"<div>{kv_table(pairs)}</div><div><h3>Packages</h3>{pkgs}</div></div></section>"
    )
