"""The run index (issue #20): one entry per run in ``<results>/index.json``, kept by the store
and by merge, checked against the folders on every read, rebuilt when missing, stale or
corrupt, and safe under concurrent writers."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from harness.executors.local import done_since
from harness.storage import index as run_index_module
from harness.storage.index import INDEX_FILE, IndexEntry, run_index
from harness.storage.merge import merge_results
from harness.storage.store import latest_record, load_records, runs_dir, write_record
from tests.factories import T0, environment, make_record

DATA = Path(__file__).resolve().parents[1] / "data"


def _saved(results: Path) -> dict[str, dict[str, object]]:
    """The entries as the file holds them (no check against the folders)."""
    data = json.loads((results / INDEX_FILE).read_text())
    return {row["folder"]: row for row in data["runs"]}


def _write(results: Path, run_id: str, minutes: int = 0, **kw: object) -> None:
    write_record(
        runs_dir(results) / run_id,
        make_record(run_id=run_id, started_at=T0 + timedelta(minutes=minutes), **kw),
    )  # type: ignore[arg-type]


def test_write_record_sets_the_entry_with_the_runs_identity(tmp_path: Path) -> None:
    rec = make_record(run_id="a", suite="smoke", env=environment("cpu")).model_copy(
        update={"fingerprint": "fp1"}
    )
    path = write_record(runs_dir(tmp_path) / "a", rec)
    row = _saved(tmp_path)["a"]
    st = path.stat()
    assert row["run_id"] == "a" and row["status"] == "ok" and row["suite"] == "smoke"
    assert row["model"] == row["preset"] == "smollm2-135m" and row["fingerprint"] == "fp1"
    assert row["hardware"] == "CPU: AMD EPYC 7B13 (2 cores)" and "variant" not in row  # null: left out
    assert row["schema_version"] == rec.schema_version and row["started_at"] == rec.started_at.isoformat()
    assert [row["size"], row["mtime_ns"]] == [st.st_size, st.st_mtime_ns] and len(str(row["sha256"])) == 32
    idx = run_index(tmp_path)
    assert [e.run_id for e in idx.entries] == ["a"] and idx.parsed == {}  # trusted: nothing re-read


def test_records_written_without_the_index_are_found_and_indexed(tmp_path: Path) -> None:
    """Records from before the index, copied in by hand (v1 included), or with the index deleted."""
    for name in ("record_v1_cpu.json", "record_v1_gpu.json"):
        d = runs_dir(tmp_path) / name.removesuffix(".json")
        d.mkdir(parents=True)
        shutil.copy(DATA / name, d / "record.json")
    rec = make_record(run_id="today")
    (runs_dir(tmp_path) / "today").mkdir()
    (runs_dir(tmp_path) / "today" / "record.json").write_text(rec.model_dump_json(indent=2))
    assert not (tmp_path / INDEX_FILE).exists()
    idx = run_index(tmp_path)
    assert sorted(e.folder for e in idx.entries) == ["record_v1_cpu", "record_v1_gpu", "today"]
    assert idx.problems == [] and set(_saved(tmp_path)) == {"record_v1_cpu", "record_v1_gpu", "today"}
    assert len(load_records(tmp_path).records) == 3
    (tmp_path / INDEX_FILE).unlink()
    assert len(run_index(tmp_path).entries) == 3


@pytest.mark.parametrize(
    "damage", ["{", "[]", '{"format": 99, "runs": []}', '{"format": 1, "runs": [{"x": 1}]}']
)
def test_a_corrupt_or_foreign_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    _write(tmp_path, "a")
    _write(tmp_path, "b", 1)
    (tmp_path / INDEX_FILE).write_text(damage)
    idx = run_index(tmp_path)
    assert [e.run_id for e in idx.entries] == ["a", "b"] and set(idx.parsed) == {"a", "b"}
    assert set(_saved(tmp_path)) == {"a", "b"}


def test_an_index_of_other_reading_code_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "a")
    monkeypatch.setattr(run_index_module, "reader_hash", lambda: "another harness")
    assert set(run_index(tmp_path).parsed) == {"a"}


def test_a_changed_record_is_read_again_and_a_touched_one_is_not(tmp_path: Path) -> None:
    _write(tmp_path, "a")
    path = runs_dir(tmp_path) / "a" / "record.json"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # a fresh checkout: same bytes
    idx = run_index(tmp_path)
    assert idx.parsed == {} and idx.entries[0].mtime_ns == st.st_mtime_ns + 5_000_000_000
    assert _saved(tmp_path)["a"]["mtime_ns"] == st.st_mtime_ns + 5_000_000_000
    path.write_text(
        make_record(run_id="a", status="failed", error="boom").model_dump_json()
    )  # edited by hand
    idx = run_index(tmp_path)
    assert set(idx.parsed) == {"a"} and idx.entries[0].status == "failed"


def test_a_removed_run_leaves_the_index(tmp_path: Path) -> None:
    _write(tmp_path, "a")
    _write(tmp_path, "b", 1)
    shutil.rmtree(runs_dir(tmp_path) / "a")
    assert [e.folder for e in run_index(tmp_path).entries] == ["b"]
    assert set(_saved(tmp_path)) == {"b"}


def test_a_bad_record_is_reported_by_every_read_naming_file_and_field_and_parsed_once(tmp_path: Path) -> None:
    _write(tmp_path, "good")
    bad = runs_dir(tmp_path) / "bad"
    bad.mkdir()
    (bad / "record.json").write_text('{"schema_version":1,"accuracy":{"t":5}}')
    first = run_index(tmp_path)
    assert [e.folder for e in first.entries] == ["good"] and [e.folder for e in first.bad] == ["bad"]
    assert _saved(tmp_path)["bad"]["problem"]
    again = run_index(tmp_path)
    assert again.parsed == {}  # the problem is cached with the file's signature
    for idx in (first, again):
        [line] = idx.problems
        assert (
            line.startswith(f"{bad / 'record.json'}: ")
            and "accuracy.t: a v1 result is an object, not int" in line
        )
    moved = tmp_path.parent / "moved"
    shutil.move(tmp_path, moved)  # the message names the file where it is now
    assert run_index(moved).problems[0].startswith(str(moved / "runs" / "bad" / "record.json"))


def test_entries_are_oldest_first_and_filters_choose_before_reading(tmp_path: Path) -> None:
    _write(tmp_path, "late", 10, suite="standard")
    _write(tmp_path, "early", 0)
    _write(tmp_path, "mid", 5, model="qwen2.5-0.5b")
    idx = run_index(tmp_path)
    assert [e.run_id for e in idx.entries] == ["early", "mid", "late"]
    assert [e.run_id for e in idx.select(suite="smoke")] == ["early", "mid"]
    assert [e.run_id for e in idx.select(model="qwen2.5-0.5b")] == ["mid"]
    assert [r.run_id for r in load_records(tmp_path, suite="smoke").records] == ["early", "mid"]
    latest = latest_record(tmp_path, suite="smoke")
    assert latest is not None and latest.run_id == "mid"
    latest = latest_record(tmp_path, model="smollm2-135m")
    assert latest is not None and latest.run_id == "late"


def test_merge_sets_the_entries_of_the_runs_it_adds(tmp_path: Path) -> None:
    _write(tmp_path / "src", "x")
    _write(tmp_path / "src", "y", 1)
    _write(tmp_path / "store", "z", 2)
    report = merge_results([tmp_path / "src"], tmp_path / "store")
    assert report.count("added") == 2
    assert set(_saved(tmp_path / "store")) == {"x", "y", "z"}  # set by merge, not by a reader
    assert [e.run_id for e in run_index(tmp_path / "store").entries] == ["x", "y", "z"]


def test_done_since_asks_the_index(tmp_path: Path) -> None:
    rec = make_record(run_id="a").model_copy(update={"fingerprint": "fp"})
    path = write_record(runs_dir(tmp_path) / "a", rec)
    written = path.stat().st_mtime
    assert done_since(tmp_path, "fp", written - 1)
    assert not done_since(tmp_path, "fp", written + 1)  # written before this campaign listed it
    assert not done_since(tmp_path, "other", written - 1)


def test_a_read_only_results_folder_is_read_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "a")
    (tmp_path / INDEX_FILE).unlink()

    def read_only(results: Path) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(run_index_module, "locked", read_only)  # root ignores chmod: the error itself
    assert [e.run_id for e in run_index(tmp_path).entries] == ["a"]
    assert not (tmp_path / INDEX_FILE).exists()
    _write(tmp_path, "b", 1)  # a record is written even where its index cannot be
    assert [e.run_id for e in run_index(tmp_path).entries] == ["a", "b"]


def _writer(results: str, prefix: str, n: int) -> None:
    for i in range(n):
        write_record(runs_dir(Path(results)) / f"{prefix}{i}", make_record(run_id=f"{prefix}{i}"))


def test_concurrent_writers_in_processes_lose_no_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), p, 25)) for p in ("p", "q", "r")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert set(_saved(tmp_path)) == {f"{p}{i}" for p in "pqr" for i in range(25)}


def test_concurrent_writers_in_threads_lose_no_entry(tmp_path: Path) -> None:
    threads = [threading.Thread(target=_writer, args=(str(tmp_path), p, 25)) for p in ("s", "t")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(_saved(tmp_path)) == {f"{p}{i}" for p in "st" for i in range(25)}


def test_a_reader_saving_its_check_keeps_a_writers_new_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that found a change saves under the lock on top of what a writer saved meanwhile."""
    _write(tmp_path, "a")
    (runs_dir(tmp_path) / "hand").mkdir()
    (runs_dir(tmp_path) / "hand" / "record.json").write_text(make_record(run_id="hand").model_dump_json())
    real = run_index_module._check
    calls = []

    def check_then_write(*args: object, **kw: object) -> object:
        out = real(*args, **kw)  # type: ignore[arg-type]
        if not calls:  # between the reader's check and its save, a run is written
            _write(tmp_path, "b", 1)
        calls.append(1)
        return out

    monkeypatch.setattr(run_index_module, "_check", check_then_write)
    run_index(tmp_path)
    assert set(_saved(tmp_path)) == {"a", "b", "hand"}


def test_entries_round_trip_through_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "a")
    saved = run_index_module._load(tmp_path)
    assert isinstance(saved["a"], IndexEntry) and run_index(tmp_path).entries == [saved["a"]]
