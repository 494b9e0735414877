"""The server's view on a run page: what each scenario sent, and the engine's queue depth and
KV-cache use over time against the client's own request timeline.

This is where a reader sees why TTFT grew: requests waiting in the engine's queue, a KV cache
near full, preemptions, or a prefix cache that did (or did not) serve the shared prompt text.
"""

from __future__ import annotations

from typing import Any

from harness.dashboard.data import RunView
from harness.dashboard.figures import _axis, layout
from harness.dashboard.html import esc
from harness.dashboard.layout import cell, chart_card, plain_table
from harness.dashboard.tables import TableError, inside, read_columns
from harness.record.run_record import ScenarioResult

SERVER_COLUMNS = ("t_s", "running", "waiting", "kv_cache_usage_frac")
TIMELINE_COLUMNS = ("send_s", "end_s")
Spec = dict[str, Any]


def read_server_series(view: RunView) -> tuple[dict[str, list[Any]] | None, list[str]]:
    """The run's /metrics series (None if it has none) and any warning about reading it."""
    res = view.record.resources
    rel = res.server_metrics_path if res is not None else None
    if view.run_dir is None or rel is None:
        return None, []
    path = inside(view.run_dir, rel)
    try:
        return (read_columns(path, SERVER_COLUMNS) if path is not None else None), []
    except TableError as exc:
        return None, [str(exc)]


def read_timelines(view: RunView) -> dict[str, dict[str, list[Any]]]:
    """Send and end times of each scenario's measured requests (seconds from its start of dispatch)."""
    out: dict[str, dict[str, list[Any]]] = {}
    if view.run_dir is None:
        return out
    for name, s in view.record.performance.items():
        path = inside(view.run_dir, s.requests_path) if s.requests_path else None
        try:
            cols = read_columns(path, TIMELINE_COLUMNS) if path is not None else None
        except TableError:
            cols = None
        if cols:
            out[name] = cols
    return out


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * x


