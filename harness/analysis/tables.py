"""Results as data: run records as tidy tables (pandas), exported to Parquet or CSV.

:func:`load_runs` gives one row per run × scenario point and :func:`load_tasks` one row per
run × task, each row carrying the run's identity (model, variant, suite, hardware, status)
beside every figure of its scenario or task. Nested parts are flattened the way
``pandas.json_normalize`` does it (``energy.measured.energy_per_output_token_j``,
``resources.gpu.peak_power_w``), except the scenario's settings (``concurrency``,
``input_tokens`` ...), which are the point's coordinates and stand at the top level. Lists
(``errors``, per-GPU ``devices``) are JSON text.

Records that cannot be read are skipped with an :class:`UnreadableRecordWarning` each.
pandas is imported when a table is built, not with :mod:`harness`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from harness.record.hardware import hardware_label
from harness.record.run_record import RunRecord, ScenarioResult, TaskResult
from harness.storage.index import model_label
from harness.storage.store import load_records

if TYPE_CHECKING:
    import pandas as pd

ExportFormat = Literal["parquet", "csv"]

RUN_COLUMNS = (
    "run_id",
    "model",
    "variant",
    "suite",
    "hardware",
    "status",
    "error",
    "started_at",
    "finished_at",
    "run_duration_s",
    "model_family",
    "model_source",
    "model_revision",
    "engine_kind",
    "harness_version",
    "git_sha",
    "schema_version",
    "imported_from",
)


class UnreadableRecordWarning(UserWarning):
    """A record file under the results folder that could not be read (it is skipped)."""


def select_runs(
    results: str | Path = "results",
    *,
    model: str | None = None,
    suite: str | None = None,
    status: str | None = None,
) -> list[RunRecord]:
    """The records under ``results`` (oldest first) that match every filter given.

    ``model`` matches the preset name, the label of a local checkpoint or its source path.
    The runs are chosen from the run index (:mod:`harness.storage.index`) and only those are
    read; unreadable records are skipped with a warning.
    """
    loaded = load_records(Path(results), model=model, suite=suite, status=status)
    for problem in loaded.problems:
        warnings.warn(f"skipped {problem}", UnreadableRecordWarning, stacklevel=3)
    return loaded.records


def run_columns(record: RunRecord) -> dict[str, Any]:
    """The columns every row of a run shares: who, what, where, when."""
    env = record.environment
    return {
        "run_id": record.run_id,
        "model": model_label(record),
        "variant": record.variant.name if record.variant else None,  # null: the model as is
        "suite": record.suite.name,
        "hardware": hardware_label(env),
        "status": record.status,
        "error": record.error,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "run_duration_s": record.duration_s,
        "model_family": record.model.family,
        "model_source": record.model.source,
        "model_revision": record.model.revision,
        "engine_kind": record.engine.kind if record.engine else None,
        "harness_version": env.harness_version,
        "git_sha": env.git_sha,
        "schema_version": record.schema_version,
        "imported_from": record.source.tool if record.source else None,  # null: measured here
    }


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The record part a field holds (``X`` of ``X | None``), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, UnionType):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def flatten(model: type[BaseModel], data: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A record part's JSON data as flat columns, dot-joined like ``pandas.json_normalize``.

    The columns follow the model, not the data: a part that is null (no GPU, no energy) still
    gives each of its columns, empty, so every row and every export has the same columns.
    Free-form maps (lm-eval's ``metrics``) give one column per key; lists are JSON text.
    """
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        value = data.get(name) if data is not None else None
        column = f"{prefix}{name}"
        part = _submodel(field.annotation)
        if part is not None:
            out.update(flatten(part, value if isinstance(value, dict) else None, f"{column}."))
        elif isinstance(value, dict):
            out.update({f"{column}.{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            out[column] = json.dumps(value)
        else:
            out[column] = value
    return out


def scenario_rows(record: RunRecord) -> Iterator[dict[str, Any]]:
    """One row per scenario of ``record``; a run without scenarios (failed early, or accuracy
    only) gives one row with an empty ``scenario`` so that it is not lost from the table."""
    base = run_columns(record)
    if not record.scenarios:
        yield {**base, "scenario": None}
        return
    for s in record.scenarios:
        flat = flatten(ScenarioResult, s.model_dump(mode="json"))
        del flat["name"]
        # The settings (the load's fields among them) are the row's own columns: `concurrency`.
        settings = {
            k.removeprefix("settings.").removeprefix("load."): flat.pop(k)
            for k in [k for k in flat if k.startswith("settings.")]
        }
        yield {**base, "scenario": s.name, **settings, **flat}


def task_rows(record: RunRecord) -> Iterator[dict[str, Any]]:
    """One row per accuracy task of ``record`` (``load_point`` empty: idle), then one per task and
    load point evaluated under load (``load_point`` named, the paired figures as ``paired.*``)."""
    base = run_columns(record)
    for t in record.tasks:
        flat = flatten(TaskResult, t.model_dump(mode="json"))
        del flat["name"]
        yield {**base, "task": t.name, "load_point": None, **flat}
    from harness.record.underload import TaskUnderLoad

    for s in record.scenarios:
        if s.accuracy_under_load is None:
            continue
        for u in s.accuracy_under_load.tasks:
            flat = flatten(TaskUnderLoad, u.model_dump(mode="json"))
            del flat["task"]
            yield {
                **base,
                "task": u.task,
                "load_point": s.name,
                "concurrency": s.settings.load.concurrency,
                **flat,
            }


def _frame(rows: Iterable[dict[str, Any]], first: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=list(first))
    for col in ("started_at", "finished_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def load_runs(
    results: str | Path = "results",
    *,
    model: str | None = None,
    suite: str | None = None,
    status: str | None = None,
    definitions: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per run × scenario point, with the run's model, variant, suite, hardware and
    status beside every aggregate of the scenario (vLLM ``bench serve`` names, units in names).

    Runs without scenarios keep one row with ``scenario`` empty. Unreadable records are
    skipped with an :class:`UnreadableRecordWarning`. ``definitions`` (``vllm``, ``guidellm``,
    ``aiperf``) adds each point's headline figures recomputed from its request table under
    that tool's definitions, as ``<tool>.<figure>`` columns (:mod:`harness.interop.definitions`).
    """
    records = select_runs(results, model=model, suite=suite, status=status)
    rows: Iterable[dict[str, Any]] = (row for r in records for row in scenario_rows(r))
    if definitions:
        from harness.interop.definitions import with_definition_columns

        rows = with_definition_columns(list(rows), Path(results), definitions)
    return _frame(rows, (*RUN_COLUMNS, "scenario"))


def load_tasks(
    results: str | Path = "results",
    *,
    model: str | None = None,
    suite: str | None = None,
    status: str | None = None,
) -> pd.DataFrame:
    """One row per run × accuracy task: the headline ``value`` and ``stderr``, ``metric``,
    shots, samples and every metric lm-eval reported (``metrics.<name>,<filter>``); tasks
    evaluated under load add one row per load point (``load_point``, ``concurrency`` and the
    paired comparison with the idle run, ``paired.flips_worse`` ...).

    Unreadable records are skipped with an :class:`UnreadableRecordWarning`.
    """
    records = select_runs(results, model=model, suite=suite, status=status)
    return _frame((row for r in records for row in task_rows(r)), (*RUN_COLUMNS, "task"))


def export_tables(
    results: str | Path = "results", out: str | Path = "export", fmt: ExportFormat = "parquet"
) -> list[Path]:
    """Write ``runs.<fmt>`` (:func:`load_runs`) and ``tasks.<fmt>`` (:func:`load_tasks`) into ``out``.

    Returns the files written. Each is written to a temporary name and renamed, so a reader
    never sees half a table.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown export format {fmt!r}: use parquet or csv")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("runs", load_runs(results)), ("tasks", load_tasks(results))):
        path = out / f"{name}.{fmt}"
        tmp = out / f".{name}.{fmt}.tmp"
        try:
            if fmt == "parquet":
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written
