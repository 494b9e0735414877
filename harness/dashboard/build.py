"""Build the dashboard folder from a results folder.

Layout of ``out``::

    index.html          leaderboard, accuracy vs efficiency, latency under load, task heatmap
    history.html        headline metrics of every model over time
    runs.html           every run, failed ones included
    architecture.html   KV cache and parameters per model, decode vs roofline, measured vs published
    models/<m>.html     one model: its runs and each metric over them
    runs/<run>.html     one run: configuration, provenance, tables, latency distribution, telemetry
    plotly.min.js       written once, shared by every page (pages open from disk, offline)
    dashboard.js/.css   the table and chart code and the look

    manifest.json       what each page was built from, so the next build rewrites only the
                        pages whose records (or tables) changed, and the overview pages

Pages of runs that are gone (a deleted record) are removed from ``runs/`` and ``models/``;
nothing else in ``out`` is touched.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.dashboard import archpage, pages, runpage, techpage
from harness.dashboard.data import (
    Palette,
    RunView,
    assign_pages,
    leaderboard,
    run_view,
    view_from_summary,
    view_summary,
)
from harness.dashboard.manifest import Manifest, RunEntry, builder_hash, digest, file_signature
from harness.dashboard.runpages import write_run_pages
from harness.dashboard.tables import (
    GPU_COLUMNS,
    GPU_SAMPLES,
    REQUEST_COLUMNS,
    TableError,
    inside,
    read_columns,
    safe_relative,
)
from harness.store import RECORD_FILE, atomic_write_bytes, read_record

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = ("dashboard.js", "dashboard.css")


@dataclass
class DashboardReport:
    """What a build wrote and what it skipped; timings in seconds."""

    out: Path
    index: Path
    runs: int = 0
    failed_runs: int = 0
    models: int = 0
    leaderboard_rows: int = 0
    page_names: list[str] = field(default_factory=list)  # every page, relative to ``out``
    rebuilt: list[Path] = field(default_factory=list)  # pages written by this build (others were current)
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def pages(self) -> list[Path]:
        """Every page of the dashboard (those this build left as they were included)."""
        return [self.out / name for name in self.page_names]

    @property
    def index_bytes(self) -> int:
        return self.index.stat().st_size


def write_page(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader never sees half a page), world-readable like any web page.

    Unlike the store's record writes there is no fsync: a page lost to a crash is rebuilt by
    the next run, and a thousand fsyncs would double the build time. The temporary file is
    created with its final mode (0644 less the umask) and a name unique to this process and
    thread, which saves mkstemp's extra calls on every page.
    """
    data = text.encode("utf-8")
    if _same_bytes(path, data):  # a rename costs ten reads on some file systems: --full rewrites nothing
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _same_bytes(path: Path, data: bytes) -> bool:
    """Whether ``path`` already holds exactly ``data`` (the size is compared before reading)."""
    try:
        with open(path, "rb") as fh:
            return os.fstat(fh.fileno()).st_size == len(data) and fh.read() == data
    except OSError:
        return False


def _write_if_changed(path: Path, data: bytes) -> None:
    # plotly.min.js is ~5 MB: rewriting identical bytes on every build only costs time.
    if _same_bytes(path, data):
        return
    atomic_write_bytes(path, data)
    os.chmod(path, 0o644)


def write_assets(out: Path) -> None:
    """plotly.js (from the installed plotly package) and the dashboard's own script and style sheet."""
    from plotly.offline import get_plotlyjs  # lazy: the only plotly import outside validation

    _write_if_changed(out / "plotly.min.js", get_plotlyjs().encode("utf-8"))
    for name in ASSETS:
        _write_if_changed(out / name, (STATIC / name).read_bytes())


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


def record_files(results: Path) -> list[tuple[str, str]]:
    """(key, path) of every ``runs/<run>/record.json`` under ``results``, sorted; the key is the
    path relative to ``results``. Plain strings and ``os.scandir``: at 10,000 runs, pathlib's
    parsing and ``glob``'s sorting of Path objects cost more than the rest of a scan."""
    base = os.path.join(results, "runs")
    try:
        names = sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
    return [(f"runs/{n}/{RECORD_FILE}", os.path.join(base, n, RECORD_FILE)) for n in names]


