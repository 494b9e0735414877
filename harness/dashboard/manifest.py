"""What the last build wrote, kept beside the pages so the next build reads and rewrites only what changed.

``<out>/manifest.json`` is the index: per record file its size and modification time, content
hash, shard, run page and the signatures of the tables that page read; per shard
(:mod:`harness.dashboard.shards`) its summary and a digest of everything it contributes; per
model page and for the overview pages, the hash of their inputs. Beside it, ``<out>/.shards/``
holds each shard's cached views (read only when the shard changes); ``<out>/data/`` its data
files, which the pages load (:mod:`harness.dashboard.fragments`).

* **Record unchanged?** The file's size and modification time are compared first (as ``git``
  does with its index); only where they moved is the record read and hashed (SHA-256), and
  only where the hash moved is it parsed again.
* **Run page inputs**: the record's hash, the page's name, and the size and modification
  time of the tables it reads (per-request tables, GPU samples).
* **The builder**: a hash of the harness's code, the dashboard's assets and the plotly version.
  A new harness version rebuilds everything, so a page never mixes two versions' layouts or
  readings.

A manifest that is missing, unreadable or of another format means a full build; so does a
shard file that is missing or unreadable. It is a cache, never a source of truth
(``harness dashboard --full`` ignores it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic_core import from_json, to_json

MANIFEST = "manifest.json"
SHARDS = ".shards"
DATA = "data"


def shard_files(sid: str) -> tuple[str, str, str]:
    """A shard's files, relative to the dashboard folder: its views (the build's cache), and its
    data files for the pages (:mod:`harness.dashboard.fragments`)."""
    return f"{SHARDS}/{sid}.views.json", f"{DATA}/{sid}.js", f"{DATA}/{sid}.model.js"


FORMAT = 2

Write = Callable[[Path, str], None]


@cache
def builder_hash() -> str:
    """SHA-256 over the harness's code, the dashboard's assets and the plotly version: any change
    to what reads records or draws pages (the records layer, labels, formatting, the pages)
    rebuilds all."""
    package = Path(__file__).resolve().parent.parent
    files = sorted(package.rglob("*.py")) + sorted((package / "dashboard" / "static").glob("*"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(package).as_posix().encode())
        h.update(f.read_bytes())
    with contextlib.suppress(metadata.PackageNotFoundError):
        h.update(metadata.version("plotly").encode())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """A short hash of page inputs (strings, numbers and lists of them: their ``repr`` is exact
    and quicker than JSON)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def file_signature(path: str | Path | None, existed: bool = False) -> list[int] | None:
    """``[size, mtime_ns]`` of a file, None if there is none.

    ``os.access`` first, unless the file ``existed`` at the last build: most runs have no GPU
    samples, and a failed ``os.stat`` costs Python ten times a successful one (the exception),
    10,000 times an incremental build."""
    if path is None or (not existed and not os.access(path, os.F_OK)):
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
    sha256: str  # of its bytes (the first 128 bits, in hex: enough to tell a change)
    shard: str  # the shard its run is in
    page: str = ""  # run page, relative to the dashboard folder
    tables: list[Any] = field(default_factory=list)  # table signatures its page was built from

    # 10,000 of them are read and written by every build: the page is left out where it is the
    # run folder's name (``runs/<run>/record.json`` -> ``runs/<run>.html``), as it mostly is.
    def to_json(self, key: str) -> list[Any]:
        page = "" if self.page == _default_page(key) else self.page
        return [self.stat, self.sha256, self.shard, page, self.tables]

    @classmethod
    def from_json(cls, key: str, row: list[Any]) -> RunEntry:
        stat, sha, shard, page, tables = row
        return cls(list(stat), str(sha), str(shard), str(page) or _default_page(key), list(tables))


def _default_page(key: str) -> str:
    return f"runs/{key.split('/')[1]}.html"


@dataclass
class ShardEntry:
    """One shard as the last build wrote it."""

    digest: str  # of its summary and fragments: the model and overview pages depend on it
    summary: dict[str, Any]  # harness.dashboard.shards.summarize()


@dataclass
class Manifest:
    """Run entries by record path (relative to the results folder), shards by id, page hashes by page."""

    runs: dict[str, RunEntry] = field(default_factory=dict)
    shards: dict[str, ShardEntry] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)  # model and overview pages -> input hash
    builder: str = ""
    valid: bool = False  # read from a folder built by this same harness

    @classmethod
    def load(cls, out: Path) -> Manifest:
        """The manifest in ``out``; an empty one where it is missing, unreadable or stale, or
        where one of its shard files is missing."""
        try:
            data = from_json((out / MANIFEST).read_bytes())
            if data.get("format") != FORMAT or data.get("builder") != builder_hash():
                return cls(builder=builder_hash())
            runs = {k: RunEntry.from_json(k, v) for k, v in data["runs"].items()}
            shards = {k: ShardEntry(str(d), dict(s)) for k, (d, s) in data["shards"].items()}
            if shards:
                have = {f"{SHARDS}/{n}" for n in os.listdir(out / SHARDS)}
                have.update(f"{DATA}/{n}" for n in os.listdir(out / DATA))
                if any(f not in have for sid in shards for f in shard_files(sid)):
                    return cls(builder=builder_hash())
            return cls(
                runs=runs, shards=shards, pages=dict(data["pages"]), builder=builder_hash(), valid=True
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # from_json raises ValueError
            return cls(builder=builder_hash())

    def save(self, out: Path, write: Write) -> None:
        """Write through ``write(path, text)`` (the build's atomic page writer)."""
        data = {
            "format": FORMAT,
            "builder": builder_hash(),
            "runs": {k: e.to_json(k) for k, e in sorted(self.runs.items())},
            "shards": {k: [s.digest, s.summary] for k, s in sorted(self.shards.items())},
            "pages": dict(sorted(self.pages.items())),
        }
        write(out / MANIFEST, to_json(data).decode())


class ShardFileError(Exception):
    """A shard file the manifest lists cannot be read: the build starts over in full."""


def load_views(out: Path, sid: str) -> Any:
    """A shard's cached views. Raises ShardFileError."""
    path = out / shard_files(sid)[0]
    try:
        return from_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ShardFileError(f"{path}: {exc}") from exc


def save_views(out: Path, sid: str, obj: Any, write: Write) -> None:
    write(out / shard_files(sid)[0], to_json(obj).decode())


def remove_shards(out: Path, sids: set[str]) -> None:
    for sid in sids:
        for name in shard_files(sid):
            (out / name).unlink(missing_ok=True)
