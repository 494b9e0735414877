"""Suite language for repeats, sweeps, SLOs, capacity search and validity minimums.

These models are fields of :class:`harness.spec.scenario.RigorSection` and
:class:`harness.spec.suite.PerformanceSpec`; they import nothing from the suite module so that
the suite can import them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.stats import wilson_interval

PRESETS_FILE = Path(__file__).resolve().parent / "slo_presets.yaml"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@lru_cache(maxsize=1)
def slo_presets() -> dict[str, dict[str, Any]]:
    """Named SLOs (MLPerf's published pairs), with their source, from `slo_presets.yaml`."""
    data = yaml.safe_load(PRESETS_FILE.read_text())
    return dict(data)


class SloSpec(_Spec):
    """Latency targets a request must all meet to count as good (vLLM's `--goodput` rule).

    Written as a mapping, or as a preset name (`slo: mlperf-llama3.1-8b`).
    """

    ttft_ms: float | None = Field(default=None, gt=0, description="Time to first token, at most, ms.")
    tpot_ms: float | None = Field(
        default=None, gt=0, description="Time per output token after the first, at most, ms."
    )
    e2el_ms: float | None = Field(default=None, gt=0, description="End-to-end latency, at most, ms.")
    preset: str | None = Field(default=None, description="Preset the bounds came from, if any.")

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"preset": value}
        if isinstance(value, dict) and value.get("preset") is not None:
            presets = slo_presets()
            name = value["preset"]
            if name not in presets:
                raise ValueError(f"unknown SLO preset {name!r}; known: {', '.join(sorted(presets))}")
            bounds = {k: v for k, v in presets[name].items() if k != "source"}
            value = {**bounds, **{k: v for k, v in value.items() if v is not None}}
        return value

    @model_validator(mode="after")
    def _some_bound(self) -> SloSpec:
        if self.ttft_ms is None and self.tpot_ms is None and self.e2el_ms is None:
            raise ValueError("an SLO needs at least one of ttft_ms, tpot_ms, e2el_ms")
        return self

    def describe(self) -> str:
        parts = [
            f"{k} ≤ {v:g}"
            for k, v in (("ttft_ms", self.ttft_ms), ("tpot_ms", self.tpot_ms), ("e2el_ms", self.e2el_ms))
            if v is not None
        ]
        return ", ".join(parts) + (f" ({self.preset})" if self.preset else "")


class RepeatsSpec(_Spec):
    """Adaptive repeats (AIPerf stops on confidence width): run `min` repeats, then more until the
    95 % Student-t interval of `metric` over the repeats is within ± `ci_halfwidth` of its mean
    (a fraction), or `max` repeats ran. The point's record says why it stopped."""

    min: int = Field(default=2, ge=1, description="Repeats always run (at least 2 for an interval).")
    max: int = Field(default=10, ge=1, le=100, description="Repeats at most.")
    ci_halfwidth: float = Field(
        default=0.05, gt=0, description="Target half-width of the 95 % interval, as a fraction of the mean."
    )
    metric: str = Field(
        default="output_throughput", description="Per-repeat figure whose interval is judged."
    )

    @model_validator(mode="after")
    def _order(self) -> RepeatsSpec:
        if self.max < self.min:
            raise ValueError("repeats.max must be ≥ repeats.min")
        return self


def repeat_bounds(repeats: int | RepeatsSpec | None) -> tuple[int, int, RepeatsSpec | None]:
    """(repeats always run, repeats at most, the adaptive rule or None) of a `repeats:` value."""
    if repeats is None:
        return 1, 1, None
    if isinstance(repeats, RepeatsSpec):
        return repeats.min, repeats.max, repeats
    return repeats, repeats, None


# Gamma shape of the inter-arrival gaps that stands for constant arrivals (gap CV 1e-6); a true
# infinity would not survive a record's JSON.
CONSTANT_BURSTINESS = 1e12


class SweepSpec(_Spec):
    """GuideLLM's sweep profile: a synchronous point (concurrency 1), a throughput point (all
    requests at once), then rates evenly spaced between the two measured request rates, with
    constant arrivals by default as GuideLLM's sweep (``arrivals: poisson`` for Poisson ones).
    ``points`` counts all of them: ``points - 2`` rates, the last equal to the throughput rate."""

    arrivals: Literal["constant", "poisson"] = Field(
        default="constant",
        description="Arrivals of the rate points: constant gaps (GuideLLM's sweep default) or Poisson "
        "(the scenario's burstiness). Recorded in the sweep's outcome.",
    )

    points: int = Field(
        default=8, ge=3, le=64, description="Points in all, synchronous and throughput included."
    )
    throughput_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="In-flight cap of the throughput point and of the rates (default: num_requests).",
    )
    stop_on_oversaturation: bool = Field(
        default=True, description="Stop once throughput is flat while TTFT keeps rising."
    )


