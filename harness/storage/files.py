"""Record files: atomic writes, and reading a record of any schema version this harness reads.

Writes are atomic (temporary file in the same folder, fsync, rename), so a reader never
sees half a record, and a crash leaves the previous version intact.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.record.migrate import RecordVersionError, parse_record
from harness.record.run_record import RunRecord

RECORD_FILE = "record.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; records are shared artefacts, so honour the umask instead.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_record(path: Path) -> RunRecord:
    """A record from its file or its run folder, of any schema version this harness reads.

    Unknown fields are ignored and older versions migrated (:func:`harness.record.migrate.parse_record`).
    Raises ValueError naming the file on bad content or a newer schema version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    try:
        return parse_record(read_regular(path))
    except RecordVersionError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        raise ValueError(
            f"{path}: not a valid run record: {exc.error_count()} problem(s), first: "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}: {exc.errors()[0]['msg']}"
        ) from exc
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, TypeError, RecursionError) as exc:  # bad JSON, or a shape no check foresaw
        raise ValueError(f"{path}: not a valid run record: {type(exc).__name__}: {exc}"[:500]) from exc


MAX_RECORD_BYTES = 256 * 1024 * 1024
"""A record larger than this is refused unread (real ones are kilobytes to a few megabytes)."""


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file. A FIFO, device or socket named ``record.json`` is refused
    without opening it for a blocking read (a FIFO would hang the reader forever)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > MAX_RECORD_BYTES:
            raise OSError(errno.EFBIG, f"{st.st_size} bytes, more than a record can be ({MAX_RECORD_BYTES})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)
