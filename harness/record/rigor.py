"""What a record keeps about repeats, spread, goodput, validity, sweeps and capacity.

Referenced from :class:`harness.record.run_record.ScenarioResult` through small optional fields
(``request_goodput``, ``slo_attainment``, ``valid``, ``validity_reasons``, ``rigor``), so a
record without any of this reads as before.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


SpreadMethod = Literal["student_t", "bootstrap", "batch_means", "none"]


class SpreadStat(_Frozen):
    """A figure's mean over `n` values, sample std and 95 % interval; `method` says which."""

    mean: float
    std: float | None = Field(description="Sample standard deviation (ddof=1); None for n = 1.")
    n: int = Field(description="Repeats (student_t), requests (bootstrap) or batches (batch_means).")
    ci95_low: float | None
    ci95_high: float | None
    method: SpreadMethod = Field(
        description="student_t: over repeats; bootstrap: resampling requests; batch_means: over contiguous "
        "batches of requests (std is then the standard error of the whole-run figure); none: one value."
    )


class SloRecord(_Frozen):
    """The SLO a point was judged against (ms bounds; null: no bound)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None
    preset: str | None = None


class GoodputResult(_Frozen):
    """vLLM's goodput (`request_goodput`: good requests per second of duration) and attainment."""

    slo: SloRecord
    request_goodput: float = Field(description="Requests meeting every SLO bound per second, req/s.")
    slo_attainment: float = Field(description="Share of measured requests (failed ones included) meeting it.")
    good_requests: int
    measured_requests: int
    attainment_ci95_low: float = Field(description="Wilson interval of slo_attainment.")
    attainment_ci95_high: float


class RepeatAggregates(_Frozen):
    """One repeat of a point: its headline aggregates (vLLM key names) and where its rows are."""

    repeat: int = Field(description="1-based repeat index.")
    completed: int
    failed: int
    duration: float = Field(description="Seconds, first send to last completion.")
    request_throughput: float
    output_throughput: float
    total_token_throughput: float | None = None
    mean_ttft_ms: float | None = None
    median_ttft_ms: float | None = None
    p90_ttft_ms: float | None = None
    p99_ttft_ms: float | None = None
    mean_tpot_ms: float | None = None
    median_tpot_ms: float | None = None
    p90_tpot_ms: float | None = None
    p99_tpot_ms: float | None = None
    mean_itl_ms: float | None = None
    median_itl_ms: float | None = None
    p90_itl_ms: float | None = None
    p99_itl_ms: float | None = None
    mean_e2el_ms: float | None = None
    median_e2el_ms: float | None = None
    p90_e2el_ms: float | None = None
    p99_e2el_ms: float | None = None
    energy_j: float | None = None
    energy_per_output_token_j: float | None = None
    output_tokens_per_j: float | None = None
    steady_state_energy_per_output_token_j: float | None = Field(
        default=None, description="ML.ENERGY's steady-state J/token of this repeat (null: none measured)."
    )
    request_goodput: float | None = None
    slo_attainment: float | None = None
    client_cpu_s: float | None = None
    requests_path: str | None = Field(
        default=None, description="This repeat's rows, relative to the run folder."
    )


class PointInfo(_Frozen):
    """Where a point comes from: its scenario, its role in a sweep or search, and its load."""

    scenario: str = Field(description="Scenario name in the suite (the part before `@`).")
    role: Literal["fixed", "sweep_list", "synchronous", "throughput", "sweep_rate", "probe"]
    concurrency: int | None = None
    request_rate: float | None = None


class ValidityFigures(_Frozen):
    """The figures the validity rules read (null: not applicable or not measured)."""

    failed_share: float | None = None
    offered_rate_rps: float | None = None
    delivered_rate_rps: float | None = None
    target_concurrency: float | None = None
    mean_in_flight: float | None = None
    send_lag_p99_ms: float | None = Field(default=None, description="Null: the generator kept no schedule.")
    client_busy_share: float | None = None


class CapacityProbe(_Frozen):
    load: float
    point: str | None = Field(default=None, description="Scenario point that measured it.")
    slo_attainment: float
    measured_requests: int
    passed: bool = Field(description="The Wilson 95 % lower bound of the attainment reaches the target.")
    resolved: bool = Field(description="Wilson interval of the attainment wholly on one side of the target.")
    valid: bool


class CapacityResult(_Frozen):
    """Highest load meeting the SLO at the target attainment, with the figures at that load."""

    scenario: str
    over: Literal["request_rate", "concurrency"]
    slo: SloRecord
    attainment_target: float
    capacity: float | None = Field(description="Highest passing load; null: none passed.")
    capacity_point: str | None = None
    probes: list[CapacityProbe] = Field(default_factory=list)
    stop_reason: str
    bound: Literal["lower", "resolved"] | None = Field(
        default=None,
        description="resolved: bracketed within the tolerance by a pass and a resolved fail; lower: the "
        "search stopped otherwise (budget, highest load, unresolved probe), so the capacity is a lower "
        "bound; null: nothing passed (or a record from before this field).",
    )
    min_requests_to_pass: int | None = Field(
        default=None, description="Requests a probe needs for a pass to be possible at the target (Wilson)."
    )
    tolerance: float
    output_throughput: float | None = Field(default=None, description="Output tok/s at the capacity load.")
    energy_per_output_token_j: float | None = Field(
        default=None, description="J per output token at the capacity load (null without an energy meter)."
    )
    energy_reason: str | None = None
    unresolved_loads: list[float] = Field(
        default_factory=list, description="Probes with too few requests to decide against the target."
    )


class SweepOutcome(_Frozen):
    scenario: str
    points: list[str]
    stopped_early: bool
    stop_reason: str | None = None
    arrivals: Literal["constant", "poisson"] | None = Field(
        default=None,
        description="Arrivals of the rate points (null: a list sweep, or a record before the field).",
    )


class PointRigor(_Frozen):
    """Repeats, spread and provenance of one measured point."""

    point: PointInfo
    repeats: list[RepeatAggregates] = Field(default_factory=list)
    spread: dict[str, SpreadStat] = Field(
        default_factory=dict, description="Per headline figure: over repeats (student_t)."
    )
    request_spread: dict[str, SpreadStat] = Field(
        default_factory=dict, description="Per-request figures over the pooled requests (bootstrap)."
    )
    cooldown_s: float = 0.0
    repeats_stop: str | None = Field(
        default=None, description="Adaptive repeats: why they stopped (interval narrow enough, or the cap)."
    )
    goodput: GoodputResult | None = None
    validity: ValidityFigures | None = None
    sweep: SweepOutcome | None = Field(default=None, description="On a sweep's last point.")
    capacity: CapacityResult | None = Field(
        default=None, description="On a search's capacity point (or its last probe when none passed)."
    )
