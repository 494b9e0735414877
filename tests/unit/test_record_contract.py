"""The record as a contract: strict writing, tolerant reading, migrations from v1 on, the committed schema."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness.cli import main
from harness.gate import suite_thresholds
from harness.record.analytics import RecordAnalytics
from harness.record.migrate import RecordVersionError, migrate, parse_record
from harness.record.run_record import SCHEMA_VERSION, RunRecord, record_json_schema_text
from harness.storage.store import load_records, read_record, write_record
from tests.factories import gate_record as make_record
from tests.factories import gate_scenario as scenario
from tests.factories import spec_dict

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
V1_FILES = sorted(DATA.glob("record_v1_*.json"))
V2_FILES = sorted(DATA.glob("record_v2_*.json"))
V3_FILES = sorted(DATA.glob("record_v3_*.json"))


def _kept(old: Any, new: Any) -> Any:
    """``new`` cut down to the keys ``old`` has, recursively: equal to ``old`` when nothing was lost
    (fields added since with their defaults do not count)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: _kept(v, new[k]) if k in new else "<missing>" for k, v in old.items()}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_kept(o, n) for o, n in zip(old, new, strict=True)]
    return new


def _v1(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _flat_settings(scenario: dict[str, Any]) -> dict[str, Any]:
    """A scenario's JSON data with `settings.load` folded into `settings`, as v1 to v3 kept it."""
    settings = dict(scenario["settings"])
    return {**scenario, "settings": {**settings.pop("load"), **settings}}


def test_the_v1_fixtures_are_v1() -> None:
    assert [p.name for p in V1_FILES] == ["record_v1_cpu.json", "record_v1_failed.json", "record_v1_gpu.json"]
    for p in V1_FILES:
        data = json.loads(p.read_text())
        assert data["schema_version"] == 1 and "performance" in data and "accuracy" in data


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_a_v1_record_reads_through_v2_and_v3_with_nothing_lost(path: Path, tmp_path: Path) -> None:
    v1 = json.loads(path.read_text())
    run_dir = tmp_path / "runs" / v1["run_id"]
    run_dir.mkdir(parents=True)
    shutil.copy(path, run_dir / "record.json")

    rec = read_record(run_dir)
    assert rec.schema_version == SCHEMA_VERSION == 4
    # Scenarios and tasks: same names in the same order, every figure kept.
    assert list(rec.performance) == list(v1["performance"]) == [s.name for s in rec.scenarios]
    assert list(rec.accuracy) == list(v1["accuracy"]) == [t.name for t in rec.tasks]
    for name, old in v1["performance"].items():
        new = _flat_settings(rec.performance[name].model_dump(mode="json"))
        old_energy = old.get("energy")
        if old_energy is not None:  # v1's energy covered the whole window: it lives on as `gross`
            gross = new["energy"]["gross"]
            assert gross["window"] == "scenario_window" and gross["energy_j"] == old_energy["energy_j"]
            for key in ("duration_s", "avg_power_w", "energy_per_output_token_j", "energy_above_idle_j"):
                assert gross[key] == pytest.approx(old_energy[key]), key
            assert "energy_j" not in new["energy"] and new["energy"]["measured"] is None  # v3: no flat copy
            # v3: the steady state is one energy value; every figure v1 stored is kept in it
            kept_steady = {
                k: v
                for k, v in (old_energy.get("steady_state") or {}).items()
                if k not in ("energy_low_confidence", "target_concurrency", "energy_source", "energy")
            }
            assert _kept(kept_steady, new["energy"]["steady_state"] or {}) == kept_steady
            old = {k: v for k, v in old.items() if k != "energy"}
        assert _kept(old, new) == old
    for name, old in v1["accuracy"].items():
        old_fields = {k: v for k, v in old.items() if k != "task"}
        assert _kept(old_fields, rec.accuracy[name].model_dump(mode="json")) == old_fields
        assert rec.accuracy[name].task == old["task"]
    # Analytics: typed now, the same data.
    if v1["analytics"] is None:
        assert rec.analytics is None
    else:
        assert isinstance(rec.analytics, RecordAnalytics)
        assert _kept(v1["analytics"], rec.analytics.model_dump(mode="json")) == v1["analytics"]
    # Everything else exactly as stored.
    dumped = rec.model_dump(mode="json")
    for key in set(v1) - {"schema_version", "performance", "accuracy", "analytics"}:
        assert _kept(v1[key], dumped[key]) == v1[key], key
    # The file itself is never rewritten.
    assert json.loads((run_dir / "record.json").read_text()) == v1


def test_a_v3_record_reads_with_its_load_under_settings_load(tmp_path: Path) -> None:
    v3 = _v1("record_v3_cpu.json")
    assert v3["schema_version"] == 3
    run_dir = tmp_path / "runs" / v3["run_id"]
    run_dir.mkdir(parents=True)
    shutil.copy(DATA / "record_v3_cpu.json", run_dir / "record.json")
    rec = read_record(run_dir)
    assert rec.schema_version == SCHEMA_VERSION == 4
    assert [s.name for s in rec.scenarios] == [s["name"] for s in v3["scenarios"]]
    for old, new in zip(v3["scenarios"], rec.scenarios, strict=True):
        # Every v3 figure kept, the load's under `settings.load` and the seeds beside it.
        assert _kept(old, _flat_settings(new.model_dump(mode="json"))) == old
    ramp = rec.performance["ramp-128-32"].settings
    assert (ramp.load.ramp_up_strategy, ramp.load.ramp_up_start_rps, ramp.load.ramp_up_end_rps) == (
        "linear",
        1,
        4,
    )
    assert (ramp.load.temperature, ramp.load.top_p, ramp.load.client_workers) == (0.7, 0.9, 1)
    assert (ramp.seed, ramp.scenario_seed) == (1234, 777)
    imported = rec.performance["imported"].settings.load
    assert imported.temperature is None and imported.request_timeout_s is None  # not stated stays so
    assert json.loads((run_dir / "record.json").read_text()) == v3  # never rewritten


def test_the_gpu_v1_record_keeps_its_typed_parts() -> None:
    rec = parse_record((DATA / "record_v1_gpu.json").read_bytes())
    assert rec.analytics is not None and rec.analytics.roofline is not None
    assert rec.analytics.gpu == "H100-SXM" and rec.analytics.architecture is not None
    assert rec.analytics.decode is not None and rec.analytics.decode.scenario == "c1-128-32"
    energy = rec.performance["rate4-128-32"].energy
    assert energy is not None and energy.steady_state is not None
    assert rec.resources is not None and rec.resources.memory is not None


def test_migration_leaves_its_input_alone_and_drops_unreadable_analytics() -> None:
    v1 = _v1("record_v1_cpu.json")
    v1["analytics"] = {"version": 0, "decode": "not a section"}
    before = copy.deepcopy(v1)
    v3 = migrate(v1)
    assert v1 == before
    assert v3["schema_version"] == SCHEMA_VERSION and v3["analytics"] is None
    assert [t["name"] for t in v3["tasks"]] == list(v1["accuracy"])
    assert all("task" not in t for t in v3["tasks"])


def test_unknown_fields_are_ignored_on_reading_at_every_level() -> None:
    rec = make_record(performance={"c1": scenario(energy_j=10.0)})
    data = json.loads(rec.model_dump_json())
    data["added_by_a_newer_harness"] = {"x": 1}
    data["scenarios"][0]["p999_ttft_ms"] = 1.0
    data["scenarios"][0]["settings"]["burstiness"] = 1.0
    data["scenarios"][0]["resources"]["gpu_clock_mhz"] = 1500
    data["tasks"][0]["acc_ci95"] = [0.7, 0.9]
    data["environment"]["numa_nodes"] = 2
    assert parse_record(json.dumps(data)) == rec


def test_v1_with_unknown_fields_reads_too() -> None:
    v1 = _v1("record_v1_gpu.json")
    v1["from_the_future"] = True
    first = next(iter(v1["performance"]))
    v1["performance"][first]["new_figure_ms"] = 3.0
    v1["analytics"]["roofline"]["new_ceiling"] = 1.0
    rec = parse_record(json.dumps(v1))
    assert rec.performance[first].settings.load.concurrency == 1


def test_writing_is_strict() -> None:
    rec = make_record()
    fields = {name: getattr(rec, name) for name in RunRecord.model_fields}
    with pytest.raises(ValidationError, match="surprise"):
        RunRecord(**fields, surprise=1)
    with pytest.raises(ValidationError, match="Extra inputs"):
        RunRecord.model_validate({**json.loads(rec.model_dump_json()), "surprise": 1})
    with pytest.raises(ValidationError, match="p999"):
        scenario(p999_ttft_ms=1.0)
    with pytest.raises(ValidationError, match="repeated: c1"):
        RunRecord(**{**fields, "scenarios": [scenario(), scenario()]})


def test_a_newer_schema_version_is_refused_with_the_remedy(tmp_path: Path) -> None:
    data = json.loads(make_record().model_dump_json())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(
        RecordVersionError, match=r"schema v5 is newer than this harness reads \(v4\).*upgrade"
    ):
        parse_record(json.dumps(data))
    run_dir = tmp_path / "runs" / "future"
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps(data))
    good = make_record("good")
    write_record(tmp_path / "runs" / good.run_id, good)
    loaded = load_records(tmp_path)
    assert [r.run_id for r in loaded.records] == ["good"]
    (problem,) = loaded.problems
    assert "future/record.json" in problem and "upgrade harness" in problem


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[1, 2]", "not a run record"),
        ("{not json", "not a run record"),
        ('{"schema_version": 0}', "positive"),
    ],
)
def test_not_a_record(text: str, match: str) -> None:
    with pytest.raises(RecordVersionError, match=match):
        parse_record(text)


