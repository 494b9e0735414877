"""Escaping and JSON for the pages, in one place.

* text in HTML goes through :func:`esc` (``html.escape`` with quotes);
* data for the browser goes in ``<script type="application/json">`` blocks written by
  :func:`json_script`, which escapes ``<``, ``>`` and ``&`` so no record text can close the
  block; the page script then inserts it with ``textContent`` only.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from pydantic_core import to_json


def esc(value: Any) -> str:
    """``value`` as text safe in HTML content and in quoted attributes."""
    text = value if type(value) is str else str(value)
    # Most texts (numbers, names, dates) need nothing: five C-level scans beat html.escape's
    # five replacements, and a run page escapes a few hundred cells.
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return escape(text, quote=True)
    return text


_PLAIN = frozenset({str, int, bool, type(None)})


def clean(obj: Any, digits: int | None = None) -> Any:
    """``obj`` with every NaN or infinity replaced by None (JSON has neither), floats rounded
    to ``digits`` significant digits when given. Plain values in containers are copied without
    a call: the run list of 10,000 runs holds a quarter of a million of them."""
    t = type(obj)
    if t is dict:
        return {
            (k if type(k) is str else str(k)): (v if type(v) in _PLAIN else clean(v, digits))
            for k, v in obj.items()
        }
    if t is list or t is tuple:
        return [v if type(v) in _PLAIN else clean(v, digits) for v in obj]
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
    (tables show at most four, and long floats triple the bytes). Serialised by pydantic-core
    (Rust): on a thousand run pages the standard library's encoder was the largest single cost.
    """
    if digits is not None:
        obj = clean(obj, digits)
    text = to_json(obj, inf_nan_mode="null").decode()
    # No record text may close the script element or open a comment; U+2028/9 break old parsers.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def pretty_json(obj: Any) -> str:
    """Indented JSON for people (``<pre>`` blocks); NaN and infinity as null, unknown types as text."""
    return to_json(obj, indent=2, inf_nan_mode="null", fallback=str).decode()


def json_script(id_: str, obj: Any, digits: int | None = None) -> str:
    return f'<script type="application/json" id="{esc(id_)}">{json_text(obj, digits)}</script>'
