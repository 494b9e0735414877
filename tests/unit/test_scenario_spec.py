"""A scenario as one nested spec: `load`, `workload`, `rigor` sections, the flat form routed into
them by the sections' own fields, errors naming file, line and field either way, and frozen
points whose load is the one type the load generator takes and the record stores."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from harness.loadgen.client import LoadSpec
from harness.record.load import LoadShape
from harness.record.run_record import ScenarioSettings
from harness.spec.expand import expand_scenarios
from harness.spec.scenario import (
    LoadSection,
    PerfScenario,
    RigorSection,
    ScenarioPoint,
    WorkloadSection,
    flat_form,
    route_flat_keys,
)
from harness.spec.suite import SuiteError, parse_suite

FLAT = """\
name: t
performance:
  repeats: 2
  scenarios:
    - name: chat
      input_tokens: 64
      output_tokens: 16
      num_requests: 8
      concurrency: [1, 4]
      temperature: 0.5
      prefix: {groups: 2, length: 32}
      slo: {ttft_ms: 500}
    - name: ramp
      input_tokens: 8
      output_tokens: 4
      num_requests: 6
      ramp_up_strategy: linear
      ramp_up_start_rps: 1
      ramp_up_end_rps: 4
"""

NESTED = """\
name: t
performance:
  repeats: 2
  scenarios:
    - name: chat
      load:
        input_tokens: 64
        output_tokens: 16
        num_requests: 8
        concurrency: [1, 4]
        temperature: 0.5
      workload:
        prefix: {groups: 2, length: 32}
      rigor:
        slo: {ttft_ms: 500}
    - name: ramp
      load: {input_tokens: 8, output_tokens: 4, num_requests: 6, ramp_up_strategy: linear,
             ramp_up_start_rps: 1, ramp_up_end_rps: 4}
"""


def _error(text: str) -> str:
    with pytest.raises(SuiteError) as err:
        parse_suite(text, source="suites/x.yaml")
    return str(err.value)


def test_the_flat_and_the_nested_form_are_the_same_suite() -> None:
    flat, nested = parse_suite(FLAT), parse_suite(NESTED)
    assert flat == nested
    chat = nested.performance.scenarios[0]
    assert chat.load.concurrency == [1, 4] and chat.load.temperature == 0.5
    assert chat.workload.prefix is not None and chat.workload.prefix.groups == 2
    assert chat.rigor.slo is not None and chat.rigor.slo.ttft_ms == 500
    assert expand_scenarios(flat.performance) == expand_scenarios(nested.performance)


def test_points_are_frozen_and_their_load_is_the_load_generators_and_the_records_type() -> None:
    points = expand_scenarios(parse_suite(NESTED).performance)
    assert [p.name for p in points] == ["chat@c1", "chat@c4", "ramp"]
    for p in points:
        assert isinstance(p, ScenarioPoint) and type(p.load) is LoadShape
        assert p.rigor.repeats == 2  # performance.repeats resolved into every point
    with pytest.raises(ValidationError):
        points[0].load.concurrency = 8  # type: ignore[misc]
    # The same object goes to the load generator and into the record: no copy by field names.
    spec = LoadSpec(load=points[1].load, seed=7)
    settings = ScenarioSettings(load=spec.load, seed=1234, scenario_seed=spec.seed)
    assert settings.load is points[1].load
    assert ScenarioSettings.model_validate_json(settings.model_dump_json()).load == points[1].load
    # One type for the ramp-up rates everywhere: whole requests/s, as vllm bench serve takes them.
    ramp = points[2].load
    assert (ramp.ramp_up_start_rps, ramp.ramp_up_end_rps) == (1, 4)
    assert LoadShape.model_fields["ramp_up_start_rps"].annotation == int | None
    assert LoadSection.model_fields["ramp_up_start_rps"].annotation == int | None
    assert LoadSpec(load=ramp, seed=3).offsets_s()  # the schedule comes from the point's own load


def test_routing_comes_from_the_section_models() -> None:
    """Every field of every section routes, so a field added to a section needs no list."""
    sections: dict[str, type[BaseModel]] = {
        "load": LoadSection,
        "workload": WorkloadSection,
        "rigor": RigorSection,
    }
    for home, model in sections.items():
        for field in model.model_fields:
            routed = route_flat_keys(PerfScenario, {"name": "x", field: 1})
            assert routed[home] == {field: 1}, field
    assert route_flat_keys(PerfScenario, {"name": "x", "nonsense": 1})["nonsense"] == 1
    s = parse_suite(NESTED).performance.scenarios[0].model_dump(mode="json", exclude_defaults=True)
    assert flat_form(s)["concurrency"] == [1, 4] and "load" not in flat_form(s)


def test_errors_name_file_line_and_field_in_either_form() -> None:
    msg = _error(FLAT.replace("concurrency: [1, 4]", "concurrency: [1, 1]"))
    assert "suites/x.yaml:9: performance.scenarios.0.concurrency: " in msg and "distinct" in msg
    msg = _error(NESTED.replace("concurrency: [1, 4]", "concurrency: [1, 1]"))
    assert "suites/x.yaml:10: performance.scenarios.0.load.concurrency: " in msg and "distinct" in msg
    msg = _error(FLAT.replace("input_tokens: 64", "input_tokens: 0"))
    assert (
        "suites/x.yaml:6: performance.scenarios.0.input_tokens: " in msg
        and "greater than or equal to 1" in msg
    )
    msg = _error(NESTED.replace("        temperature: 0.5", "        temprature: 0.5"))
    assert "suites/x.yaml:11: performance.scenarios.0.load.temprature: unknown field" in msg
    msg = _error(FLAT.replace("      temperature: 0.5", "      temprature: 0.5"))
    assert "suites/x.yaml:10: performance.scenarios.0.temprature: unknown field" in msg
    msg = _error(FLAT.replace("      slo: {ttft_ms: 500}", "      slo: {ttft_ms: -1}"))
    assert "suites/x.yaml:12: performance.scenarios.0.slo.ttft_ms: " in msg
    msg = _error(FLAT.replace("      temperature: 0.5\n", "      temperature: null\n"))
    assert "suites/x.yaml:10: performance.scenarios.0.temperature: " in msg  # a suite states it
    # A flat scenario that names no load at all: each missing field named, as before sections.
    msg = _error("name: t\nperformance:\n  scenarios:\n    - {name: a, concurrency: 1}\n")
    for field in ("input_tokens", "output_tokens", "num_requests"):
        assert f"suites/x.yaml:4: performance.scenarios.0.{field}: Field required" in msg


def test_a_field_set_flat_and_in_its_section_is_refused() -> None:
    text = NESTED.replace("    - name: chat\n", "    - name: chat\n      num_requests: 9\n")
    msg = _error(text)
    assert "suites/x.yaml:5: performance.scenarios.0: " in msg
    assert "num_requests: set both on the scenario and in its `load` section" in msg


def test_a_record_load_may_say_what_a_suite_may_not() -> None:
    """Imported runs and old records hold loads the harness did not send: zero counts, unknown
    sampling; the suite's section refuses them."""
    unknown = LoadShape(
        input_tokens=0, output_tokens=0, num_requests=0, temperature=None, request_timeout_s=None
    )
    assert unknown.temperature is None
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        LoadSection(input_tokens=0, output_tokens=4, num_requests=1, concurrency=1)
    with pytest.raises(ValidationError, match="valid number"):
        LoadSection(input_tokens=4, output_tokens=4, num_requests=1, concurrency=1, temperature=None)
