"""The overview pages: leaderboard (index), history, all runs, one page per model.

No plotly here: charts are JSON specs (:mod:`harness.dashboard.figures`) drawn by plotly.js
in the browser; tables are configs (:mod:`harness.dashboard.columns`) drawn by dashboard.js.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.dashboard import figures
from harness.dashboard.columns import leaderboard_config, leaderboard_groups, runs_config
from harness.dashboard.data import LeaderRow, Palette, RunView, key_labels, order, row_labels, slug
from harness.dashboard.fragments import HISTORY_METRICS, MODEL_CHARTS, SEP
from harness.dashboard.html import esc

if TYPE_CHECKING:
    from harness.dashboard.baselines import BaselineMark
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
from harness.dashboard.shards import Overview
from harness.decide.rows import is_random_weights
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
    # Random-weight models are never ranked: they stay off the accuracy charts and their frontiers.
    real = [i for i, v in enumerate(latest) if not is_random_weights(v.record)]
    left_out = len(latest) - len(real)
    ranked, ranked_labels = [latest[i] for i in real], [labels[i] for i in real]
    random_note = (
        f" {left_out} random-weight model{'s are' if left_out != 1 else ' is'} left out." if left_out else ""
    )
    cards = [
        chart_card(
            f"chart-acc-tps-{sid}",
            "Accuracy vs throughput",
            "Average accuracy against output tokens/s in the suite's first load scenario. The dotted line is the "
            "Pareto frontier: no other model is both more accurate and faster. Marker shape is the hardware; "
            "click a point for its run." + random_note,
            figures.accuracy_scatter(
                ranked,
                ranked_labels,
                palette,
                lambda v: v.headline.output_tps if v.headline else None,
                "Output tokens/s",
                x_higher=True,
            ),
            empty="No run in this suite has both accuracy and throughput.",
        )
    ]
    energy = figures.accuracy_scatter(
        ranked,
        ranked_labels,
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


def leaderboard_sections(rows: Sequence[LeaderRow]) -> str:
    """One ranked table per suite x hardware label, then every row in one table, unranked and
    folded away (opened on request): figures of two suites or two machines do not compare."""
    if not rows:
        return (
            '<section class="card"><h2>Leaderboard</h2><p class="empty">No successful runs yet.</p>'
            + table("leaderboard", leaderboard_config(rows))
            + "</section>"
        )
    out = [
        '<section class="card"><h2>Leaderboard</h2><p class=note>One ranked table per suite and hardware: '
        "rows are ranked only against rows that ran the same suite on the same hardware. Latest successful "
        "run of each model; older runs under <i>Runs</i>. Accuracy is the tasks' headline metric ± its "
        "standard error, <i>n</i> the documents evaluated. Models with random weights are labelled and not "
        "ranked. Performance columns come from the load scenario picked on the right. — means not "
        "measured; the best value among the ranked rows of a table is shaded.</p>"
    ]
    for i, (suite, hw, group) in enumerate(leaderboard_groups(rows)):
        n_random = sum(is_random_weights(r.latest.record) for r in group)
        extra = f" · {n_random} with random weights (not ranked)" if n_random else ""
        out.append(
            f'<h3 class="lb-group">Suite <span>{esc(suite)}</span> · {esc(hw)}</h3>'
            f'<p class="note">{len(group)} model{"s" if len(group) != 1 else ""}{extra}</p>'
            + table(f"leaderboard-g{i}", leaderboard_config(group, ranked=True))
        )
    out.append(
        '<details id="cross-suite"><summary>All suites and hardware in one table (unranked: for looking '
        "up a model, not for comparing)</summary>"
        + table("leaderboard", leaderboard_config(rows))
        + "</details></section>"
    )
    return "".join(out)


def index_page(o: Overview, problems: Sequence[str], palette: Palette, generated: str) -> str:
    """Leaderboard, then per suite: accuracy vs efficiency, task heatmap, latency under load; recent runs."""
    rows = o.rows
    latest = [r.latest for r in rows]
    body = [
        '<section class="hero"><h1>Open LLM leaderboard: accuracy and efficiency</h1>',
        f'<p class="context">{overview_context(o)}</p>',
        f'<div class="pills">{pills("suite", o.suites)}{pills("hardware", o.hardware)}'
        f"{pills('engine', (v.engine for v in latest))}</div></section>",
        warnings_card(problems),
        leaderboard_sections(rows),
    ]
    body += [suite_charts(suite, runs, palette) for suite, runs in _by_suite(rows)]
    body.append(_recent_runs(o))
    return frame(
        "harness leaderboard",
        "\n".join(body),
        root="",
        active="index",
        generated=generated,
        charts=bool(rows),
    )


def overview_context(o: Overview, models: bool = True) -> str:
    return context_line(
        len(o.models), o.n_runs, o.n_failed, o.latest.started_at if o.latest else None, models
    )


def _recent_runs(o: Overview) -> str:
    rows = []
    for v in o.recent:
        badge = f'<span class="badge badge-{"ok" if v.status == "ok" else "failed"}">{esc(v.status)}</span>'
        err = esc((v.error or "")[:140] + ("…" if v.error and len(v.error) > 140 else ""))
        rows.append(
            f'<tr{" class=failed" if v.status != "ok" else ""}><td><a href="{esc(v.page)}">{esc(v.started_iso[:16].replace("T", " "))}</a></td>'
            f'<td><a href="{esc(v.model_page)}">{esc(v.model)}</a></td><td>{esc(v.suite)}</td><td>{badge}</td>'
            f'<td>{esc(v.hardware)}</td><td title="{esc(v.error or "")}">{err}</td></tr>'
        )
    return (
        f'<section class="card" id="recent"><h2>Recent runs</h2><p class=note>The {len(o.recent)} newest of '
        f'{o.n_runs} runs, failed ones included. <a href="runs.html">All runs →</a></p>'
        + (
            plain_table(["Started (UTC)", "Model", "Suite", "Status", "Hardware", "Error"], rows)
            if rows
            else "<p class=empty>No runs yet: run <code>make eval</code>.</p>"
        )
        + "</section>"
    )


def runs_page(o: Overview, data: Sequence[str], problems: Sequence[str], generated: str) -> str:
    """Every run; its rows are in the shards' data files ``data`` (:mod:`harness.dashboard.fragments`)."""
    body = (
        f'<section class="hero"><h1>All runs</h1><p class="context">{overview_context(o)}</p></section>'
        + warnings_card(problems)
        + '<section class="card"><h2>Runs</h2><p class=note>Every run record, newest first. Throughput and TTFT come '
        "from the suite's first load scenario. Failed runs keep what they measured; their error is on the right.</p>"
        + table("runs", runs_config())
        + "</section>"
    )
    return frame(
        "harness: all runs", body, root="", active="runs", generated=generated, charts=False, data=data
    )


