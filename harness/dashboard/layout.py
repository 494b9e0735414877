"""The pieces every page is made of: the frame (head, navigation, footer), cards, tables, stat tiles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from harness.dashboard.data import iso
from harness.dashboard.html import esc, json_script
from harness.formatting import MISSING, fmt

Spec = dict[str, Any]


def cell(kind: str, value: Any, spread: str | None = None, cls: str = "num") -> str:
    text = fmt(kind, value)
    if text is None:
        return f'<td class="missing" title="not measured">{MISSING}</td>'
    extra = f'<span class="se">{esc(spread)}</span>' if spread else ""
    return f'<td class="{cls}">{esc(text)}{extra}</td>'


def pm(kind: str, se: Any) -> str | None:
    t = fmt(kind, se)
    return f"± {t}" if t is not None else None


def unit(text: str | None, unit: str) -> str | None:
    return f"{text} {unit}" if text is not None else None


NAV = (
    ("index.html", "Leaderboard", "index"),
    ("history.html", "History", "history"),
    ("runs.html", "All runs", "runs"),
    ("architecture.html", "Architecture", "architecture"),
    ("techniques.html", "Techniques", "techniques"),
    ("claims.html", "Claims", "claims"),
)


def frame(
    title: str, body: str, *, root: str, active: str, generated: str, charts: bool, data: Sequence[str] = ()
) -> str:
    """A complete page: head with the shared assets (relative to ``root``), nav bar, body, footer;
    ``data``: the data files it shows (relative to ``root``), loaded at the end of the body, so
    before the deferred dashboard.js runs (see :mod:`harness.dashboard.fragments`)."""
    nav = "".join(
        f'<a href="{root}{href}"{" class=active" if key == active else ""}>{label}</a>'
        for href, label, key in NAV
    )
    # dashboard.js first: it fills the tables while the browser is still compiling plotly.js.
    plotly = f'\n<script src="{root}plotly.min.js" defer></script>' if charts else ""
    scripts = "".join(f'<script src="{esc(root + src)}"></script>\n' for src in data)
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
{scripts}</body>
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


def stats(items: Sequence[tuple[str, str | None, str | None]]) -> str:
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


def when(t: Any) -> str:
    """A timestamp as the pages show it: ``2025-03-01 09:00 UTC``."""
    return iso(t)[:16].replace("T", " ") + " UTC"


def context_line(
    n_models: int, n_runs: int, n_failed: int, latest: datetime | None, models: bool = True
) -> str:
    """``12 models · 1,000 runs · 40 failed · latest 2025-03-01 09:00 UTC`` (without the models
    on a model's own page, whose failed link then goes up a folder)."""
    parts = [f"<b>{n_models}</b> model{'s' if n_models != 1 else ''}"] if models else []
    parts.append(f"<b>{n_runs}</b> run{'s' if n_runs != 1 else ''}")
    if n_failed:
        parts.append(
            f'<a href="{"" if models else "../"}runs.html#status=failed"><b>{n_failed}</b> failed</a>'
        )
    if latest is not None:
        parts.append(f"latest {esc(when(latest))}")
    return " · ".join(parts)


def pills(label: str, values: Iterable[str]) -> str:
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
