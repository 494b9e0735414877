"""The run index: ``<results>/index.json``, one entry per run, kept by the store.

Every reader of a results folder (``harness runs``, ``load_runs``, ``gate --latest``,
``--resume``, the dashboard, ``decide``, ``claims``) takes its list of runs from here, and
most of them filter on the entry (model, suite, status, fingerprint) before reading a record.

* **Written** by :func:`harness.storage.store.write_record` and by ``merge``
  (:mod:`harness.storage.merge`), each under the index lock (``<results>/.index.lock``,
  ``flock``): the writer reads the index, sets its run's entry and replaces the file
  atomically, so two runs finishing at once both keep their entry.
* **Checked** on every read against the folders, as ``git`` checks its index: ``runs/`` is
  listed and each ``record.json`` stat'ed; an entry whose file's size and modification time
  match is used unread; a record that is new (copied in by hand, written by older code, or
  by a writer that could not update the index) or changed is read, hashed and parsed, and
  an entry whose folder is gone is dropped. A reader that found a change saves the index
  (best effort: a read-only results folder is read, never written).
* **Rebuilt** in full from the folders when the file is missing, unreadable, of another
  format, or written by other record-reading code (:func:`reader_hash`: a migration or a
  label that changed rebuilds every entry).

It is a cache of what the records say, never a source of truth: deleting it costs one full
read of the folder. A record that cannot be read keeps an entry with its problem (so it is
not parsed again until it changes) and is reported by every reader, naming file and field.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from pydantic_core import from_json, to_json

from harness.record.hardware import hardware_label
from harness.record.run_record import RunRecord
from harness.storage.files import RECORD_FILE, atomic_write_bytes, read_record, read_regular

INDEX_FILE = "index.json"
LOCK_FILE = ".index.lock"
FORMAT = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def reader_hash() -> str:
    """A hash of the code that turns record bytes into entries (the record models, their
    migrations and labels, and this store): entries written by other code are rebuilt."""
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(str(FORMAT).encode())
    for f in sorted([*(package / "record").glob("*.py"), *(package / "storage").glob("*.py")]):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:32]


def model_label(record: RunRecord) -> str:
    """The preset name, or the served name of a local checkpoint."""
    if record.model.preset and record.model.preset != "local":
        return record.model.preset
    return record.model.served_name or record.model.source


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One run folder as the index knows it: who, what, where and when, and the signature of
    its record file. ``problem`` set: the record cannot be read (the other fields are empty)."""

    folder: str  # the run folder's name under runs/
    size: int  # of record.json, bytes
    mtime_ns: int
    sha256: str  # first 128 bits of the SHA-256 of record.json's bytes, hex
    run_id: str = ""
    status: str = ""
    model: str = ""  # model_label(): the preset, or a local checkpoint's served name
    preset: str = ""
    source: str = ""  # Hub id or local directory
    suite: str = ""
    hardware: str = ""  # harness.record.hardware.hardware_label
    variant: str | None = None
    fingerprint: str | None = None
    started_at: str = ""  # ISO 8601, as the record has it
    finished_at: str = ""
    started_us: int = 0  # microseconds since the epoch (naive times read as UTC): the sort key
    schema_version: int = 0
    problem: str | None = None  # why the record cannot be read, without the file's name

    @property
    def path(self) -> str:
        """The run folder, relative to the results folder."""
        return f"runs/{self.folder}"

    @property
    def record_key(self) -> str:
        """The record file, relative to the results folder."""
        return f"runs/{self.folder}/{RECORD_FILE}"

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]

    def matches(self, model: str | None = None, suite: str | None = None, status: str | None = None) -> bool:
        """``model``: the preset, a local checkpoint's label or its source path."""
        return (
            (model is None or model in (self.preset, self.model, self.source))
            and (suite is None or self.suite == suite)
            and (status is None or self.status == status)
        )


_FIELDS = tuple(f.name for f in fields(IndexEntry))


def entry_of(folder: str, record: RunRecord, size: int, mtime_ns: int, sha256: str) -> IndexEntry:
    """The entry of a run folder holding ``record``, whose file has this signature."""
    started = record.started_at if record.started_at.tzinfo else record.started_at.replace(tzinfo=UTC)
    return IndexEntry(
        folder=folder,
        size=size,
        mtime_ns=mtime_ns,
        sha256=sha256,
        run_id=record.run_id,
        status=record.status,
        model=model_label(record),
        preset=record.model.preset,
        source=record.model.source,
        suite=record.suite.name,
        hardware=hardware_label(record.environment),
        variant=record.variant.name if record.variant else None,
        fingerprint=record.fingerprint,
        started_at=record.started_at.isoformat(),
        finished_at=record.finished_at.isoformat(),
        started_us=(started - _EPOCH) // timedelta(microseconds=1),
        schema_version=record.schema_version,
    )


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass
class RunIndex:
    """The runs of a results folder, brought up to date with its folders (:func:`run_index`)."""

    results: Path
    entries: list[IndexEntry] = field(default_factory=list)  # readable runs, oldest first
    problems: list[str] = field(default_factory=list)  # one line per record that cannot be read
    parsed: dict[str, RunRecord] = field(default_factory=dict)  # folder -> read while refreshing
    bad: list[IndexEntry] = field(default_factory=list)  # entries whose record cannot be read

    def select(
        self, model: str | None = None, suite: str | None = None, status: str | None = None
    ) -> list[IndexEntry]:
        """Entries (oldest first) that match every filter given (:meth:`IndexEntry.matches`)."""
        return [e for e in self.entries if e.matches(model, suite, status)]

    def run_dir(self, entry: IndexEntry) -> Path:
        return self.results / "runs" / entry.folder

    def record(self, entry: IndexEntry) -> RunRecord:
        """The record of an entry. Raises ValueError naming the file (:func:`read_record`)."""
        rec = self.parsed.get(entry.folder)
        if rec is not None:
            return rec
        return read_record(self.run_dir(entry) / RECORD_FILE)

    def records(self, entries: list[IndexEntry]) -> tuple[list[RunRecord], list[str]]:
        """The records of ``entries``, in their order, and a problem line per one that can no
        longer be read (changed since the index was checked)."""
        out, problems = [], []
        for e in entries:
            try:
                out.append(self.record(e))
            except ValueError as exc:
                problems.append(str(exc))
        return out, problems


