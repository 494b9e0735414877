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

Pages this build did not write (a run that was deleted) are removed from ``runs/`` and
``models/``; nothing else in ``out`` is touched.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.dashboard import archpage, pages, runpage
from harness.dashboard.data import Palette, RunView, build_views, leaderboard
from harness.dashboard.tables import (
    GPU_COLUMNS,
    GPU_SAMPLES,
    REQUEST_COLUMNS,
    TableError,
    inside,
    read_columns,
)
from harness.records import RunRecord
from harness.store import atomic_write_bytes, iter_record_paths, read_record

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
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def index_bytes(self) -> int:
        return self.index.stat().st_size


def load_runs(results: Path) -> tuple[list[tuple[RunRecord, Path]], list[str]]:
    """Every readable record under ``results`` with its run folder, and one line per file that is not."""
    if not Path(results).is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    found, problems = [], []
    for path in iter_record_paths(results):
        try:
            found.append((read_record(path), path.parent))
        except ValueError as exc:
            problems.append(str(exc))
    return found, problems


def write_page(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a reader never sees half a page), world-readable like any web page.

    Unlike the store's record writes there is no fsync: a page lost to a crash is rebuilt by
    the next run, and a thousand fsyncs would double the build time.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def build_dashboard(
    results: Path, out: Path, *, now: datetime | None = None, log: Callable[[str], None] | None = None
) -> DashboardReport:
    """Write the dashboard for every run under ``results`` into ``out``.

    Unreadable record files and tables are reported in ``warnings`` and left out; failed runs
    are listed as failed. Raises FileNotFoundError if ``results`` does not exist.
    """
    t0 = time.perf_counter()
    results, out = Path(results), Path(out)
    found, problems = load_runs(results)
    t_load = time.perf_counter()

    views = build_views(found)
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

    # Run pages first: their tables can add warnings that the index lists.
    written: set[Path] = set()
    for view in views:
        requests, gpu, notes, warns = run_tables(view)
        problems.extend(warns)
        path = out / view.page
        write_page(path, runpage.run_page(view, requests, gpu, notes, generated))
        written.add(path)
    t_runs = time.perf_counter()

    by_model: dict[str, list[RunView]] = {}
    for v in views:
        by_model.setdefault(v.model, []).append(v)
    for model, mviews in by_model.items():
        path = out / mviews[0].model_page
        write_page(path, pages.model_page(model, mviews, palette, generated))
        written.add(path)

    top = {
        "index.html": pages.index_page(views, rows, problems, palette, generated),
        "history.html": pages.history_page(views, palette, generated),
        "runs.html": pages.runs_page(views, problems, generated),
        "architecture.html": archpage.architecture_page(views, rows, palette, generated),
    }
    for name, text in top.items():
        write_page(out / name, text)
    removed = _remove_stale(out, written)
    t_end = time.perf_counter()

    report.pages = [out / name for name in top] + sorted(written)
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
