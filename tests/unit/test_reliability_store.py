"""The results store no file can break (issue 28, items 2, 3 and 8): every reader skips a record
that fails migration or validation with a warning naming the file and the field, and a FIFO
named record.json is refused without opening it for a blocking read."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import harness
from harness.analysis.tables import UnreadableRecordWarning
from harness.cli import main
from harness.record.migrate import RecordVersionError, parse_record
from harness.storage.merge import merge_results
from harness.storage.store import find_run, load_records, read_record, runs_dir, write_record
from tests.factories import T0, make_record

BAD: dict[str, str | bytes] = {
    "list-accuracy": '{"schema_version":1,"accuracy":[1,2]}',
    "int-result": '{"schema_version":1,"accuracy":{"t":5}}',
    "list-performance": '{"schema_version":1,"performance":"x"}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "not-json": "{",
    "not-utf8": b'{"run_id": "\xff"}',
    "top-level-list": "[1, 2]",
    "future": '{"schema_version": 99}',
}


def _store(root: Path, fifo: bool = True) -> Path:
    write_record(runs_dir(root) / "good", make_record(run_id="good", started_at=T0))
    for name, text in BAD.items():
        d = runs_dir(root) / name
        d.mkdir(parents=True)
        (d / "record.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    if fifo:
        (runs_dir(root) / "fifo").mkdir()
        os.mkfifo(runs_dir(root) / "fifo" / "record.json")
    return root


@pytest.mark.parametrize("name", ["list-accuracy", "int-result", "list-performance"])
def test_a_v1_record_of_the_wrong_shape_is_refused_naming_the_field(name: str) -> None:
    with pytest.raises(RecordVersionError, match="accuracy|performance"):
        parse_record(BAD[name])


def test_load_records_skips_each_bad_file_naming_it_and_never_hangs(tmp_path: Path) -> None:
    loaded = load_records(_store(tmp_path))
    assert [r.run_id for r in loaded.records] == ["good"]
    assert len(loaded.problems) == len(BAD) + 1
    joined = "\n".join(loaded.problems)
    for name in [*BAD, "fifo"]:
        assert f"runs/{name}/record.json" in joined, name
    assert "accuracy: a v1 record keeps an object here, not list" in joined
    assert "accuracy.t: a v1 result is an object, not int" in joined
    assert "not a regular file" in joined


def test_read_record_of_a_fifo_is_a_value_error(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "record.json")
    with pytest.raises(ValueError, match="not a regular file"):
        read_record(tmp_path)


def test_load_runs_warns_and_keeps_the_good_run(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = harness.load_runs(_store(tmp_path))
    assert set(frame["run_id"]) == {"good"}
    assert sum(issubclass(w.category, UnreadableRecordWarning) for w in caught) == len(BAD) + 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["export", "--out", "{tmp}/export"],
        ["gate", "--latest", "--baseline", "{results}/runs/good"],
        ["dashboard", "--out", "{tmp}/dash"],
    ],
    ids=["runs", "export", "gate-latest", "dashboard"],
)
def test_every_reader_command_survives_the_bad_store(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _store(tmp_path / "results")
    args = [a.format(tmp=tmp_path, results=results) for a in argv] + ["--results", str(results)]
    code = main(args)
    assert code in (0, 1), capsys.readouterr()  # 1: the gate's own verdict, never a crash (2)
    err = capsys.readouterr()
    assert "Traceback" not in err.out + err.err


def test_merge_skips_bad_records_and_adds_the_good_one(tmp_path: Path) -> None:
    src = _store(tmp_path / "src", fifo=False)
    report = merge_results([src], tmp_path / "store")
    assert report.count("added") == 1 and report.count("invalid") == len(BAD)
    assert [r.run_id for r in load_records(tmp_path / "store").records] == ["good"]


def test_merge_keeps_a_hostile_run_id_inside_the_store(tmp_path: Path) -> None:
    for i, rid in enumerate(("../../MERGE-ESCAPED", "../../../../etc/passwd", "x" * 5000)):
        write_record(tmp_path / "src" / "runs" / f"run{i}", make_record(run_id=rid))
    report = merge_results([tmp_path / "src"], tmp_path / "store")
    assert report.count("added") == 3, report.summary()
    assert not (tmp_path / "MERGE-ESCAPED").exists() and not (tmp_path.parent / "MERGE-ESCAPED").exists()
    ids = {r.run_id for r in load_records(tmp_path / "store").records}
    assert ids == {"../../MERGE-ESCAPED", "../../../../etc/passwd", "x" * 5000}
    for d in runs_dir(tmp_path / "store").iterdir():
        assert len(d.name) <= 120 and "/" not in d.name


def test_a_5000_character_run_id_is_found_and_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = "r" * 5000
    merge_results([_one(tmp_path / "src", rid)], tmp_path / "store")
    assert read_record(find_run(tmp_path / "store", rid)).run_id == rid
    assert main(["show", rid, "--results", str(tmp_path / "store")]) == 0
    with pytest.raises(FileNotFoundError, match="no run"):
        find_run(tmp_path / "store", "q" * 5000)


def _one(root: Path, rid: str) -> Path:
    write_record(runs_dir(root) / "one", make_record(run_id=rid))
    return root
