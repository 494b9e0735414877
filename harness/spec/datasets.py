"""Workload files checked when a suite is loaded: before `plan` prints and before any engine starts.

A scenario's ``prompts.path`` (a JSONL or JSON-array dataset) and ``trace.path`` (Mooncake
JSONL or BurstGPT CSV) are opened, read as UTF-8 and parsed row by row, so a missing file, a
byte that is not UTF-8 or a line that is not JSON fails ``harness plan`` and ``harness run``
with ``file:line`` at once, not after a minute of engine start-up. Files over
:data:`FULL_CHECK_BYTES` are checked on their first that many bytes only (said in the docs: a
600 MB ShareGPT array would otherwise be parsed at every load); the run still reads all of it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

FULL_CHECK_BYTES = 64 * 1024 * 1024


def _read_head(path: Path) -> tuple[bytes, bool]:
    """Up to FULL_CHECK_BYTES of a regular file, and whether that is the whole file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(FULL_CHECK_BYTES)
        return data, st.st_size <= FULL_CHECK_BYTES
    finally:
        os.close(fd)


def check_file(path: Path, kind: str) -> str | None:
    """The first problem of one workload file (``path:line: ...``), None when it reads."""
    try:
        data, whole = _read_head(path)
    except OSError as exc:
        return f"{path}: cannot read the {kind} file: {getattr(exc, 'strerror', None) or exc}"
    if not whole:  # cut at the last full line: the rest is the run's to read
        data = data[: data.rfind(b"\n") + 1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = data[: exc.start].count(b"\n") + 1
        return f"{path}:{at}: the {kind} file is not UTF-8 (byte 0x{data[exc.start]:02x})"
    if path.suffix == ".csv":
        return None if text.strip() else f"{path}: the {kind} file is empty"
    if whole and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            return f"{path}:{getattr(exc, 'lineno', 1)}: the {kind} file is not a JSON array: {exc}"
        return None if isinstance(rows, list) else f"{path}: the {kind} file is not a JSON array"
    if text.lstrip().startswith("["):
        return None  # a big JSON array: checked when it is read in full, by the run
    n_rows = 0
    for n, row_text in enumerate(text.splitlines(), 1):
        if not row_text.strip():
            continue
        try:
            row = json.loads(row_text)
        except ValueError as exc:
            return f"{path}:{n}: not a JSON object ({kind} file): {exc}"
        if not isinstance(row, dict):
            return f"{path}:{n}: not a JSON object ({kind} file)"
        n_rows += 1
    return None if n_rows else f"{path}: the {kind} file has no rows"


def check_workload_files(spec: Any, base_dir: Path | None) -> list[str]:
    """Problems of every dataset and trace file a suite's scenarios name (empty: all read)."""
    from harness.spec.workload import WorkloadError, resolve_path

    problems: list[str] = []
    seen: set[Path] = set()
    for i, s in enumerate(spec.performance.scenarios):
        files = []
        work = s.workload
        if work.prompts is not None and work.prompts.kind == "dataset" and work.prompts.path:
            files.append((work.prompts.path, "dataset"))
        if work.trace is not None:
            files.append((work.trace.path, "trace"))
        for name, kind in files:
            try:
                path = resolve_path(name, base_dir)
            except WorkloadError as exc:
                problems.append(f"performance.scenarios.{i} ({s.name}): {exc}")
                continue
            if path in seen:
                continue
            seen.add(path)
            problem = check_file(path, kind)
            if problem:
                problems.append(f"performance.scenarios.{i} ({s.name}): {problem}")
    return problems
