"""harness: accuracy, speed, memory and energy of open LLMs from one vLLM load.

Importing this package is cheap: no torch, vLLM, lm-eval, pandas or plotly until a function
needs them. ``harness.load_runs`` and ``harness.load_tasks`` give the results as DataFrames
(see :mod:`harness.analysis.tables`).
"""

from __future__ import annotations

from typing import Any

from harness.version import __version__

__all__ = ["__version__", "load_runs", "load_tasks"]


def __getattr__(name: str) -> Any:
    if name in ("load_runs", "load_tasks"):
        from harness.analysis import tables as results

        return getattr(results, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
