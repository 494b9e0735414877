"""``architecture.html``: what each model's architecture costs, how close runs come to the roofline,
and whether they reproduce the published scores.

Escaping as everywhere (:mod:`harness.dashboard.html`); the charts are in
:mod:`harness.dashboard.archfigures`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.dashboard import archfigures
from harness.dashboard.archdata import RooflineView, model_arch_rows, reported_view, roofline_view
from harness.dashboard.data import Palette, RunView, row_labels
from harness.dashboard.html import esc, json_script
from harness.dashboard.layout import cell, chart_card, frame, plain_table
from harness.dashboard.runpage import reported_table
from harness.dashboard.shards import Overview
from harness.formatting import MISSING, finite, fmt, human_bytes, human_count

KIND_LABELS = {"hub": "preset", "builtin": "built-in", "local": "local", "run": "from its runs"}


def _name_cell(row: dict[str, Any]) -> str:
    name = esc(row["name"])
    if row.get("model_page"):
        name = f'<a href="{esc(row["model_page"])}" title="{row["runs"]} run(s)">{name}</a>'
    kind = KIND_LABELS.get(str(row.get("kind")), str(row.get("kind")))
    return f'<td>{name}<span class="sub">{esc(kind)} · {esc(row.get("family") or "")}</span></td>'


def _human_cell(value: Any, human: Callable[[float], str], unit: str = "", sub: str | None = None) -> str:
    """A size or count in human units, the exact figure (with ``unit``) on hover."""
    v = finite(value)
    if v is None:
        return f'<td class="missing" title="not known">{MISSING}</td>'
    extra = f'<span class="sub">{esc(sub)}</span>' if sub else ""
    return f'<td class="num" title="{v:,.0f}{unit}">{esc(human(v))}{extra}</td>'


def _size_cell(value: Any, sub: str | None = None) -> str:
    return _human_cell(value, human_bytes, " bytes", sub)


def _count_cell(value: Any, sub: str | None = None) -> str:
    return _human_cell(value, human_count, "", sub)


def _tokens_cell(value: Any) -> str:
    v = finite(value)
    if v is None:
        return f'<td class="missing" title="not known">{MISSING}</td>'
    return f'<td class="num">{v:,.0f}</td>'


def arch_table_html(rows: Sequence[dict[str, Any]]) -> str:
    """Every model's cache and parameter figures; a model whose config could not be read says why."""
    out = []
    for r in rows:
        if r.get("error") is not None:
            out.append(f'<tr>{_name_cell(r)}<td colspan="9" class="error-cell">{esc(r["error"])}</td></tr>')
            continue
        factor = finite(r.get("kv_saving_factor"))
        window = MISSING
        if r.get("sliding_window"):
            window = f"{r['sliding_window']:,} tokens"
        window_sub = (
            f"on {r['windowed_layers']}/{r['num_layers']} layers" if r.get("sliding_window") else None
        )
        capped = r.get("kv_bytes_max_context") != r.get("kv_bytes_max_context_no_window")
        share = r["active_params"] / r["total_params"] if r.get("total_params") else None
        moe = (
            f"MoE: top-{r['experts_per_token']} of {r['num_experts']} experts, {share:.0%} active"
            if r.get("num_experts") and share is not None
            else None
        )
        out.append(
            "<tr>"
            + _name_cell(r)
            + f"<td>{esc(r['attention'])}<span class=sub>{esc(r.get('dtype'))}</span></td>"
            + _size_cell(r["kv_bytes_per_token"])
            + _size_cell(r["kv_bytes_per_token_mha"])
            + (
                f'<td class="num">{factor:.3g}×</td>'
                if factor is not None
                else f'<td class="missing">{MISSING}</td>'
            )
            + f'<td class="num">{esc(window)}'
            + (f'<span class="sub">{esc(window_sub)}</span>' if window_sub else "")
            + "</td>"
            + _size_cell(
                r["kv_bytes_max_context"],
                f"{human_bytes(r['kv_bytes_max_context_no_window'])} without the window" if capped else None,
            )
            + _tokens_cell(r.get("max_context_tokens"))
            + _count_cell(r["total_params"])
            + _count_cell(r["active_params"], moe)
            + _size_cell(r.get("weight_bytes"))
            + "</tr>"
        )
    headers = [
        "Model",
        "Attention",
        "KV / token",
        "Full multi-head",
        "Saving",
        "Sliding window",
        "KV / sequence at max context",
        "Max context",
        "Total params",
        "Active params",
        "Weights",
    ]
    return plain_table(headers, out, num_from=2)


