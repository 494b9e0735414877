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
    checksum: Unmeasured | None = Field(
        default=None,
        description="Why checksum_sha256 is null, where it is (e.g. an external endpoint's weights "
        "cannot be verified from here).",
    )


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
    """One GPU the engine uses, as NVML described it when telemetry started."""

    index: int = Field(
        description="CUDA device ordinal in the engine's view (0..n-1); gpu_index in the time series."
    )
    name: str
    uuid: str | None = None
    memory_total_bytes: int | None = None
    driver_version: str | None = None
    nvml_index: int | None = Field(
        default=None, description="NVML (PCI bus order) index of the physical GPU."
    )
    power_limit_w: float | None = Field(
        default=None, description="Power limit the driver enforces, in watts."
    )
    persistence_mode: bool | None = None
    sm_clock_mhz: int | None = Field(default=None, description="SM clock when telemetry started.")
    graphics_clock_mhz: int | None = Field(default=None, description="Graphics clock when telemetry started.")
    memory_clock_mhz: int | None = Field(default=None, description="Memory clock when telemetry started.")
    energy_counter: bool | None = Field(
        default=None, description="Whether NVML's total-energy counter is readable (Volta and newer)."
    )
    power_reading: Literal["instant", "average"] | None = Field(
        default=None, description="NVML power reading used: the instantaneous field, or the 1 s average."
    )
    unmeasured: dict[str, str] = Field(
        default_factory=dict, description="Field name -> why it is null (e.g. 'Not Supported' on this GPU)."
    )


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
    cuda_driver_version: str | None = Field(
        default=None, description="CUDA version the driver supports, e.g. '12.4'."
    )
    nvml_version: str | None = None
    cuda_visible_devices: str | None = Field(
        default=None, description="CUDA_VISIBLE_DEVICES as the engine saw it (null: unset, all GPUs)."
    )
    gpu_notes: list[str] = Field(default_factory=list, description="Caveats on the GPU figures (e.g. MIG).")


class TaskResult(Frozen):
    """One accuracy task: the headline metric and everything lm-eval reported."""

    task: str
    metric: str = Field(
        description="Headline metric as lm-eval keys it, filter included, e.g. 'acc,none' or "
        "'exact_match,strict-match' (older records: the bare name)."
    )
    value: float
    stderr: float | None = Field(
        description="Standard error of `value` (bootstrap or analytic), as lm-eval gives it."
    )
    higher_is_better: bool | None = Field(
        default=True, description="lm-eval's direction; null if it gives none."
    )
    n_samples: int | None = Field(
        description="Documents evaluated (lm-eval's n-samples); null if not reported."
    )
    num_fewshot: int | None = Field(description="Few-shot examples per prompt, as lm-eval reports (n-shot).")
    version: str | None = Field(default=None, description="Task version from its lm-eval config.")
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="All metrics lm-eval reported."
    )
    samples_path: str | None = Field(default=None, description="Per-sample log, relative to the run folder.")
    lm_eval_command: str | None = Field(
        default=None,
        description="The `lm_eval run ...` command that evaluates this task the same way against the "
        "same server (shell-quoted).",
    )


EnergySource = Literal["counter", "power_integration", "mixed"]


class GpuDeviceWindow(Frozen):
    """One GPU over one measurement window."""

    index: int
    uuid: str | None = None
    energy_j: float | None
    energy_source: Literal["counter", "power_integration"] | None = None
    energy: Unmeasured | None = Field(default=None, description="Why energy_j is null, where it is.")
    avg_power_w: float | None = Field(default=None, description="energy_j / window duration.")
    peak_power_w: float | None = None
    peak_memory_used_bytes: int | None = None
    mean_gpu_util_pct: float | None = None
    mean_mem_util_pct: float | None = None
    samples: int = Field(default=0, description="Sampler readings inside the window.")


class GpuPhaseTelemetry(Frozen):
    """GPU figures of one window (a phase, or the steady state inside a scenario), summed over GPUs.

    Energy comes from NVML's hardware energy counter (``energy_source='counter'``) read at the
    window's edges; where a GPU has no counter, from trapezoidal integration of sampled power.
    """

    gpu_count: int
    duration_s: float
    energy_j: float | None = Field(description="Gross energy of all measured GPUs, joules.")
    energy_source: EnergySource | None = None
    energy: Unmeasured | None = Field(default=None, description="Why energy_j is null, where it is.")
    energy_low_confidence: bool = False
    low_confidence_reason: str | None = None
    avg_power_w: float | None = Field(default=None, description="energy_j / duration_s.")
    peak_power_w: float | None = Field(
        default=None, description="Highest sampled total power (sum over GPUs)."
    )
    peak_memory_used_bytes: int | None = Field(
        default=None,
        description="Highest sampled NVML memory used, summed over GPUs (includes vLLM's KV pre-allocation).",
    )
    mean_gpu_util_pct: float | None = None
    mean_mem_util_pct: float | None = None
    idle_power_w: float | None = Field(
        default=None, description="Idle baseline power (sum over GPUs) used below."
    )
    energy_above_idle_j: float | None = Field(
        default=None, description="energy_j - idle_power_w * duration_s."
    )
    samples: int = 0
    sample_rate_hz: float | None = Field(
        default=None, description="Achieved sampler rate inside the window, per GPU."
    )
    devices: list[GpuDeviceWindow] = Field(default_factory=list)


