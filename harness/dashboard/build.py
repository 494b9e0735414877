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

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.dashboard import archpage, pages, runpage
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
from harness.dashboard.tables import (
    GPU_COLUMNS,
    GPU_SAMPLES,
    REQUEST_COLUMNS,
    TableError,
    inside,
    read_columns,
)
from harness.store import RECORD_FILE, atomic_write_bytes, iter_record_paths, read_record

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = ("dashboard.js", "dashboard.css")


@dataclass
class DashboardReport:
    """What a build wrote and what it skipped; timings in seconds."""

    out: Path
    index: Path
    pages: list[Path] = field(default_factory=list)
    runs: int = 0
    failed_runs: int = 0
    models: int = 0
    leaderboard_rows: int = 0
    rebuilt: list[Path] = field(default_factory=list)  # pages written by this build (others were current)
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

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
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    data = text.encode("utf-8")
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


def _write_if_changed(path: Path, data: bytes) -> None:
    # plotly.min.js is ~5 MB: rewriting identical bytes on every build only costs time.
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
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
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, list[Any]] | None, list[str], list[str]]:
    """(per-request tables by scenario, GPU samples, notes for the page, warnings) of one run."""
    requests: dict[str, dict[str, list[Any]]] = {}
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
            cols = read_columns(path, REQUEST_COLUMNS) if path is not None else None
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


def scan_runs(results: Path, old: Manifest, new: Manifest) -> tuple[list[RunView], list[str]]:
    """A view of every readable record under ``results`` (cached ones from ``old``), entered in
    ``new``; and one line per file that cannot be read."""
    views: list[RunView] = []
    problems: list[str] = []
    for path in iter_record_paths(results):
        key = path.relative_to(results).as_posix()
        run_dir = path.parent
        sig = file_signature(path)
        entry = old.runs.get(key)
        view = _cached_view(entry, run_dir) if entry is not None and entry.stat == sig else None
        if view is None:
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
                entry = RunEntry(stat=sig or [], sha256=sha, view=view_summary(view))
        assert entry is not None
        entry.stat = sig or []
        new.runs[key] = entry
        views.append(view)
    return views, problems


def _cached_view(entry: RunEntry, run_dir: Path) -> RunView | None:
    try:
        return view_from_summary(entry.view, run_dir)
    except (ValueError, TypeError, KeyError):  # a cache of another shape: read the record
        return None


def table_signatures(view: RunView) -> list[Any]:
    """Size and modification time of every table the run page reads (None: no such file)."""
    if view.run_dir is None:
        return []
    sigs: list[Any] = []
    for s in view.scenarios.values():
        if s.requests_path:
            sigs.append([s.requests_path, file_signature(inside(view.run_dir, s.requests_path))])
    sigs.append(file_signature(view.run_dir / GPU_SAMPLES))
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
    """
    t0 = time.perf_counter()
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    old = Manifest(builder=builder_hash()) if full else Manifest.load(out)
    new = Manifest(builder=builder_hash())
    found, problems = scan_runs(results, old, new)
    t_load = time.perf_counter()

    views = assign_pages(found)
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
    written: set[Path] = set()
    page_hash: dict[str, str] = {}
    for view in views:
        assert view.run_dir is not None
        entry = new.runs[(view.run_dir / RECORD_FILE).relative_to(results).as_posix()]
        path = out / view.page
        h = digest(entry.sha256, view.page, table_signatures(view))
        if h != entry.page_hash or view.page != entry.page or not path.is_file():
            requests, gpu, notes, warns = run_tables(view)
            write_page(path, runpage.run_page(view, requests, gpu, notes, generated))
            rebuilt.append(path)
            entry.page, entry.page_hash, entry.warnings = view.page, h, warns
        problems.extend(entry.warnings)
        page_hash[view.page] = h
        written.add(path)
    t_runs = time.perf_counter()

    by_model: dict[str, list[RunView]] = {}
    for v in views:
        by_model.setdefault(v.model, []).append(v)
    for model, mviews in by_model.items():
        path = out / mviews[0].model_page
        h = digest(model, palette(model), [(v.page, page_hash[v.page]) for v in mviews])
        if old.pages.get(mviews[0].model_page) != h or not path.is_file():
            write_page(path, pages.model_page(model, mviews, palette, generated))
            rebuilt.append(path)
        new.pages[mviews[0].model_page] = h
        written.add(path)

    top_names = ("index.html", "history.html", "runs.html", "architecture.html")
    h = digest(problems, list(page_hash.items()))
    if old.pages.get("*") != h or not all((out / name).is_file() for name in top_names):
        top = {
            "index.html": pages.index_page(views, rows, problems, palette, generated),
            "history.html": pages.history_page(views, palette, generated),
            "runs.html": pages.runs_page(views, problems, generated),
            "architecture.html": archpage.architecture_page(views, rows, palette, generated),
        }
        for name, text in top.items():
            write_page(out / name, text)
            rebuilt.append(out / name)
    new.pages["*"] = h
    removed = _remove_stale(out, written)
    new.save(out, write_page)
    t_end = time.perf_counter()

    report.pages = [out / name for name in top_names] + sorted(written)
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


def _remove_stale(out: Path, keep: set[Path]) -> int:
    n = 0
    for sub in ("runs", "models"):
        for page in (out / sub).glob("*.html"):
            if page not in keep:
                page.unlink(missing_ok=True)
                n += 1
    return n
