"""The run record: one frozen document per (model, suite) run, carrying its own provenance.

Everything downstream (dashboards, the CI gate, analytics) reads these types and nothing
else. Field names carry their units (``_ms``, ``_s``, ``_bytes``, ``_j``); the performance
aggregates use the exact key names of vLLM's ``vllm bench serve`` so that figures can be
compared with that tool's output line by line.

The record is a public contract (see "Records as a contract" in docs/results.md):

* write strictly: every part is ``extra="forbid"``, so a typo in the code that builds a
  record fails at once;
* read tolerantly: :func:`harness.record.migrate.parse_record` ignores fields it does not know (a
  newer harness may add optional ones), checks ``schema_version`` explicitly and migrates
  older versions;
* ``schema_version`` is bumped only when a field is removed or renamed or changes meaning;
  adding an optional field does not bump it. ``schema/run_record.v<N>.json`` is generated
  from these models (``harness schema``) and a unit test fails when it drifts.

Scenarios and tasks are lists of named entries (``name`` inside each), so
``pandas.json_normalize`` and DuckDB's ``read_json`` give tidy tables; ``RunRecord.performance``
and ``RunRecord.accuracy`` look them up by name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.record.analytics import RecordAnalytics
from harness.record.energy import EnergySource, EnergyValue, EnergyWindow, scenario_energy_value
from harness.record.load import LoadShape
from harness.record.resources import (
    AccuracyEnergy,
    EngineMemory,
    Frozen,
    GpuDeviceWindow,
    GpuPhaseTelemetry,
    IdleBaseline,
    KvCacheUsage,
    PhaseResources,
    Resources,
    ScenarioEnergy,
    Unmeasured,
)

# Parts defined in records_energy and records_resources, re-exported: readers import them from here.
__all__ = [
    "EnergySource",
    "EnergyValue",
    "EnergyWindow",
    "scenario_energy_value",
    "Frozen",
    "Unmeasured",
    "GpuDeviceWindow",
    "GpuPhaseTelemetry",
    "KvCacheUsage",
    "PhaseResources",
    "ScenarioEnergy",
    "AccuracyEnergy",
    "IdleBaseline",
    "EngineMemory",
    "Resources",
]

from harness.record.rigor import PointRigor
from harness.record.underload import AccuracyUnderLoad, InvarianceProbe

SCHEMA_VERSION: Literal[4] = 4

RunStatus = Literal["ok", "failed"]


class SuiteInfo(Frozen):
    name: str
    path: str | None = Field(default=None, description="Suite file the run was planned from.")
    sha256: str | None = Field(default=None, description="Checksum of the suite file's bytes.")
    spec: dict[str, Any] = Field(
        default_factory=dict,
        description="The validated suite, as run, kept as plain data: readers take what they need from "
        "it and never re-validate it against today's suite code.",
    )


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
    random_weights: bool | None = Field(
        default=None,
        description="True: the weights are random (a code-path miniature), its accuracy is meaningless "
        "and it is never ranked; null: not recorded (older records; readers fall back to the preset).",
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
    pci_bus_id: str | None = Field(
        default=None,
        description="PCI bus id; GPUs are numbered in this order (CUDA_DEVICE_ORDER=PCI_BUS_ID).",
    )
    mig_mode: bool | None = Field(
        default=None, description="MIG enabled: energy is the whole GPU's, so none is reported."
    )
    power_scope: Literal["gpu", "module", "memory"] | None = Field(
        default=None, description="Scope the instant power field answered for (GH200: module = GPU + CPU)."
    )
    counter_update_period_s: float | None = Field(
        default=None, description="Measured update period of the energy counter (~0.1 s on recent GPUs)."
    )


class GpuIdentity(Frozen):
    """Whether the metered GPUs are the engine's, checked by UUID once the engine was up."""

    status: Literal["verified", "mismatch", "unverified"] = Field(
        description="verified: NVML lists the engine's processes on exactly the metered GPUs; "
        "mismatch: it does not (every energy figure is then null); unverified: it could not tell."
    )
    metered_gpu_uuids: list[str] = Field(default_factory=list, description="GPUs the meter read.")
    engine_gpu_uuids: list[str] = Field(
        default_factory=list, description="GPUs where NVML listed a process of the engine's tree."
    )
    reason: str | None = Field(default=None, description="Why not verified, where it is not.")


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
    gpu_identity: GpuIdentity | None = Field(
        default=None,
        description="The engine-to-GPU mapping checked by UUID (null: no GPU, or no engine came up).",
    )


