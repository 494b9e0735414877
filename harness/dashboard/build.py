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
    data/<shard>.js     the runs of one shard (harness.dashboard.shards) as the run list, the
    data/<shard>.model.js   history and the model pages show them (harness.dashboard.fragments)

    manifest.json       what each page and shard was built from, and each shard's cached
    .shards/            views: the next build reads and rewrites only what changed
                        (harness.dashboard.manifest)

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

from harness.dashboard import archpage, claimspage, pages, runpage, techpage
from harness.dashboard.data import (
    Palette,
    RunView,
    assign_pages,
    model_slug,
    name_pages,
    order,
    slug,
    view_from_summary,
    view_summary,
)
from harness.dashboard.fragments import data_file, data_src, shard_fragments
from harness.dashboard.manifest import (
    Manifest,
    RunEntry,
    ShardEntry,
    ShardFileError,
    builder_hash,
    digest,
    load_views,
    remove_shards,
    save_views,
)
from harness.dashboard.runpages import write_run_pages
from harness.dashboard.scan import Scan, read_one, restat, run_tables, scan, table_signatures
from harness.dashboard.shards import merge, pinned_view, shard_count, shard_id, summarize
from harness.store import atomic_write_bytes

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


def build_dashboard(
    results: Path,
    out: Path,
    *,
    now: datetime | None = None,
    log: Callable[[str], None] | None = None,
    full: bool = False,
) -> DashboardReport:
    """Write the dashboard for every run under ``results`` into ``out``.

    Only what changed since the last build is read and written (see
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
        try:
            return _build(Path(results), Path(out), now=now, log=log, full=full)
        except ShardFileError as exc:  # a damaged cache: start over from the records
            if log is not None:
                log(f"rebuilding in full: {exc}")
            return _build(Path(results), Path(out), now=now, log=log, full=True)
    finally:
        if paused:
            gc.enable()


@dataclass
class _Plan:
    """Which runs go to which shard, and what must be redone."""

    shard_of: dict[str, str]  # record key -> shard
    tables: dict[str, list[Any]]  # kept record key -> its tables' signatures now
    stale_pages: set[str]  # record keys whose run page is written
    dirty: set[str]  # shards whose summary and fragments are made again
    touched: bool = False  # a table's time moved, not its bytes (the manifest needs saving)


def _plan(found: Scan, old: Manifest, folder_of: Callable[[str], str], existing: set[str]) -> _Plan:
    """Assign shards (a model's runs split as they grow) and find the stale pages and shards."""
    model_of = {k: old.shards[e.shard].summary["model"] for k, e in found.kept.items()}
    model_of.update({k: v.model for k, (v, _sha) in found.parsed.items()})
    counts: dict[str, int] = {}
    for m in model_of.values():
        counts[m] = counts.get(m, 0) + 1
    before: dict[str, int] = {}
    for sh in old.shards.values():
        before[sh.summary["model"]] = before.get(sh.summary["model"], 0) + sh.summary["n"]
    same = {m for m, n in counts.items() if shard_count(n) == shard_count(before.get(m, 0))}
    shard_of = {
        k: e.shard if model_of[k] in same else shard_id(model_of[k], k, counts[model_of[k]])
        for k, e in found.kept.items()
    }  # a kept run stays in its shard while its model's number of shards does
    shard_of.update({k: shard_id(v.model, k, counts[v.model]) for k, (v, _sha) in found.parsed.items()})
    new_sids = set(shard_of.values())
    plan = _Plan(shard_of, {}, set(found.parsed), {sid for sid in new_sids if sid not in old.shards})
    for k, e in found.kept.items():
        plan.tables[k], moved = restat(folder_of(k), e.tables)
        if moved or e.page not in existing:
            plan.stale_pages.add(k)
        elif plan.tables[k] is not e.tables:  # touched, not changed: only the manifest moves
            plan.touched = True
    for k in plan.stale_pages:
        plan.dirty.add(shard_of[k])
    for k, e in old.runs.items():  # runs gone, or moved to another shard, leave theirs
        if shard_of.get(k) != e.shard:
            if k in shard_of:
                plan.dirty.add(shard_of[k])
            if e.shard in new_sids:
                plan.dirty.add(e.shard)
    return plan


def _page_names(found: Scan, old: Manifest) -> None:
    """Name the run pages of new and changed records: a changed record keeps its page while its
    run id still slugs to it; new ones are named as a full build names them, among the rest."""
    used = {e.page[5:-5].lower() for e in found.kept.values()}
    todo = []
    for k, (v, _sha) in found.parsed.items():
        prev = old.runs.get(k)
        name = prev.page[5:-5] if prev is not None else ""
        base = slug(v.run_id)
        head, _, tail = name.rpartition("-")
        if name and (name == base or (head == base and tail.isdigit())) and name.lower() not in used:
            used.add(name.lower())
            name_pages(v, name)
        else:
            todo.append(v)
    assign_pages(todo, used)


def _write_shard(
    out: Path, sid: str, pairs: list[tuple[str, RunView]], warns: dict[str, list[str]]
) -> ShardEntry:
    """Write a shard's cached views and data files; its entry (summary, and a digest of all it
    contributes to the pages)."""
    frags = shard_fragments([v for _, v in pairs])
    summary = summarize(pairs, [w for k, _ in pairs for w in warns.get(k, [])], frags["meta"])
    save_views(out, sid, {k: [view_summary(v), warns.get(k, [])] for k, v in pairs}, write_page)
    h = hashlib.sha256(repr(summary).encode())
    for part in ("top", "model"):
        text = data_file(frags[part])
        write_page(out / data_src(sid, part), text)
        h.update(text.encode())
    return ShardEntry(h.hexdigest()[:32], summary)


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
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    old = Manifest(builder=builder_hash()) if full else Manifest.load(out)
    new = Manifest(builder=builder_hash())
    t_manifest = time.perf_counter()
    found = scan(results, old)
    t_scan = time.perf_counter()
    base = str(results)

    def folder_of(key: str) -> str:
        return os.path.join(base, os.path.dirname(key))

    for key in [k for k, e in found.kept.items() if e.shard not in old.shards]:
        del found.kept[key]  # a manifest edited by hand: read the record again
        read_one(key, os.path.join(base, key), None, found)
    existing = _existing_pages(out)
    plan = _plan(found, old, folder_of, existing)
    _page_names(found, old)
    t_load = time.perf_counter()

    # The views of every run in a changed shard: parsed now, or cached in the shard's views file.
    views: dict[str, RunView] = {}
    warns: dict[str, list[str]] = {}
    old_views: dict[str, dict[str, Any]] = {}
    for k, sid in plan.shard_of.items():
        if sid not in plan.dirty:
            continue
        if k in found.parsed:
            views[k] = found.parsed[k][0]
            continue
        e = found.kept[k]
        if e.shard not in old_views:
            old_views[e.shard] = load_views(out, e.shard)
        try:
            summary, warns[k] = old_views[e.shard][k]
            views[k] = view_from_summary(summary, folder_of(k))
        except (KeyError, ValueError, TypeError) as exc:
            raise ShardFileError(f"{e.shard}: no usable view of {k}") from exc
        name_pages(views[k], e.page[5:-5])

    out.mkdir(parents=True, exist_ok=True)
    if not (old.valid and all((out / a).is_file() for a in ("plotly.min.js", *ASSETS))):
        write_assets(out)
    generated = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    rebuilt: list[Path] = []

    # Run pages first: their tables can add warnings that the index lists.
    stale = sorted(((views[k], k) for k in plan.stale_pages), key=lambda vk: order(vk[0]))

    def write_one(view: RunView) -> list[str]:
        requests, gpu, notes, warnings = run_tables(view)
        write_page(out / view.page, runpage.run_page(view, requests, gpu, notes, generated))
        return warnings

    for (view, k), w in zip(stale, write_run_pages([v for v, _ in stale], write_one), strict=True):
        warns[k] = w
        rebuilt.append(out / view.page)
    for k, sid in plan.shard_of.items():
        if k in found.parsed:
            v, sha = found.parsed[k]
            new.runs[k] = RunEntry(found.stat[k], sha, sid, v.page, table_signatures(v))
        else:
            e = found.kept[k]
            new.runs[k] = RunEntry(e.stat, e.sha256, sid, e.page, plan.tables[k])
    t_runs = time.perf_counter()

    # Shards: summaries and fragments of the changed ones, again.
    members: dict[str, list[str]] = {sid: [] for sid in plan.dirty}
    for k, sid in plan.shard_of.items():
        if sid in plan.dirty:
            members[sid].append(k)
    for sid in sorted(plan.dirty):
        pairs = sorted(((k, views[k]) for k in members[sid]), key=lambda kv: order(kv[1]))
        new.shards[sid] = _write_shard(out, sid, pairs, warns)
    for sid in set(plan.shard_of.values()) - plan.dirty:
        new.shards[sid] = old.shards[sid]
    remove_shards(out, set(old.shards) - set(new.shards))
    t_shards = time.perf_counter()

    view_of = pinned_view(folder_of)
    sids = sorted(new.shards)
    by_model: dict[str, list[str]] = {}
    for sid in sids:
        by_model.setdefault(new.shards[sid].summary["model"], []).append(sid)
    palette = Palette(list(by_model))
    written = {e.page for e in new.runs.values()}
    for model, msids in sorted(by_model.items()):
        page = f"models/{model_slug(model)}.html"
        h = digest(model, palette(model), [new.shards[s].digest for s in msids])
        if old.pages.get(page) != h or page not in existing:
            mo = merge([new.shards[s].summary for s in msids], view_of)
            data = [
                f"{data_src(s, part)}?v={new.shards[s].digest[:12]}"
                for s in msids
                for part in ("top", "model")
            ]
            write_page(out / page, pages.model_page(model, mo, data, palette, generated))
            rebuilt.append(out / page)
        new.pages[page] = h
        written.add(page)

    t_models = time.perf_counter()
    o = merge([new.shards[s].summary for s in sids], view_of)
    problems = found.problems + o.warnings
    top_names = (
        "index.html",
        "history.html",
        "runs.html",
        "architecture.html",
        "techniques.html",
        "claims.html",
    )
    h = digest(problems, [(s, new.shards[s].digest) for s in sids])
    if old.pages.get("*") != h or not all(name in existing for name in top_names):
        data = [f"{data_src(s, 'top')}?v={new.shards[s].digest[:12]}" for s in sids]
        top = {
            "index.html": pages.index_page(o, problems, palette, generated),
            "history.html": pages.history_page(o, data, palette, generated),
            "runs.html": pages.runs_page(o, data, problems, generated),
            "architecture.html": archpage.architecture_page(o, palette, generated),
            "techniques.html": techpage.techniques_page(o.variants, palette, generated),
            "claims.html": claimspage.claims_page_for(results, new.runs, generated),
        }
        for name, text in top.items():
            write_page(out / name, text)
            rebuilt.append(out / name)
    new.pages["*"] = h
    t_top = time.perf_counter()
    removed = _remove_stale(out, existing - written - set(top_names))
    if (
        rebuilt
        or removed
        or found.touched
        or plan.touched
        or plan.dirty
        or new.runs.keys() != old.runs.keys()
        or not old.valid
    ):
        new.save(out, write_page)
    t_end = time.perf_counter()

    report = DashboardReport(
        out=out,
        index=out / "index.html",
        runs=len(new.runs),
        failed_runs=o.n_failed,
        models=len(o.models),
        leaderboard_rows=len(o.rows),
        page_names=list(top_names) + sorted(written),
        rebuilt=rebuilt,
        warnings=problems,
        timings_s={
            "load_s": t_load - t0,
            "run_pages_s": t_runs - t_load,
            "other_pages_s": t_end - t_runs,
            "total_s": t_end - t0,
            # the steps: reading the manifest, checking records, tables and shards, shard files,
            # model pages, overview pages, saving the manifest
            "manifest_s": t_manifest - t0,
            "scan_s": t_scan - t_manifest,
            "plan_s": t_load - t_scan,
            "shards_s": t_shards - t_runs,
            "model_pages_s": t_models - t_shards,
            "overview_s": t_top - t_models,
            "save_s": t_end - t_top,
        },
    )
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
