"""The overview pages: leaderboard (index), history, all runs, one page per model.

No plotly here: charts are JSON specs (:mod:`harness.dashboard.figures`) drawn by plotly.js
in the browser; tables are configs (:mod:`harness.dashboard.columns`) drawn by dashboard.js.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.dashboard import figures
from harness.dashboard.columns import leaderboard_config, runs_config
from harness.dashboard.data import LeaderRow, Palette, RunView, row_labels, slug
from harness.dashboard.html import esc
from harness.dashboard.layout import (
    chart_card,
    context_line,
    frame,
    pills,
    plain_table,
    pm,
    stats,
    table,
    unit,
    warnings_card,
)
from harness.formatting import fmt


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
        f'<p class="context">{context_line(views)}</p>',
        f'<div class="pills">{pills("suite", (v.suite for v in views))}{pills("hardware", (v.hardware for v in views))}'
        f"{pills('engine', (v.engine for v in latest))}</div></section>",
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
            f'<tr{" class=failed" if not v.ok else ""}><td><a href="{esc(v.page)}">{esc(v.started_iso[:16].replace("T", " "))}</a></td>'
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
        f'<section class="hero"><h1>All runs</h1><p class="context">{context_line(views)}</p></section>'
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
        f"so a regression shows as a step. {context_line(views)}</p></section>" + "".join(sections)
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
    tiles = ""
    if latest is not None:
        h = latest.headline
        tiles = stats(
            [
                ("Avg accuracy (latest)", fmt("acc", latest.acc_avg), pm("acc", latest.acc_avg_se)),
                ("Output tok/s", fmt("tps", h.output_tps if h else None), h.name if h else None),
                ("TTFT p50", unit(fmt("ms", h.ttft_p50_ms if h else None), "ms"), None),
                ("Energy / token", unit(fmt("j", h.energy_per_token_j if h else None), "J"), None),
                ("Peak RSS", fmt("bytes", latest.peak_rss_bytes), None),
            ]
        )
    body = (
        f'<section class="hero"><h1><span class="swatch" style="background:{palette(model)}"></span>{esc(model)}</h1>'
        f'<p class="context">{esc(views[-1].record.model.family)} · {esc(views[-1].record.model.source)} · '
        f"{context_line(views, models=False)}</p>"
        f'<div class="pills">{pills("suite", suites)}{pills("hardware", hws)}</div></section>'
        + tiles
        + f'<section class="card"><h2>Runs of {esc(model)}</h2><p class=note>Newest first, failed runs included.</p>'
        + table("model-runs", runs_config(views, prefix="../", hash_filters=False))
        + "</section>"
        + f'<div class="grid2">{"".join(cards)}</div>'
    )
    return frame(f"harness: {model}", body, root="../", active="", generated=generated, charts=bool(cards))
