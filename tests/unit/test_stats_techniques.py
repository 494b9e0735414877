"""The techniques page's relative-change interval: Welch over repeats (issue #21's quoted case)."""

from __future__ import annotations

import pytest

from harness.analysis.techniques import _spread_ci
from harness.record.rigor import PointInfo, PointRigor, RepeatAggregates
from harness.record.run_record import ScenarioResult
from tests.factories import gate_scenario


def _point(throughputs: list[float]) -> ScenarioResult:
    sr = gate_scenario()
    reps = [
        RepeatAggregates(
            repeat=i + 1, completed=16, failed=0, duration=1.0, request_throughput=16.0, output_throughput=t
        )
        for i, t in enumerate(throughputs)
    ]
    rigor = PointRigor(point=PointInfo(scenario="c1", role="fixed", concurrency=1), repeats=reps)
    return sr.model_copy(update={"rigor": rigor})


def test_relative_change_interval_is_welch_not_opposite_ends() -> None:
    got = _spread_ci(_point([100.0, 103.0, 97.0]), _point([110.0, 113.0, 107.0]))
    assert got is not None
    # Welch: [+3.2 %, +16.8 %]; the ratio of opposite interval ends gave [-4.6 %, +26.9 %].
    assert got == (pytest.approx(0.032, abs=5e-4), pytest.approx(0.168, abs=5e-4))


def test_one_repeat_gives_no_interval() -> None:
    assert _spread_ci(_point([100.0]), _point([110.0, 112.0])) is None
