"""Claims: a cell is taken before it runs, so two `harness run --resume` never run the same one.

``--resume`` skips cells that already have an ``ok`` record; two such campaigns started
together (two CI jobs, a re-run while the first is still going) would both see a cell as
pending and both run it. Before a cell runs, its claim file
``<results>/.claims/<fingerprint>.claim`` is created with ``O_CREAT | O_EXCL`` (atomic on local
file systems and NFSv3+): whoever creates it runs the cell, the other skips it. The claim holds
the host and pid; it is removed when the cell ends, and a claim left by a process of this host
that no longer exists (killed with SIGKILL) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.safety.names import child

CLAIMS_DIR = ".claims"


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to claim a cell: ``ours``, or whose it is."""

    ours: bool
    holder: str = ""  # "host pid N since T" of the other claimant


def claim_path(results: Path, fingerprint: str) -> Path:
    return child(Path(results) / CLAIMS_DIR, fingerprint, suffix=".claim")


def _holder(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stale(data: dict[str, object]) -> bool:
    """A claim of this host whose process is gone."""
    pid = data.get("pid")
    if data.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, fh)
    return True


def try_claim(results: Path, fingerprint: str) -> Claim:
    """Claim the cell now (a stale claim is taken over); ``Claim.ours`` False: someone else has it.
    A claim that is ours must be given back with :func:`release`."""
    path = claim_path(results, fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _create(path):
        return Claim(True)
    data = _holder(path)
    if _stale(data):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if _create(path):
            return Claim(True)
        data = _holder(path)
    return Claim(False, f"{data.get('host', '?')} pid {data.get('pid', '?')}")


def release(results: Path, fingerprint: str) -> None:
    """Give back a claim of ours (a missing one is no error)."""
    with contextlib.suppress(OSError):
        claim_path(results, fingerprint).unlink()


@contextlib.contextmanager
def claimed(results: Path, fingerprint: str) -> Iterator[Claim]:
    """Claim the cell for the block (released at its end); ``Claim.ours`` False: someone else has it."""
    claim = try_claim(results, fingerprint)
    if not claim.ours:
        yield claim
        return
    try:
        yield claim
    finally:
        release(results, fingerprint)
