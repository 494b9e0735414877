"""Validity rules: when a measured point is not to be trusted, and why (pure).

Each rule reads the point's request timeline and says, in words, what went wrong:

* **failed requests** above ``max_failed_share``;
* **too few requests / too short** against the suite's MLPerf-style minimums;
* **open loop: delivered rate** — the client sent slower than the rate it offered (sends
  per second over the send span against the schedule's; without the schedule, against the
  nominal rate, and only when the span is beyond Poisson chance: z > 3.09);
* **closed loop: achieved concurrency** — the time-weighted mean of requests in flight
  between the first and the last send fell short of the target;
* **client saturation** — sends lagged their schedule (p99 send lag) or the load generator
  was busy for most of the wall time (its CPU seconds per second);
* **over-saturation** (sweeps) — throughput flat from one point to the next while TTFT
  keeps rising: more load only builds a queue. The sweep stops there.

A rule that cannot be evaluated (no schedule known, so no send lag) is skipped and its
figure is None; it never fails a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.loadgen.metrics import RequestTiming
from harness.spec.rigor import ValiditySpec


@dataclass(frozen=True)
class PointTimeline:
    """What the rules read about one measured point (times in seconds, relative)."""

    requests: Sequence[RequestTiming]
    duration_s: float
    client_cpu_s: float | None = None
    target_concurrency: int | None = None  # closed loop
    offered_rate: float | None = None  # open loop, requests/s
    scheduled_s: Sequence[float] | None = None  # per request, same order, if the generator kept them


@dataclass(frozen=True)
class Validity:
    valid: bool
    reasons: list[str]
    figures: dict[str, float | None] = field(default_factory=dict)


def mean_in_flight(requests: Sequence[RequestTiming], start_s: float, end_s: float) -> float:
    """Time-weighted mean of requests outstanding over [start_s, end_s]."""
    if end_s <= start_s:
        return float(max_overlap_at(requests, start_s))
    total = 0.0
    for r in requests:
        end = r.end_s if r.end_s is not None else r.send_s
        lo, hi = max(r.send_s, start_s), min(end, end_s)
        if hi > lo:
            total += hi - lo
    return total / (end_s - start_s)


def achieved_concurrency(requests: Sequence[RequestTiming], target: int) -> tuple[float, float | None]:
    """Mean requests in flight from the moment the target is first reached to the last send
    (the ramp-up is not the loop's fault), and that window's length in seconds; the peak and
    None when the target is never reached."""
    events = sorted(
        [(r.send_s, 1) for r in requests]
        + [(r.end_s if r.end_s is not None else r.send_s, -1) for r in requests],
        key=lambda e: (e[0], e[1]),
    )
    cur = peak = 0
    reached: float | None = None
    for when, delta in events:
        cur += delta
        peak = max(peak, cur)
        if reached is None and cur >= target:
            reached = when
    if reached is None:
        return float(peak), None
    last_send = max(r.send_s for r in requests)
    if last_send <= reached:
        return float(target), 0.0
    return mean_in_flight(requests, reached, last_send), last_send - reached


def max_overlap_at(requests: Sequence[RequestTiming], t: float) -> int:
    return sum(1 for r in requests if r.send_s <= t and (r.end_s if r.end_s is not None else r.send_s) > t)


def check_point(t: PointTimeline, spec: ValiditySpec) -> Validity:
    """Apply every rule; `valid` is True when no rule objected."""
    reasons: list[str] = []
    reqs = list(t.requests)
    n = len(reqs)
    completed = sum(1 for r in reqs if r.ok)
    failed_share = (n - completed) / n if n else 1.0
    figures: dict[str, float | None] = {
        "requests": float(n),
        "completed": float(completed),
        "failed_share": failed_share,
        "duration_s": t.duration_s,
    }
    if n == 0:
        return Validity(False, ["no measured requests"], figures)
    if failed_share > spec.max_failed_share:
        reasons.append(
            f"{n - completed} of {n} requests failed ({failed_share:.1%} > {spec.max_failed_share:.1%} allowed)"
        )
    if spec.min_requests is not None and completed < spec.min_requests:
        reasons.append(f"too few requests: {completed} completed < minimum {spec.min_requests}")
    if spec.min_duration_s is not None and t.duration_s < spec.min_duration_s:
        reasons.append(f"too short: {t.duration_s:.1f} s < minimum {spec.min_duration_s:g} s")

    sends = sorted(r.send_s for r in reqs)
    span = sends[-1] - sends[0]
    if t.offered_rate is not None and n >= 2 and span > 0:
        delivered = (n - 1) / span
        offered = t.offered_rate
        known = t.scheduled_s is not None and len(t.scheduled_s) == n
        if known:
            assert t.scheduled_s is not None
            sched_span = max(t.scheduled_s) - min(t.scheduled_s)
            offered = (n - 1) / sched_span if sched_span > 0 else offered
            implausible = True
        else:
            # Without the schedule the span of n−1 Poisson gaps is itself random (mean (n−1)/rate,
            # sd √(n−1)/rate): only a span beyond 3.09 sd (p ≈ 0.001) says the client fell behind.
            z = (span * offered - (n - 1)) / math.sqrt(n - 1)
            implausible = z > 3.09
            figures["delivered_rate_z"] = z
        figures |= {"offered_rate_rps": offered, "delivered_rate_rps": delivered}
        if delivered < offered * (1.0 - spec.rate_tolerance) and implausible:
            reasons.append(
                f"delivered {delivered:.3g} req/s < offered {offered:.3g} req/s "
                f"(more than {spec.rate_tolerance:.0%} short): the client could not keep the schedule"
            )
    if t.target_concurrency is not None and t.offered_rate is None:
        target = min(t.target_concurrency, n)
        achieved, window = achieved_concurrency(reqs, target)
        figures |= {"target_concurrency": float(t.target_concurrency), "mean_in_flight": achieved}
        # A request's slot is held a moment past its last token (usage chunk, [DONE]); over a
        # window shorter than two request latencies those moments dominate, so it is not judged.
        e2e = [e for r in reqs if (e := r.e2el_s) is not None]
        judged = window is None or not e2e or window >= 2.0 * float(np.median(e2e))
        if judged and achieved < target * (1.0 - spec.concurrency_tolerance):
            reasons.append(
                f"mean in flight {achieved:.2f} < target concurrency {target} "
                f"(more than {spec.concurrency_tolerance:.0%} short)"
            )
    lag = send_lag_p99_ms(reqs, t.scheduled_s)
    figures["send_lag_p99_ms"] = lag
    if lag is not None and spec.max_send_lag_ms is not None and lag > spec.max_send_lag_ms:
        reasons.append(f"client saturated: p99 send lag {lag:.1f} ms > {spec.max_send_lag_ms:g} ms")
    busy = t.client_cpu_s / t.duration_s if t.client_cpu_s is not None and t.duration_s > 0 else None
    figures["client_busy_share"] = busy
    if busy is not None and spec.max_client_busy_share is not None and busy > spec.max_client_busy_share:
        reasons.append(
            f"client saturated: load generator busy {busy:.0%} of the wall time > {spec.max_client_busy_share:.0%}"
        )
    return Validity(valid=not reasons, reasons=reasons, figures=figures)


def send_lag_p99_ms(requests: Sequence[RequestTiming], scheduled_s: Sequence[float] | None) -> float | None:
    """p99 of (actual send − scheduled send), ms; None without a schedule.

    Both timelines are taken relative to their own first entry, so a constant offset (the
    generator's start-up) does not count as lag.
    """
    if scheduled_s is None or len(scheduled_s) != len(requests) or not requests:
        return None
    actual = np.asarray([r.send_s for r in requests], dtype=float)
    planned = np.asarray(scheduled_s, dtype=float)
    lag = (actual - actual.min()) - (planned - planned.min())
    return float(np.percentile(lag, 99) * 1000.0)


def oversaturation(points: Sequence[tuple[float, float, float | None]], spec: ValiditySpec) -> str | None:
    """Over-saturation between the last two sweep points `(load, output tok/s, median TTFT ms)`.

    Returns the reason to stop the sweep, or None. Throughput that grew by less than
    ``oversaturation_flat_share`` while TTFT grew by more than ``oversaturation_ttft_rise``
    means the added load only queued.
    """
    if len(points) < 2:
        return None
    (l1, thr1, ttft1), (l2, thr2, ttft2) = points[-2], points[-1]
    if l2 <= l1 or thr1 <= 0 or ttft1 is None or ttft2 is None or ttft1 <= 0:
        return None
    thr_growth = thr2 / thr1 - 1.0
    ttft_growth = ttft2 / ttft1 - 1.0
    if thr_growth < spec.oversaturation_flat_share and ttft_growth > spec.oversaturation_ttft_rise:
        return (
            f"over-saturated: from load {l1:.3g} to {l2:.3g} output throughput changed {thr_growth:+.1%} "
            f"while median TTFT rose {ttft_growth:+.0%}; sweep stopped"
        )
    return None
