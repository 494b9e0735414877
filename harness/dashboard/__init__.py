"""HTML leaderboards and comparison dashboards (the only package that imports plotly).

``build_dashboard(results, out)`` writes static pages that open from disk, offline; the
``harness dashboard`` command calls it. Nothing heavy is imported until it is called, so
``harness --help`` (which imports :mod:`harness.dashboard.cli`) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.dashboard.build import DashboardReport, build_dashboard

__all__ = ["DashboardReport", "build_dashboard"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.dashboard import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
