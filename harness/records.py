"""The run record: one frozen document per (model, suite) run, carrying its own provenance.

Everything downstream (dashboards, the CI gate, analytics) reads these types and nothing
else. Field names carry their units (``_ms``, ``_s``, ``_bytes``, ``_j``); the performance
aggregates use the exact key names of vLLM's ``vllm bench serve`` so that figures can be
compared with that tool's output line by line.

``schema_version`` is bumped whenever a field changes meaning or disappears; adding an
optional field does not bump it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

RunStatus = Literal["ok", "failed"]


class Frozen(BaseModel):
    """Base for record parts: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Unmeasured(Frozen):
    """A figure this machine cannot produce, with the reason (never a made-up number)."""

    reason: str = Field(description="Why the figure is missing, e.g. 'no NVIDIA GPU: no energy counter'.")


class SuiteInfo(Frozen):
    name: str
    path: str | None = Field(default=None, description="Suite file the run was planned from.")
    sha256: str | None = Field(default=None, description="Checksum of the suite file's bytes.")
    spec: dict[str, Any] = Field(default_factory=dict, description="The validated suite, as run.")


class ModelInfo(Frozen):
    preset: str = Field(description="Preset name, or 'local' for a checkpoint directory.")
    family: str
    source: str = Field(description="Hub id or local directory the engine loaded.")
    revision: str | None = Field(default=None, description="Resolved Hub commit, where known.")
    checksum_sha256: str | None = Field(
        default=None, description="sha256 over the checkpoint's weight and config files, where local."
    )
    served_name: str = Field(description="Model name the OpenAI-compatible server answers to.")


class EngineInfo(Frozen):
    kind: Literal["vllm-server", "endpoint"]
    endpoint: str = Field(description="Base URL the harness talked to.")
    args: dict[str, Any] = Field(default_factory=dict, description="Engine arguments (vLLM CLI names).")
    command: list[str] | None = Field(
        default=None, description="Full server command line, when started here."
    )
    startup_s: float | None = Field(default=None, description="Seconds from spawn to a healthy /health.")
    log_path: str | None = Field(default=None, description="Engine log, relative to the run folder.")


class GpuInfo(Frozen):
    index: int
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None
    driver_version: str | None = None


class Environment(Frozen):
    harness_version: str
    git_sha: str | None
    git_dirty: bool | None = None
    python: str
    platform: str
    hostname: str
    packages: dict[str, str | None] = Field(
        default_factory=dict, description="Versions of vllm, lm-eval, torch, transformers, ..."
    )
    cpu_model: str | None
    cpu_count: int | None
    memory_total_bytes: int | None
    gpus: list[GpuInfo] = Field(default_factory=list)
    gpu_reason: str | None = Field(default=None, description="Why `gpus` is empty, where it is.")


class TaskResult(Frozen):
    """One accuracy task: the headline metric and everything lm-eval reported."""

    task: str
    metric: str = Field(description="Headline metric name, e.g. 'acc' or 'exact_match'.")
    value: float
    stderr: float | None = Field(
        description="Standard error of `value` (bootstrap or analytic), as lm-eval gives it."
    )
    higher_is_better: bool = True
    n_samples: int = Field(description="Number of documents evaluated.")
    num_fewshot: int
    version: str | None = Field(default=None, description="Task version from its lm-eval config.")
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="All metrics lm-eval reported."
    )
    samples_path: str | None = Field(default=None, description="Per-sample log, relative to the run folder.")


class PhaseResources(Frozen):
    """Resources used during one phase (engine start, accuracy, or one scenario)."""

    duration_s: float
    engine_cpu_s: float | None = Field(description="CPU seconds (user+system) of the engine's process tree.")
    engine_peak_rss_bytes: int | None = Field(
        description="Peak resident memory of the engine's process tree."
    )
    energy_j: float | None = None
    energy: Unmeasured | None = Field(default=None, description="Why energy_j is null, where it is.")
    gpu: dict[str, Any] | None = Field(
        default=None, description="GPU telemetry for the phase (NVML), if any."
    )


class ScenarioSettings(Frozen):
    input_tokens: int
    output_tokens: int
    num_requests: int
    concurrency: int | None
    request_rate: float | None
    warmup_requests: int
    seed: int


class ScenarioResult(Frozen):
    """Aggregates of one load scenario, with vLLM bench serve's key names and definitions."""

    settings: ScenarioSettings
    completed: int
    failed: int
    duration: float = Field(description="Seconds from the first request sent to the last completion.")
    total_input_tokens: int
    total_output_tokens: int
    request_throughput: float = Field(description="Completed requests per second.")
    output_throughput: float = Field(description="Output tokens per second.")
    total_token_throughput: float = Field(description="(Input + output) tokens per second.")
    mean_ttft_ms: float | None
    median_ttft_ms: float | None
    std_ttft_ms: float | None
    p90_ttft_ms: float | None
    p99_ttft_ms: float | None
    mean_tpot_ms: float | None
    median_tpot_ms: float | None
    std_tpot_ms: float | None
    p90_tpot_ms: float | None
    p99_tpot_ms: float | None
    mean_itl_ms: float | None
    median_itl_ms: float | None
    std_itl_ms: float | None
    p90_itl_ms: float | None
    p99_itl_ms: float | None
    mean_e2el_ms: float | None
    median_e2el_ms: float | None
    std_e2el_ms: float | None
    p90_e2el_ms: float | None
    p99_e2el_ms: float | None
    max_concurrency_reached: int = Field(description="Most requests in flight at once.")
    client_cpu_s: float = Field(description="CPU seconds the load generator's own thread used.")
    client_cpu_us_per_output_token: float | None = Field(
        description="Load generator CPU microseconds per streamed output token (its own overhead)."
    )
    errors: list[str] = Field(default_factory=list, description="Distinct error messages of failed requests.")
    requests_path: str | None = Field(
        default=None, description="Per-request table, relative to the run folder."
    )
    resources: PhaseResources | None = None


class Resources(Frozen):
    engine_peak_rss_bytes: int | None = Field(description="Peak RSS of the engine tree over the whole run.")
    phases: dict[str, PhaseResources] = Field(default_factory=dict)
    energy_j: float | None = None
    energy: Unmeasured | None = None


class RunRecord(Frozen):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    status: RunStatus
    error: str | None = None
    suite: SuiteInfo
    model: ModelInfo
    engine: EngineInfo | None = None
    environment: Environment
    started_at: datetime
    finished_at: datetime
    accuracy: dict[str, TaskResult] = Field(default_factory=dict)
    performance: dict[str, ScenarioResult] = Field(default_factory=dict)
    resources: Resources | None = None
    analytics: dict[str, Any] | None = Field(default=None, description="Architecture analytics of the model.")

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def record_json_schema() -> dict[str, Any]:
    """JSON schema of the record, for consumers outside Python."""
    return RunRecord.model_json_schema()
