"""The metric catalogue is the one place that says what a figure means (issue #20)."""

from __future__ import annotations

from typing import get_args

import pytest

from harness.analysis.compare import SCENARIO_HEADLINES
from harness.analysis.tables import scenario_rows
from harness.formatting import KINDS
from harness.gate.compare import RUN_METRICS, SCENARIO_METRICS, known_direction
from harness.record.metrics import CATALOGUE, UnknownMetricError, higher_is_better, metric
from harness.record.run_record import ScenarioResult
from tests.factories import make_record


def test_every_entry_is_complete_and_printable() -> None:
    for key, m in CATALOGUE.items():
        assert m.key == key
        assert m.unit and m.label and m.description and m.source, key
        assert m.fmt in KINDS, (key, m.fmt)
        assert m.direction in ("higher", "lower", "none"), key


def test_every_gate_metric_is_catalogued_with_the_gates_direction() -> None:
    for key in (*SCENARIO_METRICS, *RUN_METRICS):
        assert key in CATALOGUE, key
        assert known_direction(key) is CATALOGUE[key].higher_is_better


def test_compare_headlines_take_label_and_direction_from_the_catalogue() -> None:
    for key, label, hib in SCENARIO_HEADLINES:
        assert label == CATALOGUE[key].label
        assert hib is CATALOGUE[key].higher_is_better


def test_every_measured_load_runs_column_of_a_scenario_is_catalogued() -> None:
    """The top-level numeric columns load_runs gives per scenario (not settings or parts)."""
    numeric = {
        name
        for name, field in ScenarioResult.model_fields.items()
        if set(get_args(field.annotation) or (field.annotation,)) - {type(None)} <= {int, float}
    }
    assert {"output_throughput", "p99_ttft_ms", "failed", "slo_attainment"} <= numeric
    [row] = [r for r in scenario_rows(make_record()) if r["scenario"]][:1]
    for key in numeric:
        assert key in row, key  # the column exists under the field's own name (no renames)
        assert key in CATALOGUE, key


def test_unknown_metric_names_the_nearest() -> None:
    with pytest.raises(UnknownMetricError, match="p99_ttft_ms"):
        metric("p99_ttft")
    assert higher_is_better("no_such_figure") is None


def test_directions_of_the_figures_people_gate_on() -> None:
    assert higher_is_better("output_throughput") is True
    assert higher_is_better("p99_ttft_ms") is False
    assert higher_is_better("energy_per_output_token_j") is False
    assert higher_is_better("output_tokens_per_j") is True
    assert higher_is_better("total_input_tokens") is None


def test_every_dashboard_figure_column_takes_heading_format_and_direction_from_the_catalogue() -> None:
    from harness.dashboard import columns as c

    shown = [
        *c.LEADERBOARD_HEAD,
        c.GPU_MEMORY_COLUMN,
        *c.LEADERBOARD_TAIL,
        *c.RUNS_COLUMNS,
        c.task_column("t"),
    ]
    figures = [col for col in shown if col.get("num") and col["key"] not in ("runs", "rep")]
    assert len(figures) >= 12
    for col in figures:
        m = CATALOGUE[col["metric"]]  # a number shown is a catalogued figure
        assert col["fmt"] == m.fmt, col["key"]
        if "better" in col:
            assert col["better"] == {"higher": "high", "lower": "low"}[m.direction], col["key"]
        if col["key"] != "acc:t":  # a task column is headed by its task's name
            assert col["label"].lower() == m.label.lower(), col["key"]