def _load(results: Path) -> dict[str, IndexEntry]:
    """The saved entries by folder; empty where the file is missing, unreadable or stale."""
    try:
        data = from_json((results / INDEX_FILE).read_bytes())
        if data.get("format") != FORMAT or data.get("reader") != reader_hash():
            return {}
        return {row["folder"]: IndexEntry(**{k: row[k] for k in _FIELDS if k in row}) for row in data["runs"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # from_json raises ValueError
        return {}


def _save(results: Path, entries: dict[str, IndexEntry]) -> None:
    rows = [
        {k: v for k, v in asdict(e).items() if v is not None and v != ""}
        for e in sorted(entries.values(), key=lambda e: e.folder)
    ]
    data = {"format": FORMAT, "reader": reader_hash(), "runs": rows}
    atomic_write_bytes(results / INDEX_FILE, to_json(data, indent=1) + b"\n")


@contextlib.contextmanager
def locked(results: Path) -> Iterator[None]:
    """Hold the index lock of ``results`` (an exclusive ``flock``). Raises OSError where the
    lock file cannot be made (a read-only results folder)."""
    fd = os.open(results / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def note_run(run_dir: Path, record: RunRecord) -> None:
    """Set the entry of ``run_dir`` (``<results>/runs/<folder>``) in its results folder's index,
    under the lock. A folder outside a ``runs/`` folder has no index. Best effort: where the
    index cannot be written the next reader finds the run from the folders."""
    run_dir = Path(run_dir)
    if run_dir.parent.name != "runs":
        return
    results = run_dir.parent.parent
    path = run_dir / RECORD_FILE
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        st = os.stat(path)
        entry = entry_of(run_dir.name, record, st.st_size, st.st_mtime_ns, content_hash(data))
        with locked(results):
            entries = _load(results)
            entries[entry.folder] = entry
            _save(results, entries)


def _folders(results: Path) -> list[str]:
    try:
        with os.scandir(results / "runs") as it:
            return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _problem_line(path: Path, problem: str) -> str:
    return f"{path}: {problem}"


def _check(
    results: Path, saved: dict[str, IndexEntry], known: dict[str, IndexEntry], idx: RunIndex
) -> tuple[dict[str, IndexEntry], bool]:
    """Every run folder's entry now: ``saved`` where its record's signature still matches,
    else from ``known`` (entries made by an earlier pass) or read anew. Fills ``idx``."""
    out: dict[str, IndexEntry] = {}
    changed = False
    base = results / "runs"
    for folder in _folders(results):
        path = base / folder / RECORD_FILE
        try:
            st = os.stat(path)
        except OSError:  # a run folder without a record (yet): not a run
            continue
        if not stat.S_ISREG(st.st_mode):  # a FIFO would hang the read: skipped, said so
            idx.problems.append(_problem_line(path, "not a regular file (skipped)"))
            continue
        sig = [st.st_size, st.st_mtime_ns]
        entry = saved.get(folder)
        if entry is None or entry.signature != sig:
            changed = True
            entry = known.get(folder)
            if entry is None or entry.signature != sig:
                entry = _read_entry(folder, path, sig, saved.get(folder), idx)
        if entry is None:
            continue
        out[folder] = entry
        if entry.problem is not None:
            idx.problems.append(_problem_line(path, entry.problem))
            idx.bad.append(entry)
        else:
            idx.entries.append(entry)
    changed = changed or any(f not in out for f in saved)
    idx.entries.sort(key=lambda e: (e.started_us, e.folder))
    return out, changed


def _read_entry(
    folder: str, path: Path, sig: list[int], old: IndexEntry | None, idx: RunIndex
) -> IndexEntry | None:
    """The entry of a record file whose signature moved: the old one where only its time
    moved (the same bytes), else parsed; a problem entry where it cannot be read."""
    try:
        data = read_regular(path)
    except OSError as exc:
        idx.problems.append(_problem_line(path, f"cannot read: {exc.strerror or exc}"))
        return None
    sha = content_hash(data)
    if old is not None and old.sha256 == sha:  # touched, not changed
        return IndexEntry(**{**asdict(old), "size": sig[0], "mtime_ns": sig[1]})
    try:
        record = read_record(path)
    except ValueError as exc:
        text = str(exc)
        prefix = f"{path}: "
        return IndexEntry(folder, sig[0], sig[1], sha, problem=text.removeprefix(prefix))
    idx.parsed[folder] = record
    return entry_of(folder, record, sig[0], sig[1], sha)


def run_index(results: Path | str) -> RunIndex:
    """The runs under ``results``, oldest first, with the saved index checked against the
    folders; a changed index is saved (best effort, under the lock)."""
    results = Path(results)
    idx = RunIndex(results)
    saved = _load(results)
    entries, changed = _check(results, saved, {}, idx)
    if not changed:
        return idx
    try:
        with locked(results):
            now = _load(results)  # another writer may have added runs since
            if now != saved:
                again = RunIndex(results, parsed=idx.parsed)
                entries, _ = _check(results, now, entries, again)
                idx = again
            _save(results, entries)
    except OSError:  # a read-only or full results folder: the index lives in memory only
        pass
    return idx
