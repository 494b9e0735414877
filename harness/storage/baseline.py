"""Baselines: the run a candidate is gated against, one per (model, suite, hardware).

A baseline is a copy of a run record under ``results/baselines/``, named
``<model>__<suite>__<hardware>.json``. Unlike ``results/runs/`` that folder is meant to be
committed, so a CI job gates against the figures a reviewer accepted. The file is a plain
:class:`~harness.record.run_record.RunRecord` (``read_record`` reads it), so any run folder or record
file can also be passed where a baseline is expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.record.hardware import file_slug as _legacy_slug
from harness.record.hardware import hardware_label, hardware_slug
from harness.record.run_record import RunRecord
from harness.safety.names import inside, path_component
from harness.storage.store import atomic_write_text, read_record

BASELINES_DIR = "baselines"


class BaselineError(ValueError):
    """A baseline that cannot be set or found; the message says which and what to do."""


def model_key(record: RunRecord, slug: Callable[[str], str] = path_component) -> str:
    """The model part of a baseline name: the preset, or `local-<dir>` for checkpoint folders, and
    ``@variant`` for a variant's run. Each part goes through the one file-name rule
    (:func:`harness.safety.names.path_component`): ``my-model`` and ``My_Model`` stay apart."""
    if record.model.preset == "local":
        key = "local-" + slug(Path(record.model.source).name)
    else:
        key = slug(record.model.preset)
    # Each variant of a model has its own baseline: a technique is never gated against another.
    return f"{key}@{slug(record.variant.name)}" if record.variant is not None else key


def baseline_path(results: Path, record: RunRecord) -> Path:
    """Where the baseline for this record's (model, suite, hardware) lives (checked to stay
    inside ``results/baselines/``)."""
    folder = Path(results) / BASELINES_DIR
    name = f"{model_key(record)}__{path_component(record.suite.name)}__{hardware_slug(record.environment)}"
    path = folder / (path_component(name, max_chars=200) + ".json")
    inside(folder, path)
    return path


def _legacy_path(results: Path, record: RunRecord) -> Path:
    """Where baselines were named before the one rule (lower-cased slugs that could collide)."""
    name = (
        f"{model_key(record, _legacy_slug)}__{_legacy_slug(record.suite.name)}__"
        f"{hardware_slug(record.environment)}.json"
    )
    return Path(results) / BASELINES_DIR / name


def _same_key(a: RunRecord, b: RunRecord) -> bool:
    """Same model (preset or local source), variant and suite, as written: a legacy file is used
    only for the run it was really set from, never for a name that merely slugs alike."""
    return (
        a.model.preset == b.model.preset
        and (a.model.preset != "local" or Path(a.model.source).name == Path(b.model.source).name)
        and (a.variant.name if a.variant else None) == (b.variant.name if b.variant else None)
        and a.suite.name == b.suite.name
    )


def set_baseline(results: Path, record: RunRecord) -> tuple[Path, RunRecord | None]:
    """Promote `record` to the baseline of its (model, suite, hardware).

    Returns the baseline file and the record it replaced (None if there was none).
    Raises BaselineError for a failed run: its figures are not a standard to hold others to.
    """
    if record.status != "ok":
        raise BaselineError(f"run {record.run_id} failed ({record.error}); a failed run cannot be a baseline")
    path = baseline_path(results, record)
    previous: RunRecord | None = None
    if path.is_file():
        try:
            previous = read_record(path)
        except ValueError:
            previous = None  # an unreadable old baseline is simply replaced
    if previous is not None and not _same_key(previous, record):
        # a legacy file of another name that slugged alike: moved to its own name, not replaced
        own = baseline_path(results, previous)
        if own != path and not own.exists():
            atomic_write_text(own, previous.model_dump_json(indent=2) + "\n")
        previous = None
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
    return path, previous


@dataclass(frozen=True)
class BaselineEntry:
    path: Path
    record: RunRecord | None
    problem: str | None = None


def list_baselines(results: Path) -> list[BaselineEntry]:
    """Every baseline file under `results/baselines/`, by name; unreadable ones carry the problem."""
    folder = Path(results) / BASELINES_DIR
    entries = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            entries.append(BaselineEntry(path, read_record(path)))
        except ValueError as exc:
            entries.append(BaselineEntry(path, None, str(exc)))
    return entries


def find_baseline(results: Path, candidate: RunRecord) -> RunRecord:
    """The baseline matching the candidate's (model, suite, hardware).

    Raises BaselineError when there is none, naming the expected file and any baselines of the
    same model and suite on other hardware (the usual cause on a new CI runner).
    """
    path = baseline_path(results, candidate)
    if path.is_file():
        found = read_record(path)
        if _same_key(found, candidate):
            return found
        # else a legacy file of a name that slugged alike (My_Model's `my-model__...`): not ours
    legacy = _legacy_path(results, candidate)
    if legacy.is_file():
        old = read_record(legacy)
        if _same_key(old, candidate):
            return old
    prefix = f"{model_key(candidate)}__{path_component(candidate.suite.name)}__"
    others = [e.path.name for e in list_baselines(results) if e.path.name.startswith(prefix)]
    hint = (
        f"; baselines of this model and suite exist for other hardware: {', '.join(others)}" if others else ""
    )
    raise BaselineError(
        f"no baseline at {path} for model {candidate.model.preset!r}, suite {candidate.suite.name!r}, "
        f"hardware {hardware_label(candidate.environment)}{hint}. "
        f"Promote a run with `harness baseline set RUN` or pass --baseline PATH."
    )
