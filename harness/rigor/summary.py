"""Pure summaries of a point: goodput under an SLO, repeats pooled, spreads over repeats.

Repeats are merged as raw rows, never as summaries: latency percentiles come from the
pooled requests of all repeats, throughputs from pooled totals over the summed durations
(each repeat's timeline starts at its own first send, so pooled rows cannot give a span).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.loadgen.metrics import RequestTiming, aggregate
from harness.record.rigor import GoodputResult, RepeatAggregates, SloRecord, SpreadStat
from harness.spec.rigor import SloSpec
from harness.stats import Spread, bootstrap_interval, t_interval, wilson_interval

# Figures that get a spread over repeats (vLLM key names, plus energy and goodput).
HEADLINE: tuple[str, ...] = (
    "output_throughput",
    "request_throughput",
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "median_itl_ms",
    "mean_e2el_ms",
    "p99_e2el_ms",
    "energy_per_output_token_j",
    "request_goodput",
    "slo_attainment",
)


def slo_record(slo: SloSpec) -> SloRecord:
    return SloRecord(ttft_ms=slo.ttft_ms, tpot_ms=slo.tpot_ms, e2el_ms=slo.e2el_ms, preset=slo.preset)


def is_good(r: RequestTiming, slo: SloSpec) -> bool:
    """vLLM's rule: a successful request whose every bounded figure is ≤ its bound (TPOT of a
    one-token output counts as 0)."""
    if not r.ok:
        return False
    ttft, e2el = r.ttft_s, r.e2el_s
    tpot = r.tpot_s if r.output_tokens > 1 else 0.0
    checks = ((slo.ttft_ms, ttft), (slo.tpot_ms, tpot), (slo.e2el_ms, e2el))
    return all(bound is None or (value is not None and value * 1000.0 <= bound) for bound, value in checks)


def goodput(requests: Sequence[RequestTiming], slo: SloSpec, duration_s: float) -> GoodputResult:
    """Good requests per second of duration (`request_goodput`) and the attainment share."""
    good = sum(1 for r in requests if is_good(r, slo))
    n = len(requests)
    low, high = wilson_interval(good, n)
    return GoodputResult(
        slo=slo_record(slo),
        request_goodput=good / duration_s if duration_s > 0 else 0.0,
        slo_attainment=good / n if n else 0.0,
        good_requests=good,
        measured_requests=n,
        attainment_ci95_low=low,
        attainment_ci95_high=high,
    )


def repeat_aggregates(
    repeat: int,
    agg: Mapping[str, Any],
    *,
    energy_per_output_token_j: float | None,
    good: GoodputResult | None,
    client_cpu_s: float | None,
    requests_path: str | None,
) -> RepeatAggregates:
    fields: dict[str, Any] = {k: agg.get(k) for k in RepeatAggregates.model_fields if k in agg}
    return RepeatAggregates.model_validate(
        fields
        | dict(
            repeat=repeat,
            energy_per_output_token_j=energy_per_output_token_j,
            request_goodput=good.request_goodput if good else None,
            slo_attainment=good.slo_attainment if good else None,
            client_cpu_s=client_cpu_s,
            requests_path=requests_path,
        )
    )


def spread_stat(s: Spread) -> SpreadStat:
    method = s.method if s.method in ("student_t", "bootstrap") else "none"
    return SpreadStat(
        mean=s.mean,
        std=s.std,
        n=s.n,
        ci95_low=s.ci95_low,
        ci95_high=s.ci95_high,
        method=method,  # type: ignore[arg-type]
    )


def spreads(repeats: Sequence[RepeatAggregates]) -> dict[str, SpreadStat]:
    """Student-t spread of each headline figure over the repeats that have it."""
    out: dict[str, SpreadStat] = {}
    for key in HEADLINE:
        values = [getattr(r, key) for r in repeats if getattr(r, key, None) is not None]
        if values:
            out[key] = spread_stat(t_interval(values))
    return out


def pooled_aggregate(
    per_repeat: Sequence[Sequence[RequestTiming]], durations_s: Sequence[float]
) -> dict[str, Any]:
    """vLLM-style aggregates over the pooled requests of all repeats.

    Latency statistics: over all pooled requests. Duration: the sum of the repeats'
    durations; throughputs: pooled totals over it. Peak in flight: the highest of any repeat.
    """
    pooled = [r for reqs in per_repeat for r in reqs]
    out = aggregate(pooled)
    duration = float(sum(durations_s))
    out["duration"] = duration

    def per_s(x: float) -> float:
        return x / duration if duration > 0 else 0.0

    out["request_throughput"] = per_s(out["completed"])
    out["output_throughput"] = per_s(out["total_output_tokens"])
    out["total_token_throughput"] = per_s(out["total_input_tokens"] + out["total_output_tokens"])
    out["max_concurrency_reached"] = max(
        (aggregate(list(r))["max_concurrency_reached"] for r in per_repeat), default=0
    )
    return out


def request_spreads(
    requests: Sequence[RequestTiming], seed: int = 0, n_resamples: int = 1000
) -> dict[str, SpreadStat]:
    """Bootstrap intervals (resampling requests) of the median per-request latencies."""
    ok = [r for r in requests if r.ok]
    series = {
        "median_ttft_ms": [r.ttft_s * 1000.0 for r in ok if r.ttft_s is not None],
        "median_tpot_ms": [t * 1000.0 for r in ok if (t := r.tpot_s) is not None],
        "median_e2el_ms": [e * 1000.0 for r in ok if (e := r.e2el_s) is not None],
    }
    out: dict[str, SpreadStat] = {}
    for key, values in series.items():
        if len(values) >= 2:
            out[key] = spread_stat(
                bootstrap_interval(values, lambda x: float(np.median(x)), n_resamples=n_resamples, seed=seed)
            )
    return out
