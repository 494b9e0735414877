"""The whole pipeline on real vLLM CPU servers: records, consistency, failures, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from harness.api import run_suite
from harness.checkpoints import TINY_MODELS, ensure_checkpoint
from harness.engine.vllm_server import VllmServer
from harness.models import get_preset
from harness.records import RunRecord
from harness.store import read_record, runs_dir
from harness.suite import load_suite
from tests.integration.procs import vllm_processes

pytestmark = pytest.mark.integration

TINY_SUITE = """\
name: tiny
models: [tiny-mistral]
seed: 7
engine:
  max_model_len: 1024
  extra_args: [--enforce-eager]
accuracy:
  tasks:
    - {name: harness_capitals, limit: 12}
    - {name: harness_arithmetic, num_fewshot: 2, limit: 8}
performance:
  scenarios:
    - {name: c1, input_tokens: 48, output_tokens: 12, num_requests: 4, concurrency: 1, warmup_requests: 1}
    - {name: rate, input_tokens: 32, output_tokens: 9, num_requests: 6, request_rate: 20, concurrency: 3}
"""


def check_consistency(rec: RunRecord, run_dir: Path) -> None:
    """Internal consistency every ok record must have."""
    assert rec.status == "ok", rec.error
    assert rec.finished_at >= rec.started_at
    for task in rec.accuracy.values():
        assert 0.0 <= task.value <= 1.0
        assert task.stderr is not None and task.stderr >= 0
        assert task.n_samples > 0 and task.version
        assert task.samples_path and (run_dir / task.samples_path).is_file()
    for name, s in rec.performance.items():
        st = s.settings
        assert s.completed == st.num_requests and s.failed == 0, (name, s.errors)
        assert s.total_input_tokens == st.num_requests * st.input_tokens
        assert s.total_output_tokens == st.num_requests * st.output_tokens
        assert s.duration > 0 and s.output_throughput > 0
        assert s.median_ttft_ms is not None and s.median_e2el_ms is not None
        assert s.median_ttft_ms <= s.median_e2el_ms
        assert s.median_tpot_ms is not None and s.median_tpot_ms > 0
        assert s.client_cpu_s > 0 and s.client_cpu_us_per_output_token is not None
        assert s.requests_path is not None
        rows = pq.read_table(run_dir / s.requests_path).to_pylist()
        assert len(rows) == st.num_requests
        for r in rows:
            assert r["error"] is None
            assert r["input_tokens"] == st.input_tokens and r["output_tokens"] == st.output_tokens
            assert 0 < r["ttft_ms"] <= r["e2el_ms"]
        if st.concurrency == 1 and st.request_rate is None:
            assert s.max_concurrency_reached == 1
    assert rec.resources is not None
    if rec.engine is not None and rec.engine.kind == "vllm-server":
        assert rec.resources.engine_peak_rss_bytes and rec.resources.engine_peak_rss_bytes > 100 * 2**20
    else:  # an external endpoint's processes are not ours to measure
        assert rec.resources.engine_peak_rss_bytes is None
    # No NVIDIA GPU here: energy is null with its reason, never a number.
    assert rec.resources.energy_j is None and rec.resources.energy is not None
    reason = rec.resources.energy.reason
    assert "GPU" in reason or "NVML" in reason or reason == "external endpoint"
    for s in rec.performance.values():  # every energy value of issue 10: null, with the reason
        assert s.energy is not None and s.energy.measured is not None and s.energy.gross is not None
        for value in (s.energy.measured, s.energy.gross):
            assert value.energy_j is None and value.reason and value.energy_per_output_token_j is None
    if rec.accuracy:
        acc = rec.resources.accuracy_energy
        assert acc is not None and acc.value is not None and acc.value.reason
        assert acc.energy_per_correct_sample_j is None and acc.correct_samples is not None
    assert rec.resources.memory is not None
    assert rec.resources.memory.reasons.get("nvml_memory_total_bytes")
    on_disk = json.loads((run_dir / "record.json").read_text())
    assert on_disk["schema_version"] == 2 and on_disk["status"] == "ok"
    assert [s["name"] for s in on_disk["scenarios"]] == list(rec.performance)  # named entries
    assert [t["name"] for t in on_disk["tasks"]] == list(rec.accuracy)
    # Results as data: the real record gives one row per scenario, with the record's figures.
    from harness.results import load_runs

    runs = load_runs(run_dir.parent.parent)
    rows = runs[runs.run_id == rec.run_id]
    assert rows.scenario.tolist() == list(rec.performance)
    for name, s in rec.performance.items():
        assert rows[rows.scenario == name].output_throughput.iloc[0] == s.output_throughput
    env = rec.environment
    assert env.packages.get("lm-eval") and env.packages.get("torch") and env.cpu_model


def wait_for_engine(results: Path, timeout_s: float = 600) -> None:
    """Block until the (only) run under `results` has a healthy engine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = list(runs_dir(results).glob("*/engine.log")) if runs_dir(results).exists() else []
        if logs and "Application startup complete" in logs[0].read_text(errors="replace"):
            return
        time.sleep(1)
    pytest.fail("engine never came up")


