"""Schema v3 (issue 20): each energy value stored once per scenario, read through one accessor;
records written by the v2 code (tests/data/record_v2_*.json) still load with the same figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.record.energy import migrate_v2_scenario_energy
from harness.record.migrate import IMPORT_CPU_REASON, migrate, parse_record
from harness.record.run_record import SCHEMA_VERSION, ScenarioEnergy, scenario_energy_value

DATA = Path(__file__).resolve().parents[1] / "data"
FIGURES = (
    "energy_j",
    "energy_per_output_token_j",
    "output_tokens_per_j",
    "avg_power_w",
    "energy_above_idle_j",
)


def _v2(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _count(node: Any, value: float) -> int:
    """How many times a number is stored anywhere under `node`."""
    if isinstance(node, dict):
        return sum(_count(v, value) for v in node.values())
    if isinstance(node, list):
        return sum(_count(v, value) for v in node)
    return int(isinstance(node, float) and node == value)


def test_the_v2_fixtures_are_v2_and_hold_every_energy_window() -> None:
    v2 = _v2("record_v2_gpu.json")
    assert v2["schema_version"] == 2 and SCHEMA_VERSION == 4
    c2 = v2["scenarios"][0]["energy"]
    assert c2["energy_j"] == c2["measured"]["energy_j"] is not None  # the v2 flat copy
    assert c2["steady_state"]["energy_j"] == c2["steady_state"]["value"]["energy_j"] is not None
    assert "scenario:c2" in v2["resources"]["phases"]


@pytest.mark.parametrize("name", ["record_v2_gpu.json", "record_v2_imported.json"])
def test_a_v2_record_loads_with_the_same_energy_figures(name: str) -> None:
    v2 = _v2(name)
    rec = parse_record((DATA / name).read_bytes())
    assert rec.schema_version == SCHEMA_VERSION
    for old, new in zip(v2["scenarios"], rec.scenarios, strict=True):
        energy = old.get("energy")
        if energy is None:
            assert new.energy is None
            continue
        head = scenario_energy_value(new)
        assert head is not None and head.window == "measured"
        for key in FIGURES:
            assert getattr(head, key) == energy[key] == energy["measured"][key], key
        gross = scenario_energy_value(new, "scenario_window")
        assert gross is not None and gross.model_dump(mode="json") == energy["gross"]
        steady = scenario_energy_value(new, "steady_state")
        if energy["steady_state"] is None:
            assert steady is None and new.energy is not None
            assert new.energy.steady_state_reason == energy["steady_state_reason"]
        else:
            assert steady is not None and steady.model_dump(mode="json") == energy["steady_state"]["value"]
            assert steady.energy_per_output_token_j == energy["steady_state"]["energy_per_output_token_j"]
    # the run's total is untouched; the phases no longer repeat the scenarios' windows
    if v2["resources"] is not None:
        assert rec.resources is not None and rec.resources.energy_j == v2["resources"]["energy_j"]
        assert set(rec.resources.phases) == {
            k for k in v2["resources"]["phases"] if not k.startswith("scenario:")
        }
        for s in rec.scenarios:
            assert s.resources is not None
            assert s.resources.model_dump(mode="json") == v2["resources"]["phases"][f"scenario:{s.name}"]


def test_each_energy_value_is_stored_once_per_scenario() -> None:
    v2 = _v2("record_v2_gpu.json")
    v3 = json.loads(parse_record((DATA / "record_v2_gpu.json").read_bytes()).model_dump_json())
    c2_old, c2_new = v2["scenarios"][0]["energy"], v3["scenarios"][0]["energy"]
    measured = c2_old["measured"]["energy_j"]
    steady = c2_old["steady_state"]["energy_j"]
    assert (_count(v2, measured), _count(v3, measured)) == (2, 1)
    assert (_count(v2, steady), _count(v3, steady)) == (2, 1)
    assert set(c2_new) == {"measured", "gross", "steady_state", "steady_state_reason"}
    # the gross window: its value, plus the meter's own window (energy, GPU, device) on the scenario;
    # v2 also repeated that window in resources.phases
    gross = c2_old["gross"]["energy_j"]
    assert (_count(v2, gross), _count(v3, gross)) == (7, 4)
    assert len(json.dumps(v3)) < len(json.dumps(v2))


def test_an_imported_runs_cpu_placeholder_becomes_null_with_the_reason() -> None:
    v2 = _v2("record_v2_imported.json")
    assert (
        v2["scenarios"][0]["client_cpu_s"] == 0.0
        and "0.0 stands in" in v2["source"]["unmeasured"]["scenarios.client_cpu_s"]
    )
    rec = parse_record((DATA / "record_v2_imported.json").read_bytes())
    assert [s.client_cpu_s for s in rec.scenarios] == [None]
    assert rec.source is not None and rec.source.unmeasured["scenarios.client_cpu_s"] == IMPORT_CPU_REASON
    measured = _v2("record_v2_gpu.json")
    assert [s.client_cpu_s for s in parse_record(json.dumps(measured)).scenarios] == [0.1, 0.1]


def test_a_v2_point_pooled_over_repeats_keeps_its_headline() -> None:
    """v2 pooled repeats into the flat fields only (no `measured`): v3 makes them the measured value."""
    flat = {
        "energy_j": 400.0,
        "energy_source": "counter",
        "duration_s": 4.0,
        "avg_power_w": 100.0,
        "output_tokens": 88,
        "energy_per_output_token_j": 400.0 / 88,
        "measured": None,
        "gross": None,
        "steady_state": None,
        "steady_state_reason": "not every one of the 2 repeats has one",
    }
    e = ScenarioEnergy.model_validate(migrate_v2_scenario_energy(flat))
    assert e.measured is not None and e.measured.window == "measured"
    assert (e.measured.energy_j, e.measured.output_tokens) == (400.0, 88)
    assert e.measured.energy_per_output_token_j == pytest.approx(400.0 / 88) and e.gross is None


def test_the_v2_to_v3_step_leaves_its_input_alone() -> None:
    v2 = _v2("record_v2_gpu.json")
    before = json.dumps(v2)
    v3 = migrate(v2)
    assert json.dumps(v2) == before and v3["schema_version"] == SCHEMA_VERSION