def server_figure(
    series: dict[str, list[Any]],
    scenarios: dict[str, ScenarioResult],
    timelines: dict[str, dict[str, list[Any]]],
) -> Spec | None:
    """Per scenario (a menu picks one): engine running/waiting requests, the client's requests in
    flight, and KV-cache use, on seconds since the scenario's start of dispatch."""
    ts = series.get("t_s") or []
    data: list[dict[str, Any]] = []
    buttons: list[dict[str, Any]] = []
    per = 4
    shown = [n for n, s in scenarios.items() if s.server is not None and s.server.dispatch_s is not None]
    for k, name in enumerate(shown):
        w = scenarios[name].server
        assert w is not None and w.dispatch_s is not None and w.start_s is not None and w.end_s is not None
        idx = [i for i, t in enumerate(ts) if t is not None and w.start_s <= t <= w.end_s]
        x = [round(ts[i] - w.dispatch_s, 3) for i in idx]
        tl = timelines.get(name, {})
        sends, ends = tl.get("send_s") or [], tl.get("end_s") or []
        spans = [(a, b) for a, b in zip(sends, ends, strict=False) if a is not None and b is not None]
        in_flight = [sum(a <= t < b for a, b in spans) for t in x]
        visible = k == 0
        for label, ys, axis, dash in (
            (
                "running (engine)",
                [series["running"][i] for i in idx] if "running" in series else [],
                "y",
                "solid",
            ),
            (
                "waiting (engine)",
                [series["waiting"][i] for i in idx] if "waiting" in series else [],
                "y",
                "solid",
            ),
            ("in flight (client)", in_flight, "y", "dot"),
            (
                "KV cache used %",
                [_pct(series["kv_cache_usage_frac"][i]) for i in idx]
                if "kv_cache_usage_frac" in series
                else [],
                "y2",
                "dash",
            ),
        ):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": ys,
                    "yaxis": axis,
                    "name": label,
                    "visible": visible,
                    "line": {"shape": "hv", "dash": dash, "width": 2},
                    "hovertemplate": f"{esc(label)}: %{{y}}<br>%{{x:.1f}} s<extra>{esc(name)}</extra>",
                }
            )
        buttons.append({"label": esc(name), "method": "update", "args": [{"visible": []}]})
    if not data:
        return None
    for k, b in enumerate(buttons):
        b["args"][0]["visible"] = [j // per == k for j in range(len(data))]
    lay = layout("Seconds since the scenario's first send", "Requests", height=380, legend="below")
    lay["yaxis2"] = _axis("KV cache used (%)", overlaying="y", side="right", range=[0, 100])
    lay["updatemenus"] = [{"buttons": buttons, "x": 0, "xanchor": "left", "y": 1.18, "yanchor": "top"}]
    lay["margin"] = {"l": 64, "r": 64, "t": 48, "b": 48}
    return {"data": data, "layout": lay}


def _shape(s: ScenarioResult) -> str:
    w = s.workload
    if w is None:
        return "random ids, exact lengths"
    parts = [w.prompt_source + (f" ({w.dataset_path})" if w.dataset_path else "")]
    if w.prefix_groups:
        parts.append(f"{w.prefix_groups}×{w.prefix_tokens}-token prefixes")
    if w.turns:
        parts.append(f"{w.sessions} sessions × {w.turns} turns")
    if w.trace_speedup:
        parts.append(f"at {w.trace_speedup}×")
    return ", ".join(parts)


def server_section(view: RunView, series: dict[str, list[Any]] | None, root: str = "../") -> str:
    """A card per run: the table of each scenario's server window, and the time-series chart."""
    scenarios = dict(view.record.performance)
    if not any(s.server is not None or s.workload is not None for s in scenarios.values()):
        return ""
    rows = []
    for name, s in scenarios.items():
        w = s.server
        rows.append(
            f"<tr><td>{esc(name)}</td><td>{esc(_shape(s))}</td>"
            f"{cell('int', w.peak_running if w else None)}{cell('int', w.peak_waiting if w else None)}"
            f"{cell('num', _pct(w.peak_kv_cache_usage_frac) if w else None)}{cell('int', w.preemptions if w else None)}"
            f"{cell('num', _pct(w.prefix_cache_hit_rate) if w else None)}"
            f"{cell('num', _pct(w.implied_prefix_cache_hit_rate) if w else None)}"
            f"{cell('num', _pct(w.spec_decode_acceptance_rate) if w else None)}"
            f"{cell('num', w.spec_decode_mean_accepted_length if w else None)}</tr>"
        )
    headers = [
        "Scenario",
        "Workload",
        "Peak running",
        "Peak waiting",
        "Peak KV %",
        "Preemptions",
        "Prefix hits %",
        "Implied hits %",
        "Spec accept %",
        "Accepted len",
    ]
    turns = [
        f"<tr><td>{esc(name)}</td>{cell('int', t.turn)}{cell('int', t.requests)}{cell('num', t.mean_input_tokens)}"
        f"{cell('ms', t.median_ttft_ms)}{cell('num', _pct(t.cached_tokens_frac))}</tr>"
        for name, s in scenarios.items()
        if s.workload is not None
        for t in s.workload.per_turn
    ]
    turn_html = (
        "<h3>Multi-turn: by turn</h3><p class=note>Each turn resends the whole history; the cached share "
        "comes from the server's per-request usage (--enable-prompt-tokens-details).</p>"
        + plain_table(
            ["Scenario", "Turn", "Requests", "Mean prompt tokens", "TTFT p50", "Cached %"], turns, num_from=1
        )
        if turns
        else ""
    )
    spec = server_figure(series, scenarios, read_timelines(view)) if series else None
    chart = chart_card(
        "chart-server",
        "Engine queue and KV cache over each scenario",
        "From the engine's /metrics, polled twice a second, against the client's requests in flight.",
        spec,
        root=root,
        empty="No /metrics series for this run.",
        wide=True,
    )
    return (
        '<section class="card"><h2>Workload and the server\'s view</h2><p class=note>What each scenario sent, '
        "and what vLLM's /metrics saw: gauges are peaks, counters are differences over the scenario. "
        "Implied hits is the rate the shared prefixes allow if requests were served in order.</p>"
        + plain_table(headers, rows, num_from=2)
        + turn_html
        + "</section>"
        + chart
    )