def test_v4_round_trip(tmp_path: Path) -> None:
    rec = make_record()
    write_record(tmp_path, rec)
    stored = json.loads((tmp_path / "record.json").read_text())
    assert stored["schema_version"] == 4
    assert [s["name"] for s in stored["scenarios"]] == ["c1"] and "performance" not in stored
    assert read_record(tmp_path) == rec


def test_the_committed_schema_matches_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    committed = ROOT / "schema" / f"run_record.v{SCHEMA_VERSION}.json"
    assert committed.read_text() == record_json_schema_text(), (
        f"{committed} is stale: run `harness schema --out {committed.relative_to(ROOT)}` and decide "
        "whether the change needs a schema version bump (docs/results.md, 'Records as a contract')"
    )
    assert main(["schema", "--check", str(committed)]) == 0
    schema = json.loads(committed.read_text())
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert '"additionalProperties": false' not in json.dumps(schema)  # readers must tolerate added fields
    assert set(schema["properties"]) >= {"tasks", "scenarios", "analytics"}


def test_schema_check_fails_on_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text(record_json_schema_text().replace('"name"', '"label"', 1))
    assert main(["schema", "--check", str(stale)]) == 1
    assert "harness schema --out" in capsys.readouterr().err


def test_the_gate_reads_stored_gates_as_data() -> None:
    """A stored suite with sections and keys today's suite code does not know still gates."""
    spec = spec_dict()
    spec["sweeps"] = [{"concurrency": [1, 2, 4]}]  # a section a later harness might add
    spec["gates"][0] = {**spec["gates"][0], "window": "7d"}
    spec["performance"]["scenarios"][0]["burstiness"] = 0.5
    thresholds = suite_thresholds(make_record(spec=spec))
    assert thresholds is not None and [t.metric for t in thresholds][:2] == [
        "harness_capitals",
        "harness_arithmetic",
    ]
    assert suite_thresholds(make_record(spec={**spec, "gates": []})) is None


