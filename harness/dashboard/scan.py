"""Finding the runs of a results folder, and what changed in them since the last build.

Plain strings and ``os.scandir``/``os.stat`` throughout: at 10,000 runs, pathlib's parsing
and ``glob``'s sorting of Path objects cost more than the rest of a scan. A run whose record's
size and modification time match the manifest is not read at all.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.dashboard.data import RunView, run_view
from harness.dashboard.manifest import Manifest, RunEntry, file_signature
from harness.dashboard.tables import (
    GPU_COLUMNS,
    GPU_SAMPLES,
    REQUEST_COLUMNS,
    TableError,
    inside,
    read_columns,
    safe_relative,
)
from harness.store import RECORD_FILE, read_record

_GPU_SAMPLES = GPU_SAMPLES.as_posix()


def record_files(results: Path | str) -> list[tuple[str, str]]:
    """(key, path) of every ``runs/<run>/record.json`` under ``results``, sorted; the key is the
    path relative to ``results``."""
    base = os.path.join(results, "runs")
    try:
        names = sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
    return [(f"runs/{n}/{RECORD_FILE}", os.path.join(base, n, RECORD_FILE)) for n in names]


@dataclass
class Scan:
    """The runs of a results folder against the last build's manifest."""

    kept: dict[str, RunEntry] = field(default_factory=dict)  # unchanged records (stat refreshed)
    parsed: dict[str, tuple[RunView, str]] = field(default_factory=dict)  # new or changed: (view, SHA-256)
    stat: dict[str, list[int]] = field(default_factory=dict)  # of every record file found
    problems: list[str] = field(default_factory=list)  # one line per file that cannot be read
    touched: bool = False  # a kept record's stat moved (the manifest needs saving)


def scan(results: Path, old: Manifest) -> Scan:
    """Compare every record file under ``results`` with ``old``; parse only the changed ones."""
    s = Scan()
    for key, name in record_files(results):
        try:  # a record is there in every run folder but one being written: no os.access first
            st = os.stat(name)
        except OSError:  # a run folder without a record (yet): not a run
            continue
        s.stat[key] = sig = [st.st_size, st.st_mtime_ns]
        entry = old.runs.get(key)
        if entry is not None and entry.stat == sig:
            s.kept[key] = entry
            continue
        read_one(key, name, entry, s)
    return s


def read_one(key: str, name: str, entry: RunEntry | None, s: Scan) -> None:
    """Read one record file into ``s``: kept when its bytes are those of ``entry``, else parsed."""
    path = Path(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        s.problems.append(f"{path}: cannot read: {exc.strerror}")
        return
    sha = hashlib.sha256(data).hexdigest()[:32]
    if entry is not None and entry.sha256 == sha:  # touched, not changed
        entry.stat = s.stat[key]
        s.kept[key] = entry
        s.touched = True
        return
    try:
        record = read_record(path)  # the store validates (and migrates) records
    except ValueError as exc:
        s.problems.append(str(exc))
        return
    s.parsed[key] = (run_view(record, os.path.dirname(name)), sha)


def table_signatures(view: RunView) -> list[Any]:
    """``[path, [size, mtime]]`` of every per-request table the run page reads (the path
    relative to the run folder, None where the record's path would leave it), then the GPU
    samples' signature (None: no such file)."""
    run_dir = view.folder
    if run_dir is None:
        return []
    sigs: list[Any] = []
    for s in view.scenarios.values():
        if s.requests_path:
            rel = safe_relative(s.requests_path)
            sigs.append([rel, file_signature(os.path.join(run_dir, rel) if rel else None)])
    sigs.append(file_signature(os.path.join(run_dir, GPU_SAMPLES)))
    return sigs


def restat(folder: str, tables: list[Any]) -> list[Any]:
    """:func:`table_signatures` again, from the table paths (and signatures) an earlier build saw.

    Run 30,000 times a build at 10,000 runs, so it is lean: plain string concatenation, and a
    file that was there is stat'ed at once, one that was not is looked for with ``os.access``
    (a failed ``os.stat`` costs Python ten times a successful one)."""
    if not tables:
        return tables
    folder += os.sep
    out: list[Any] = [
        [rel, file_signature(folder + rel, sig is not None) if rel else None] for rel, sig in tables[:-1]
    ]
    out.append(file_signature(folder + _GPU_SAMPLES, tables[-1] is not None))
    return out


def run_tables(
    view: RunView,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]] | None, list[str], list[str]]:
    """(per-request tables by scenario, as float arrays; GPU samples; notes for the page; warnings)
    of one run."""
    requests: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    warnings: list[str] = []
    gpu = None
    if view.run_dir is None:
        return requests, gpu, notes, warnings
    for name, s in view.scenarios.items():
        if not s.requests_path:
            continue
        path = inside(view.run_dir, s.requests_path)
        try:
            cols = read_columns(path, REQUEST_COLUMNS, numeric=True) if path is not None else None
        except TableError as exc:
            warnings.append(str(exc))
            cols = None
        if cols is None:
            notes.append(f"No per-request table for {name} ({s.requests_path}).")
        else:
            requests[name] = cols
    try:
        gpu = read_columns(view.run_dir / GPU_SAMPLES, GPU_COLUMNS)
    except TableError as exc:
        warnings.append(str(exc))
    return requests, gpu, notes, warnings
