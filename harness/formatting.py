"""Numbers as people read them: the one set of formatters for the terminal, Markdown and HTML.

The terminal summary (:mod:`harness.commands.report`), the gate's tables (:mod:`harness.gate.render`)
and the dashboard's pages all format figures here, so a TTFT reads the same in a CI log, a
job summary and a run page. The dashboard's tables format in the browser with the same
rules: ``FORMATS`` in ``dashboard/static/dashboard.js`` mirrors :func:`fmt`, kind for kind.

Kinds (the ``fmt`` of a dashboard column):

* ``acc`` a 0-1 score, three decimals; ``delta`` the same with a sign;
* ``tps`` and ``ms``: 0, 1 or 2 decimals as the figure is ≥ 100, ≥ 10 or smaller;
* ``j`` joules: grouped integers from 100 up, else three significant digits;
* ``int``: rounded; ``s``: seconds with a unit; ``bytes``: GiB (two decimals) or MiB;
* ``num``: any figure in its own units, four significant digits, grouped from 1,000 up.

A missing figure is None from :func:`fmt` and :data:`MISSING` from :func:`show`; it is never
drawn as 0.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"

KINDS: tuple[str, ...] = ("acc", "delta", "tps", "ms", "j", "int", "bytes", "s", "num")


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number, NaN or infinite."""
    if type(value) is float:  # the usual case, first: pages call this a hundred times each
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _decimals(v: float) -> int:
    a = abs(v)
    return 0 if a >= 100 else 1 if a >= 10 else 2


def fmt(kind: str, value: Any) -> str | None:
    """A figure of ``kind`` (see the module docstring) as text; None for a missing one.

    A value of an unknown kind is shown as its ``str``.
    """
    if value is None:
        return None
    if kind not in KINDS:
        return str(value)
    v = finite(value)
    if v is None:
        return None
    if kind == "acc":
        return f"{v:.3f}"
    if kind == "delta":
        return f"{v:+.3f}"
    if kind in ("tps", "ms"):
        return f"{v:.{_decimals(v)}f}"
    if kind == "j":
        return f"{v:,.0f}" if abs(v) >= 100 else "0" if v == 0 else f"{v:.3g}"
    if kind == "int":
        return str(round(v))
    if kind == "s":
        return f"{v:.0f} s" if v >= 100 else f"{v:.1f} s"
    if kind == "num":
        return "0" if v == 0 else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    gib = v / 2**30
    return f"{gib:.2f} GiB" if gib >= 1 else f"{v / 2**20:.0f} MiB"


def show(kind: str, value: Any, unit: str = "") -> str:
    """:func:`fmt` for a table cell: :data:`MISSING` for a missing figure, else the text and ``unit``."""
    text = fmt(kind, value)
    if text is None:
        return MISSING
    return f"{text} {unit}" if unit else text


def num(x: float | None) -> str:
    """A figure in its own units (kind ``num``); :data:`MISSING` for None."""
    return show("num", x)


def signed(x: float) -> str:
    """:func:`num` with an explicit ``+`` for a positive change."""
    return ("+" if x > 0 else "") + num(x)


def _sig3(v: float) -> str:
    # Three significant digits without switching to exponents at 1000 (e.g. 1000 KiB).
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def human_bytes(value: float) -> str:
    """Binary-prefixed size with three significant digits, e.g. ``128 KiB``, ``30.4 KiB``, ``4 GiB``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{_sig3(value / size)} {unit}"
    return f"{value:.0f} B"


def human_count(value: float) -> str:
    """A count with a decimal prefix and three significant digits, e.g. ``135 M``, ``7.24 B``."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{_sig3(value / size)} {unit}"
    return f"{value:.0f}"
