"""Accuracy at the operating point: which load point's accuracy a decision row reads (pure).

A suite with ``accuracy.under_load`` keeps, beside some load points, the tasks evaluated again
while the load ran (:class:`~harness.record.underload.AccuracyUnderLoad`). Users ship at load,
so a row whose operating point (the capacity probe at the SLO, or the ``--scenario`` it was
given) has such a measurement reads its accuracy there; where the operating point has none, the
nearest point below it on the same load axis (request rate, or requests in flight) that has one;
where there is none at all, the idle evaluation, and the row says which and why.

Per task: a task the suite did not evaluate under load stays idle, said so, beside the ones that
did (a row can be part at load, part idle).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.record.run_record import RunRecord, ScenarioResult
from harness.record.underload import AccuracyUnderLoad, TaskUnderLoad


@dataclass(frozen=True)
class LoadPoint:
    """The load point a row's accuracy is read at, and why that one."""

    name: str  # the point's name (`busy@c16`, `cap@r2`)
    axis: str  # "request_rate" or "concurrency"
    load: float
    exact: bool  # the operating point itself (else the nearest below it)
    during_load_share: float | None  # share of the evaluation's requests in flight during the load
    tasks: dict[str, TaskUnderLoad]

    def describe(self) -> str:
        where = f"load point {self.name}"
        if not self.exact:
            where += " (the nearest below the operating point with accuracy under load)"
        if self.during_load_share is not None and self.during_load_share < 1:
            where += f"; {100 * self.during_load_share:.0f} % of its evaluation ran during the load"
        return where


def _axis_load(sr: ScenarioResult, axis: str | None = None) -> tuple[str, float] | None:
    """(axis, load) of a point: its request rate where it has one, else its concurrency; with
    ``axis`` given, that axis only."""
    st = sr.settings.load
    if axis in (None, "request_rate") and st.request_rate is not None:
        return "request_rate", float(st.request_rate)
    if axis in (None, "concurrency") and st.request_rate is None and st.concurrency is not None:
        return "concurrency", float(st.concurrency)
    return None


def _usable(acc: AccuracyUnderLoad | None) -> dict[str, TaskUnderLoad]:
    """The tasks of a load point's evaluation that have a figure (none where it failed)."""
    if acc is None or acc.error is not None:
        return {}
    return {t.task: t for t in acc.tasks if t.value == t.value}  # NaN: no figure


def _point(sr: ScenarioResult, axis: str, load: float, exact: bool) -> LoadPoint:
    acc = sr.accuracy_under_load
    assert acc is not None
    share = acc.traffic.during_load_share if acc.traffic is not None else None
    return LoadPoint(acc.point or sr.name, axis, load, exact, share, _usable(acc))


def load_point_for(rec: RunRecord, operating: str | None) -> tuple[LoadPoint | None, str]:
    """The load point whose accuracy the row at ``operating`` reads, or None and why idle."""
    measured = {name: sr for name, sr in rec.performance.items() if _usable(sr.accuracy_under_load)}
    if not measured:
        failed = [
            f"{name}: {sr.accuracy_under_load.error}"
            for name, sr in rec.performance.items()
            if sr.accuracy_under_load is not None and sr.accuracy_under_load.error
        ]
        if failed:
            return None, "the evaluation under load failed (" + "; ".join(failed) + ")"
        return None, "the suite measured no accuracy under load (accuracy.under_load)"
    if operating is None:
        return None, "no operating point (no load met the SLO), so no load to read accuracy at"
    op = rec.performance.get(operating)
    if operating in measured:
        al = _axis_load(measured[operating])
        axis, load = al if al is not None else ("concurrency", float("nan"))
        return _point(measured[operating], axis, load, True), ""
    here = _axis_load(op) if op is not None else None
    if here is None:
        return None, f"accuracy under load was measured, but not at {operating} and its load is not known"
    axis, load = here
    below = []
    for name, sr in measured.items():
        al = _axis_load(sr, axis)
        if al is not None and al[1] <= load:
            # Nearest below; at equal load, the same scenario as the operating point first.
            same = name.split("@", 1)[0] == operating.split("@", 1)[0]
            below.append((al[1], same, name, sr))
    if not below:
        return None, (
            f"accuracy under load was measured only at {', '.join(sorted(measured))}, none at or below "
            f"{operating}'s load ({load:g} {'req/s' if axis == 'request_rate' else 'in flight'})"
        )
    value, _, name, sr = max(below, key=lambda b: (b[0], b[1]))
    return _point(sr, axis, value, False), ""
