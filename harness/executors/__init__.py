"""Executors: how a campaign's cells get run. Both call the same `harness.run.runner.execute()`.

* ``local``: one cell after the other in this process (the default).
* ``ray``: one Ray task per cell on a Ray cluster (``pip install 'harness[ray]'``); the run
  folders come back to this machine's results store.

Executors are named by a string and imported lazily, so `import harness` never imports Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.executors.base import CellEvent, EventSink, Executor, ExecutorError

EXECUTORS: dict[str, str] = {
    "local": "harness.executors.local:LocalExecutor",
    "ray": "harness.executors.ray_cluster:RayExecutor",
}

__all__ = ["EXECUTORS", "CellEvent", "EventSink", "Executor", "ExecutorError", "get_executor"]


def get_executor(name: str, **options: Any) -> Executor:
    """An executor by name; `options` go to its constructor (e.g. ``address`` for ``ray``)."""
    try:
        target = EXECUTORS[name]
    except KeyError:
        raise ExecutorError(f"unknown executor {name!r}: choose from {', '.join(EXECUTORS)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(**options)  # type: ignore[no-any-return]
