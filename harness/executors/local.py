"""The local executor: cells one after the other in this process (today's `harness run`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

from harness.executors.base import CellEvent, CellState, EventSink
from harness.planning.cells import Cell
from harness.planning.plan import RunPlan
from harness.record.run_record import RunRecord
from harness.run.runner import RunHooks, execute

HooksFactory = Callable[[RunPlan], ContextManager[RunHooks]]


def _no_hooks(plan: RunPlan) -> ContextManager[RunHooks]:
    return contextlib.nullcontext(RunHooks())


class LocalExecutor:
    """Runs each cell with `execute()` here. A failed cell does not stop the others; Ctrl-C stops
    after the current cell's failed record is written (execute() re-raises the interrupt)."""

    name = "local"

    def __init__(self, hooks: HooksFactory | None = None) -> None:
        self.hooks = hooks or _no_hooks

    def run(self, cells: list[Cell], results: Path, on_event: EventSink) -> list[RunRecord]:
        records = []
        for cell in cells:
            on_event(CellEvent(cell, "running", node="local"))
            with self.hooks(cell.plan) as hooks:
                record = execute(cell.plan, Path(results), hooks, fingerprint=cell.fingerprint)
            state: CellState = "done" if record.status == "ok" else "failed"
            on_event(CellEvent(cell, state, detail=record.error or record.run_id))
            records.append(record)
        return records
