"""`harness merge`: run folders from many places folded into one store, atomically, never overwriting."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from harness.cli import main
from harness.storage import merge
from harness.storage.merge import add_run_folder, merge_results
from harness.storage.store import load_records, read_record, runs_dir, write_record
from tests.factories import T0, make_record


def _results(root: Path, *run_ids: str, minutes: int = 0) -> Path:
    """A results folder as a job-array task leaves it: records with a table and a log beside them."""
    for i, rid in enumerate(run_ids):
        d = runs_dir(root) / rid
        write_record(d, make_record(run_id=rid, started_at=T0 + timedelta(minutes=minutes + i)))
        (d / "requests").mkdir()
        (d / "requests" / "c1.parquet").write_bytes(b"PAR1 rows of " + rid.encode())
        (d / "engine.log").write_text(f"log of {rid}\n")
    return root


def test_merge_folds_folders_into_one_store_with_their_files(tmp_path: Path) -> None:
    a = _results(tmp_path / "task-0", "run-a")
    b = _results(tmp_path / "task-1", "run-b", "run-c", minutes=5)
    store = tmp_path / "store"
    report = merge_results([a, b], store)
    assert report.ok and report.count("added") == 3
    assert [r.run_id for r in load_records(store).records] == ["run-a", "run-b", "run-c"]
    assert (runs_dir(store) / "run-b" / "requests" / "c1.parquet").read_bytes() == b"PAR1 rows of run-b"
    assert (runs_dir(store) / "run-c" / "engine.log").read_text() == "log of run-c\n"
    assert not any((store / ".incoming").iterdir())  # nothing staged is left behind
    # Merging again changes nothing and says so; a runs/ folder or one run folder work as sources.
    again = merge_results([b / "runs", runs_dir(a) / "run-a"], store)
    assert again.ok and again.count("identical") == 3 and again.count("added") == 0


def test_a_different_record_under_the_same_run_id_is_never_overwritten(tmp_path: Path) -> None:
    store = _results(tmp_path / "store", "run-a")
    before = (runs_dir(store) / "run-a" / "record.json").read_bytes()
    other = tmp_path / "other"
    write_record(runs_dir(other) / "run-a", make_record(run_id="run-a", status="failed", error="boom"))
    report = merge_results([other], store)
    assert not report.ok and report.count("conflict") == 1
    assert "different record with run id run-a" in report.items[0].detail
    assert (runs_dir(store) / "run-a" / "record.json").read_bytes() == before


def test_invalid_records_are_reported_and_skipped(tmp_path: Path) -> None:
    src = _results(tmp_path / "src", "run-a")
    bad = runs_dir(src) / "run-bad"
    bad.mkdir()
    (bad / "record.json").write_text('{"run_id": "run-bad"}')
    report = merge_results([src], tmp_path / "store")
    assert report.count("added") == 1 and report.count("invalid") == 1 and not report.ok
    assert not (runs_dir(tmp_path / "store") / "run-bad").exists()


def test_a_failed_copy_leaves_no_half_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _results(tmp_path / "src", "run-a")

    def copy_then_fail(s: Path, d: Path, **kw: object) -> None:
        shutil.copy2(Path(s) / "record.json", Path(d) / "record.json")
        raise OSError("disk full")

    monkeypatch.setattr(merge.shutil, "copytree", copy_then_fail)
    with pytest.raises(OSError, match="disk full"):
        add_run_folder(runs_dir(src) / "run-a", tmp_path / "store")
    assert load_records(tmp_path / "store").records == []
    assert not any((tmp_path / "store" / ".incoming").iterdir())


def test_merge_cli_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _results(tmp_path / "a", "run-a")
    store = tmp_path / "store"
    assert main(["merge", str(a), "--results", str(store)]) == 0
    out = capsys.readouterr().out
    assert "1 run(s) added, 0 already present (identical), 0 conflict(s)" in out
    write_record(runs_dir(tmp_path / "b") / "run-a", make_record(run_id="run-a", status="failed", error="x"))
    assert main(["merge", str(a), str(tmp_path / "b"), "--results", str(store)]) == 1
    out = capsys.readouterr().out
    assert "conflict:" in out and "1 already present (identical), 1 conflict(s)" in out
    assert read_record(runs_dir(store) / "run-a").status == "ok"
    assert main(["merge", str(tmp_path / "nowhere"), "--results", str(store)]) == 2
