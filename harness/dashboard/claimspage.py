"""The Claims page: each efficiency claim of the registry with its verdict, the evidence, links to
the runs and what would measure the rest; and the context-length sweep (KV cache per sequence
against context, measured beside the architecture's prediction with and without the window)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.dashboard.html import esc
from harness.dashboard.layout import chart_card, frame, plain_table

# Existing dashboard.css classes: green, red, muted.
_CLASS = {
    "holds": "verdict ok",
    "does not hold": "verdict off",
    "inconclusive": "verdict na",
    "not measured here": "verdict na",
}
_COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


def _runs(run_ids: Sequence[str], run_page: Callable[[str], str | None]) -> str:
    links = []
    for rid in run_ids:
        page = run_page(rid)
        links.append(f'<a href="{esc(page)}">{esc(rid)}</a>' if page else esc(rid))
    return "<br>".join(links) or "—"


def _row(result: Any, run_page: Callable[[str], str | None]) -> str:
    from harness.claims.cli import verdict_label

    parts = []
    runs: list[str] = []
    rest: list[str] = []
    for p in result.parts:
        where = f" <span class=se>{esc(p.scope)}</span>" if p.scope else ""
        body = esc(p.evidence) if p.scope else "not measured here"
        note = f"<br><span class=se>{esc(p.note)}</span>" if p.note else ""
        parts.append(f"<b>{esc(p.name)}</b>: {esc(p.verdict)}{where}<br>{body}{note}")
        runs += [r for r in p.runs if r not in runs]
        rest += [w for w in p.not_measured if w not in rest]
    cls = _CLASS.get(result.verdict, "")
    return (
        f'<tr id="{esc(result.id)}"><td class=wrap><b>{esc(result.id)}</b><br>{esc(result.statement)}<br>'
        # The source's address as text: the dashboard works offline and links nowhere outside itself.
        f"<span class=se>{esc(result.source_title)} · {esc(result.source_url)}</span></td>"
        f'<td class="{cls}">{esc(verdict_label(result))}</td>'
        f"<td class=wrap>{'<hr>'.join(parts)}</td><td>{_runs(runs, run_page)}</td>"
        f"<td class=why>{'<br>'.join(esc(w) for w in rest) or '—'}</td></tr>"
    )


def sweep_chart(figures: dict[str, Any]) -> dict[str, Any] | None:
    """KV tokens per sequence against context: one measured line per model, the predictions dotted."""
    sweep = figures.get("sweep") or {}
    data: list[dict[str, Any]] = []
    for i, (model, points) in enumerate(sweep.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = [p for p in points if p["measured_kv_tokens"] is not None]
        if pts:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{model} measured",
                    "x": [p["context_tokens"] for p in pts],
                    "y": [round(p["measured_kv_tokens"]) for p in pts],
                    "line": {"color": colour},
                }
            )
        windowed = [p for p in points if p["predicted_tokens_windowed"] is not None]
        if windowed:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{model} predicted, window",
                    "x": [p["context_tokens"] for p in windowed],
                    "y": [p["predicted_tokens_windowed"] for p in windowed],
                    "line": {"color": colour, "dash": "dot"},
                }
            )
    if not data:
        return None
    xs = sorted({p["context_tokens"] for points in sweep.values() for p in points})
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "predicted, no window",
            "x": xs,
            "y": xs,
            "line": {"color": "#9aa5b1", "dash": "dash"},
        }
    )
    return {
        "data": data,
        "layout": {
            "xaxis": {"title": {"text": "context per sequence (prompt + output tokens)"}},
            "yaxis": {"title": {"text": "KV cache per sequence (tokens)"}, "rangemode": "tozero"},
            "legend": {"orientation": "h"},
        },
    }


def _sweep_table(figures: dict[str, Any]) -> str:
    def n(x: Any, digits: int = 0) -> str:
        return "—" if x is None else f"{x:,.{digits}f}"

    rows = []
    for model, points in (figures.get("sweep") or {}).items():
        for p in points:
            mib = p["measured_kv_bytes"] / 2**20 if p["measured_kv_bytes"] is not None else None
            rows.append(
                f"<tr><td>{esc(model)}</td><td>{esc(p['scenario'])}</td><td class=num>{p['context_tokens']:,}</td>"
                f"<td class=num>{n(p['measured_kv_tokens'])}</td><td class=num>{n(p['peak_kv_tokens'])}</td>"
                f"<td class=num>{p['polls']}</td><td class=num>{p['predicted_tokens_full']:,}</td>"
                f"<td class=num>{n(p['predicted_tokens_windowed'])}</td><td class=num>{n(p.get('predicted_tokens_blocks'))}</td>"
                f"<td class=num>{n(mib, 2)}</td>"
                f"<td class=num>{n(p['median_ttft_ms'], 1)}</td><td class=num>{n(p['median_tpot_ms'], 2)}</td></tr>"
            )
    headers = [
        "Model",
        "Scenario",
        "Context",
        "KV tokens/seq (median)",
        "Peak",
        "Polls",
        "Predicted, no window",
        "Predicted, window",
        "Predicted, vLLM blocks",
        "KV MiB/seq",
        "TTFT p50 ms",
        "TPOT p50 ms",
    ]
    return plain_table(headers, rows, num_from=2)


def claims_page(results: Sequence[Any], run_page: Callable[[str], str | None], generated: str) -> str:
    """The page for :func:`harness.claims.evaluate.evaluate_claims`' results."""
    body = [
        '<section class="hero"><h1>Claims</h1><p class="context">Each efficiency claim about these model '
        "families (harness/claims/registry.yaml) held against what this harness measured: <b>holds</b>, "
        "<b>does not hold</b>, <b>inconclusive</b> (the data cannot decide; what would resolve it is said) or "
        "<b>not measured here</b> (with why: a GPU, Hub weights, the runs to make). Checks on the tiny "
        "family models (suite <code>claims-cpu</code>) test the mechanism only: their KV layouts are the real "
        "families', their weights are random and their accuracy means nothing, so no accuracy verdict comes "
        "from them.</p></section>"
    ]
    if not results:
        body.append('<section class="card"><p class="empty">No claims registry.</p></section>')
    rows = [_row(r, run_page) for r in results]
    body.append(
        '<section class="card"><h2>Verdicts</h2>'
        + plain_table(["Claim", "Verdict", "Evidence", "Runs", "To measure the rest"], rows)
        + "</section>"
    )
    charts = False
    for r in results:
        for p in r.parts:
            if not p.figures.get("sweep"):
                continue
            spec = sweep_chart(p.figures)
            charts = charts or spec is not None
            f = p.figures
            body.append(
                chart_card(
                    f"chart-sweep-{r.id}",
                    f"KV cache per sequence against context ({r.id})",
                    esc(
                        f"Engine KV gauge × its slots ÷ running sequences, median over the decode polls; window "
                        f"{f.get('window')} tokens, blocks of {f.get('block_size')}, bounded means ≤ {f.get('bound_tokens')}."
                    ),
                    spec,
                    wide=True,
                    empty="No sweep point measured.",
                )
            )
            body.append(f'<section class="card wide">{_sweep_table(f)}</section>')
    return frame(
        "harness: claims", "\n".join(body), root="", active="claims", generated=generated, charts=charts
    )


def claims_page_for(results: Any, runs: dict[str, Any], generated: str) -> str:
    """The page for the store at `results`; `runs` maps ``runs/<folder>`` to entries with a ``page``.

    A registry or record that cannot be read becomes a line on the page, never a failed build."""
    from pathlib import Path

    from harness.claims.evaluate import evaluate_claims, load_store
    from harness.claims.spec import RegistryError

    pages = {k.split("/")[-1]: e.page for k, e in runs.items()}
    store = load_store(Path(results))
    folder = {rid: d.name for rid, d in store.run_dirs.items()}
    try:
        verdicts = evaluate_claims(Path(results), store=store)
    except RegistryError as exc:
        body = f'<section class="card"><p class="empty">{esc(exc)}</p></section>'
        return frame("harness: claims", body, root="", active="claims", generated=generated, charts=False)
    return claims_page(verdicts, lambda rid: pages.get(folder.get(rid, rid)), generated)
