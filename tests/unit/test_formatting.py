"""The one number formatter shared by the terminal report, the gate and the dashboard."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from harness.formatting import KINDS, MISSING, fmt, human_bytes, human_count, num, show, signed


@pytest.mark.parametrize(
    ("kind", "value", "text"),
    [
        ("acc", 0.61234, "0.612"),
        ("delta", 0.01, "+0.010"),
        ("tps", 1234.56, "1235"),
        ("tps", 45.67, "45.7"),
        ("ms", 3.14159, "3.14"),
        ("j", 1234.5, "1,234"),
        ("j", 0.01234, "0.0123"),
        ("j", 0, "0"),
        ("int", 7.6, "8"),
        ("s", 12.34, "12.3 s"),
        ("s", 250.0, "250 s"),
        ("bytes", 3 * 2**30, "3.00 GiB"),
        ("bytes", 5 * 2**20, "5 MiB"),
        ("num", 12345.6, "12,346"),
        ("num", 0.000123456, "0.0001235"),
        ("num", 42.0, "42"),
    ],
)
def test_fmt_by_kind(kind: str, value: float, text: str) -> None:
    assert fmt(kind, value) == text


def test_missing_is_never_zero() -> None:
    for kind in KINDS:
        assert fmt(kind, None) is None and fmt(kind, math.nan) is None and fmt(kind, math.inf) is None
        assert show(kind, None) == MISSING
    assert num(None) == MISSING and show("ms", 2.0, "ms") == "2.00 ms"
    assert signed(2.5) == "+2.5" and signed(-2.5) == "-2.5"


def test_human_units() -> None:
    assert human_bytes(30.4 * 2**10) == "30.4 KiB" and human_bytes(1000 * 2**10) == "1000 KiB"
    assert human_count(135e6) == "135 M" and human_count(7.24e9) == "7.24 B"


def test_the_browser_formats_the_same_kinds() -> None:
    js = (Path(__file__).parents[2] / "harness/dashboard/static/dashboard.js").read_text()
    block = js[js.index("var FORMATS = {") : js.index("function fmt(kind, v)")]
    js_kinds = set(re.findall(r"^\s{4}(\w+): function", block, re.M)) - {"date", "text"}
    assert js_kinds == set(KINDS)
