"""One run's page: summary, accuracy, measured vs published, performance, architecture, latency
distribution, GPU telemetry, resources by phase, configuration and provenance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.dashboard import figures, rigorfigures
from harness.dashboard.archdata import ReportedView, RooflineView, reported_view, roofline_view
from harness.dashboard.data import RunView
from harness.dashboard.energysection import energy_section
from harness.dashboard.html import esc, pretty_json
from harness.dashboard.layout import (
    cell,
    chart_card,
    frame,
    kv_table,
    plain_table,
    pm,
    stats,
    unit,
    when,
)
from harness.dashboard.serverview import read_server_series, server_section
from harness.dashboard.underload import under_load_section
from harness.formatting import MISSING, finite, fmt, human_bytes, human_count
from harness.record.run_record import RunRecord


def run_page(
    view: RunView,
    request_tables: dict[str, dict[str, Any]],
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
        stats(
            [
                ("Avg accuracy", fmt("acc", view.acc_avg), pm("acc", view.acc_avg_se)),
                ("Output tok/s", fmt("tps", h.output_tps if h else None), h.name if h else None),
                ("TTFT p50 / p99", _pair(h.ttft_p50_ms, h.ttft_p99_ms) if h else None, None),
                ("TPOT p50 / p99", _pair(h.tpot_p50_ms, h.tpot_p99_ms) if h else None, None),
                (
                    "Energy / token",
                    unit(fmt("j", h.energy_per_token_j if h else None), "J"),
                    _energy_reason(rec),
                ),
                ("Peak engine RSS", fmt("bytes", view.peak_rss_bytes), None),
                (
                    "Peak GPU memory",
                    fmt("bytes", view.peak_gpu_memory_bytes),
                    None if view.peak_gpu_memory_bytes is not None else "no GPU metered",
                ),
            ]
        )
    )
    parts.append(_accuracy_section(rec))
    parts.append(under_load_section(rec))
    parts.append(reported_section(reported_view(view)))
    parts.append(_perf_section(view))
    server_series, server_warnings = read_server_series(view)
    parts.append(server_section(view, server_series))
    charts = bool(server_series)
    parts.append(_architecture_section(view))
    cdf = figures.latency_cdf(request_tables)
    charts = charts or cdf is not None
    note = "From the per-request tables: the fraction of requests answered within each time."
    if notes or server_warnings:
        note += " " + " ".join(esc(n) for n in [*notes, *server_warnings])
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
    points = rigorfigures.load_points(rec)
    kinds = rigorfigures.load_kinds(points) or ["concurrency"]
    load_charts = [(k, rigorfigures.latency_vs_load(points, k)) for k in kinds]
    goodput_chart = rigorfigures.goodput_vs_load(points)
    if any(c is not None for _, c in load_charts) or goodput_chart is not None:
        charts = True
        parts.append('<div class="grid2">')
        for kind, load_chart in load_charts:
            against = "request rate" if kind == "request_rate" else "concurrency"
            parts.append(
                chart_card(
                    "chart-latency-load" + ("" if kind == kinds[0] else f"-{kind}"),
                    f"Latency against {against}",
                    "Median TTFT and TPOT per point; band: 95 % interval (Student t over repeats, else "
                    "bootstrap over requests); hollow: invalid point, listed below with why."
                    + rigorfigures.invalid_points_html([p for p in points if p.by == kind]),
                    load_chart,
                    root="../",
                    empty="One point per scenario: no curve.",
                )
            )
        parts.append(
            chart_card(
                "chart-goodput-load",
                "SLO attainment and goodput against load",
                "Share of requests meeting every SLO bound (left) and good requests per second (right); "
                "dashed: the capacity search's target.",
                goodput_chart,
                root="../",
                empty="No SLO in this suite.",
            )
        )
        parts.append("</div>")
    parts.append(energy_section(rec))
    parts.append(_resources_section(rec))
    parts.append(_config_section(rec))
    parts.append(_provenance_section(rec))
    return frame(
        f"harness: {view.model} · {view.suite} · {view.run_id}",
        say_once("\n".join(parts), _long_reasons(rec)),
        root="../",
        active="",
        generated=generated,
        charts=charts,
    )


def _pair(a: float | None, b: float | None) -> str | None:
    if a is None and b is None:
        return None
    return f"{fmt('ms', a) or MISSING} / {fmt('ms', b) or MISSING} ms"


def _long_reasons(rec: RunRecord) -> list[str]:
    """Reasons long enough to be worth saying once per page (an NVML error string, say)."""
    found = [rec.environment.gpu_reason or ""]
    if rec.resources is not None and rec.resources.energy is not None:
        found.append(rec.resources.energy.reason or "")
    return [r for r in dict.fromkeys(found) if len(r) > 40]


def say_once(html: str, reasons: Sequence[str]) -> str:
    """The page with each long reason written out where it first appears and referred to after,
    not repeated in every table row (a CPU run's NVML error once, not a dozen times)."""
    for reason in reasons:
        text = esc(reason)
        first = html.find(text)
        if first < 0 or html.count(text) < 2:
            continue
        head, tail = html[: first + len(text)], html[first + len(text) :]
        # Only where the reason is a whole element's text (a table cell), never inside an attribute.
        tail = tail.replace(f">{text}<", '><span class="same-reason">same reason as above</span><')
        html = head + tail.replace(f"({text})", "(same reason as above)")
    return html


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
        summary = stats(
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
    facts = analytics.architecture
    pairs: list[tuple[str, Any]] = []
    if facts is not None:
        kv, mha = finite(facts.kv_bytes_per_token), finite(facts.kv_bytes_per_token_mha)
        total, active = finite(facts.total_params), finite(facts.active_params)
        pairs += [
            ("Attention", facts.attention),
            (
                "Parameters",
                f"{human_count(total)} total, {human_count(active)} active per token"
                if total and active
                else None,
            ),
            (
                "KV cache per token",
                f"{human_bytes(kv)} at {facts.dtype} (full multi-head: {human_bytes(mha)})"
                if kv and mha
                else None,
            ),
        ]
        window = finite(facts.sliding_window)
        if window:
            layers = f"{facts.windowed_layers}/{facts.num_layers}"
            pairs.append(("Sliding window", f"{window:,.0f} tokens on {layers} layers"))
    else:
        pairs.append(("Architecture", analytics.architecture_reason or MISSING))
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
            f"energy {esc(unit(fmt('j', res.energy_j), 'J') or MISSING)}"
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
    return esc(pretty_json(obj))


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