def _roofline_section(entries: Sequence[RooflineView], labels: Sequence[str]) -> str:
    spec = archfigures.roofline_bars(entries, labels)
    with_roof = [(r, label) for r, label in zip(entries, labels, strict=True) if r.has_roofline]
    without = [(r, label) for r, label in zip(entries, labels, strict=True) if not r.has_roofline]
    parts = [
        '<section class="card" id="roofline"><h2>Decode speed against the roofline</h2><p class=note>'
        "At batch 1, decoding is memory-bound: each token reads every active weight and the sequence's KV "
        "cache once, so the GPU's memory bandwidth divided by those bytes is a ceiling (the roofline). The "
        "measured speed is 1000 ÷ the median time per output token of the suite's concurrency-1 scenario, from "
        "the latest successful run of each model, suite and hardware. Runs on hardware without a datasheet "
        "entry are listed below with the reason, not drawn.</p>"
    ]
    if spec is not None:
        parts.append(
            f'<div class="chart" id="chart-arch-roofline" data-spec="chart-arch-roofline-spec" data-root="">'
            f"</div>{json_script('chart-arch-roofline-spec', spec)}"
        )
        rows = []
        for r, label in with_roof:
            fit = "yes" if r.fits else "no" if r.fits is False else MISSING
            rows.append(
                f'<tr><td><a href="{esc(r.view.page)}">{esc(label)}</a></td><td>{esc(r.gpu or MISSING)}'
                f"{f'<span class=sub>× {r.tensor_parallel_size}</span>' if (r.tensor_parallel_size or 1) > 1 else ''}"
                f"</td><td>{esc(r.scenario or MISSING)}</td>{cell('int', r.context_tokens)}"
                f"{cell('tps', r.measured_tps)}{cell('tps', r.roofline_tps)}"
                f'<td class="num">{esc(f"{r.fraction:.0%}" if r.fraction is not None else MISSING)}</td>'
                f'<td title="{esc(r.fit_reason or "")}">{esc(fit)}</td></tr>'
            )
        parts.append(
            plain_table(
                [
                    "Run",
                    "Roofline GPU",
                    "Scenario",
                    "Context (tokens)",
                    "Measured tok/s",
                    "Roofline tok/s",
                    "Fraction",
                    "Weights fit",
                ],
                rows,
                num_from=3,
            )
        )
    elif not entries:
        parts.append('<p class="empty" data-no-chart="chart-arch-roofline">No successful runs yet.</p>')
    else:
        parts.append(
            '<p class="empty" data-no-chart="chart-arch-roofline">No run has both a measured decode speed '
            "and a roofline for its hardware.</p>"
        )
    if without:
        by_reason: dict[str, list[tuple[RooflineView, str]]] = {}
        for r, label in without:
            by_reason.setdefault(r.reason or "unknown", []).append((r, label))
        items = []
        for reason, runs in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            links = ", ".join(
                f'<a href="{esc(r.view.page)}">{esc(label)}</a>'
                + (f" ({esc(fmt('tps', r.measured_tps))} tok/s)" if r.measured_tps is not None else "")
                for r, label in runs
            )
            items.append(f"<li><b>{esc(reason)}</b> — {len(runs)} run(s): {links}</li>")
        parts.append(
            f'<h3 id="no-roofline">Not set against a roofline: {len(without)} run(s)</h3><p class=note>Grouped by the '
            "reason the record gives; a measured decode speed is shown in brackets where there is one, and is "
            f'not set against a missing ceiling.</p><ul class="reasons">{"".join(items)}</ul>'
        )
    parts.append("</section>")
    return "".join(parts)


