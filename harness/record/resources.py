"""What a run used, as stored in its record: per-phase resources, GPU telemetry windows, KV-cache
use, energy summaries (per scenario, accuracy phase, steady state), the idle baseline and the
engine's memory; and the base every record part shares (:class:`Frozen`, :class:`Unmeasured`).

Part of the record contract: :mod:`harness.record.run_record` re-exports every name here, and the same
rules apply (strict when built, read tolerantly, units in names). This module imports nothing
from :mod:`harness.record.run_record`, so the two can import each other's names without a cycle.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.record.energy import EnergySource, EnergyValue


class Frozen(BaseModel):
    """Base for record parts: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Unmeasured(Frozen):
    """A figure this machine cannot produce, with the reason (never a made-up number)."""

    reason: str = Field(description="Why the figure is missing, e.g. 'no NVIDIA GPU: no energy counter'.")


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
    counter_update_period_s: float | None = Field(
        default=None, description="Energy counter update period used for the confidence flag."
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


class ScenarioEnergy(Frozen):
    """GPU energy of one performance scenario: one :class:`EnergyValue` per window, each stored once.

    Read it through :func:`~harness.record.energy.scenario_energy_value` (the headline, or a named
    window), never field by field: it knows which window a record of any version carries.
    Schema v3: the flat copies of the headline (``energy_j``, ``energy_per_output_token_j`` ...)
    and of the steady state are gone; the figures live in these values only.
    """

    measured: EnergyValue | None = Field(
        default=None,
        description=(
            "Headline: first measured send to last measured completion, over the measured requests' "
            "output tokens. Prefill energy is charged to output tokens, as ML.ENERGY does."
        ),
    )
    gross: EnergyValue | None = Field(
        default=None,
        description="The whole scenario window, including warm-up and prompt building. Since schema "
        "v4 it is derived from the scenario's resources (its one meter reading) by "
        "scenario_energy_value(s, 'scenario_window') and stored only for a point pooled over "
        "repeats, whose pooled resources lack the repeats' GPU source and idle power.",
    )
    steady_state: EnergyValue | None = Field(
        default=None,
        description="ML.ENERGY's steady state inside the measured interval (window 'steady_state').",
    )
    steady_state_reason: str | None = Field(
        default=None, description="Why steady_state is null, where it is."
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
    correct_samples: float | None = Field(
        default=None, description="Sum over tasks of n_samples x score, for scores that are proportions."
    )
    energy_per_correct_sample_j: float | None = Field(
        default=None, description="energy_j / correct_samples: joules per correct answer."
    )
    correct_reason: str | None = Field(
        default=None, description="Why energy_per_correct_sample_j is null or which tasks it leaves out."
    )
    value: EnergyValue | None = Field(
        default=None, description="The same figure as the one energy value type."
    )


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
    memory_total_bytes: int | None = Field(default=None, description="NVML memory total, summed over GPUs.")
    settle_s: float | None = Field(
        default=None, description="Seconds waited for the 1 s mean power to go flat before measuring."
    )
    settled: bool | None = Field(
        default=None, description="False where power was still falling when the settle cap was reached."
    )
    power_spread_w: float | None = Field(
        default=None, description="Standard deviation of sampled idle power (sum over GPUs), watts."
    )


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
    kv_cache_memory_bytes: int | None = Field(
        default=None, description="Bytes the engine gave its KV cache (/metrics cache_config_info)."
    )
    weights_in_memory_bytes: int | None = Field(
        default=None,
        description="Weights as loaded, from the engine log's 'Model loading took' (0.01 GiB steps).",
    )
    kv_cache_source: str | None = Field(
        default=None, description="e.g. 'engine log' or '/metrics cache_config_info'."
    )
    prefix_cache_hash_block_size: int | None = Field(
        default=None, description="Tokens per prefix-cache block hash (vLLM's hash_block_size)."
    )
    prefix_cache_hit_alignment_tokens: int | None = Field(
        default=None,
        description="Token granularity at which prefix-cache hits land (vLLM's cache_hit_alignment_tokens).",
    )
    prefix_cache_alignment_source: str | None = Field(
        default=None,
        description="Where the two prefix-cache granularities come from: the metric's labels, or vLLM's "
        "rule applied to the block size and the engine log's KV-cache groups (an inference, said so); "
        "'not known: <why>' where they are null.",
    )
    nvml_memory_used_bytes: int | None = Field(
        default=None, description="NVML memory used after load, all GPUs."
    )
    nvml_memory_total_bytes: int | None = None
    reasons: dict[str, str] = Field(default_factory=dict, description="Field name -> why it is null.")


class Resources(Frozen):
    engine_peak_rss_bytes: int | None = Field(description="Peak RSS of the engine tree over the whole run.")
    phases: dict[str, PhaseResources] = Field(
        default_factory=dict,
        description="Run phases (engine start, accuracy ...); since schema v3 a scenario's window is kept "
        "on the scenario (`scenarios[].resources`) only.",
    )
    energy_j: float | None = Field(default=None, description="All phases and scenario windows, summed.")
    energy: Unmeasured | None = None
    idle: IdleBaseline | None = Field(default=None, description="GPU idle baseline, engine loaded.")
    accuracy_energy: AccuracyEnergy | None = None
    memory: EngineMemory | None = None
    gpu_samples_path: str | None = Field(
        default=None, description="GPU time series, relative to the run folder."
    )
    server_metrics_path: str | None = Field(
        default=None, description="The engine's /metrics series (1-2 Hz), relative to the run folder."
    )
