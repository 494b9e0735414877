"""The Decision page: for one suite on each hardware label, which (model, variant) to ship.

Per decision (:mod:`harness.decide`): the verdict table (accuracy with n and its 95 % interval,
the paired test against the reference, capacity at the SLO and its bound, tok/s per GPU, J per
token, J per correct answer, $ per million output tokens, each number linked to its run) and two
charts: accuracy against $/Mtok (or, with no price, against output tok/s at the SLO) and against
J per output token, with the accuracy intervals as error bars and the frontier drawn.

Written by ``harness decide SUITE --page DIR``; with DIR the dashboard folder, the links open the
run pages there; otherwise they open each run's record.json. Opens from disk, offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.dashboard.data import slug
from harness.dashboard.figures import SYMBOLS, r4
from harness.dashboard.html import esc
from harness.dashboard.layout import chart_card, frame, plain_table
from harness.decide.render import MISSING, accuracy_sources, missing_reasons
from harness.decide.verdicts import Decided, Decision

Spec = dict[str, Any]
VERDICT_COLOURS = {
    "ship": "#109618",
    "trade-off": "#3366cc",
    "dominated": "#dc3912",
    "inconclusive": "#ff9900",
    "not comparable": "#9aa5b1",
    "not ranked": "#9aa5b1",
}


def run_link(d: Decided, out: Path) -> str:
    """The run's page in the dashboard folder ``out`` if there is one, else its record.json."""
    page = f"runs/{slug(d.row.run_id)}.html"
    if (out / page).is_file():
        return page
    if d.row.run_dir is not None:
        return (Path(d.row.run_dir).resolve() / "record.json").as_uri()
    return "#"


