"""When the results folder cannot take a run (disk full, read-only): where it goes instead.

Policy (docs/reliability.md):

* the run folder is made under ``results/runs/``; if that fails, under the **fallback folder**,
  ``$HARNESS_FALLBACK_DIR`` or else ``<system temp>/harness-fallback/``, as ``runs/<run_id>/``,
  so that ``harness merge <fallback>`` brings it home later;
* a record that cannot be written where it belongs is written to the fallback folder, with one
  line on stderr naming the cause and the remedy; if that fails too, the line says so and the
  record (still returned to the caller) is printed nowhere else;
* either way the run returns normally: the campaign's next cells still run (each tries the
  results folder again, which may have room by then);
* the handler's own failures (``error.txt`` on a full disk) never replace the run's error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

from harness.record.run_record import RunRecord
from harness.safety.names import child
from harness.storage.store import RECORD_FILE, write_record

_REMEDY = {
    errno.ENOSPC: "free space on that disk",
    errno.EDQUOT: "raise the disk quota or free space",
    errno.EROFS: "make the results folder writable (it is on a read-only file system) or pass --results",
    errno.EACCES: "make the results folder writable or pass --results",
}


def fallback_root() -> Path:
    """The stated fallback folder: ``$HARNESS_FALLBACK_DIR``, else ``<temp>/harness-fallback``."""
    return Path(os.environ.get("HARNESS_FALLBACK_DIR") or Path(tempfile.gettempdir()) / "harness-fallback")


def remedy(exc: OSError) -> str:
    """What to do about a failed write, in a few words."""
    return _REMEDY.get(exc.errno or 0, "check the results folder's disk and permissions")


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr: nothing more to say
        print(f"error: {line}", file=sys.stderr, flush=True)


def make_run_dir(runs: Path, run_id: str) -> Path:
    """``runs/<run_id>/`` (the safe folder name), made; the fallback folder's if that fails."""
    run_dir = child(runs, run_id)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir
    except OSError as exc:
        spare = child(fallback_root() / "runs", run_id)
        try:
            spare.mkdir(parents=True, exist_ok=True)
        except OSError:
            raise exc from None  # nowhere to write: the original error, unmasked
        _say(
            f"cannot create {run_dir}: {exc.strerror or exc}; this run is kept in {spare} instead "
            f"({remedy(exc)}, then `harness merge {spare.parent.parent}`)"
        )
        return spare


def save_traceback(run_dir: Path, text: str, error: str) -> str:
    """Write ``error.txt``; on failure return `error` with a note appended (never replaced)."""
    try:
        (run_dir / "error.txt").write_text(text)
    except OSError as exc:
        return f"{error} (error.txt not written: {exc.strerror or exc}{disk_note(run_dir)})"
    return error


def disk_note(path: Path) -> str:
    """``; the disk holding PATH is full`` when it has (almost) no space left, else ``""``."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return ""
    return f"; the disk holding {path} is full ({free} bytes free)" if free < 1024 * 1024 else ""


def write_record_or_fallback(run_dir: Path, record: RunRecord) -> Path | None:
    """The record written in `run_dir`, else in the fallback folder, else nowhere; the path
    written (None: nowhere), with one line on stderr whenever it is not `run_dir`."""
    try:
        return write_record(run_dir, record)
    except OSError as exc:
        first = exc
    spare = child(fallback_root() / "runs", record.run_id)
    try:
        path = write_record(spare, record)
    except OSError as exc:
        _say(
            f"run {record.run_id} ({record.status}): record.json could not be written to {run_dir} "
            f"({first.strerror or first}) nor to the fallback {spare} ({exc.strerror or exc}): "
            f"{remedy(first)}; the campaign goes on"
        )
        return None
    _say(
        f"run {record.run_id} ({record.status}): record.json could not be written to {run_dir / RECORD_FILE} "
        f"({first.strerror or first}); written to {path} instead (its other files stay in {run_dir}): "
        f"{remedy(first)}, then "
        f"`harness merge {fallback_root()}`"
    )
    return path


def record_location(results: Path, run_id: str) -> Path | None:
    """Where run `run_id`'s record is: its run folder in `results`, else the fallback folder's
    copy (:func:`write_record_or_fallback`), else None (it could be written nowhere)."""
    for root in (Path(results), fallback_root()):
        path = child(root / "runs", run_id) / RECORD_FILE
        if path.is_file():
            return path
    return None
