"""What the harness writes for people: baselines, dashboards, gate summaries (issue 28, item 8)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from harness.dashboard.build import build_dashboard
from harness.gate import compare, render_markdown
from harness.record.hardware import file_slug
from harness.record.run_record import RunRecord
from harness.storage.baseline import baseline_path, find_baseline, list_baselines, set_baseline
from harness.storage.store import runs_dir, write_record
from tests.factories import T0, gate_record, make_record


def test_baselines_of_names_that_slug_alike_stay_apart(tmp_path: Path) -> None:
    a = make_record(model_info={"preset": "my-model"}, run_id="a")
    b = make_record(model_info={"preset": "My_Model"}, run_id="b")
    pa, _ = set_baseline(tmp_path, a)
    pb, replaced = set_baseline(tmp_path, b)
    assert pa != pb and replaced is None  # before: one file, `my-model__...`, and b replaced a
    assert find_baseline(tmp_path, a).run_id == "a" and find_baseline(tmp_path, b).run_id == "b"
    assert len(list_baselines(tmp_path)) == 2


def test_a_legacy_baseline_is_used_only_for_its_own_model(tmp_path: Path) -> None:
    """Baselines set before the one rule (lower-cased slugs) are still found, but never for a
    name that merely slugs alike."""
    old = make_record(model_info={"preset": "My_Model"}, run_id="old")
    legacy = (
        tmp_path
        / "baselines"
        / f"{file_slug('My_Model')}__smoke__{baseline_path(tmp_path, old).name.split('__')[-1]}"
    )
    legacy.parent.mkdir(parents=True)
    legacy.write_text(old.model_dump_json())
    assert find_baseline(tmp_path, old).run_id == "old"
    other = make_record(model_info={"preset": "my-model"}, run_id="new")
    try:
        find_baseline(tmp_path, other)
    except ValueError as exc:
        assert "no baseline" in str(exc)
    else:
        raise AssertionError("my-model must not be gated against My_Model's legacy baseline")


def test_dashboard_out_removes_only_pages_its_manifest_lists(tmp_path: Path) -> None:
    results, out = tmp_path / "results", tmp_path / "dash"
    for i, rid in enumerate(("run-a", "run-b")):
        write_record(runs_dir(results) / rid, make_record(run_id=rid, started_at=T0.replace(minute=i)))
    build_dashboard(results, out)
    mine = sorted(p.name for p in (out / "runs").glob("*.html"))
    assert len(mine) == 2
    (out / "runs" / "notes.html").write_text("<p>hand-written</p>")
    (out / "models" / "my-notes.html").write_text("<p>hand-written</p>")
    shutil.rmtree(runs_dir(results) / "run-b")  # a run gone: its page goes, nothing else
    build_dashboard(results, out)
    left = sorted(p.name for p in (out / "runs").glob("*.html"))
    assert "notes.html" in left and len(left) == 2, left
    assert (out / "models" / "my-notes.html").is_file()
    assert set(mine) - set(left) and not any("run-b" in n for n in left)


def test_gate_summary_escapes_record_text() -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)> ![t](http://x/t.png) `x` a|b"
    base = gate_record("run-base")
    cand = gate_record("run-cand", minutes=5, status="failed", error=evil)
    md = render_markdown(compare(base, cand))
    assert "<script>" not in md and "<img" not in md and "](http" not in md
    assert "&lt;script&gt;" in md and "&lt;img src=x onerror=alert(2)&gt;" in md
    assert "a\\|b" in md


def test_setting_a_baseline_moves_a_legacy_file_of_another_name_aside(tmp_path: Path) -> None:
    old = make_record(model_info={"preset": "My_Model"}, run_id="old")
    legacy = tmp_path / "baselines" / baseline_path(tmp_path, old).name.replace("My_Model", "my-model")
    legacy.parent.mkdir(parents=True)
    legacy.write_text(old.model_dump_json())
    new = make_record(model_info={"preset": "my-model"}, run_id="new")
    path, replaced = set_baseline(tmp_path, new)
    assert path == legacy and replaced is None
    assert find_baseline(tmp_path, new).run_id == "new" and find_baseline(tmp_path, old).run_id == "old"


def test_the_record_line_after_a_run_names_where_the_record_really_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record the results folder could not take is shown in the fallback folder (issue 28, item 6)."""
    from rich.console import Console

    from harness.commands.report import print_summary
    from harness.storage import fallback

    results, spare = tmp_path / "results", tmp_path / "spare"
    monkeypatch.setenv("HARNESS_FALLBACK_DIR", str(spare))
    home = make_record(run_id="20260101T000000Z-home-0001")
    fallback.write_record_or_fallback(fallback.make_run_dir(runs_dir(results), home.run_id), home)
    real = fallback.write_record

    def full(run_dir: Path, record: RunRecord) -> Path:
        if Path(run_dir).is_relative_to(results):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(run_dir, record)

    monkeypatch.setattr(fallback, "write_record", full)
    away = make_record(run_id="20260101T000000Z-away-0002")
    fallback.write_record_or_fallback(fallback.make_run_dir(runs_dir(results), away.run_id), away)
    lost = make_record(run_id="20260101T000000Z-lost-0003")  # written nowhere (never written here)
    console = Console(width=400, no_color=True)
    print_summary([home, away, lost], results, console)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("record: ")]
    assert lines == [
        f"record: {runs_dir(results) / home.run_id / 'record.json'}",
        f"record: {runs_dir(spare) / away.run_id / 'record.json'}",  # before: the results path
        "record: written nowhere (see the error above)",
    ]
    assert (runs_dir(spare) / away.run_id / "record.json").is_file()
    assert not (runs_dir(results) / away.run_id / "record.json").exists()