def _a(text: str, href: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def _num(value: float | None, href: str, spec: str = ".3g", why: str | None = None) -> str:
    if value is None:
        return f'<td class="missing" title="{esc(why or "not measured")}">{MISSING}</td>'
    return f'<td class="num">{_a(format(value, spec), href)}</td>'


def _row_html(d: Decided, dec: Decision, href: str) -> str:
    r = d.row
    tags = []
    if r.key == dec.reference:
        tags.append('<span class="badge">reference</span>')
    if r.random_weights:
        tags.append('<span class="badge badge-failed">random weights</span>')
    verdict = d.verdict + (f" by {d.dominated_by}" if d.dominated_by else "")
    colour = VERDICT_COLOURS.get(d.verdict, "#1f2933")
    acc = MISSING
    if r.accuracy is not None:
        ci = r.accuracy_ci95
        spread = f"95% [{ci[0]:.3f}, {ci[1]:.3f}] · " if ci else ""
        acc = f'{_a(f"{r.accuracy:.3f}", href)}<span class="se">{esc(spread)}n = {r.n_samples if r.n_samples is not None else "?"}</span>'
        at = "idle" if r.accuracy_at == "idle" else f"at load point {r.accuracy_at}"
        cls = "acc-at acc-idle" if r.accuracy_at == "idle" else "acc-at acc-load"
        acc += f'<span class="se {cls}" title="{esc(r.accuracy_source)}">{esc(at)}</span>'
    vs = esc(d.vs_reference.describe()) if d.vs_reference else MISSING
    cap = MISSING
    if r.capacity is not None:
        unit = "req/s" if r.capacity_over == "request_rate" else "in flight"
        cap = f'{_a(f"{r.capacity:g} {unit}", href)}<span class="se">bound: {esc(r.bound)}</span>'
    frontier = (
        " ".join(x for x, on in (("$", d.on_cost_frontier), ("J", d.on_energy_frontier)) if on) or MISSING
    )
    return (
        f'<tr data-key="{esc(r.key)}" data-verdict="{esc(d.verdict)}">'
        f'<td class="verdict"><b style="color:{colour}">{esc(verdict)}</b><span class="se">{esc(d.reason)}</span></td>'
        f"<td>{_a(r.key, href)} {''.join(tags)}</td>"
        f'<td class="num">{acc}</td><td>{vs}</td>'
        f'<td class="num" title="{esc(r.capacity_reason or r.stop_reason or "")}">{cap}</td>'
        + _num(r.tok_s_per_gpu if r.gpus else r.tok_s, href, why=r.tok_s_reason)
        + _num(r.j_per_token, href, why=r.j_per_token_reason)
        + _num(r.j_per_correct, href, why=r.j_per_correct_reason)
        + _num(r.usd_per_mtok, href, ".4g", why=r.usd_reason)
        + f"<td>{esc(frontier)}</td></tr>"
    )


def decision_chart(
    dec: Decision, x_of: Any, xtitle: str, links: dict[str, str], frontier_of: Any
) -> Spec | None:
    """Accuracy (with its 95 % interval) against one cost figure, one point per row; the frontier
    rows joined by a dotted line; colour is the verdict; click a point for its run."""
    pts = [(d, x_of(d)) for d in dec.rows if d.row.accuracy is not None and x_of(d) is not None]
    if not pts:
        return None
    data: list[dict[str, Any]] = []
    front = sorted((p for p in pts if frontier_of(p[0])), key=lambda p: p[1])
    if len(front) > 1:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [r4(x) for _, x in front],
                "y": [r4(d.row.accuracy) for d, _ in front],
                "line": {"color": "#9aa5b1", "dash": "dot", "width": 1.5},
                "name": "frontier",
                "hoverinfo": "skip",
            }
        )
    for i, (d, x) in enumerate(pts):
        r = d.row
        ci = r.accuracy_ci95
        err = (
            {
                "type": "data",
                "symmetric": False,
                "array": [r4(ci[1] - r.accuracy)],
                "arrayminus": [r4(r.accuracy - ci[0])],
            }
            if ci and r.accuracy is not None
            else None
        )
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "markers+text",
            "x": [r4(x)],
            "y": [r4(r.accuracy)],
            "text": [esc(r.key)],
            "textposition": "top center",
            "cliponaxis": False,
            "name": esc(f"{r.key} ({d.verdict})"),
            "marker": {
                "size": 14 if frontier_of(d) else 10,
                "color": VERDICT_COLOURS.get(d.verdict, "#1f2933"),
                "symbol": SYMBOLS[i % len(SYMBOLS)],
                "line": {"width": 1, "color": "#1f2933"},
            },
            "customdata": [[links[r.key]]],
            "hovertemplate": f"<b>{esc(r.key)}</b><br>{esc(d.verdict)}<br>{esc(xtitle)}: %{{x:.4g}}"
            f"<br>accuracy: %{{y:.3f}} (n = {r.n_samples}, {esc(r.accuracy_at)})<br>run {esc(r.run_id)}<extra></extra>",
        }
        if err:
            trace["error_y"] = {**err, "color": "#52606d", "thickness": 1}
        data.append(trace)
    layout = {
        "xaxis": {"title": {"text": esc(xtitle)}, "zeroline": False},
        "yaxis": {"title": {"text": "average accuracy (95 % interval)"}},
        "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
        "height": 380,
        "showlegend": True,
        "legend": {"font": {"size": 10}},
    }
    return {"data": data, "layout": layout}


def _at_text(dec: Decision) -> str:
    """Where the charted accuracies were measured, for the chart's description."""
    kinds = {d.row.accuracy_at == "idle" for d in dec.rows if d.row.accuracy is not None}
    if kinds == {True}:
        return "measured idle (no accuracy under load at the operating points)"
    if kinds == {False}:
        return "at each row's operating point, measured under load"
    return "at the operating point where it was measured under load, else idle (see the notes)"