class KvCacheUsage(Frozen):
    """vLLM KV-cache usage during one phase, from its /metrics gauge."""

    peak_usage_frac: float | None = Field(description="Highest polled KV-cache usage, 0..1.")
    peak_usage_tokens: int | None = Field(
        default=None, description="peak_usage_frac x the capacity in tokens."
    )
    polls: int = 0
    reason: str | None = Field(default=None, description="Why the figures are null, where they are.")


class PhaseResources(Frozen):
    """Resources used during one phase (engine start, accuracy, or one scenario)."""

    duration_s: float
    engine_cpu_s: float | None = Field(description="CPU seconds (user+system) of the engine's process tree.")
    engine_peak_rss_bytes: int | None = Field(
        description="Peak resident memory of the engine's process tree."
    )
    energy_j: float | None = None
    energy: Unmeasured | None = Field(default=None, description="Why energy_j is null, where it is.")
    gpu: GpuPhaseTelemetry | None = Field(
        default=None, description="GPU telemetry for the phase (NVML), if any."
    )
    kv_cache: KvCacheUsage | None = Field(
        default=None, description="Engine KV-cache usage in the phase, if polled."
    )


class SteadyStateEnergy(Frozen):
    """Energy inside a scenario's steady state: from the moment the target concurrency is first
    reached to the moment it first drops (ramp-up and drain distort per-token energy)."""

    start_s: float = Field(description="Seconds after the scenario's first send.")
    end_s: float = Field(description="Seconds after the scenario's first send.")
    duration_s: float
    target_concurrency: int
    output_tokens: float = Field(description="Output tokens streamed inside the window (from chunk times).")
    energy_j: float | None
    energy_source: EnergySource | None = None
    energy: Unmeasured | None = None
    energy_low_confidence: bool = False
    avg_power_w: float | None = None
    energy_per_output_token_j: float | None = None
    output_tokens_per_j: float | None = None
    energy_above_idle_j: float | None = None
    energy_per_output_token_above_idle_j: float | None = None


class ScenarioEnergy(Frozen):
    """GPU energy of one performance scenario, gross and above the idle baseline."""

    energy_j: float | None
    energy_source: EnergySource | None = None
    energy: Unmeasured | None = Field(default=None, description="Why energy_j is null, where it is.")
    energy_low_confidence: bool = False
    duration_s: float | None = None
    avg_power_w: float | None = None
    output_tokens: int
    energy_per_output_token_j: float | None = None
    output_tokens_per_j: float | None = None
    energy_above_idle_j: float | None = None
    energy_per_output_token_above_idle_j: float | None = None
    steady_state: SteadyStateEnergy | None = None
    steady_state_reason: str | None = Field(
        default=None, description="Why steady_state is null, where it is."
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
    energy: ScenarioEnergy | None = Field(
        default=None, description="GPU energy per output token and friends."
    )


class AccuracyEnergy(Frozen):
    """GPU energy of the accuracy phase (all tasks), per evaluated sample."""

    energy_j: float | None
    energy_source: EnergySource | None = None
    energy: Unmeasured | None = None
    energy_low_confidence: bool = False
    duration_s: float | None = None
    avg_power_w: float | None = None
    n_samples: int = Field(description="Documents evaluated over all tasks.")
    energy_per_sample_j: float | None = None
    energy_above_idle_j: float | None = None
    energy_per_sample_above_idle_j: float | None = None


class IdleBaseline(Frozen):
    """GPU power with the engine loaded and no requests, measured before the workload."""

    duration_s: float | None = None
    power_w: float | None = Field(description="Mean power over the baseline, summed over GPUs.")
    energy_j: float | None = None
    energy_source: EnergySource | None = None
    device_power_w: list[float | None] = Field(default_factory=list, description="Per GPU, in GpuInfo order.")
    memory_used_bytes: int | None = Field(
        default=None, description="NVML memory used with the engine loaded and idle, summed over GPUs."
    )
    reason: str | None = Field(default=None, description="Why power_w is null, where it is.")


class EngineMemory(Frozen):
    """Memory figures that mean something beside NVML's 'used' (vLLM pre-allocates the card)."""

    weights_bytes: int | None = Field(default=None, description="Size of the model weights.")
    weights_source: str | None = Field(
        default=None, description="e.g. 'safetensors headers' or 'engine log'."
    )
    kv_cache_capacity_tokens: int | None = Field(
        default=None, description="KV-cache capacity the engine reports."
    )
    kv_cache_num_blocks: int | None = None
    kv_cache_block_size: int | None = Field(default=None, description="Tokens per KV-cache block.")
    kv_cache_source: str | None = Field(
        default=None, description="e.g. 'engine log' or '/metrics cache_config_info'."
    )
    nvml_memory_used_bytes: int | None = Field(
        default=None, description="NVML memory used after load, all GPUs."
    )
    nvml_memory_total_bytes: int | None = None
    reasons: dict[str, str] = Field(default_factory=dict, description="Field name -> why it is null.")


class Resources(Frozen):
    engine_peak_rss_bytes: int | None = Field(description="Peak RSS of the engine tree over the whole run.")
    phases: dict[str, PhaseResources] = Field(default_factory=dict)
    energy_j: float | None = None
    energy: Unmeasured | None = None
    idle: IdleBaseline | None = Field(default=None, description="GPU idle baseline, engine loaded.")
    accuracy_energy: AccuracyEnergy | None = None
    memory: EngineMemory | None = None
    gpu_samples_path: str | None = Field(
        default=None, description="GPU time series, relative to the run folder."
    )


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
