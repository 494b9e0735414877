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
from harness.stats import Spread, t_interval, wilson_interval
from harness.stats_bounds import batch_spread

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
    "steady_state_energy_per_output_token_j",
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
    energy: Mapping[str, float | None] | None = None,
) -> RepeatAggregates:
    """One repeat's figures: every aggregate of the catalogue it has (so the gate has per-repeat
    values of any gated figure), its energy (`energy`: energy_j, output_tokens_per_j,
    steady_state_energy_per_output_token_j) and goodput."""
    fields: dict[str, Any] = {k: agg.get(k) for k in RepeatAggregates.model_fields if k in agg}
    fields |= {k: v for k, v in (energy or {}).items() if k in RepeatAggregates.model_fields}
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
    method = s.method if s.method in ("student_t", "bootstrap", "batch_means") else "none"
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


REQUEST_BATCHES = 10  # contiguous batches of requests for the batch-means noise of one run
_LATENCY_FIGURES = tuple(
    f"{stat}_{m}_ms" for m in ("ttft", "tpot", "itl", "e2el") for stat in ("mean", "median", "p90", "p99")
)


def request_spreads(
    requests: Sequence[RequestTiming], seed: int = 0, n_resamples: int = 1000, batches: int = REQUEST_BATCHES
) -> dict[str, SpreadStat]:
    """Request-level noise of one run's figures by batch means, allowing for correlation.

    Requests in send order are cut into `batches` contiguous batches (at most one per two
    requests); each latency figure (mean, median, p90, p99 of TTFT, TPOT, ITL, E2EL) is
    computed per batch and ``std`` is ``sd(batch figures) / √k``: the standard error of the
    whole run's figure, centred on it. Throughputs cut the run's span into `batches` equal time
    windows (tokens and requests counted where they completed) and take the same error of the
    windows' rates. Neighbouring requests share a queue, so resampling them one by one (a
    bootstrap) understates the run-to-run noise; contiguous batches keep that correlation
    inside a batch. `seed` and `n_resamples` are kept for callers and unused.
    """
    del seed, n_resamples
    out: dict[str, SpreadStat] = {}
    ordered = sorted(requests, key=lambda r: r.send_s)
    ok = [r for r in ordered if r.ok]
    k = min(batches, len(ordered) // 2)
    if k < 2 or len(ok) < 4:
        return out
    whole = aggregate(ordered)
    parts = [aggregate(list(part)) for part in _split(ordered, k)]
    for key in _LATENCY_FIGURES:
        point = whole.get(key)
        values = [p[key] for p in parts if p.get(key) is not None]
        if point is None or len(values) < 2:
            continue
        got = batch_spread(float(point), values)
        if got is not None:
            out[key] = spread_stat(got)
    out.update(_rate_spreads(ordered, k))
    return out


def _split(rows: Sequence[RequestTiming], k: int) -> list[list[RequestTiming]]:
    n = len(rows)
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [list(rows[bounds[i] : bounds[i + 1]]) for i in range(k)]


def _rate_spreads(rows: Sequence[RequestTiming], k: int) -> dict[str, SpreadStat]:
    """Batch means of the throughputs over `k` equal time windows of first send to last completion."""
    ends = [r.end_s for r in rows if r.end_s is not None]
    if not rows or not ends:
        return {}
    start, end = min(r.send_s for r in rows), max(ends)
    span = end - start
    if span <= 0:
        return {}
    width = span / k
    tokens = np.zeros(k)
    reqs = np.zeros(k)
    total_tokens = np.zeros(k)
    for r in rows:
        if not r.ok or r.end_s is None:
            continue
        i = min(k - 1, int((r.end_s - start) / width))
        reqs[i] += 1
        total_tokens[i] += r.input_tokens
        # Output tokens where they were streamed (chunk times), else at the completion.
        times = r.chunk_s or [r.end_s]
        per = r.output_tokens / len(times)
        for t in times:
            j = min(k - 1, max(0, int((t - start) / width)))
            tokens[j] += per
            total_tokens[j] += per
    out: dict[str, SpreadStat] = {}
    for key, series in (
        ("output_throughput", tokens),
        ("request_throughput", reqs),
        ("total_token_throughput", total_tokens),
    ):
        rates = series / width
        got = batch_spread(float(series.sum() / span), list(rates))
        if got is not None:
            out[key] = spread_stat(got)
    return out