def decision_section(dec: Decision, out: Path, index: int) -> str:
    links = {d.row.key: run_link(d, out) for d in dec.rows}
    headers = [
        "Verdict (reason)", "Model@variant", "Accuracy", "vs reference", "Capacity at SLO", "Out tok/s per GPU",
        "J/token", "J/correct", "$/Mtok", "Frontier",
    ]  # fmt: skip
    rows = [_row_html(d, dec, links[d.row.key]) for d in dec.rows]
    slo = next((d.row.slo for d in dec.rows if d.row.slo), None)
    slo_text = ", ".join(f"{k} {v}" for k, v in (slo or {}).items()) or "none recorded"
    ship = dec.ship
    head = (
        f"Ship <b>{esc(ship.row.key)}</b>: {esc(ship.reason)}"
        if ship
        else "Nothing to ship: see each row's reason."
    )
    priced = dec.cost_axis == "usd_per_mtok"
    bases = {d.row.basis for d in dec.rows}
    at = (
        "at the SLO"
        if bases == {"capacity"}
        else "at " + ", ".join(sorted(b.removeprefix("scenario ") for b in bases))
    )
    cost_chart = decision_chart(
        dec,
        (lambda d: d.row.usd_per_mtok) if priced else (lambda d: d.row.tok_s),
        f"$ per million output tokens {at}" if priced else f"output tok/s {at} (no price given)",
        links,
        lambda d: d.on_cost_frontier,
    )
    energy_chart = decision_chart(
        dec,
        lambda d: d.row.j_per_token,
        "J per output token at the SLO",
        links,
        lambda d: d.on_energy_frontier,
    )
    j_why = next(
        (d.row.j_per_token_reason for d in dec.rows if d.row.j_per_token_reason), "no energy figures"
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in accuracy_sources(dec) + dec.notes + missing_reasons(dec))
    return (
        f'<section class="card decision" id="decision-{index}"><h2>{esc(dec.suite)} · {esc(dec.hardware)}</h2>'
        f'<p class="note">SLO {esc(slo_text)} · reference <code>{esc(dec.reference or "none")}</code> · '
        f"constraints: max accuracy drop {esc(dec.constraints.max_accuracy_drop if dec.constraints.max_accuracy_drop is not None else 'not significantly below the reference')}, "
        f"at least {dec.constraints.min_samples} documents, costs within {100 * dec.constraints.min_effect:.0f} % tie</p>"
        f'<p class="decision-head">{head}</p>'
        + plain_table(headers, rows, num_from=2)
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + '<div class="grid2">'
        + chart_card(
            f"chart-decide-cost-{index}",
            "Accuracy against cost" if priced else "Accuracy against throughput at the SLO",
            "Each (model, variant); error bars are the 95 % accuracy interval; the dotted line joins the "
            f"rows on the cost frontier. Accuracy {_at_text(dec)}. "
            + (
                ""
                if priced
                else "Without a price, cost on one machine is 1 / tok/s: further right is cheaper."
            ),
            cost_chart,
            empty="No row has both accuracy and a cost at the SLO.",
        )
        + chart_card(
            f"chart-decide-energy-{index}",
            "Accuracy against energy",
            "J per output token at the SLO (GPU energy, NVML); the dotted line is the energy frontier.",
            energy_chart,
            empty=f"No energy figures: {j_why}.",
        )
        + "</div></section>"
    )


def decision_page(decisions: Sequence[Decision], out: Path, generated: str) -> str:
    body = [
        '<section class="hero"><h1>Decision</h1><p class="context">Which model, with which serving technique, to '
        "deploy at the SLO, and what each answer costs: one decision per suite and hardware label (rows of two "
        "are never ranked together). Verdicts: <b>ship</b> (on the frontier, meets the constraints, cheapest), "
        "<b>trade-off</b>, <b>dominated</b> (another row as accurate and cheaper), <b>inconclusive</b>, "
        "<b>not comparable</b>, <b>not ranked</b> (random weights). Every number links to its run.</p></section>"
    ]
    body += [decision_section(d, out, i) for i, d in enumerate(decisions)]
    charts = any(d.row.accuracy is not None for dec in decisions for d in dec.rows)
    return frame(
        "harness: decision", "\n".join(body), root="", active="decision", generated=generated, charts=charts
    )


def write_decision_page(decisions: Sequence[Decision], out: Path) -> Path:
    """``out/decision.html`` and the shared assets beside it (plotly.js, dashboard.js/css)."""
    from harness.dashboard.build import write_assets
    from harness.storage.store import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    write_assets(out)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path = out / "decision.html"
    atomic_write_bytes(path, decision_page(decisions, out, generated).encode("utf-8"))
    return path
