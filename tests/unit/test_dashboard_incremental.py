"""Incremental dashboard builds: only the pages whose records (or tables) changed are rewritten."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from harness.dashboard import build_dashboard
from harness.dashboard.data import (
    LeaderRow,
    RunView,
    build_views,
    model_slug,
    order,
    view_from_summary,
    view_summary,
)
from harness.dashboard.manifest import MANIFEST
from harness.record.run_record import RunRecord
from tests.factories import T0, make_record, write_run
from tests.pagedata import table_rows

OVERVIEW = {"index.html", "history.html", "runs.html", "architecture.html", "techniques.html", "claims.html"}


def model_page(model: str) -> str:
    return f"models/{model_slug(model)}.html"


def three_runs(results: Path) -> list[RunRecord]:
    recs = [
        make_record("smollm2-135m", started_at=T0, run_id="run-a"),
        make_record("smollm2-135m", started_at=T0 + timedelta(hours=1), run_id="run-b"),
        make_record("qwen2.5-0.5b", started_at=T0 + timedelta(hours=2), run_id="run-c"),
    ]
    for r in recs:
        write_run(results, r)
    return recs


def rebuilt(report: object, out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in report.rebuilt}  # type: ignore[attr-defined]


def test_a_second_build_rewrites_nothing(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    first = build_dashboard(results, out)
    assert rebuilt(first, out) >= OVERVIEW | {"runs/run-a.html", "runs/run-b.html", "runs/run-c.html"}
    assert (out / MANIFEST).is_file()
    mtimes = {p: p.stat().st_mtime_ns for p in first.pages}
    second = build_dashboard(results, out)
    assert second.rebuilt == []
    assert {p: p.stat().st_mtime_ns for p in second.pages} == mtimes
    assert (second.runs, second.models, second.leaderboard_rows) == (
        first.runs,
        first.models,
        first.leaderboard_rows,
    )


def test_a_changed_record_rebuilds_its_page_its_model_and_the_overview(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    recs = three_runs(results)
    build_dashboard(results, out)
    changed = recs[1].model_copy(update={"error": "edited", "status": "failed"})
    write_run(results, changed)
    report = build_dashboard(results, out)
    assert rebuilt(report, out) == OVERVIEW | {"runs/run-b.html", model_page("smollm2-135m")}
    assert "edited" in (out / "runs/run-b.html").read_text()
    assert {r["run_id"]: r["status"] for r in table_rows(out / "runs.html", "runs")}["run-b"] == "failed"


def test_an_added_record_rebuilds_only_its_own_pages_and_the_overview(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    write_run(results, make_record("qwen2.5-0.5b", started_at=T0 + timedelta(hours=3), run_id="run-d"))
    report = build_dashboard(results, out)
    assert rebuilt(report, out) == OVERVIEW | {"runs/run-d.html", model_page("qwen2.5-0.5b")}
    assert report.runs == 4


def test_a_touched_but_unchanged_record_rebuilds_nothing(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    path = results / "runs/run-a/record.json"
    path.write_bytes(path.read_bytes())  # same bytes, new modification time
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert build_dashboard(results, out).rebuilt == []


def test_a_deleted_record_loses_its_page(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    (results / "runs/run-c/record.json").unlink()
    report = build_dashboard(results, out)
    assert not (out / "runs/run-c.html").exists() and not (out / model_page("qwen2.5-0.5b")).exists()
    # The overview pages, and a model page only where its colour moved with the set of models.
    assert OVERVIEW <= rebuilt(report, out) <= OVERVIEW | {model_page("smollm2-135m")}
    assert "run-c" not in {r["run_id"] for r in table_rows(out / "runs.html", "runs")}


def test_a_changed_table_rebuilds_its_run_page(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    table = next((results / "runs/run-a/requests").glob("*.parquet"))
    table.write_bytes(b"not parquet")
    report = build_dashboard(results, out)
    assert "runs/run-a.html" in rebuilt(report, out) and "runs/run-b.html" not in rebuilt(report, out)
    assert any("unreadable table" in w for w in report.warnings)
    # The warning stays listed while the page is current.
    again = build_dashboard(results, out)
    assert again.rebuilt == [] and any("unreadable table" in w for w in again.warnings)


def test_deleted_pages_and_a_bad_manifest_are_rebuilt(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    (out / "runs/run-a.html").unlink()
    assert rebuilt(build_dashboard(results, out), out) == {"runs/run-a.html"}
    (out / MANIFEST).write_text("{not json")
    report = build_dashboard(results, out)
    assert rebuilt(report, out) >= OVERVIEW | {"runs/run-a.html", "runs/run-b.html", "runs/run-c.html"}
    assert len(build_dashboard(results, out, full=True).rebuilt) == len(report.pages)


def test_a_cached_view_is_the_view(tmp_path: Path) -> None:
    results = tmp_path / "results"
    recs = three_runs(results)
    for v in build_views([(r, results / "runs" / r.run_id) for r in recs]):
        back = view_from_summary(json.loads(json.dumps(view_summary(v))), v.run_dir)
        assert back == replace(v, page="", model_page="")
        assert back.loaded is None and back.record == v.record  # read from its run folder on demand


FORKED_BUILD = """
import sys
from datetime import timedelta
from pathlib import Path