def scan_runs(
    results: Path, old: Manifest, new: Manifest
) -> tuple[list[tuple[RunView, RunEntry]], list[str]]:
    """A view of every readable record under ``results`` (cached ones from ``old``) with its
    entry in ``new``; and one line per file that cannot be read."""
    views: list[tuple[RunView, RunEntry]] = []
    problems: list[str] = []
    for key, name in record_files(results):
        sig = file_signature(name)
        if sig is None:  # a run folder without a record (yet): not a run
            continue
        run_dir = os.path.dirname(name)
        entry = old.runs.get(key)
        view = _cached_view(entry, run_dir) if entry is not None and entry.stat == sig else None
        if view is None:
            path = Path(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: cannot read: {exc.strerror}")
                continue
            sha = hashlib.sha256(data).hexdigest()
            if entry is not None and entry.sha256 == sha:  # touched, not changed
                view = _cached_view(entry, run_dir)
            if view is None or entry is None:
                try:
                    record = read_record(path)  # the store validates (and migrates) records
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
                view = run_view(record, run_dir)
                entry = RunEntry(stat=sig, sha256=sha, view=view_summary(view))
            new.changed = True
        assert entry is not None
        entry.stat = sig
        new.runs[key] = entry
        views.append((view, entry))
    if set(old.runs) - set(new.runs):
        new.changed = True
    return views, problems


def _cached_view(entry: RunEntry, run_dir: str) -> RunView | None:
    try:
        return view_from_summary(entry.view, run_dir)
    except (ValueError, TypeError, KeyError):  # a cache of another shape: read the record
        return None


def table_signatures(view: RunView) -> list[Any]:
    """Size and modification time of every table the run page reads (None: no such file)."""
    run_dir = view.folder
    if run_dir is None:
        return []
    sigs: list[Any] = []
    for s in view.scenarios.values():
        if s.requests_path:
            rel = safe_relative(s.requests_path)
            sigs.append([s.requests_path, file_signature(os.path.join(run_dir, rel) if rel else None)])
    sigs.append(file_signature(os.path.join(run_dir, GPU_SAMPLES)))
    return sigs


def build_dashboard(
    results: Path,
    out: Path,
    *,
    now: datetime | None = None,
    log: Callable[[str], None] | None = None,
    full: bool = False,
) -> DashboardReport:
    """Write the dashboard for every run under ``results`` into ``out``.

    Only pages whose inputs changed since the last build are written (see
    :mod:`harness.dashboard.manifest`); ``full`` rewrites every page. Unreadable record files
    and tables are reported in ``warnings`` and left out; failed runs are listed as failed.
    Raises FileNotFoundError if ``results`` does not exist.

    Python's cyclic garbage collector is paused meanwhile: a build allocates a few hundred
    thousand short-lived objects (views, cells, chart points) that reference counting frees, and
    the collector's repeated passes over them were a third of an incremental build at 10,000 runs.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build(results, out, now=now, log=log, full=full)
    finally:
        if paused:
            gc.enable()


def _build(
    results: Path,
    out: Path,
    *,
    now: datetime | None,
    log: Callable[[str], None] | None,
    full: bool,
) -> DashboardReport:
    """:func:`build_dashboard`'s work, with the garbage collector paused."""
    t0 = time.perf_counter()
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    old = Manifest(builder=builder_hash()) if full else Manifest.load(out)
    new = Manifest(builder=builder_hash())
    found, problems = scan_runs(results, old, new)
    t_load = time.perf_counter()

    views = assign_pages(v for v, _ in found)
    entries = {id(v): e for v, e in found}
    rows = leaderboard(views)
    palette = Palette([v.model for v in views])
    generated = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    report = DashboardReport(
        out=out,
        index=out / "index.html",
        runs=len(views),
        failed_runs=sum(not v.ok for v in views),
        models=len({v.model for v in views}),
        leaderboard_rows=len(rows),
    )
    out.mkdir(parents=True, exist_ok=True)
    write_assets(out)
    rebuilt: list[Path] = []

    # Run pages first: their tables can add warnings that the index lists.
    written: set[str] = set()  # run and model pages of this build, relative to ``out``
    page_hash: dict[str, str] = {}
    existing = _existing_pages(out)
    stale: list[tuple[RunView, str]] = []
    for view in views:
        entry = entries[id(view)]
        h = digest(entry.sha256, view.page, table_signatures(view))
        if h != entry.page_hash or view.page != entry.page or view.page not in existing:
            stale.append((view, h))
        page_hash[view.page] = h
        written.add(view.page)

    def write_one(view: RunView) -> list[str]:
        requests, gpu, notes, warns = run_tables(view)
        write_page(out / view.page, runpage.run_page(view, requests, gpu, notes, generated))
        return warns

    for (view, h), warns in zip(stale, write_run_pages([v for v, _ in stale], write_one), strict=True):
        entry = entries[id(view)]
        entry.page, entry.page_hash, entry.warnings = view.page, h, warns
        rebuilt.append(out / view.page)
        new.changed = True
    for view in views:
        problems.extend(entries[id(view)].warnings)
    t_runs = time.perf_counter()

    by_model: dict[str, list[RunView]] = {}
    for v in views:
        by_model.setdefault(v.model, []).append(v)
    for model, mviews in by_model.items():
        path = out / mviews[0].model_page
        h = digest(model, palette(model), [(v.page, page_hash[v.page]) for v in mviews])
        if old.pages.get(mviews[0].model_page) != h or mviews[0].model_page not in existing:
            write_page(path, pages.model_page(model, mviews, palette, generated))
            rebuilt.append(path)
            new.changed = True
        new.pages[mviews[0].model_page] = h
        written.add(mviews[0].model_page)

    top_names = ("index.html", "history.html", "runs.html", "architecture.html", "techniques.html")
    h = digest(problems, list(page_hash.items()))
    if old.pages.get("*") != h or not all(name in existing for name in top_names):
        new.changed = True
        top = {
            "index.html": pages.index_page(views, rows, problems, palette, generated),
            "history.html": pages.history_page(views, palette, generated),
            "runs.html": pages.runs_page(views, problems, generated),
            "architecture.html": archpage.architecture_page(views, rows, palette, generated),
            "techniques.html": techpage.techniques_page(views, palette, generated),
        }
        for name, text in top.items():
            write_page(out / name, text)
            rebuilt.append(out / name)
    new.pages["*"] = h
    removed = _remove_stale(out, existing - written - set(top_names))
    if new.changed or removed:
        new.save(out, write_page)
    t_end = time.perf_counter()

    report.page_names = list(top_names) + sorted(written)
    report.rebuilt = rebuilt
    report.warnings = problems
    report.timings_s = {
        "load_s": t_load - t0,
        "run_pages_s": t_runs - t_load,
        "other_pages_s": t_end - t_runs,
        "total_s": t_end - t0,
    }
    if log is not None and removed:
        log(f"removed {removed} page(s) of runs no longer in {results}")
    return report


def _existing_pages(out: Path) -> set[str]:
    """Pages in ``out`` (``index.html``, ``runs/x.html``, ...): three directory reads instead
    of a stat per page."""
    found: set[str] = set()
    for sub in ("", "runs/", "models/"):
        with contextlib.suppress(FileNotFoundError):
            found.update(sub + e.name for e in os.scandir(out / sub) if e.name.endswith(".html"))
    return found


def _remove_stale(out: Path, stale: set[str]) -> int:
    """Remove the run and model pages of runs that are gone; the number removed."""
    n = 0
    for name in stale:
        if name.startswith(("runs/", "models/")):
            (out / name).unlink(missing_ok=True)
            n += 1
    return n
