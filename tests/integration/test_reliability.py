"""Runs that lose nothing and write nothing outside their folder (issue 28, items 1, 5, 6), on
the fake engine: hostile scenario names, signals at the worst moments, a full or read-only disk."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from harness.planning.plan import plan_runs
from harness.record.run_record import RunRecord
from harness.run import runner
from harness.run.runner import RunHooks, execute
from harness.spec.suite import load_suite
from harness.storage import fallback
from harness.storage.store import load_records, read_record, runs_dir
from tests.integration.conftest import FakeEngine

pytestmark = pytest.mark.integration

SCENARIO = "    - {{name: {name}, input_tokens: 16, output_tokens: {out}, num_requests: {n}, concurrency: 1, warmup_requests: 0}}\n"


def _suite(tmp_path: Path, names: list[str], n: int = 2, out: int = 8, models: str = "[tiny-llama]") -> Path:
    p = tmp_path / "suite.yaml"
    body = "".join(SCENARIO.format(name=f'"{s}"', n=n, out=out) for s in names)
    p.write_text(
        f"name: rel\nmodels: {models}\nengine: {{max_model_len: 1024}}\nperformance:\n  scenarios:\n{body}"
    )
    return p


def _run(suite: Path, results: Path, hooks: RunHooks | None = None) -> RunRecord:
    [plan] = plan_runs(load_suite(suite))
    return execute(plan, results, hooks)


def _signal_after(
    delay_s: float, *signums: signal.Signals, gap_s: float = 0.05
) -> Callable[[str, int], None]:
    """A scenario-start hook that sends this process `signums`, `gap_s` apart, `delay_s` later."""

    def send() -> None:
        for s in signums:
            os.kill(os.getpid(), s)
            threading.Event().wait(gap_s)

    return lambda name, total: threading.Timer(delay_s, send).start()


def _outside(root: Path, results: Path) -> list[Path]:
    return [
        Path(d) / f
        for d, _, files in os.walk(root)
        for f in files
        if not (Path(d) / f).is_relative_to(results) and not f.endswith(".yaml")
    ]


def test_hostile_scenario_names_write_inside_their_run(fake_engine: FakeEngine, tmp_path: Path) -> None:
    fake_engine("--fake-token-delay-ms", "1")
    results = tmp_path / "a" / "b" / "results"
    first = _run(_suite(tmp_path, ["c1"]), results)
    other = runs_dir(results) / first.run_id / "requests" / "c1.parquet"
    rows_before = pq.read_table(other).num_rows
    names = ["../../../../ESCAPED/rel", "/abs/path", f"../../{first.run_id}/requests/c1"]
    rec = _run(_suite(tmp_path, names), results)
    assert rec.status == "ok", rec.error
    assert [s.name for s in rec.scenarios] == names  # the display names stay as written
    assert not _outside(tmp_path, results)
    assert pq.read_table(other).num_rows == rows_before  # the other run's table is untouched
    for s in rec.scenarios:
        assert s.requests_path and (runs_dir(results) / rec.run_id / s.requests_path).is_file()


def test_sigint_mid_scenario_keeps_its_completed_requests(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    fake_engine("--fake-token-delay-ms", "20")
    suite = _suite(tmp_path, ["long"], n=400, out=10)  # ~80 s if it ran to its end
    # 6 s: the load generator builds its prompts first (seconds on a busy 2-core machine)
    with pytest.raises(KeyboardInterrupt):
        _run(suite, results, RunHooks(on_scenario_start=_signal_after(6.0, signal.SIGINT)))
    [rec] = load_records(results).records
    assert rec.status == "failed" and rec.error and "interrupted" in rec.error
    [s] = rec.scenarios  # before: `scenarios: []` and no requests/ folder
    assert s.incomplete and "interrupted (signal SIGINT)" in s.incomplete
    assert s.completed > 0
    assert s.requests_path and pq.read_table(runs_dir(results) / rec.run_id / s.requests_path).num_rows == 400


def test_a_second_and_third_signal_do_not_lose_the_record(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    fake_engine("--fake-token-delay-ms", "20")
    suite = _suite(tmp_path, ["long"], n=200, out=10)
    hook = _signal_after(1.0, signal.SIGTERM, signal.SIGTERM, signal.SIGINT, gap_s=0.1)
    with pytest.raises(KeyboardInterrupt):
        _run(suite, results, RunHooks(on_scenario_start=hook))
    [rec] = load_records(results).records
    assert rec.status == "failed" and rec.error and "interrupted" in rec.error


def test_a_signal_while_the_record_is_written_waits_for_it(
    fake_engine: FakeEngine, results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine("--fake-token-delay-ms", "1")
    real = runner.write_record_or_fallback

    def write_under_fire(run_dir: Path, record: RunRecord) -> Path | None:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-write: deferred, not raised here
        os.kill(os.getpid(), signal.SIGINT)
        return real(run_dir, record)

    monkeypatch.setattr(runner, "write_record_or_fallback", write_under_fire)
    with pytest.raises(KeyboardInterrupt, match="deferred until the record was written"):
        _run(_suite(tmp_path, ["c1"]), results)
    [rec] = load_records(results).records
    assert rec.status == "ok"  # the run itself had finished


def _enospc_in(root: Path, real: Callable[[Path, RunRecord], Path]) -> Callable[[Path, RunRecord], Path]:
    def write(run_dir: Path, record: RunRecord) -> Path:
        if Path(run_dir).is_relative_to(root):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(run_dir, record)

    return write


def test_a_record_that_cannot_be_written_goes_to_the_fallback_and_the_campaign_goes_on(
    fake_engine: FakeEngine,
    results: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.api import run_suite

    fake_engine("--fake-token-delay-ms", "1")
    spare = tmp_path / "spare"
    monkeypatch.setenv("HARNESS_FALLBACK_DIR", str(spare))
    monkeypatch.setattr(fallback, "write_record", _enospc_in(results, fallback.write_record))
    records = run_suite(_suite(tmp_path, ["c1"], models="[tiny-llama, tiny-qwen]"), results=results)
    assert [r.model.preset for r in records] == ["tiny-llama", "tiny-qwen"]  # the second cell ran
    kept = load_records(spare).records
    assert {r.run_id for r in kept} == {r.run_id for r in records}
    err = capsys.readouterr().err
    assert err.count("record.json could not be written") == 2
    assert "No space left on device" in err and "free space on that disk" in err and "harness merge" in err


def test_error_txt_on_a_full_disk_never_masks_the_cause(
    fake_engine: FakeEngine, results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine("--fake-fail-startup", "CUDA out of memory (fake)")
    real_write_text = Path.write_text

    def full(self: Path, *a: object, **kw: object) -> int:
        if self.name == "error.txt":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    rec = _run(_suite(tmp_path, ["c1"]), results)
    assert rec.status == "failed" and rec.error
    assert (
        "CUDA out of memory (fake)" in rec.error
        and "error.txt not written: No space left on device" in rec.error
    )


def _refuse_writes(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file write under `root` fails with ENOSPC, as on a full disk: ``os.open`` (which
    ``tempfile`` and the atomic record writes use), ``open``/``Path.open`` and pyarrow's Parquet
    writes (C++, past Python's ``open``). Folders can still be made, as on a full tmpfs."""
    import builtins
    import io

    import pyarrow.parquet as parquet

    def under(path: object) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False  # a file descriptor or a buffer
        return Path(os.path.abspath(os.fsdecode(path))).is_relative_to(root)

    def refuse(path: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", os.fsdecode(path))  # type: ignore[call-overload]

    real_os_open, real_open, real_write_table = os.open, io.open, parquet.write_table
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def os_open(path: Any, flags: int, *a: Any, **kw: Any) -> int:
        if flags & writing and under(path):
            refuse(path)
        return real_os_open(path, flags, *a, **kw)

    def open_(file: Any, mode: str = "r", *a: Any, **kw: Any) -> Any:
        if set(mode) & set("wax+") and under(file):
            refuse(file)
        return real_open(file, mode, *a, **kw)

    def write_table(table: Any, where: Any, *a: Any, **kw: Any) -> None:
        if under(where):
            refuse(where)
        real_write_table(table, where, *a, **kw)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(parquet, "write_table", write_table)


@pytest.fixture(params=["tmpfs", "refused writes"])
def full_disk(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A full disk: a 256 KiB tmpfs, filled, where this process may mount one (root); where it
    may not, and in the second case everywhere, a folder whose every file write raises ENOSPC."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    mounted = (
        request.param == "tmpfs"
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        == 0
    )
    if mounted:
        try:
            with (mnt / "filler").open("wb") as fh:
                fh.write(b"x" * 1_000_000)
        except OSError:
            pass
    else:
        _refuse_writes(mnt, monkeypatch)
    yield mnt
    if mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_from_the_start(
    fake_engine: FakeEngine, full_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine("--fake-token-delay-ms", "1")
    spare = tmp_path / "spare"
    monkeypatch.setenv("HARNESS_FALLBACK_DIR", str(spare))
    results = full_disk / "results"
    rec = _run(_suite(tmp_path, ["c1"]), results)
    [kept] = load_records(spare).records
    assert kept.run_id == rec.run_id
    assert rec.status == "failed" and rec.error and "No space left on device" in rec.error


def test_a_read_only_results_folder(
    fake_engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EROFS on the first mkdir: the whole run lives in the fallback folder."""
    fake_engine("--fake-token-delay-ms", "1")
    spare = tmp_path / "spare"
    monkeypatch.setenv("HARNESS_FALLBACK_DIR", str(spare))
    results = tmp_path / "ro" / "results"
    real_mkdir = Path.mkdir

    def ro(self: Path, *a: object, **kw: object) -> None:
        if self.is_relative_to(results):
            raise OSError(errno.EROFS, "Read-only file system")
        real_mkdir(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", ro)
    rec = _run(_suite(tmp_path, ["c1"]), results)
    assert rec.status == "ok", rec.error
    assert read_record(runs_dir(spare) / rec.run_id).run_id == rec.run_id
    assert (runs_dir(spare) / rec.run_id / "requests" / "c1.parquet").is_file()