class SearchSpec(_Spec):
    """Capacity search: the highest load whose SLO attainment still reaches `attainment`.

    Over concurrency by default (an open-loop rate above capacity measures a growing backlog,
    not the server; GuideLLM's goodput profile searches concurrency too). Probes `low` first,
    doubles until a probe fails (or `high` passes), halves toward `floor` when the first probe
    fails, then bisects between the highest passing and the lowest failing load until they are
    within `tolerance` (a fraction of the passing load; at least one step for concurrency) or
    the probe budget ran. A probe passes when the Wilson 95 % lower bound of its attainment
    reaches `attainment` (see :mod:`harness.rigor.search`).
    """

    slo: SloSpec | None = Field(default=None, description="SLO to meet (default: the scenario's).")
    attainment: float = Field(default=0.99, gt=0, le=1, description="Fraction of requests meeting the SLO.")
    over: Literal["request_rate", "concurrency"] = Field(
        default="concurrency", description="Load varied: concurrency (default) or request_rate (req/s)."
    )
    low: float = Field(default=1.0, gt=0, description="First load probed.")
    high: float = Field(default=512.0, gt=0, description="Highest load probed.")
    floor: float | None = Field(
        default=None,
        gt=0,
        description="Lowest load the search halves down to when `low` fails (default: 1 for concurrency, "
        "low/16 for rates).",
    )
    tolerance: float = Field(
        default=0.1, gt=0, description="Stop when fail − pass ≤ tolerance × pass (one step for concurrency)."
    )
    max_probes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Probes at most (default: enough to double to high, halve to floor and bisect to tolerance).",
    )

    @model_validator(mode="after")
    def _order(self) -> SearchSpec:
        if self.high < self.low:
            raise ValueError("search.high must be ≥ search.low")
        if self.over == "concurrency" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("a concurrency search needs whole low and high")
        if self.floor is not None and self.floor > self.low:
            raise ValueError("search.floor must be ≤ search.low")
        return self

    def probes_needed(self) -> int:
        """Probes that resolve the tolerance from `low` in the worst case: doubling to `high`,
        halving to the floor, then bisecting a factor-2 bracket down to `tolerance`."""
        floor = (
            self.floor if self.floor is not None else (1.0 if self.over == "concurrency" else self.low / 16.0)
        )
        up = math.ceil(math.log2(self.high / self.low)) if self.high > self.low else 0
        down = math.ceil(math.log2(self.low / floor)) if self.low > floor else 0
        bisect = math.ceil(math.log2(1.0 / self.tolerance)) if self.tolerance < 1 else 0
        # + 2: room to narrow past a fail whose attainment sits on the target (unresolved).
        return min(64, 1 + max(up, down) + bisect + 3)


class ValiditySpec(_Spec):
    """When a measured point is not to be trusted (MLPerf-style minimums, inference-perf-style
    delivered-vs-configured checks). A rule with a null threshold is off."""

    min_requests: int | None = Field(default=None, ge=1, description="Completed requests, at least.")
    min_duration_s: float | None = Field(default=None, gt=0, description="Measured duration, at least, s.")
    max_failed_share: float = Field(default=0.01, ge=0, le=1, description="Failed requests share, at most.")
    rate_tolerance: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Delivered send rate may fall short of the offered by this share.",
    )
    concurrency_tolerance: float = Field(
        default=0.1, ge=0, le=1, description="Mean in-flight may fall short of the target by this share."
    )
    max_send_lag_ms: float | None = Field(
        default=50.0, gt=0, description="p99 of send time minus scheduled time, at most, ms."
    )
    max_client_busy_share: float | None = Field(
        default=0.8, gt=0, le=1, description="Load generator CPU seconds per wall second, at most."
    )
    max_loop_lag_ms: float | None = Field(
        default=None,
        gt=0,
        description="p99 event-loop lag of the load generator beyond which a point is client-bound, ms "
        "(null: the load generator's own limit, 5 ms). Raise it only where the machine cannot do better "
        "(a few shared cores): every point records its lag (`client.lag_p99_ms`), a bound on its timing error.",
    )
    oversaturation_flat_share: float = Field(
        default=0.05, ge=0, description="Throughput growth below this share counts as flat (sweeps)."
    )
    oversaturation_ttft_rise: float = Field(
        default=0.5, ge=0, description="TTFT growth above this share counts as rising (sweeps)."
    )


def min_requests_to_pass(target: float, confidence: float = 0.95, cap: int = 1_000_000) -> int | None:
    """Fewest requests a probe needs for its Wilson lower bound to reach `target` with every
    request good (0.99 → 381; 0.9 → 35). None above `cap`."""
    n = 1
    while n <= cap:
        if wilson_interval(n, n, confidence)[0] >= target:
            # bisect back between n/2 and n for the exact figure
            lo, hi = n // 2, n
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if wilson_interval(mid, mid, confidence)[0] >= target else (mid, hi)
            return hi
        n *= 2
    return None
