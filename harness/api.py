"""The Python API behind the CLI: what `harness run` does, callable from tests and notebooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.executors.base import EventSink
from harness.planning.cells import Cell, pending, plan_cells, select_cell
from harness.planning.plan import RunPlan
from harness.record.run_record import RunRecord
from harness.run.runner import RunHooks
from harness.spec.suite import LoadedSuite, load_suite
from harness.storage.store import load_records


def run_suite(
    suite: str | Path | LoadedSuite,
    models: list[str] | None = None,
    results: Path = Path("results"),
    endpoint: str | None = None,
    progress: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    cell: str | None = None,
    resume: bool = False,
    on_event: EventSink | None = None,
    endpoint_gpus: tuple[str, ...] = (),
    served_model_name: str | None = None,
) -> list[RunRecord]:
    """Plan and execute every run of a suite; one record per model, failed runs included.

    A run that fails does not stop the others. Ctrl-C / SIGTERM stops after the current run's
    record is written. See :func:`run_campaign` for the executor, `cell` and `resume` options.
    """
    return run_campaign(
        suite,
        models,
        results,
        endpoint,
        progress,
        executor,
        ray_address,
        cell,
        resume,
        on_event,
        endpoint_gpus,
        served_model_name,
    ).records


@dataclass(frozen=True)
class Campaign:
    """What a `harness run` did: the records it wrote and the cells it skipped (`--resume`)."""

    cells: list[Cell]
    records: list[RunRecord]
    skipped: list[Cell] = field(default_factory=list)


def run_campaign(
    suite: str | Path | LoadedSuite,
    models: list[str] | None = None,
    results: Path = Path("results"),
    endpoint: str | None = None,
    progress: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    cell: str | None = None,
    resume: bool = False,
    on_event: EventSink | None = None,
    endpoint_gpus: tuple[str, ...] = (),
    served_model_name: str | None = None,
) -> Campaign:
    """Run a suite's cells with an executor (`local` here, or `ray` on a cluster).

    `cell` runs one cell only, by index or fingerprint (a job array's task). `resume` skips the
    cells that already have an ``ok`` record of the same fingerprint in `results`.
    """
    from harness.executors import get_executor
    from harness.executors.base import CellEvent, ExecutorError

    loaded = suite if isinstance(suite, LoadedSuite) else load_suite(suite)
    cells = plan_cells(
        loaded, models, endpoint=endpoint, endpoint_gpus=endpoint_gpus, served_model_name=served_model_name
    )
    if cell is not None:
        cells = [select_cell(cells, cell)]
    skipped: list[Cell] = []
    if resume:
        cells, skipped = pending(cells, load_records(Path(results)).records)
    sink: EventSink = on_event or (lambda event: None)
    for c in skipped:
        sink(CellEvent(c, "skipped", detail="an ok record with this fingerprint exists"))
    if not cells:
        return Campaign(cells=[], records=[], skipped=skipped)
    if executor == "local":
        runner = get_executor("local", hooks=lambda plan: _hooks(plan, progress), resume=resume)
    else:
        if endpoint is not None:
            raise ExecutorError("--endpoint measures one server from this machine: use --executor local")
        runner = get_executor(executor, address=ray_address, resume=resume)
    return Campaign(cells=cells, records=runner.run(cells, Path(results), sink), skipped=skipped)


@contextlib.contextmanager
def _hooks(plan: RunPlan, progress: bool) -> Iterator[RunHooks]:
    if not progress:
        yield RunHooks()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )
    phase_task = bar.add_task(f"{plan.label}: planning", total=None)
    current: dict[str, TaskID] = {}

    def on_phase(phase: str) -> None:
        bar.update(phase_task, description=f"{plan.label}: {phase}")

    def on_scenario_start(name: str, total: int) -> None:
        bar.update(phase_task, description=f"{plan.label}: performance")
        current["task"] = bar.add_task(f"  scenario {name}", total=total)

    def on_request_done() -> None:
        if "task" in current:
            bar.advance(current["task"])

    with bar:
        yield RunHooks(
            on_phase=on_phase, on_scenario_start=on_scenario_start, on_request_done=on_request_done
        )
        bar.update(phase_task, description=f"{plan.label}: done")
