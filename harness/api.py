"""The Python API behind the CLI: what `harness run` does, callable from tests and notebooks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from harness.plan import RunPlan, plan_runs
from harness.records import RunRecord
from harness.runner import RunHooks, execute
from harness.suite import LoadedSuite, load_suite


def run_suite(
    suite: str | Path | LoadedSuite,
    models: list[str] | None = None,
    results: Path = Path("results"),
    endpoint: str | None = None,
    progress: bool = False,
    endpoint_gpus: tuple[str, ...] = (),
) -> list[RunRecord]:
    """Plan and execute every run of a suite; one record per model, failed runs included.

    A run that fails does not stop the others. Ctrl-C / SIGTERM stops after the current run's
    record is written.
    """
    loaded = suite if isinstance(suite, LoadedSuite) else load_suite(suite)
    plans = plan_runs(loaded, models, endpoint=endpoint, endpoint_gpus=endpoint_gpus)
    records = []
    for plan in plans:
        with _hooks(plan, progress) as hooks:
            records.append(execute(plan, Path(results), hooks))
    return records


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
