"""The runs of a results folder, and what changed in them since the last build.

The list of runs and their records' signatures come from the store's run index
(:mod:`harness.storage.index`); a run whose record's size and modification time match the
manifest is not read at all. The per-request tables a run page reads are signed here, with
plain strings and ``os.stat``: at 10,000 runs, pathlib's parsing costs more than the rest.
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
from harness.storage.index import run_index
from harness.storage.store import read_record, read_regular

_GPU_SAMPLES = GPU_SAMPLES.as_posix()


@dataclass
class Scan:
    """The runs of a results folder against the last build's manifest."""

    kept: dict[str, RunEntry] = field(default_factory=dict)  # unchanged records (stat refreshed)
    parsed: dict[str, tuple[RunView, str]] = field(default_factory=dict)  # new or changed: (view, SHA-256)
    stat: dict[str, list[int]] = field(default_factory=dict)  # of every record file found
    problems: list[str] = field(default_factory=list)  # one line per file that cannot be read
    touched: bool = False  # a kept record's stat moved (the manifest needs saving)


def scan(results: Path, old: Manifest) -> Scan:
    """Compare every run of the results folder's run index (:mod:`harness.storage.index`) with
    ``old``; make views of the new and changed ones only.

    The index gives the list of runs and each record's signature (size, modification time,
    content hash), checked against the folders; a record the index read while checking is
    not read again."""
    s = Scan()
    idx = run_index(results)
    s.problems.extend(idx.problems)
    base = str(results)
    for e in sorted(idx.entries, key=lambda e: e.folder):  # the order a full build names pages in
        key = e.record_key
        s.stat[key] = sig = e.signature
        entry = old.runs.get(key)
        if entry is not None and entry.stat == sig:
            s.kept[key] = entry
            continue
        if entry is not None and entry.sha256 == e.sha256:  # touched, not changed
            entry.stat = sig
            s.kept[key] = entry
            s.touched = True
            continue
        try:
            record = idx.record(e)
        except ValueError as exc:  # changed since the index was checked
            s.problems.append(str(exc))
            continue
        s.parsed[key] = (run_view(record, os.path.join(base, e.path)), e.sha256)
    return s


def read_one(key: str, name: str, entry: RunEntry | None, s: Scan) -> None:
    """Read one record file into ``s``: kept when its bytes are those of ``entry``, else parsed."""
    path = Path(name)
    try:
        data = read_regular(path)
    except OSError as exc:
        s.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
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
    """``[path, signature]`` of every per-request table the run page reads (the path relative
    to the run folder, None where the record's path would leave it), then the GPU samples'
    signature. A signature is ``[size, mtime_ns, sha256 of the bytes]``, None: no such file."""
    run_dir = view.folder
    if run_dir is None:
        return []
    sigs: list[Any] = []
    for s in view.scenarios.values():
        if s.requests_path:
            rel = safe_relative(s.requests_path)
            sigs.append([rel, content_signature(os.path.join(run_dir, rel)) if rel else None])
    sigs.append(content_signature(os.path.join(run_dir, GPU_SAMPLES)))
    return sigs


def content_signature(path: str) -> list[Any] | None:
    """``[size, mtime_ns, sha256]`` of a file (the hash's first 128 bits, in hex), None if there is none."""
    sig: list[Any] | None = file_signature(path)
    if sig is None:
        return None
    try:
        with open(path, "rb") as fh:
            sig.append(hashlib.file_digest(fh, "sha256").hexdigest()[:32])
    except OSError:
        return None
    return sig


def restat(folder: str, tables: list[Any]) -> tuple[list[Any], bool]:
    """:func:`table_signatures` again, from the paths and signatures an earlier build saw, and
    whether a table changed. A table whose size and time moved but whose bytes did not (a fresh
    checkout of a results folder) is unchanged: its new signature is kept, its page is not
    rebuilt.

    Run 30,000 times a build at 10,000 runs, so it is lean: plain string concatenation, and a
    file that was there is stat'ed at once, one that was not is looked for with ``os.access``
    (a failed ``os.stat`` costs Python ten times a successful one)."""
    if not tables:
        return tables, False
    folder += os.sep
    out: list[Any] = []
    changed = False
    for rel, old in tables[:-1]:
        sig, moved = _again(folder + rel, old) if rel else (None, False)
        out.append([rel, sig])
        changed = changed or moved
    sig, moved = _again(folder + _GPU_SAMPLES, tables[-1])
    out.append(sig)
    if not (changed or moved) and out == tables:
        return tables, False  # the same list: nothing to save
    return out, changed or moved


def _again(path: str, old: list[Any] | None) -> tuple[list[Any] | None, bool]:
    """A table's signature now, and whether its content changed since ``old``."""
    now = file_signature(path, old is not None)
    if now is None or old is None:
        return (content_signature(path) if now is not None else None), now != old
    if now == old[:2]:
        return old, False
    sig = content_signature(path)
    return sig, sig is None or sig[2] != old[2]


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
