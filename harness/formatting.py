"""Numbers as people read them: one set of formatters for the terminal, Markdown and HTML."""

from __future__ import annotations


def num(x: float | None) -> str:
    """A figure in four significant digits (thousands grouped, no decimals from 1,000 up); ``-`` for None."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def signed(x: float) -> str:
    """:func:`num` with an explicit ``+`` for a positive change."""
    return ("+" if x > 0 else "") + num(x)
