"""Run storage: `results/runs/<run_id>/record.json` plus the files beside it, and the run index.

Writes are atomic (:mod:`harness.storage.files`), so a reader never sees half a record, and a
crash leaves the previous version intact. Every record written here also sets its run's entry
in ``<results>/index.json`` (:mod:`harness.storage.index`), from which the readers below list
the runs.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.record.run_record import RunRecord
from harness.safety.names import child, path_component
from harness.storage.files import (
    MAX_RECORD_BYTES,
    RECORD_FILE,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_record,
    read_regular,
)
from harness.storage.index import RunIndex, note_run, run_index

__all__ = [
    "MAX_RECORD_BYTES",
    "RECORD_FILE",
    "LoadResult",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "find_run",
    "iter_record_paths",
    "latest_record",
    "latest_run",
    "load_records",
    "read_record",
    "read_regular",
    "run_dir_of",
    "runs_dir",
    "write_record",
]


def runs_dir(results: Path) -> Path:
    return Path(results) / "runs"


def write_record(run_dir: Path, record: RunRecord) -> Path:
    """Write ``record.json`` in ``run_dir`` atomically, then set the run's entry in the index of
    the results folder holding it (best effort: a failure there loses nothing, the next reader
    finds the record from the folders). Raises OSError where the record cannot be written."""
    path = Path(run_dir) / RECORD_FILE
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
    note_run(Path(run_dir), record)
    return path


def run_dir_of(results: Path, run_id: str) -> Path:
    """The folder of run `run_id`: one safe folder name (:mod:`harness.safety.names`) inside runs/."""
    return child(runs_dir(results), run_id)


@dataclass(frozen=True)
class LoadResult:
    records: list[RunRecord]
    problems: list[str]  # one line per unreadable or invalid record file


def iter_record_paths(results: Path) -> Iterator[Path]:
    """The record file of every run folder under ``results`` (the run index's), sorted by
    folder; unreadable ones included, for callers that report them."""
    idx = run_index(results)
    folders = sorted([*(e.folder for e in idx.entries), *(e.folder for e in idx.bad)])
    base = runs_dir(results)
    for folder in folders:
        yield base / folder / RECORD_FILE


def load_records(
    results: Path, model: str | None = None, suite: str | None = None, status: str | None = None
) -> LoadResult:
    """The records under `results` (oldest first) that match every filter given, chosen from
    the run index before any record is read (``model``: the preset, a local checkpoint's label
    or its source path). Bad files are reported, not fatal."""
    idx = run_index(results)
    records, problems = idx.records(idx.select(model, suite, status))
    return LoadResult(records, [*idx.problems, *problems])


def find_run(results: Path, run: str) -> Path:
    """A run folder from a run id, an id prefix, a folder or a record path."""
    p = Path(run)
    try:
        if p.is_file():
            return p.parent
        if (p / RECORD_FILE).is_file():
            return p
    except OSError:  # a 5,000-character id is no path (ENAMETOOLONG): look it up as an id
        pass
    base = runs_dir(results)
    folder = path_component(run)  # the folder a run id is stored under (a long id: slug + hash)
    if folder != run and (base / folder / RECORD_FILE).is_file():
        return base / folder
    try:
        matches = sorted(base.glob(f"{glob.escape(run)}*")) if base.is_dir() and run else []
    except (OSError, ValueError):
        matches = []
    # a glob pattern from the command line (`../x`) must not reach outside runs/
    matches = [m for m in matches if m.parent == base and (m / RECORD_FILE).is_file()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FileNotFoundError(f"no run {run!r} under {base}")
    raise FileNotFoundError(f"run id {run!r} is ambiguous: {', '.join(m.name for m in matches[:5])}")


def latest_record(results: Path, model: str | None = None, suite: str | None = None) -> RunRecord | None:
    """The latest readable run of the model preset ``model`` and suite ``suite`` (either None:
    any), from the run index; None where there is none."""
    return latest_run(run_index(results), model, suite)


def latest_run(idx: RunIndex, model: str | None = None, suite: str | None = None) -> RunRecord | None:
    """:func:`latest_record` from an index already read (its problems are the caller's to show)."""
    for entry in reversed(idx.select(suite=suite)):
        if model is not None and entry.preset != model:
            continue
        try:
            return idx.record(entry)
        except ValueError:  # changed since the index was checked: the one before it
            continue
    return None
