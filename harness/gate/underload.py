"""Gate figures from accuracy under load: worse flips and changed answers at a named load point.

``gates: [{metric: flips_worse, scenario: chat@c8, max_abs_change: 2}]`` regresses when the
candidate's documents flipped worse at ``chat@c8`` (summed over the point's tasks, each against
its own run's idle evaluation) exceed the baseline's by more than 2. ``answers_changed_share`` is
the largest share of documents whose answer changed at all, over the point's tasks. Both are
lower-better; a point not measured under load gives no figure (the gate reports it missing).
"""

from __future__ import annotations

from harness.record.run_record import ScenarioResult

UNDER_LOAD_METRICS: tuple[str, ...] = ("flips_worse", "answers_changed_share")


def under_load_value(sr: ScenarioResult, metric: str) -> float | None:
    """The point's figure, or None where it was not measured under load (or nothing paired)."""
    acc = sr.accuracy_under_load
    paired = [t.paired for t in acc.tasks if t.paired is not None] if acc is not None else []
    if not paired:
        return None
    if metric == "flips_worse":
        return float(sum(p.flips_worse for p in paired))
    if metric == "answers_changed_share":
        return max(p.answers_changed_share for p in paired)
    raise ValueError(f"not an under-load metric: {metric!r}")
