"""What every ok record must satisfy, and small waits, shared by the integration tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.record.energy import scenario_energy_value
from harness.record.run_record import SCHEMA_VERSION, RunRecord
from harness.storage.store import runs_dir

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


def check_consistency(rec: RunRecord, run_dir: Path, min_engine_rss_bytes: int = 100 * 2**20) -> None:
    """Internal consistency every ok record must have.

    `min_engine_rss_bytes` is what the engine tree must at least have used when the harness
    started it (vLLM: 100 MiB; the fake server, which loads nothing: a Python process).
    """
    assert rec.status == "ok", rec.error
    assert rec.finished_at >= rec.started_at
    for task in rec.accuracy.values():
        assert 0.0 <= task.value <= 1.0
        assert task.stderr is not None and task.stderr >= 0
        assert task.n_samples > 0 and task.version
        assert task.samples_path and (run_dir / task.samples_path).is_file()
    for name, s in rec.performance.items():
        st = s.settings.load
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
        peak = rec.resources.engine_peak_rss_bytes
        assert peak and peak > min_engine_rss_bytes, peak
    else:  # an external endpoint's processes are not ours to measure
        assert rec.resources.engine_peak_rss_bytes is None
    # No NVIDIA GPU here: energy is null with its reason, never a number.
    assert rec.resources.energy_j is None and rec.resources.energy is not None
    reason = rec.resources.energy.reason
    assert "GPU" in reason or "NVML" in reason or reason == "external endpoint"
    for s in rec.performance.values():  # every energy value of issue 10: null, with the reason
        gross = scenario_energy_value(s, "scenario_window")  # derived from the window's one reading
        assert s.energy is not None and s.energy.measured is not None and gross is not None
        for value in (s.energy.measured, gross):
            assert value.energy_j is None and value.reason and value.energy_per_output_token_j is None
    if rec.accuracy:
        acc = rec.resources.accuracy_energy
        assert acc is not None and acc.value is not None and acc.value.reason
        assert acc.energy_per_correct_sample_j is None and acc.correct_samples is not None
    assert rec.resources.memory is not None
    assert rec.resources.memory.reasons.get("nvml_memory_total_bytes")
    on_disk = json.loads((run_dir / "record.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["status"] == "ok"
    assert [s["name"] for s in on_disk["scenarios"]] == list(rec.performance)  # named entries
    assert [t["name"] for t in on_disk["tasks"]] == list(rec.accuracy)
    # Results as data: the real record gives one row per scenario, with the record's figures.
    from harness.analysis.tables import load_runs

    runs = load_runs(run_dir.parent.parent)
    rows = runs[runs.run_id == rec.run_id]
    assert rows.scenario.tolist() == list(rec.performance)
    for name, s in rec.performance.items():
        assert rows[rows.scenario == name].output_throughput.iloc[0] == s.output_throughput
    env = rec.environment
    assert env.packages.get("lm-eval") and env.packages.get("torch") and env.cpu_model


def wait_for_engine(results: Path, timeout_s: float = 600) -> None:
    """Block until the (only) run under `results` has a healthy engine (its log says so)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = list(runs_dir(results).glob("*/engine.log")) if runs_dir(results).exists() else []
        if logs and "Application startup complete" in logs[0].read_text(errors="replace"):
            return
        time.sleep(0.2)
    pytest.fail("engine never came up")