def history_page(
    o: Overview,
    data: Sequence[str],
    palette: Palette,
    generated: str,
    marks: dict[tuple[str, str, str], BaselineMark] | None = None,
) -> str:
    """Each headline metric over time, per suite, one line per model (and hardware); the points
    are in the shards' data files ``data``."""
    sections = []
    for suite, groups in sorted(o.history.items(), key=lambda kv: (-o.ok_by_suite.get(kv[0], 0), kv[0])):
        labels = key_labels([(g.model, suite, g.hardware) for g in groups])
        sid = slug(suite)
        cards = []
        for key, title, _get in HISTORY_METRICS:
            lines = [
                (
                    label,
                    palette(g.model),
                    ["hist", suite, f"{g.model}{SEP}{g.hardware}", key],
                    o.hist.get((g.model, suite, g.hardware), {}).get(key, []),
                )
                for label, g in zip(labels, groups, strict=True)
            ]
            drawn = []
            for label, g in zip(labels, groups, strict=True):
                mark = (marks or {}).get((g.model, suite, g.hardware))
                if mark is not None:
                    verdict = f", gate on {mark.verdict_run}: {mark.verdict}" if mark.verdict else ""
                    text = f"dashed: baseline {mark.run_id}{verdict}" + (
                        " · band: gate allows" if key in mark.bands else ""
                    )
                    drawn.append((label, palette(g.model), mark.values.get(key), mark.bands.get(key), text))
            spec = figures.history(
                lines, title, bounds=(0.0, 1.0) if key == "acc" else (0.0, None), marks=drawn
            )
            baselines = "".join(f" {esc(label)}: {esc(text)}." for label, _c, _v, _b, text in drawn)
            if spec is not None:
                cards.append(
                    chart_card(
                        f"chart-history-{key}-{sid}",
                        title,
                        "One point per successful run; "
                        "performance from the suite's first load scenario. Click a point for its run."
                        + baselines,
                        spec,
                    )
                )
        n_ok = o.ok_by_suite.get(suite, 0)
        sections.append(
            f'<section class="suite" id="suite-{esc(sid)}"><h2 class="suite-head">Suite <span>{esc(suite)}</span></h2>'
            f'<p class="note">{n_ok} successful runs of {len(groups)} model/hardware pairs</p>'
            f'<div class="grid2">{"".join(cards)}</div></section>'
        )
    if not sections:
        sections.append('<section class="card"><p class="empty">No successful runs yet.</p></section>')
    body = (
        '<section class="hero"><h1>History</h1><p class="context">Every successful run of each model over time, '
        f"so a regression shows as a step. {overview_context(o)}</p></section>" + "".join(sections)
    )
    return frame(
        "harness: history",
        body,
        root="",
        active="history",
        generated=generated,
        charts=bool(o.history),
        data=data if o.history else (),
    )


