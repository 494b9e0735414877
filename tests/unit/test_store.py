"""Atomic record writes and tolerant loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.storage import files, store
from harness.storage.store import atomic_write_text, load_records, read_record, write_record
from tests.factories import gate_record as make_record


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


def test_round_trip_and_bad_files_reported(tmp_path: Path) -> None:
    rec = make_record()
    run_dir = store.runs_dir(tmp_path) / rec.run_id
    write_record(run_dir, rec)
    assert read_record(run_dir) == rec
    bad = store.runs_dir(tmp_path) / "broken"
    bad.mkdir()
    (bad / "record.json").write_text(json.dumps({"run_id": "x"}))
    loaded = load_records(tmp_path)
    assert [r.run_id for r in loaded.records] == [rec.run_id]
    assert len(loaded.problems) == 1 and "broken/record.json" in loaded.problems[0]
