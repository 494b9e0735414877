"""Run records with known figures, built through the real pydantic models (so they validate).

`make_record()` gives a plausible smoke-suite run on a CPU; keyword arguments and the
`with_*` helpers change exactly the figures a test is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from harness.records import (
    EngineInfo,
    Environment,
    GpuInfo,
    ModelInfo,
    PhaseResources,
    Resources,
    RunRecord,
    ScenarioResult,
    ScenarioSettings,
    SuiteInfo,
    TaskResult,
)
from harness.store import write_record
from harness.suite import SuiteSpec

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
R = TypeVar("R", TaskResult, ScenarioResult)

SUITE_SPEC: dict[str, Any] = {
    "name": "smoke",
    "models": ["tiny-llama"],
    "accuracy": {"tasks": [{"name": "harness_capitals"}, {"name": "harness_arithmetic", "num_fewshot": 3}]},
    "performance": {
        "scenarios": [
            {"name": "c1", "input_tokens": 128, "output_tokens": 32, "num_requests": 16, "concurrency": 1},
        ]
    },
    "gates": [
        {"metric": "harness_capitals", "max_abs_change": 0.05},
        {"metric": "harness_arithmetic", "max_abs_change": 0.05},
        {"metric": "output_throughput", "scenario": "c1", "max_rel_change": 0.10},
        {"metric": "p99_ttft_ms", "scenario": "c1", "max_rel_change": 0.20},
        {"metric": "mean_tpot_ms", "scenario": "c1", "max_rel_change": 0.10},
    ],
}


def spec_dict(**changes: Any) -> dict[str, Any]:
    """The suite spec as a record stores it (validated and dumped), with top-level changes."""
    return SuiteSpec.model_validate({**SUITE_SPEC, **changes}).model_dump(mode="json")


def task(name: str, value: float, stderr: float | None = 0.01, **kw: Any) -> TaskResult:
    fields: dict[str, Any] = {
        "name": name,
        "metric": "exact_match",
        "value": value,
        "stderr": stderr,
        "n_samples": 100,
        "num_fewshot": 0,
        "version": "1.0",
    }
    return TaskResult(**{**fields, **kw})


def scenario(
    output_throughput: float = 200.0,
    *,
    name: str = "c1",
    p99_ttft_ms: float = 50.0,
    mean_tpot_ms: float = 5.0,
    std_tpot_ms: float = 0.2,
    energy_j: float | None = None,
    **kw: Any,
) -> ScenarioResult:
    settings = ScenarioSettings(
        input_tokens=128,
        output_tokens=32,
        num_requests=16,
        concurrency=1,
        request_rate=None,
        warmup_requests=1,
        seed=1234,
    )
    fields: dict[str, Any] = {
        "name": name,
        "settings": settings,
        "completed": 16,
        "failed": 0,
        "duration": 2.56,
        "total_input_tokens": 2048,
        "total_output_tokens": 512,
        "request_throughput": 6.25,
        "output_throughput": output_throughput,
        "total_token_throughput": 1000.0,
        "mean_ttft_ms": 30.0,
        "median_ttft_ms": 29.0,
        "std_ttft_ms": 4.0,
        "p90_ttft_ms": 35.0,
        "p99_ttft_ms": p99_ttft_ms,
        "mean_tpot_ms": mean_tpot_ms,
        "median_tpot_ms": mean_tpot_ms,
        "std_tpot_ms": std_tpot_ms,
        "p90_tpot_ms": mean_tpot_ms * 1.1,
        "p99_tpot_ms": mean_tpot_ms * 1.2,
        "mean_itl_ms": mean_tpot_ms,
        "median_itl_ms": mean_tpot_ms,
        "std_itl_ms": std_tpot_ms,
        "p90_itl_ms": mean_tpot_ms * 1.1,
        "p99_itl_ms": mean_tpot_ms * 1.3,
        "mean_e2el_ms": 190.0,
        "median_e2el_ms": 188.0,
        "std_e2el_ms": 6.0,
        "p90_e2el_ms": 198.0,
        "p99_e2el_ms": 205.0,
        "max_concurrency_reached": 1,
        "client_cpu_s": 0.05,
        "client_cpu_us_per_output_token": 97.0,
        "resources": PhaseResources(
            duration_s=2.6, engine_cpu_s=5.0, engine_peak_rss_bytes=1 << 30, energy_j=energy_j
        ),
    }
    return ScenarioResult(**{**fields, **kw})


def environment(gpus: list[str] | None = None, cpu_model: str = "Test CPU 9000", **kw: Any) -> Environment:
    fields: dict[str, Any] = {
        "harness_version": "0.1.0",
        "git_sha": "abc1234",
        "python": "3.11.9",
        "platform": "Linux",
        "hostname": "ci-runner",
        "packages": {"vllm": "0.32.0", "lm-eval": "0.4.13"},
        "cpu_model": cpu_model,
        "cpu_count": 2,
        "memory_total_bytes": 24 << 30,
        "gpus": [GpuInfo(index=i, name=n) for i, n in enumerate(gpus or [])],
        "gpu_reason": None if gpus else "no NVIDIA GPU",
    }
    return Environment(**{**fields, **kw})


def make_record(
    run_id: str = "run-base",
    *,
    minutes: int = 0,
    accuracy: dict[str, TaskResult] | None = None,
    performance: dict[str, ScenarioResult] | None = None,
    spec: dict[str, Any] | None = None,
    env: Environment | None = None,
    model: dict[str, Any] | None = None,
    **kw: Any,
) -> RunRecord:
    """A complete, valid record; `minutes` offsets its start so `--latest` order is controllable.

    ``accuracy`` and ``performance`` map names to results (the name inside each entry is set
    from the key); the record stores them as its ``tasks`` and ``scenarios`` lists."""
    started = T0 + timedelta(minutes=minutes)
    spec = spec_dict() if spec is None else spec
    fields: dict[str, Any] = {
        "run_id": run_id,
        "status": "ok",
        "suite": SuiteInfo(
            name=spec.get("name", "smoke"), path="suites/smoke.yaml", sha256="0" * 64, spec=spec
        ),
        "model": ModelInfo(
            **{
                "preset": "tiny-llama",
                "family": "llama",
                "source": "/cache/tiny-llama",
                "revision": None,
                "checksum_sha256": "f" * 64,
                "served_name": "tiny-llama",
                **(model or {}),
            }
        ),
        "engine": EngineInfo(
            kind="vllm-server",
            endpoint="http://127.0.0.1:8000",
            args={"dtype": "float32", "max_model_len": 2048},
        ),
        "environment": env or environment(),
        "started_at": started,
        "finished_at": started + timedelta(minutes=3),
        "tasks": _named(
            accuracy
            if accuracy is not None
            else {
                "harness_capitals": task("harness_capitals", 0.80, 0.04),
                "harness_arithmetic": task("harness_arithmetic", 0.50, 0.05, num_fewshot=3),
            }
        ),
        "scenarios": _named(performance if performance is not None else {"c1": scenario()}),
        "resources": Resources(engine_peak_rss_bytes=2 << 30),
    }
    return RunRecord(**{**fields, **kw})


def _named(entries: Mapping[str, R]) -> list[R]:
    """Results in a record's list form, each entry's ``name`` set from its key."""
    return [r if r.name == key else r.model_copy(update={"name": key}) for key, r in entries.items()]


def store(results: Path, record: RunRecord) -> Path:
    """Write `record` as a run under `results/runs/<run_id>/`; returns the run folder."""
    run_dir = Path(results) / "runs" / record.run_id
    write_record(run_dir, record)
    return run_dir