def model_page(model: str, o: Overview, data: Sequence[str], palette: Palette, generated: str) -> str:
    """One model: its runs and every metric over them (each task, each scenario). ``o`` is the
    overview of this model's shards, ``data`` their data files (rows and model points)."""
    suites, hws = o.suites, o.hardware

    def tag(series: str) -> str:
        suite, name, hw = series.split(SEP)
        parts = [name]
        if len(suites) > 1:
            parts.insert(0, suite)
        if len(hws) > 1:
            parts.append(hw)
        return " · ".join(parts)

    cards = []
    for key, title, _attr in MODEL_CHARTS:
        series = o.points.get(key, {})
        first = {name: min(tuple(m[3:6]) for m in metas) for name, metas in series.items()}
        labels = {name: tag(name) for name in series}
        colours = Palette(list(labels.values()))
        lines = [
            (labels[name], colours(labels[name]), ["points", key, name], series[name])
            for name in sorted(series, key=first.__getitem__)
        ]
        spec = figures.history(lines, title)
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
    oks = [r.latest for r in o.rows]
    latest = max(oks, key=order) if oks else None
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
    last = o.latest
    assert last is not None, "a model page needs a run"
    body = (
        f'<section class="hero"><h1><span class="swatch" style="background:{palette(model)}"></span>{esc(model)}</h1>'
        f'<p class="context">{esc(last.record.model.family)} · {esc(last.record.model.source)} · '
        f"{overview_context(o, models=False)}</p>"
        f'<div class="pills">{pills("suite", suites)}{pills("hardware", hws)}</div></section>'
        + tiles
        + f'<section class="card"><h2>Runs of {esc(model)}</h2><p class=note>Newest first, failed runs included.</p>'
        + table("model-runs", runs_config(root="../", hash_filters=False))
        + "</section>"
        + f'<div class="grid2">{"".join(cards)}</div>'
    )
    return frame(
        f"harness: {model}", body, root="../", active="", generated=generated, charts=bool(cards), data=data
    )
