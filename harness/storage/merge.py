"""Folding run folders into one results store: `harness merge DIR...`, and the Ray driver's writes.

A run folder (record.json plus its Parquet tables, samples, engine log and telemetry) is copied
into ``<results>/runs/<run_id>/`` through a temporary folder in ``<results>/.incoming/`` and one
rename, so a reader never sees half a run; the store's run index (:mod:`harness.storage.index`)
then gets the run's entry. A run id that is already in the store is never overwritten: an
identical record is noted as already there; a different one is reported as a conflict and left
alone (run ids carry a random suffix, so a conflict means a copy that was changed by hand).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.record.run_record import RunRecord
from harness.safety.names import UnsafePathError, child, path_component
from harness.storage.index import note_run
from harness.storage.store import RECORD_FILE, read_record, runs_dir

Outcome = Literal["added", "identical", "conflict", "invalid"]


@dataclass(frozen=True)
class MergeItem:
    source: Path
    run_id: str | None
    outcome: Outcome
    detail: str = ""


@dataclass
class MergeReport:
    items: list[MergeItem] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    @property
    def ok(self) -> bool:
        """No conflict and no invalid record (both are reported and left where they are)."""
        return self.count("conflict") == 0 and self.count("invalid") == 0

    def summary(self) -> str:
        return (
            f"{self.count('added')} run(s) added, {self.count('identical')} already present (identical), "
            f"{self.count('conflict')} conflict(s) (kept the existing record), "
            f"{self.count('invalid')} invalid (skipped)"
        )


def run_folders(source: Path) -> Iterator[Path]:
    """Run folders under `source`: a results folder (with runs/), a runs/ folder, or one run folder."""
    source = Path(source)
    if (source / RECORD_FILE).is_file():
        yield source
        return
    base = runs_dir(source) if runs_dir(source).is_dir() else source
    if not base.is_dir():
        raise FileNotFoundError(f"{source}: no such results folder")
    for d in sorted(base.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / RECORD_FILE).is_file():
            yield d


def _same_record(a: Path, b: Path) -> bool:
    try:
        return (a / RECORD_FILE).read_bytes() == (b / RECORD_FILE).read_bytes() or read_record(
            a
        ) == read_record(b)
    except ValueError:
        return False


def add_run_folder(run_dir: Path, results: Path, record: RunRecord | None = None) -> MergeItem:
    """Copy one run folder into the store atomically; never overwrites a run id already there."""
    run_dir = Path(run_dir)
    try:
        record = record or read_record(run_dir)
    except ValueError as exc:
        return MergeItem(run_dir, None, "invalid", str(exc))
    base = runs_dir(results)
    base.mkdir(parents=True, exist_ok=True)
    try:  # a run id is data from another machine: one safe folder name, inside runs/
        target = child(base, record.run_id)
    except UnsafePathError as exc:
        return MergeItem(run_dir, record.run_id, "invalid", str(exc))
    if target.resolve() == run_dir.resolve():
        return MergeItem(run_dir, record.run_id, "identical", "already in this store")
    if target.exists():
        return _existing(run_dir, target, record.run_id)
    # Staged outside runs/ (readers glob runs/*/record.json), on the same filesystem for the rename.
    staging = Path(results) / ".incoming"
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{path_component(record.run_id, 60)}.", dir=staging))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; run folders are shared artefacts
        shutil.copytree(run_dir, tmp, dirs_exist_ok=True, symlinks=True)
        _fsync_tree(tmp)
        try:
            os.rename(tmp, target)  # fails, rather than replaces, if the target appeared meanwhile
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return _existing(run_dir, target, record.run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    note_run(target, record)  # the run index of the store, under its lock (best effort)
    return MergeItem(run_dir, record.run_id, "added")


def _existing(run_dir: Path, target: Path, run_id: str) -> MergeItem:
    if _same_record(run_dir, target):
        return MergeItem(run_dir, run_id, "identical")
    return MergeItem(
        run_dir, run_id, "conflict", f"{target} holds a different record with run id {run_id}; left as it is"
    )


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                continue
            with p.open("rb") as fh:
                os.fsync(fh.fileno())


def merge_results(sources: Iterable[Path], results: Path) -> MergeReport:
    """Fold every run folder under `sources` into the store at `results`."""
    report = MergeReport()
    for source in sources:
        for run_dir in run_folders(Path(source)):
            try:
                report.items.append(add_run_folder(run_dir, results))
            except OSError as exc:  # one unreadable or uncopyable folder does not stop the merge
                report.items.append(MergeItem(run_dir, None, "invalid", f"{run_dir}: {exc}"))
    return report
