"""Incremental dashboard builds: only the pages whose records (or tables) changed are rewritten."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from harness.dashboard import build_dashboard
from harness.dashboard.data import build_views, model_slug, view_from_summary, view_summary
from harness.dashboard.manifest import MANIFEST
from harness.records import RunRecord
from tests.factories import T0, make_record, write_run

OVERVIEW = {"index.html", "history.html", "runs.html", "architecture.html", "techniques.html"}


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
    runs = json.loads((out / "runs.html").read_text().split('id="runs-data">')[1].split("</script>")[0])
    assert {r["run_id"]: r["status"] for r in runs["rows"]}["run-b"] == "failed"


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
    assert "run-c" not in (out / "runs.html").read_text()


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