class TaskResult(Frozen):
    """One accuracy task: the headline metric and everything lm-eval reported."""

    name: str = Field(description="lm-eval task name (a group's subtasks are entries of their own).")
    metric: str = Field(
        description="Headline metric as lm-eval keys it, filter included, e.g. 'acc,none' or "
        "'exact_match,strict-match' (records before lm_eval_command: the bare name)."
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

    @property
    def task(self) -> str:
        """The task name (schema v1's field name)."""
        return self.name


class ServerWindow(Frozen):
    """The server's own view of one scenario, from its ``/metrics`` polled at 1-2 Hz.

    Gauges are peaks over the polls inside the window; counters are differences between the
    last poll at or before its start and the last poll inside it (summed over engines).
    """

    polls: int = Field(description="/metrics polls inside the window.")
    reason: str | None = Field(default=None, description="Why the figures are null, where they are.")
    start_s: float | None = Field(
        default=None, description="Window start on the server series' clock (t_s of server_metrics.parquet)."
    )
    end_s: float | None = Field(default=None, description="Window end on the same clock.")
    dispatch_s: float | None = Field(
        default=None,
        description="The scenario's start of dispatch on the same clock: the per-request table's time zero.",
    )
    peak_running: int | None = Field(default=None, description="Most requests the engine ran at once.")
    peak_waiting: int | None = Field(default=None, description="Longest queue of waiting requests.")
    peak_kv_cache_usage_frac: float | None = Field(default=None, description="Highest KV-cache usage, 0..1.")
    preemptions: int | None = Field(default=None, description="Requests preempted (KV cache full).")
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens the engine processed.")
    generation_tokens: int | None = Field(default=None, description="Tokens the engine generated.")
    prefix_cache_queries: int | None = Field(
        default=None, description="Prompt tokens looked up in the prefix cache."
    )
    prefix_cache_hits: int | None = Field(default=None, description="Of those, tokens found in the cache.")
    prefix_cache_hit_rate: float | None = Field(
        default=None,
        description="prefix_cache_hits / prefix_cache_queries (measured by the server); 0 when the engine "
        "processed prompt tokens with prefix caching off.",
    )
    implied_prefix_cache_hit_rate: float | None = Field(
        default=None,
        description="Hit rate the workload's shared prefixes imply if served in order (whole blocks only).",
    )
    spec_decode_drafts: int | None = Field(
        default=None, description="Speculative decoding steps with a draft."
    )
    spec_decode_draft_tokens: int | None = Field(default=None, description="Tokens proposed by the drafter.")
    spec_decode_accepted_tokens: int | None = Field(default=None, description="Draft tokens accepted.")
    spec_decode_acceptance_rate: float | None = Field(
        default=None, description="accepted / draft tokens (vLLM's draft acceptance rate)."
    )
    spec_decode_mean_accepted_length: float | None = Field(
        default=None,
        description="1 + accepted / drafts: tokens emitted per verification step (vLLM's definition).",
    )
    spec_decode_draft_tokens_per_step: float | None = Field(
        default=None, description="draft tokens / drafts."
    )


class TurnStats(Frozen):
    """One turn position across all sessions of a multi-turn scenario."""

    turn: int = Field(description="1-based turn number.")
    requests: int
    mean_input_tokens: float | None = None
    median_ttft_ms: float | None = None
    mean_ttft_ms: float | None = None
    cached_tokens_frac: float | None = Field(
        default=None,
        description="Prompt tokens served from the prefix cache / prompt tokens, from the server's "
        "per-request usage (needs --enable-prompt-tokens-details); null when the server does not say.",
    )


class WorkloadInfo(Frozen):
    """The shape of a scenario's traffic: prompt source, prefixes, turns or trace."""

    prompt_source: str = Field(description="random, dataset, tasks or trace.")
    dataset_path: str | None = Field(
        default=None, description="Dataset or trace file, as given in the suite."
    )
    dataset_sha256: str | None = Field(default=None, description="Checksum of that file.")
    mean_input_tokens: float | None = Field(
        default=None, description="Mean prompt length sent (tokenizer count)."
    )
    mean_output_tokens: float | None = Field(default=None, description="Mean max_tokens asked for.")
    prefix_groups: int | None = None
    prefix_tokens: int | None = None
    turns: int | None = Field(default=None, description="Turns per session (multi-turn scenarios).")
    sessions: int | None = None
    per_turn: list[TurnStats] = Field(
        default_factory=list, description="Multi-turn: TTFT and cache hits by turn."
    )
    trace_speedup: float | None = None
    notes: list[str] = Field(default_factory=list)


class ScenarioSettings(Frozen):
    """What one point sent: its load, exactly as the load generator took it, and its seeds."""

    load: LoadShape = Field(description="Lengths, arrivals and sampling (the suite's resolved `load`).")
    seed: int = Field(description="The suite's seed.")
    scenario_seed: int | None = Field(
        default=None, description="The scenario's own seed (prompts, arrivals), from `seed` and its name."
    )
    vllm_bench_command: str | None = Field(
        default=None, description="The equivalent `vllm bench serve` command line against the same server."
    )


class ClientTiming(Frozen):
    """The load generator's knowledge of its own timing error during one scenario (docs/timing.md)."""

    workers: int = Field(description="Worker processes (event loops) that sent the measured requests.")
    workers_reason: str = Field(description="Why that many: set in the suite, or sized from the warm-up.")
    event_loop: str = Field(description="Event loop implementation: asyncio or uvloop.")
    http_client: str = Field(
        default="aiohttp",
        description="HTTP client that sent the requests: harness (the load generator's own, "
        "harness.loadgen.wire) or aiohttp (records before the own client: aiohttp).",
    )
    lag_samples: int = Field(description="Event-loop lag samples taken (every 20 ms on each worker).")
    lag_p50_ms: float | None = Field(description="Median event-loop lag, ms (pooled over workers).")
    lag_p99_ms: float | None = Field(description="p99 event-loop lag, ms (pooled over workers).")
    lag_max_ms: float | None = Field(description="Largest event-loop lag, ms.")
    busy_share_max: float | None = Field(
        description="CPU seconds per wall second of the busiest worker (1.0: a whole core)."
    )
    timing_error_bound_ms: float | None = Field(
        description="Estimated bound on a timestamp's error, ms: the lag p99 (an approximation)."
    )
    lag_limit_ms: float = Field(description="Lag p99 beyond which the point is flagged client-bound, ms.")
    busy_limit: float = Field(description="Busy share beyond which the point is flagged client-bound.")


class ScenarioResult(Frozen):
    """Aggregates of one load scenario, with vLLM bench serve's key names and definitions."""

    name: str = Field(description="Scenario name from the suite.")
    settings: ScenarioSettings
    completed: int
    failed: int
    duration: float = Field(
        description="Seconds from the start of dispatch to the end of the gather (vllm bench serve's); "
        "in records before that, from the first request sent to the last completion."
    )
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
    client_cpu_s: float | None = Field(
        description="CPU seconds the load generator used; null (v3) where it is not known, e.g. an "
        "imported run (the reason in source.unmeasured)."
    )
    client_cpu_us_per_output_token: float | None = Field(
        description="Load generator CPU microseconds per streamed output token (its own overhead)."
    )
    errors: list[str] = Field(default_factory=list, description="Distinct error messages of failed requests.")
    requests_path: str | None = Field(
        default=None, description="Per-request table, relative to the run folder."
    )
    incomplete: str | None = Field(
        default=None, description="Why the scenario stopped before all its requests ended (e.g. hung engine)."
    )
    resources: PhaseResources | None = None
    energy: ScenarioEnergy | None = Field(
        default=None, description="GPU energy per output token and friends."
    )
    request_goodput: float | None = Field(
        default=None, description="Requests meeting every SLO bound per second (vLLM's key); null: no SLO."
    )
    slo_attainment: float | None = Field(
        default=None, description="Share of measured requests meeting every SLO bound; null: no SLO."
    )
    client: ClientTiming | None = Field(
        default=None, description="The load generator's lag and busy share; null in records before them."
    )
    valid: bool | None = Field(default=None, description="Whether the point passed the validity rules.")
    validity_reasons: list[str] = Field(default_factory=list, description="Why the point is invalid.")
    rigor: PointRigor | None = Field(
        default=None, description="Repeats, spreads, goodput, sweep and capacity of this point."
    )
    server: ServerWindow | None = Field(
        default=None, description="The server's /metrics over the scenario (queues, KV use, caches)."
    )
    workload: WorkloadInfo | None = Field(default=None, description="What was sent, beyond the settings.")
    accuracy_under_load: AccuracyUnderLoad | None = Field(
        default=None,
        description="Tasks evaluated beside this point's load, paired with the idle run (the latency "
        "figures above cover the load generator's requests only).",
    )
    invariance: InvarianceProbe | None = Field(
        default=None, description="Greedy outputs alone vs beside this point's load, token for token."
    )


class VariantInfo(Frozen):
    """The serving-time technique a run measured: one overlay on the model's engine."""

    name: str = Field(description="Variant name from the suite.")
    baseline: str = Field(description="The suite's baseline variant, which this one is compared with.")
    is_baseline: bool
    changes: list[str] = Field(default_factory=list, description="What the overlay changes, in words.")
    spec: dict[str, Any] = Field(default_factory=dict, description="The variant as the suite gave it.")


class SourceFile(Frozen):
    """One file an imported run was read from."""

    path: str = Field(description="The file as given to `harness import` (absolute).")
    sha256: str = Field(description="Checksum of the file's bytes.")


class ImportSource(Frozen):
    """Where an imported run came from: another tool's output file, read by `harness import`.

    The record's figures are recomputed from the file's per-request rows where it has them;
    what the file does not say is null, with the reason in ``unmeasured``.
    """

    tool: Literal["vllm-bench", "guidellm", "aiperf", "lm-eval"] = Field(description="Tool that wrote it.")
    version: str | None = Field(description="The tool's version, as the file states it (null: it does not).")
    sha256: str = Field(description="Checksum of the main file's bytes.")
    files: list[SourceFile] = Field(default_factory=list, description="Every file read, main file first.")
    command: str | None = Field(default=None, description="The tool's command line, where the file has it.")
    imported_at: datetime = Field(description="When `harness import` read it.")
    unmeasured: dict[str, str] = Field(
        default_factory=dict,
        description="Record field -> why it is null or a placeholder (the file does not say).",
    )
    tool_figures: dict[str, dict[str, float | None]] = Field(
        default_factory=dict,
        description="Scenario name -> the headline figures as the file itself states them, under the "
        "tool's own definitions (see docs/definitions.md).",
    )


class RunRecord(Frozen):
    """One run of one model on one suite: what was asked, what ran where, and what was measured."""

    schema_version: Literal[4] = Field(
        default=SCHEMA_VERSION,
        description="Bumped only for a breaking change; older records are migrated on read.",
    )
    run_id: str
    status: RunStatus
    error: str | None = None
    suite: SuiteInfo
    model: ModelInfo
    engine: EngineInfo | None = None
    variant: VariantInfo | None = Field(
        default=None,
        description="The technique variant, where the suite lists variants (null: the model as is).",
    )
    environment: Environment
    started_at: datetime
    finished_at: datetime
    tasks: list[TaskResult] = Field(default_factory=list, description="Accuracy tasks, in the order run.")
    scenarios: list[ScenarioResult] = Field(
        default_factory=list, description="Load scenarios, in the order run."
    )
    resources: Resources | None = None
    analytics: RecordAnalytics | None = Field(
        default=None, description="Architecture analytics of the model."
    )
    fingerprint: str | None = Field(
        default=None,
        description="Cell fingerprint (model identity, engine arguments, suite workload, variant): "
        "names the same cell across executors; `harness run --resume` skips cells with an ok record of it.",
    )
    source: ImportSource | None = Field(
        default=None,
        description="Set on a run imported from another tool's output (`harness import`); null: measured here.",
    )

    @model_validator(mode="after")
    def _names_unique(self) -> RunRecord:
        for kind, entries in (("task", self.tasks), ("scenario", self.scenarios)):
            names = [e.name for e in entries]
            if len(set(names)) != len(names):
                dupes = sorted({n for n in names if names.count(n) > 1})
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(dupes)}")
        return self

    @property
    def accuracy(self) -> dict[str, TaskResult]:
        """Task name -> result, in the order run (a read-only view of ``tasks``)."""
        return {t.name: t for t in self.tasks}

    @property
    def performance(self) -> dict[str, ScenarioResult]:
        """Scenario name -> result, in the order run (a read-only view of ``scenarios``)."""
        return {s.name: s for s in self.scenarios}

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def record_json_schema() -> dict[str, Any]:
    """JSON Schema of the record as this harness writes it, for consumers outside Python.

    Objects do not set ``additionalProperties: false``: readers must ignore fields they do
    not know, since later harness versions add optional ones without a version bump.
    """
    schema = RunRecord.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"harness run record, schema v{SCHEMA_VERSION}"
    _open_objects(schema)
    return schema


def record_json_schema_text() -> str:
    """The JSON Schema as committed in ``schema/run_record.v<N>.json`` (stable text, one trailing newline)."""
    import json

    return json.dumps(record_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _open_objects(node: Any) -> None:
    """Drop ``additionalProperties: false`` (the writer's strictness) from every object schema."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for v in node.values():
            _open_objects(v)
    elif isinstance(node, list):
        for v in node:
            _open_objects(v)
