"""Which load points evaluate which tasks under load, and with which settings (pure).

``accuracy.under_load`` names load points as the sweep expansion gives them (``chat@c8``;
:func:`harness.spec.expand.expand_scenarios`) and tasks of ``accuracy.tasks``. Both are checked
when the suite is loaded, so a typo fails before any engine starts, with the known names listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.spec.scenario import ScenarioPoint
    from harness.spec.suite import PerformanceSpec, TaskSpec, UnderLoadSpec


def check_under_load_tasks(spec: UnderLoadSpec, tasks: list[TaskSpec]) -> None:
    """Every task named under load is an idle task; a load limit is at most the idle one."""
    known = [t.name for t in tasks]
    for name in spec.tasks or []:
        if name not in known:
            raise ValueError(
                f"under_load.tasks: {name!r} is not in accuracy.tasks (known: {', '.join(known) or 'none'}); "
                "a task is paired with its idle evaluation, so it must have one"
            )
    if spec.tasks is None and not known and spec.probe is None:
        raise ValueError("under_load: no accuracy.tasks to evaluate and no probe: nothing to measure")
    if spec.limit is not None and spec.limit >= 1 and spec.limit != int(spec.limit):
        raise ValueError("under_load.limit: a limit of 1 or more is a count of documents (a whole number)")
    for t in tasks:
        if spec.tasks is not None and t.name not in spec.tasks:
            continue
        comparable = spec.limit is not None and t.limit is not None and (spec.limit < 1) == (t.limit < 1)
        if comparable and spec.limit > t.limit:  # type: ignore[operator]
            raise ValueError(
                f"under_load.limit {spec.limit:g} exceeds task {t.name}'s idle limit {t.limit:g}: "
                "the documents at load must be among those evaluated idle"
            )


def check_under_load_points(spec: UnderLoadSpec, perf: PerformanceSpec) -> None:
    """Every named point is one the suite's scenarios expand to (sweeps and searches: use `all`)."""
    if spec.points == "all":
        return
    from harness.spec.expand import expand_scenarios

    fixed = [s.name for s in expand_scenarios(perf) if s.rigor.sweep is None and s.rigor.search is None]
    adaptive = [s.name for s in perf.scenarios if s.rigor.sweep is not None or s.rigor.search is not None]
    for name in spec.points:
        if name in fixed:
            continue
        hint = (
            f"; {', '.join(adaptive)} choose their loads at run time: use `points: all`" if adaptive else ""
        )
        raise ValueError(
            f"accuracy.under_load.points: no load point {name!r} (points: {', '.join(fixed) or 'none'}){hint}"
        )


def measures_point(spec: UnderLoadSpec | None, point: str) -> bool:
    """Whether the point (a repeat `chat@c4#2` never: only the first repeat) is measured under load."""
    if spec is None or "#" in point:
        return False
    return spec.points == "all" or point in spec.points


def tasks_at_load(spec: UnderLoadSpec, tasks: list[TaskSpec]) -> list[TaskSpec]:
    """The idle tasks evaluated under load, each with the load limit where one is set."""
    chosen = [t for t in tasks if spec.tasks is None or t.name in spec.tasks]
    if spec.limit is None:
        return chosen
    return [t.model_copy(update={"limit": spec.limit}) for t in chosen]


def describe_under_load(spec: UnderLoadSpec, scenarios: list[ScenarioPoint]) -> list[str]:
    """Plan lines: which points, tasks and probe."""
    names = [s.name for s in scenarios] if spec.points == "all" else list(spec.points)
    tasks = "every task" if spec.tasks is None else (", ".join(spec.tasks) or "no task")
    line = f"accuracy under load at {', '.join(names) or 'no point'}: {tasks}"
    if spec.limit is not None:
        line += f" (limit {spec.limit:g})"
    if spec.probe is not None:
        p = spec.probe
        line += f"; invariance probe {p.prompts} x {p.input_tokens}->{p.output_tokens} tokens"
    return [line]
