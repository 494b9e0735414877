"""What the last build wrote, kept beside the pages so the next build rewrites only what changed.

``<out>/manifest.json`` holds, per record file, the content hash of the record, the view the
overview pages are made from, and the hash of everything its run page was built from; per
model page and for the overview pages, the hash of their inputs. A build compares and writes
only the pages whose hash moved.

* **Record unchanged?** The file's size and modification time are compared first (as ``git``
  does with its index); only where they moved is the record read and hashed (SHA-256), and
  only where the hash moved is it parsed again.
* **Run page inputs**: the record's hash, the page's name, and the size and modification
  time of the tables it reads (per-request tables, GPU samples).
* **The builder**: a hash of the harness's code and the dashboard's assets. A new harness
  version rebuilds everything, so a page never mixes two versions' layouts or readings.

A manifest that is missing, unreadable or of another format means a full build; it is a
cache, never a source of truth (``harness dashboard --full`` ignores it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic_core import from_json, to_json

MANIFEST = "manifest.json"
FORMAT = 1


@cache
def builder_hash() -> str:
    """SHA-256 over the harness's code and the dashboard's assets: any change to what reads
    records or draws pages (the records layer, labels, formatting, the pages) rebuilds all."""
    package = Path(__file__).resolve().parent.parent
    files = sorted(package.rglob("*.py")) + sorted((package / "dashboard" / "static").glob("*"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """A short hash of page inputs (strings, numbers and lists of them: their ``repr`` is exact
    and quicker than JSON)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def file_signature(path: str | Path | None) -> list[int] | None:
    """``[size, mtime_ns]`` of a file, None if there is none."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass
class RunEntry:
    """One record file as the last build saw it."""

    stat: list[int]  # [size, mtime_ns] of the record file
    sha256: str  # of its bytes
    view: list[Any]  # harness.dashboard.data.view_summary()
    page: str = ""  # run page, relative to the dashboard folder
    page_hash: str = ""  # of everything the page was built from
    warnings: list[str] = field(default_factory=list)  # what building it reported (bad tables)

    def to_json(self) -> list[Any]:
        return [self.stat, self.sha256, self.view, self.page, self.page_hash, self.warnings]

    @classmethod
    def from_json(cls, row: list[Any]) -> RunEntry:
        stat, sha, view, page, page_hash, warnings = row
        return cls(list(stat), str(sha), list(view), str(page), str(page_hash), list(warnings))


@dataclass
class Manifest:
    """Run entries by record path (relative to the results folder), page hashes by page."""

    runs: dict[str, RunEntry] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)  # model and overview pages -> input hash
    builder: str = ""
    changed: bool = False  # set by a build that has something to save

    @classmethod
    def load(cls, out: Path) -> Manifest:
        """The manifest in ``out``; an empty one where it is missing, unreadable or stale."""
        try:
            data = from_json((out / MANIFEST).read_bytes())
            if data.get("format") != FORMAT or data.get("builder") != builder_hash():
                return cls(builder=builder_hash())
            runs = {k: RunEntry.from_json(v) for k, v in data["runs"].items()}
            return cls(runs=runs, pages=dict(data["pages"]), builder=builder_hash())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # from_json raises ValueError
            return cls(builder=builder_hash())

    def save(self, out: Path, write: Any) -> None:
        """Write through ``write(path, text)`` (the build's atomic page writer)."""
        data = {
            "format": FORMAT,
            "builder": builder_hash(),
            "runs": {k: e.to_json() for k, e in sorted(self.runs.items())},
            "pages": dict(sorted(self.pages.items())),
        }
        write(out / MANIFEST, to_json(data).decode())
