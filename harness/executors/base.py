"""What every executor shares: cell events, the executor protocol, and the driver's failed record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.planning.cells import Cell
from harness.record.run_record import Environment, RunRecord
from harness.run.record_builder import Measured, build_record, identify
from harness.storage.fallback import make_run_dir, write_record_or_fallback
from harness.storage.store import runs_dir


class ExecutorError(RuntimeError):
    """An executor that cannot start (Ray missing, no cluster at the address, bad options)."""


CellState = Literal["queued", "running", "done", "failed", "skipped"]


@dataclass(frozen=True)
class CellEvent:
    """One step of one cell, for progress lines (and for tests that watch a campaign)."""

    cell: Cell
    state: CellState
    node: str | None = None  # where it runs: Ray node id (short) and address, or "local"
    pid: int | None = None  # process running execute() there
    attempt: int = 1
    detail: str = ""


EventSink = Callable[[CellEvent], None]


class Executor(Protocol):
    """Runs cells to records in `results`; one record per cell that started, failed ones included."""

    name: str

    def run(self, cells: list[Cell], results: Path, on_event: EventSink) -> list[RunRecord]: ...


def describe_event(e: CellEvent) -> str:
    """One progress line (rich markup) per cell event."""
    colour = {"queued": "dim", "running": "cyan", "done": "green", "failed": "red", "skipped": "yellow"}
    where = f" on node {e.node}" if e.node and e.state == "running" else ""
    retry = f" (attempt {e.attempt})" if e.attempt > 1 else ""
    detail = f": {e.detail}" if e.detail else ""
    return f"cell {e.cell.label} [{e.cell.fingerprint}] [{colour[e.state]}]{e.state}[/]{where}{retry}{detail}"


def failed_cell_record(
    cell: Cell,
    results: Path,
    reason: str,
    started: datetime,
    environment: dict[str, Any] | None = None,
) -> RunRecord:
    """The record a driver writes for a cell that produced none itself (its worker or node died).

    Built by the runner's own :func:`~harness.run.record_builder.build_record` with nothing
    measured, so it names the suite, model and variant, and its run id carries the variant tag,
    as the runner's record would. `environment` is the one the worker reported when the cell
    started; without it, the driver's own is recorded and the reason says so. Written like the
    runner's (the fallback folder if the results folder takes nothing).
    """
    from harness.run.environment import collect_environment

    if environment is not None:
        env = Environment.model_validate(environment)
    else:
        env = collect_environment({})
        reason += " (the worker never reported: the environment recorded is the driver's)"
    identity = identify(cell.plan, cell.fingerprint, started)
    record = build_record(cell.plan, identity, Measured(), reason[:4000], env)
    write_record_or_fallback(make_run_dir(runs_dir(results), record.run_id), record)
    return record
