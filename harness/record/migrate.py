"""Reading stored run records of any schema version: version check, migrations, tolerant parsing.

A record is written strictly (every model forbids unknown fields) and read tolerantly:
:func:`parse_record` ignores fields this harness does not know, refuses a record of a newer
schema version with a message that says what to do, and brings an older one up to date
through :data:`MIGRATIONS`, one version step at a time, on plain JSON data. The file on disk
is never rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.record.analytics import RecordAnalytics
from harness.record.energy import migrate_v1_scenario_energy, migrate_v2_scenario_energy
from harness.record.load import LoadShape
from harness.record.run_record import SCHEMA_VERSION, RunRecord, ScenarioSettings

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class RecordVersionError(ValueError):
    """A record this harness cannot read: a newer schema version, or no usable version at all."""


class _Version(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = 1  # records have always carried it; a missing one is the oldest


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema v1 -> v2.

    * ``accuracy`` (task -> result, the result's name in ``task``) becomes ``tasks``, a list
      with ``name`` inside each entry; ``performance`` (name -> result) becomes ``scenarios``.
    * ``analytics`` was an untyped dict: kept when it reads as today's typed section, else
      dropped (it was written by code that no longer exists and can be recomputed).
    * a scenario's ``energy`` figures covered its whole window, warm-up included; today's flat
      figures are the measured interval's, so v1's move to ``gross``
      (:func:`~harness.record.energy.migrate_v1_scenario_energy`).
    """
    out = dict(data)
    tasks = []
    for key, result in _v1_map(out.pop("accuracy", None), "accuracy").items():
        entry = {k: v for k, v in result.items() if k != "task"}
        tasks.append({"name": key, **entry})
    scenarios = [
        {"name": key, **result}
        for key, result in _v1_map(out.pop("performance", None), "performance").items()
    ]
    for entry in scenarios:
        if isinstance(entry.get("energy"), dict):
            entry["energy"] = migrate_v1_scenario_energy(entry["energy"])
    out["tasks"] = tasks
    out["scenarios"] = scenarios
    analytics = out.get("analytics")
    if analytics is not None:
        try:
            RecordAnalytics.model_validate(analytics, extra="ignore")
        except ValidationError:
            out["analytics"] = None
    out["schema_version"] = 2
    return out


def _v1_map(value: Any, field: str) -> dict[str, dict[str, Any]]:
    """A v1 section (name -> result object), checked: a record of the wrong shape is refused with
    the field named, never a TypeError from deep inside the migration."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordVersionError(f"{field}: a v1 record keeps an object here, not {type(value).__name__}")
    for key, result in value.items():
        if not isinstance(result, dict):
            raise RecordVersionError(f"{field}.{key}: a v1 result is an object, not {type(result).__name__}")
    return value


IMPORT_CPU_REASON = "the file does not say how much CPU its load generator used"


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Schema v2 -> v3: each energy value stored once per scenario; no placeholder CPU figure.

    * a scenario's ``energy`` keeps one value per window (``measured``, ``gross``,
      ``steady_state``); v2's flat copies of the headline and of the steady state go
      (:func:`~harness.record.energy.migrate_v2_scenario_energy`);
    * ``resources.phases`` no longer repeats a scenario's window (``scenario:<name>``) where the
      scenario keeps the same one as its own ``resources``; other windows (a pooled point's
      repeats) stay;
    * an imported run's ``client_cpu_s`` was 0.0 standing in for "not stated": it becomes null,
      with the reason in ``source.unmeasured``.
    """
    out = dict(data)
    scenarios = []
    for entry in out.get("scenarios") or []:
        entry = dict(entry)
        if isinstance(entry.get("energy"), dict):
            entry["energy"] = migrate_v2_scenario_energy(entry["energy"])
        scenarios.append(entry)
    out["scenarios"] = scenarios
    resources = out.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("phases"), dict):
        kept = {f"scenario:{s.get('name')}": s.get("resources") for s in scenarios}
        phases = {k: v for k, v in resources["phases"].items() if not (k in kept and kept[k] == v)}
        out["resources"] = {**resources, "phases": phases}
    source = out.get("source")
    if isinstance(source, dict) and "scenarios.client_cpu_s" in (source.get("unmeasured") or {}):
        for entry in scenarios:
            if entry.get("client_cpu_s") == 0.0:
                entry["client_cpu_s"] = None
        unmeasured = {**source["unmeasured"], "scenarios.client_cpu_s": IMPORT_CPU_REASON}
        out["source"] = {**source, "unmeasured": unmeasured}
    out["schema_version"] = 3
    return out


def _v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    """Schema v3 -> v4: a scenario's ``settings`` keeps its load under ``settings.load``.

    The load fields (those :class:`~harness.record.load.LoadShape` declares) move into
    ``load``; the seeds and the peer's command stay beside it. A null or absent
    ``temperature`` or ``request_timeout_s`` (not stated: written before they were, or imported
    from a file that does not say) stays null.
    """
    out = dict(data)
    moved = []
    for entry in out.get("scenarios") or []:
        settings = entry.get("settings") if isinstance(entry, dict) else None
        if not isinstance(settings, dict) or "load" in settings:
            moved.append(entry)
            continue
        load = {k: v for k, v in settings.items() if k in LoadShape.model_fields}
        load.setdefault("temperature", None)
        load.setdefault("request_timeout_s", None)
        rest = {k: v for k, v in settings.items() if k in ScenarioSettings.model_fields and k != "load"}
        moved.append({**entry, "settings": {**rest, "load": load}})
    out["scenarios"] = moved
    out["schema_version"] = 4
    return out


MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}
"""Version N -> the function that turns a version-N record (plain JSON data) into version N+1."""


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A record's JSON data brought up to :data:`SCHEMA_VERSION` (a new dict; the input is untouched).

    Raises RecordVersionError for a newer version, or an older one no migration covers.
    """
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordVersionError(f"schema_version {version!r} is not a positive integer")
    if version > SCHEMA_VERSION:
        raise RecordVersionError(
            f"record schema v{version} is newer than this harness reads (v{SCHEMA_VERSION}): "
            "upgrade harness (`pip install -U harness`) to read it"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise RecordVersionError(f"no migration from record schema v{version} to v{version + 1}")
        data = step(data)
        version += 1
    return data


def parse_record(raw: str | bytes) -> RunRecord:
    """A run record from its JSON text, of any schema version up to this harness's.

    Unknown fields are ignored at every level. Raises RecordVersionError (a ValueError) for a
    version this harness cannot read, pydantic's ValidationError for content that is not a
    record, and ValueError for text that is not JSON.
    """
    try:  # the common case, a record of this version: straight from the bytes
        return RunRecord.model_validate_json(raw, extra="ignore")
    except ValidationError as exc:
        failure = exc
    try:
        version = _Version.model_validate_json(raw).schema_version
    except ValidationError as exc:
        raise RecordVersionError(f"not a run record: {exc.errors()[0]['msg']}") from exc
    if version == SCHEMA_VERSION:
        raise failure
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise RecordVersionError("not a run record: the JSON is not an object")
    try:
        migrated = migrate(data)
    except RecordVersionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a migration meets data of any shape; never crash a reader
        raise RecordVersionError(
            f"cannot migrate from schema v{version}: {type(exc).__name__}: {exc}"[:300]
        ) from exc
    return RunRecord.model_validate(migrated, extra="ignore")