import harness.dashboard.runpages as runpages
import pytest

from harness.dashboard import build_dashboard
from tests.factories import T0

results, out = Path(sys.argv[1]), Path(sys.argv[2])
runpages.PARALLEL_MIN_PAGES = 2
runpages.os.sched_getaffinity = lambda pid: {0, 1}  # two workers, whatever this machine has
assert runpages.workers_for(3) == 2, runpages.workers_for(3)
report = build_dashboard(results, out, now=T0 + timedelta(days=1))
print(repr(report.warnings))
"""


def test_run_pages_written_by_forked_workers_equal_those_written_here(tmp_path: Path) -> None:
    import gc
    import subprocess
    import sys
    import threading

    import harness.dashboard.runpages as runpages

    results = tmp_path / "results"
    three_runs(results)
    (results / "runs" / "run-b" / "telemetry").mkdir(exist_ok=True)
    (results / "runs" / "run-b" / "telemetry" / "gpu_samples.parquet").write_text("torn")  # a warning
    serial = build_dashboard(results, tmp_path / "serial", now=T0 + timedelta(days=1))
    assert gc.isenabled()  # the build pauses the collector and gives it back
    # Forking needs a process with no other thread: a fresh interpreter, not this test session.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", FORKED_BUILD, str(results), str(tmp_path / "forked")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(serial.warnings) and any("gpu_samples" in w for w in serial.warnings)
    for page in serial.page_names:
        assert (tmp_path / "forked" / page).read_bytes() == (tmp_path / "serial" / page).read_bytes(), page
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert runpages.workers_for(1000) == 1  # never fork beside another thread
    finally:
        stop.set()
        other.join()


def _tree(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def test_incremental_builds_equal_a_full_build_as_models_split_into_shards(
    tmp_path: Path, monkeypatch
) -> None:
    """Shards of two runs: adding, changing and deleting runs splits a model's shards (and joins
    them again); after each step the folder is what a full build of the same runs writes."""
    import harness.dashboard.shards as shards

    monkeypatch.setattr(shards, "SHARD_RUNS", 2)
    results, out = tmp_path / "results", tmp_path / "out"
    now = T0 + timedelta(days=2)
    three_runs(results)

    def check(step: str) -> None:
        build_dashboard(results, out, now=now)
        fresh = tmp_path / f"fresh-{step}"
        build_dashboard(results, fresh, now=now, full=True)
        got, want = _tree(out), _tree(fresh)
        assert got.keys() == want.keys(), step
        assert [k for k in got if got[k] != want[k]] == [], step

    check("first")
    assert len({e for e in os.listdir(out / "data") if e.startswith("smollm2")}) == 2  # top + model
    for i in range(4):  # smollm2-135m grows to 6 runs: 4 shards
        write_run(
            results, make_record("smollm2-135m", started_at=T0 + timedelta(hours=3 + i), run_id=f"run-s{i}")
        )
    check("split")
    assert len({e for e in os.listdir(out / "data") if e.startswith("smollm2")}) == 8
    changed = make_record(
        "smollm2-135m", started_at=T0 + timedelta(hours=4), run_id="run-s1", status="failed"
    )
    write_run(results, changed.model_copy(update={"error": "edited"}))
    check("changed")
    for name in ("run-s0", "run-s2", "run-s3"):
        (results / "runs" / name / "record.json").unlink()
    check("joined")  # three runs: two shards, or one where the hash puts them together
    in_use = {
        e[2] for e in json.loads((out / MANIFEST).read_text())["runs"].values() if e[2].startswith("smollm2")
    }
    assert len({e for e in os.listdir(out / "data") if e.startswith("smollm2")}) == 2 * len(in_use) <= 4
    runs = {r["run_id"]: r["status"] for r in table_rows(out / "runs.html", "runs")}
    assert runs == {"run-a": "ok", "run-b": "ok", "run-c": "ok", "run-s1": "failed"}


def test_a_damaged_shard_cache_means_a_full_build(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    views = next((out / ".shards").glob("smollm2*.views.json"))
    views.write_text("{not json")
    write_run(results, make_record("smollm2-135m", started_at=T0 + timedelta(hours=3), run_id="run-d"))
    logged: list[str] = []
    report = build_dashboard(results, out, log=logged.append)
    assert any("rebuilding in full" in line for line in logged)
    assert report.runs == 4 and "runs/run-a.html" in rebuilt(report, out)
    (out / "data" / next(iter(os.listdir(out / "data")))).unlink()  # a data file gone: a full build too
    assert len(build_dashboard(results, out).rebuilt) == len(report.pages)


def leaderboard(views: list[RunView]) -> list[LeaderRow]:
    """The leaderboard as defined, from every view at once: per (model, suite, hardware), the
    latest successful run, the counts, and a failed run newer than it."""
    groups: dict[tuple[str, str, str], list[RunView]] = {}
    for v in views:
        groups.setdefault(v.key, []).append(v)
    rows = []
    for runs in groups.values():
        runs = sorted(runs, key=order)
        ok = [r for r in runs if r.ok]
        if not ok:
            continue
        latest = ok[-1]
        newer_failed = [r for r in runs if not r.ok and order(r)[0] > order(latest)[0]]
        rows.append(
            LeaderRow(
                latest, len(runs), sum(not r.ok for r in runs), newer_failed[-1] if newer_failed else None
            )
        )
    return sorted(
        rows,
        key=lambda r: (-(r.latest.acc_avg if r.latest.acc_avg is not None else -math.inf), r.latest.model),
    )


def test_merged_shard_summaries_give_the_leaderboard_of_all_runs(tmp_path: Path) -> None:
    """However a model's runs are split into shards, the merged summaries give the leaderboard,
    the newest runs and the counts that the views of all runs give."""
    import random

    from harness.dashboard.fragments import shard_fragments
    from harness.dashboard.shards import RECENT, merge, summarize
    from tests.factories import generate_results

    recs = generate_results(tmp_path / "results", 120, n_models=5, failed_every=7, requests=False)
    recs += [
        make_record("qwen2.5-0.5b", started_at=T0 + timedelta(days=400), run_id="late-fail", status="failed"),
        make_record("qwen2.5-0.5b", started_at=T0 + timedelta(days=400), run_id="late-ok"),  # same moment
    ]
    views = build_views(recs)
    want = leaderboard(views)
    rng = random.Random(7)
    for n_shards in (1, 3, 8):
        parts: dict[tuple[str, int], list[tuple[str, object]]] = {}
        for i, v in enumerate(views):
            parts.setdefault((v.model, rng.randrange(n_shards)), []).append((str(i), v))
        summaries = [
            summarize(p, [], shard_fragments([v for _, v in p])["meta"])
            for p in parts.values()  # type: ignore[misc]
        ]
        rng.shuffle(summaries)
        got = merge(summaries, lambda pin: views[int(pin[2])])

        def key(rows):  # type: ignore[no-untyped-def]
            return [
                (r.latest.run_id, r.n_runs, r.n_failed, r.last_failed.run_id if r.last_failed else None)
                for r in rows
            ]

        assert key(got.rows) == key(want), n_shards
        newest = sorted(views, key=order, reverse=True)[:RECENT]
        assert [r.run_id for r in got.recent] == [v.run_id for v in newest]
        assert (got.n_runs, got.n_failed, got.models) == (
            len(views),
            sum(not v.ok for v in views),
            sorted({v.model for v in views}),
        )
        assert got.latest is newest[0]


def test_a_fresh_checkout_rebuilds_no_page(tmp_path: Path) -> None:
    """Every file with a new modification time and the same bytes (a results folder checked
    out or copied anew): the records and tables are hashed, no page is written."""
    results, out = tmp_path / "results", tmp_path / "out"
    three_runs(results)
    build_dashboard(results, out)
    later = time.time_ns() + 10**10
    for p in results.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(later, later))
    assert build_dashboard(results, out).rebuilt == []
    assert json.loads((out / MANIFEST).read_text())["runs"]["runs/run-a/record.json"][0][1] == later
    assert build_dashboard(results, out).rebuilt == []  # and the next build reads nothing