def test_smoke_suite_on_smollm2(smollm2_server: VllmServer, results: Path) -> None:
    """The shipped smoke suite on the real pretrained default, through --endpoint."""
    [rec] = run_suite("smoke", models=["smollm2-135m"], results=results, endpoint=smollm2_server.base_url)
    run_dir = runs_dir(results) / rec.run_id
    check_consistency(rec, run_dir)
    assert rec.engine is not None and rec.engine.kind == "endpoint"
    assert set(rec.accuracy) == {"harness_capitals", "harness_opposites", "harness_arithmetic"}
    chance = {"harness_capitals": 0.25, "harness_opposites": 0.25, "harness_arithmetic": 0.0}
    for name, task in rec.accuracy.items():
        assert task.stderr is not None
        assert task.value - 2 * task.stderr > chance[name], (name, task.value, task.stderr)
    # An external endpoint's weights cannot be checksummed from here: the record says so.
    assert rec.model.checksum_sha256 is None
    assert rec.model.checksum is not None and "unverified" in rec.model.checksum.reason


def test_tiny_model_suite_with_harness_started_engine(results: Path, tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY_SUITE)
    [rec] = run_suite(suite, results=results)
    run_dir = runs_dir(results) / rec.run_id
    check_consistency(rec, run_dir)
    assert rec.engine is not None and rec.engine.kind == "vllm-server"
    assert rec.engine.startup_s and rec.engine.startup_s > 1
    assert rec.engine.command and "--enforce-eager" in rec.engine.command
    assert (run_dir / "engine.log").stat().st_size > 0
    assert rec.resources is not None and "engine_start" in rec.resources.phases
    assert rec.resources.phases["engine_start"].engine_cpu_s
    assert not vllm_processes(), "engine processes left behind"


@pytest.mark.parametrize("name", TINY_MODELS)
def test_each_family_serves_completions(name: str, tmp_path: Path) -> None:
    """Every family's vLLM code path (SWA, GQA, MoE, MLA, Phi-3) loads and generates on the CPU."""
    path = ensure_checkpoint(name)
    preset = get_preset(name)
    server = VllmServer(
        str(path),
        name,
        [*preset.engine.as_cli(), "--enforce-eager"],
        log_path=tmp_path / "engine.log",
        startup_timeout_s=900,
    )
    try:
        server.start()
        import urllib.request

        body = json.dumps({"model": name, "prompt": [1, 415, 5565, 302], "max_tokens": 5, "ignore_eos": True})
        req = urllib.request.Request(
            f"{server.base_url}/v1/completions", body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=120) as r:
            out = json.load(r)
        assert out["usage"]["completion_tokens"] == 5 and out["usage"]["prompt_tokens"] == 4
    finally:
        server.stop()
    assert not vllm_processes()