def _reported_section(latest: Sequence[RunView], labels: Sequence[str], palette: Palette) -> tuple[str, bool]:
    """Per model: measured − published summary, a chart of the deltas, and each model's table."""
    views = [reported_view(v) for v in latest]
    order = sorted(range(len(latest)), key=lambda i: (not views[i].comparisons, labels[i]))
    latest, labels, views = [latest[i] for i in order], [labels[i] for i in order], [views[i] for i in order]
    summary: list[str] = []
    unpublished: dict[str, str] = {}  # model -> its page, for models without published scores
    groups: list[tuple[str, str, Any]] = []
    details = []
    for v, label, rv in zip(latest, labels, views, strict=True):
        link = f'<a href="{esc(v.page)}#reported">{esc(label)}</a>'
        if not rv.comparisons:
            if rv.no_scores:
                unpublished.setdefault(v.model, v.model_page)
            else:
                summary.append(
                    f'<tr><td>{link}</td><td colspan="5" class="why">{esc(rv.message or "")}</td></tr>'
                )
            continue
        not_comparable = len(rv.comparisons) - len(rv.comparable)
        note = f"{not_comparable} not comparable (metric or shots differ)" if not_comparable else ""
        if rv.computed_now:
            note += ("; " if note else "") + "compared now: the record predates analytics"
        worst = rv.worst
        summary.append(
            f"<tr><td>{link}</td>"
            f'<td class="num">{len(rv.comparable)} of {len(rv.comparisons)}</td>'
            f"{cell('delta', rv.mean_delta)}"
            f'<td class="num">{rv.within_2se if rv.comparable else MISSING}</td>'
            + (
                f'<td class="num">{esc(fmt("delta", worst.delta))}<span class="sub">{esc(worst.task)}</span></td>'
                if worst is not None
                else f'<td class="missing">{MISSING}</td>'
            )
            + f'<td class="wrap">{esc(note)}</td></tr>'
        )
        groups.append((label, v.page, rv.comparisons))
        details.append(
            f"<details open><summary>{esc(label)}</summary>{reported_table(rv, v.page + '#reported')}</details>"
        )
    # The model's colour on every other page; a second run of the same model (other hardware) gets its own.
    colours = Palette([g[0] for g in groups])
    models = {label: v.model for v, label in zip(latest, labels, strict=True)}
    first: dict[str, str] = {}
    for label, _, _ in groups:
        first.setdefault(models[label], label)
    spec = archfigures.reported_deltas(
        groups, lambda label: palette(models[label]) if first[models[label]] == label else colours(label)
    )
    parts = [
        '<section class="card" id="reported"><h2>Measured vs published scores</h2><p class=note>Does this set-up '
        "reproduce the literature? For each model's latest run per suite and hardware: how many tasks have a "
        "published figure at the same metric and shot count, the mean of measured − published over them, how "
        "many lie within 2 standard errors of the measurement, and the largest difference.</p>",
        plain_table(
            ["Run", "Comparable tasks", "Mean Δ", "Within 2 SE", "Largest |Δ|", "Note"],
            summary,
            num_from=1,
        )
        if summary
        else '<p class="empty">No run of a model with published scores.</p>'
        if latest
        else '<p class="empty">No successful runs yet.</p>',
    ]
    if unpublished:
        links = ", ".join(f'<a href="{esc(page)}">{esc(m)}</a>' for m, page in sorted(unpublished.items()))
        parts.append(
            f"<p class=note>No published scores are shipped for {links}, so their runs have nothing to be "
            "compared with (a preset gets some from <code>harness/presets/&lt;name&gt;/reported.json</code>).</p>"
        )
    if spec is not None:
        parts.append(
            '<h3>Measured − published by task</h3><div class="chart" id="chart-arch-reported" '
            f'data-spec="chart-arch-reported-spec" data-root=""></div>{json_script("chart-arch-reported-spec", spec)}'
        )
    parts += details
    parts.append("</section>")
    return "".join(parts), spec is not None


def architecture_page(o: Overview, palette: Palette, generated: str) -> str:
    """KV cache and parameters per model, decode speed against the roofline, measured vs published."""
    arch = model_arch_rows(o.last_by_model, o.runs_by_model)
    latest = [r.latest for r in o.rows]
    labels = row_labels(latest)
    kv = archfigures.kv_bars(arch)
    params = archfigures.param_bars(arch)
    roofline = [roofline_view(v) for v in latest]
    reported, reported_chart = _reported_section(latest, labels, palette)
    described = sum(1 for r in arch if r.get("error") is None)
    body = [
        '<section class="hero"><h1>Architecture: cache, parameters and the roofline</h1>',
        f'<p class="context"><b>{described}</b> models described from their configs · '
        f"<b>{len(latest)}</b> latest runs compared · "
        '<a href="#kv">KV cache</a> · <a href="#params">parameters</a> · <a href="#roofline">roofline</a> · '
        '<a href="#reported">published scores</a></p></section>',
        '<div class="grid2">',
        chart_card(
            "chart-arch-kv",
            "KV-cache bytes per token",
            "What one token of context costs in cache over all layers, at the dtype the engine loads, beside "
            "a full multi-head cache of the same model: grouped-query attention (GQA) and multi-head latent "
            "attention (MLA) save the factor shown. A sliding window does not shrink the per-token cost but "
            "caps a sequence's cache at the window (table below).",
            kv,
            section_id="kv",
        ),
        chart_card(
            "chart-arch-params",
            "Total vs active parameters",
            "Active parameters are those each token passes through: every dense part plus the shared and "
            "top-k experts of a mixture of experts (MoE, in red), which is why an MoE model decodes like a "
            "much smaller one while needing memory for all of it.",
            params,
            section_id="params",
        ),
        "</div>",
        '<section class="card"><h2>Architecture facts per model</h2><p class=note>From each preset\'s config '
        "(and, for a model known only from runs, from its record). Sizes in binary units; hover a figure for "
        "bytes. With a sliding window the cache per sequence stops growing at the window only where the engine "
        "keeps a rolling buffer (vLLM does where the config lists per-layer types).</p>"
        + arch_table_html(arch)
        + "</section>",
        _roofline_section(roofline, labels),
        reported,
    ]
    charts = kv is not None or params is not None or reported_chart
    charts = charts or any(r.has_roofline for r in roofline)
    return frame(
        "harness: architecture",
        "\n".join(body),
        root="",
        active="architecture",
        generated=generated,
        charts=charts,
    )
