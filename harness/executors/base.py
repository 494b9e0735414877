"""What every executor shares: cell events, the executor protocol, and the driver's failed record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.planning.cells import Cell
from harness.record.run_record import Environment, ModelInfo, RunRecord
from harness.run.runner import new_run_id, suite_info
from harness.storage.store import run_dir_of, write_record


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

    `environment` is the one the worker reported when the cell started; without it, the driver's
    own is recorded and the reason says so.
    """
    from harness.run.environment import collect_environment

    plan = cell.plan
    if environment is not None:
        env = Environment.model_validate(environment)
    else:
        env = collect_environment({})
        reason += " (the worker never reported: the environment recorded is the driver's)"
    finished = datetime.now(timezone.utc)
    record = RunRecord(
        run_id=new_run_id(plan.model.name, plan.suite.spec.name, started),
        status="failed",
        error=reason[:4000],
        suite=suite_info(plan),
        model=ModelInfo(
            preset=plan.model.name if plan.model.source != "local" else "local",
            family=plan.model.family,
            source=plan.model.hub_id or plan.model.local_path or plan.model.name,
            served_name=plan.model.name,
            random_weights=plan.model.random_weights,
        ),
        environment=env,
        started_at=started,
        finished_at=finished,
        fingerprint=cell.fingerprint,
    )
    write_record(run_dir_of(results, record.run_id), record)
    return record