def test_engine_that_never_becomes_healthy_fails_the_run(results: Path, tmp_path: Path) -> None:
    suite = tmp_path / "slow.yaml"
    suite.write_text(
        TINY_SUITE.replace("  max_model_len: 1024", "  max_model_len: 1024\n  startup_timeout_s: 3")
    )
    [rec] = run_suite(suite, results=results)
    assert rec.status == "failed"
    assert rec.error and "not healthy after 3 s" in rec.error
    assert not rec.accuracy and not rec.performance
    assert read_record(runs_dir(results) / rec.run_id).status == "failed"
    assert not vllm_processes(), "engine processes left behind"


def test_engine_that_cannot_load_fails_with_its_cause(results: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "architectures": ["NoSuchForCausalLM"]}')
    suite = tmp_path / "b.yaml"
    suite.write_text(TINY_SUITE)
    [rec] = run_suite(suite, models=[str(broken)], results=results)
    assert rec.status == "failed"
    assert rec.error and "exited with code" in rec.error
    assert not vllm_processes()


def test_engine_killed_mid_run_ends_failed_and_other_runs_go_on(results: Path, tmp_path: Path) -> None:
    suite = tmp_path / "long.yaml"
    suite.write_text(
        TINY_SUITE.replace("num_requests: 4, concurrency: 1", "num_requests: 400, concurrency: 1").replace(
            "models: [tiny-mistral]", "models: [tiny-llama, tiny-qwen]"
        )
    )
    killed: list[int] = []

    def killer() -> None:
        # Kill the first engine once its first scenario is under way (the run has written requests).
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            base = runs_dir(results)
            logs = list(base.glob("*tiny-llama*/samples/harness_arithmetic.jsonl")) if base.exists() else []
            if logs:
                time.sleep(3)
                leaders = vllm_processes()
                if leaders:
                    os.killpg(leaders[0].pid, signal.SIGKILL)
                    killed.append(leaders[0].pid)
                return
            time.sleep(0.5)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    spec = load_suite(suite)
    recs = run_suite(spec, results=results)
    th.join(timeout=5)
    assert killed, "the engine was never killed"
    first, second = recs
    assert first.status == "failed", first.error
    assert first.error and ("died" in first.error or "EngineError" in first.error)
    assert first.accuracy, "what was measured before the crash is kept"
    assert second.status == "ok", second.error
    assert not vllm_processes()


def test_sigterm_stops_engine_and_writes_failed_record(results: Path, tmp_path: Path) -> None:
    suite = tmp_path / "t.yaml"
    suite.write_text(TINY_SUITE.replace("models: [tiny-mistral]", "models: [tiny-phi]"))
    out = (tmp_path / "harness.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(suite), "--results", str(results), "--no-progress"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    engine_pids: set[int] = set()
    try:
        wait_for_engine(results)
        engine_pids = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        assert engine_pids
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        assert code == 130, (tmp_path / "harness.out").read_text(errors="replace")[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    [run_dir] = list(runs_dir(results).iterdir())
    rec = read_record(run_dir)
    assert rec.status == "failed" and rec.error and "interrupted" in rec.error
    time.sleep(1)
    alive = [
        pid for pid in engine_pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
    ]
    assert not alive, f"orphans left: {alive}"


def test_engine_dies_with_a_killed_harness(results: Path, tmp_path: Path) -> None:
    """Even SIGKILL of the harness (no clean-up code runs) leaves no vLLM server behind."""
    suite = tmp_path / "k.yaml"
    suite.write_text(TINY_SUITE.replace("models: [tiny-mistral]", "models: [tiny-qwen]"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(suite), "--results", str(results), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_engine(results)
        engine = [psutil.Process(p.pid) for p in psutil.Process(proc.pid).children(recursive=True)]
        assert engine
        proc.kill()
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(engine, timeout=60)
        assert not alive, f"orphans left: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
