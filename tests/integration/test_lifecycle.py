"""The harness's own engine management, end to end, against the fake server (tests.fakeserver).

The harness starts the fake exactly as it starts vLLM, so what is exercised here is the
harness's behaviour: spawn, health wait and its time-out, a crash at start-up or mid-run, stopping
the process tree (SIGKILL when SIGTERM is ignored), SIGTERM of the harness (failed record, exit
130) and SIGKILL of the harness (PDEATHSIG). Every test also fails if any process it started
outlives it (conftest.py).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.api import run_suite
from harness.engine.base import EngineError
from harness.engine.vllm_server import VllmServer
from harness.model.checkpoints import ensure_checkpoint
from harness.storage.store import read_record, runs_dir
from tests.integration.checks import TINY_SUITE, check_consistency, wait_for_engine
from tests.integration.conftest import FakeEngine
from tests.integration.procs import leftovers

pytestmark = pytest.mark.integration

FAKE_MIN_RSS = 20 * 2**20  # a Python process with aiohttp, and its forked worker


def _harness_cli(suite: Path, results: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(suite), "--results", str(results), "--no-progress"],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_tiny_suite_with_harness_started_engine(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    """lm-eval's loglikelihood and generate_until requests, both load shapes, the record."""
    fake_engine("--fake-token-delay-ms", "3", "--fake-workers", "2")
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    [rec] = run_suite(suite, results=results)
    run_dir = runs_dir(results) / rec.run_id
    check_consistency(rec, run_dir, min_engine_rss_bytes=FAKE_MIN_RSS)
    assert set(rec.accuracy) == {"harness_capitals", "harness_arithmetic"}
    assert rec.engine is not None and rec.engine.kind == "vllm-server"
    assert rec.engine.startup_s and rec.engine.startup_s > 0
    cmd = rec.engine.command or []
    assert "tests.fakeserver" in cmd and "--enforce-eager" in cmd and cmd[cmd.index("--seed") + 1] == "7"
    assert "Application startup complete" in (run_dir / "engine.log").read_text()
    assert rec.resources is not None and rec.resources.phases["engine_start"].engine_cpu_s
    memory = rec.resources.memory
    assert memory is not None and memory.kv_cache_capacity_tokens == 16384
    assert memory.kv_cache_source == "engine log"
    kv = rec.resources.phases["accuracy"].kv_cache  # the longest phase: polled every 0.5 s
    assert kv is not None and kv.polls > 0 and kv.peak_usage_frac is not None, kv


