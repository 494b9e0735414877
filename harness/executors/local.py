"""The local executor: cells one after the other in this process (today's `harness run`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

from harness.executors.base import CellEvent, CellState, EventSink
from harness.executors.claims import Claim, claimed
from harness.planning.cells import Cell
from harness.planning.plan import RunPlan
from harness.record.run_record import RunRecord
from harness.run.runner import RunHooks, execute
from harness.storage.index import run_index

HooksFactory = Callable[[RunPlan], ContextManager[RunHooks]]


def _no_hooks(plan: RunPlan) -> ContextManager[RunHooks]:
    return contextlib.nullcontext(RunHooks())


class LocalExecutor:
    """Runs each cell with `execute()` here. A failed cell does not stop the others; Ctrl-C stops
    after the current cell's failed record is written (execute() re-raises the interrupt)."""

    name = "local"

    def __init__(self, hooks: HooksFactory | None = None, resume: bool = False) -> None:
        self.hooks = hooks or _no_hooks
        self.resume = resume  # claim each cell first (harness.executors.claims)

    def run(self, cells: list[Cell], results: Path, on_event: EventSink) -> list[RunRecord]:
        records = []
        since = time.time()
        for cell in cells:
            with claimed(results, cell.fingerprint) if self.resume else _unclaimed() as claim:
                if not claim.ours:
                    on_event(CellEvent(cell, "skipped", detail=f"claimed by another run ({claim.holder})"))
                    continue
                if self.resume and done_since(results, cell.fingerprint, since):
                    on_event(CellEvent(cell, "skipped", detail="an ok record with this fingerprint appeared"))
                    continue
                on_event(CellEvent(cell, "running", node="local"))
                with self.hooks(cell.plan) as hooks:
                    record = execute(cell.plan, Path(results), hooks, fingerprint=cell.fingerprint)
            state: CellState = "done" if record.status == "ok" else "failed"
            on_event(CellEvent(cell, state, detail=record.error or record.run_id))
            records.append(record)
        return records


@contextlib.contextmanager
def _unclaimed() -> Iterator[Claim]:
    yield Claim(True)


def done_since(results: Path, fingerprint: str, since: float) -> bool:
    """An ok record of `fingerprint` written since `since` (epoch s): another campaign ran the
    cell after this one listed the pending cells. Asks the run index; reads no record it knows."""
    return any(
        e.fingerprint == fingerprint and e.status == "ok" and e.mtime_ns / 1e9 >= since
        for e in run_index(Path(results)).entries
    )