def test_records_validate_against_the_committed_schemas() -> None:
    """Outside Python: what harness writes is what the schema says, for v4 and for the v1 to v3 files."""
    import jsonschema

    v4 = json.loads((ROOT / "schema" / "run_record.v4.json").read_text())
    for rec in (
        make_record(performance={"c1": scenario(energy_j=10.0)}),
        parse_record((DATA / "record_v1_gpu.json").read_bytes()),
        parse_record((DATA / "record_v2_gpu.json").read_bytes()),
        parse_record((DATA / "record_v3_cpu.json").read_bytes()),
    ):
        jsonschema.validate(json.loads(rec.model_dump_json()), v4)
    v3 = json.loads((ROOT / "schema" / "run_record.v3.json").read_text())
    for path in V3_FILES:
        jsonschema.validate(json.loads(path.read_text()), v3)
    v1 = json.loads((ROOT / "schema" / "run_record.v1.json").read_text())
    for path in V1_FILES:
        jsonschema.validate(json.loads(path.read_text()), v1)
    v2 = json.loads((ROOT / "schema" / "run_record.v2.json").read_text())
    for path in V2_FILES:
        jsonschema.validate(json.loads(path.read_text()), v2)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads((DATA / "record_v1_cpu.json").read_text()), v3)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads((DATA / "record_v2_gpu.json").read_text()), v3)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads((DATA / "record_v3_cpu.json").read_text()), v4)


def test_the_optional_source_of_an_imported_run_is_additive() -> None:
    """`source` (set by `harness import`) is optional: records without it read as measured here."""
    from datetime import datetime, timezone

    import jsonschema

    from harness.record.run_record import ImportSource

    rec = make_record(performance={"c1": scenario()})
    assert rec.source is None
    src = ImportSource(
        tool="guidellm", version="0.8.1", sha256="0" * 64, imported_at=datetime.now(timezone.utc)
    )
    imported = rec.model_copy(update={"source": src})
    current = json.loads((ROOT / "schema" / f"run_record.v{SCHEMA_VERSION}.json").read_text())
    for r in (rec, imported):
        jsonschema.validate(json.loads(r.model_dump_json()), current)
    assert parse_record(imported.model_dump_json().encode()).source == src
    assert parse_record((DATA / "record_v1_cpu.json").read_bytes()).source is None