def test_engine_that_never_becomes_healthy_fails_the_run(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    fake_engine("--fake-never-healthy")
    suite = tmp_path / "slow.yaml"
    suite.write_text(
        TINY_SUITE.replace("  max_model_len: 1024", "  max_model_len: 1024\n  startup_timeout_s: 3")
    )
    t0 = time.monotonic()
    [rec] = run_suite(suite, results=results)
    assert time.monotonic() - t0 < 60
    assert rec.status == "failed"
    assert rec.error and "not healthy after 3 s" in rec.error and "loading forever" in rec.error
    assert not rec.accuracy and not rec.performance
    assert read_record(runs_dir(results) / rec.run_id).status == "failed"
    assert not leftovers(timeout_s=5), "engine processes left behind"


def test_engine_that_cannot_load_fails_with_its_cause(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    fake_engine("--fake-fail-startup", "Model architectures ['NoSuchForCausalLM'] are not supported")
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "architectures": ["NoSuchForCausalLM"]}')
    suite = tmp_path / "b.yaml"
    suite.write_text(TINY_SUITE)
    [rec] = run_suite(suite, models=[str(broken)], results=results)
    assert rec.status == "failed"
    assert rec.error and "exited with code 1" in rec.error
    assert "NoSuchForCausalLM" in rec.error, "the cause from the engine log is in the record"
    assert not leftovers(timeout_s=5)


def test_engine_killed_mid_run_ends_failed_and_other_runs_go_on(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    # The first model's engine is SIGKILLed (as by the OOM killer) on its third streaming
    # request: after accuracy, inside the first load scenario. The second model's is healthy.
    fake_engine("--fake-only", "tiny-llama", "--fake-die-after-streams", "3")
    suite = tmp_path / "long.yaml"
    suite.write_text(TINY_SUITE.replace("models: [tiny-mistral]", "models: [tiny-llama, tiny-qwen]"))
    first, second = run_suite(suite, results=results)
    assert first.status == "failed", first.error
    assert first.error and "died" in first.error and "-9" in first.error, first.error
    assert set(first.accuracy) == {"harness_capitals", "harness_arithmetic"}, "measured before the crash"
    assert "rate" not in first.performance
    assert read_record(runs_dir(results) / first.run_id).status == "failed"
    assert second.status == "ok", second.error
    check_consistency(second, runs_dir(results) / second.run_id, min_engine_rss_bytes=FAKE_MIN_RSS)
    assert not leftovers(timeout_s=5)


def test_sigterm_stops_engine_and_writes_failed_record(
    fake_engine: FakeEngine, results: Path, tmp_path: Path
) -> None:
    fake_engine("--fake-token-delay-ms", "50", "--fake-workers", "2")
    suite = tmp_path / "t.yaml"
    suite.write_text(TINY_SUITE.replace("models: [tiny-mistral]", "models: [tiny-phi]"))
    out = tmp_path / "harness.out"
    proc = _harness_cli(suite, results, out)
    try:
        wait_for_engine(results, timeout_s=120)
        engine = psutil.Process(proc.pid).children(recursive=True)
        assert len(engine) >= 3, engine  # the server and its two workers
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        assert code == 130, out.read_text(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [run_dir] = list(runs_dir(results).iterdir())
    rec = read_record(run_dir)
    assert rec.status == "failed" and rec.error and "interrupted" in rec.error
    # The harness waited for its engine tree before exiting: nothing is left, not even briefly.
    assert not leftovers(), "engine processes outlived the harness"


def test_engine_dies_with_a_killed_harness(fake_engine: FakeEngine, results: Path, tmp_path: Path) -> None:
    """Even SIGKILL of the harness (no clean-up code runs) leaves no engine process behind."""
    fake_engine("--fake-token-delay-ms", "50", "--fake-workers", "2")
    suite = tmp_path / "k.yaml"
    suite.write_text(TINY_SUITE.replace("models: [tiny-mistral]", "models: [tiny-qwen]"))
    proc = _harness_cli(suite, results, tmp_path / "harness.out")
    try:
        wait_for_engine(results, timeout_s=120)
        engine = psutil.Process(proc.pid).children(recursive=True)
        assert len(engine) >= 3, engine
        proc.kill()
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(engine, timeout=30)
        assert not alive, f"orphans left: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stop_kills_a_tree_that_ignores_sigterm(fake_engine: FakeEngine, tmp_path: Path) -> None:
    """stop(): SIGTERM to the process group, then SIGKILL to whatever is still alive."""
    fake_engine("--fake-ignore-sigterm", "--fake-workers", "2", "--fake-startup-delay-s", "1.5")
    server = VllmServer(
        str(ensure_checkpoint("tiny-llama")),
        "tiny-llama",
        [],
        log_path=tmp_path / "e.log",
        startup_timeout_s=60,
    )
    try:
        server.start()
        assert server.startup_s is not None and server.startup_s >= 1.5, "health wait returned early"
        assert server.pid is not None
        tree = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        assert len(tree) == 3
        server.check_alive()
        t0 = time.monotonic()
        server.stop(grace_s=2)
        took = time.monotonic() - t0
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert 2 <= took < 15, took  # waited the grace period, then killed
        server.stop()  # idempotent
    finally:
        server.stop()


def test_check_alive_reports_a_dead_engine(fake_engine: FakeEngine, tmp_path: Path) -> None:
    server = VllmServer(
        str(ensure_checkpoint("tiny-llama")),
        "tiny-llama",
        [],
        log_path=tmp_path / "e.log",
        startup_timeout_s=60,
    )
    try:
        server.start()
        assert server.pid is not None
        assert server.proc is not None
        psutil.Process(server.pid).kill()
        server.proc.wait(timeout=10)  # reaped by its Popen, which keeps the exit status
        with pytest.raises(EngineError, match=r"died \(exit code -9\)"):
            server.check_alive()
    finally:
        server.stop()  # also takes the dead server's orphaned worker
