"""Validity rules on synthetic timelines; goodput, pooling and spreads."""

from __future__ import annotations

import pytest

from harness.loadgen.metrics import RequestTiming
from harness.rigor.summary import goodput, pooled_aggregate, repeat_aggregates, request_spreads, spreads
from harness.rigor.validity import PointTimeline, check_point, mean_in_flight, oversaturation
from harness.spec.rigor import SloSpec, ValiditySpec


def req(
    i: int, send: float, ttft: float, end: float, out: int = 11, error: str | None = None
) -> RequestTiming:
    chunks = [send + ttft + k * (end - send - ttft) / max(out - 1, 1) for k in range(out)]
    return RequestTiming(
        index=i,
        send_s=send,
        input_tokens=8,
        first_token_s=None if error else send + ttft,
        end_s=end,
        chunk_s=[] if error else chunks,
        output_tokens=0 if error else out,
        error=error,
    )


def closed_loop(concurrency: int, n: int, latency: float = 1.0) -> list[RequestTiming]:
    """A perfect closed loop: `concurrency` streams, each sends its next request at once."""
    out = []
    for i in range(n):
        stream, k = i % concurrency, i // concurrency
        out.append(req(i, k * latency + stream * 1e-3, 0.1, (k + 1) * latency + stream * 1e-3))
    return out


SPEC = ValiditySpec(min_requests=None, min_duration_s=None)


def test_a_clean_closed_loop_is_valid() -> None:
    reqs = closed_loop(4, 40)
    v = check_point(PointTimeline(reqs, duration_s=10.0, client_cpu_s=0.5, target_concurrency=4), SPEC)
    assert v.valid, v.reasons
    assert v.figures["mean_in_flight"] == pytest.approx(4.0, rel=0.01)
    assert v.figures["client_busy_share"] == pytest.approx(0.05)


def test_concurrency_shortfall() -> None:
    reqs = closed_loop(2, 40)  # only two streams though four were asked
    v = check_point(PointTimeline(reqs, duration_s=20.0, target_concurrency=4), SPEC)
    assert not v.valid and "mean in flight 2.00 < target concurrency 4" in v.reasons[0]


def test_failed_share_and_minimums() -> None:
    reqs = closed_loop(1, 10)
    reqs[3] = req(3, 3.0, 0.1, 3.1, error="HTTP 500")
    spec = ValiditySpec(min_requests=20, min_duration_s=60, max_failed_share=0.05)
    v = check_point(PointTimeline(reqs, duration_s=10.0, target_concurrency=1), spec)
    assert not v.valid
    assert any("1 of 10 requests failed (10.0% > 5.0% allowed)" in r for r in v.reasons)
    assert any("too few requests: 9 completed < minimum 20" in r for r in v.reasons)
    assert any("too short: 10.0 s < minimum 60 s" in r for r in v.reasons)


def test_delivered_rate_below_offered() -> None:
    # Offered 10 req/s but the client sent one request per second.
    reqs = [req(i, float(i), 0.1, i + 0.5) for i in range(10)]
    v = check_point(PointTimeline(reqs, duration_s=9.5, offered_rate=10.0), SPEC)
    assert not v.valid and "delivered 1 req/s < offered 10 req/s" in v.reasons[0]
    ok = check_point(PointTimeline(reqs, duration_s=9.5, offered_rate=1.05), SPEC)
    assert ok.valid, ok.reasons


def test_schedule_sets_the_offered_rate_and_the_send_lag() -> None:
    reqs = [req(i, i * 0.5 + (0.2 if i > 5 else 0.0), 0.1, i * 0.5 + 0.4) for i in range(10)]
    scheduled = [i * 0.5 for i in range(10)]
    v = check_point(PointTimeline(reqs, duration_s=5.0, offered_rate=2.0, scheduled_s=scheduled), SPEC)
    assert v.figures["send_lag_p99_ms"] == pytest.approx(200.0)
    assert not v.valid and any("p99 send lag 200.0 ms > 50 ms" in r for r in v.reasons)
    no_schedule = check_point(PointTimeline(reqs, duration_s=5.0, offered_rate=2.0), SPEC)
    assert no_schedule.figures["send_lag_p99_ms"] is None


def test_busy_client() -> None:
    reqs = closed_loop(1, 5)
    v = check_point(PointTimeline(reqs, duration_s=5.0, client_cpu_s=4.5, target_concurrency=1), SPEC)
    assert not v.valid and "load generator busy 90% of the wall time > 80%" in v.reasons[0]


def test_no_requests() -> None:
    v = check_point(PointTimeline([], duration_s=0.0), SPEC)
    assert v.reasons == ["no measured requests"]


def test_mean_in_flight_by_hand() -> None:
    reqs = [req(0, 0.0, 0.1, 2.0), req(1, 1.0, 0.1, 2.0)]
    assert mean_in_flight(reqs, 0.0, 2.0) == pytest.approx(1.5)


def test_oversaturation_stops_a_flat_sweep() -> None:
    spec = ValiditySpec()
    rising = [(1.0, 100.0, 50.0), (2.0, 190.0, 60.0)]
    assert oversaturation(rising, spec) is None
    flat = [(2.0, 190.0, 60.0), (3.0, 192.0, 400.0)]
    reason = oversaturation(flat, spec)
    assert reason is not None and "throughput changed +1.1%" in reason and "+567%" in reason
    assert oversaturation(flat[:1], spec) is None


def test_goodput_follows_vllm() -> None:
    reqs = [
        req(0, 0.0, 0.1, 1.1),  # ttft 100 ms, tpot 100 ms
        req(1, 0.0, 0.3, 1.3),  # ttft 300 ms: misses a 200 ms TTFT bound
        req(2, 0.0, 0.1, 2.1),  # tpot 200 ms: misses a 150 ms TPOT bound
        req(3, 0.0, 0.1, 0.1, error="boom"),
        req(4, 0.0, 0.1, 0.1, out=1),  # one token: TPOT counts as 0
    ]
    g = goodput(reqs, SloSpec(ttft_ms=200, tpot_ms=150), duration_s=2.0)
    assert (g.good_requests, g.measured_requests) == (2, 5)
    assert g.request_goodput == pytest.approx(1.0) and g.slo_attainment == pytest.approx(0.4)
    assert g.attainment_ci95_low < 0.4 < g.attainment_ci95_high
    assert goodput(reqs, SloSpec(ttft_ms=100), duration_s=2.0).good_requests == 3  # bound inclusive


def test_pooled_aggregate_recomputes_from_rows() -> None:
    a = closed_loop(1, 4, latency=1.0)
    b = closed_loop(1, 4, latency=3.0)
    agg = pooled_aggregate([a, b], [4.0, 12.0])
    assert agg["completed"] == 8 and agg["duration"] == 16.0
    assert agg["output_throughput"] == pytest.approx(8 * 11 / 16.0)
    assert agg["median_e2el_ms"] == pytest.approx(2000.0)  # pooled median of 1 s and 3 s rows


def test_spreads_over_repeats_and_requests() -> None:
    aggs = [
        {"completed": 4, "failed": 0, "duration": 4.0, "request_throughput": 1.0, "output_throughput": t}
        for t in (10.0, 12.0, 14.0)
    ]
    reps = [
        repeat_aggregates(
            i + 1, a, energy_per_output_token_j=None, good=None, client_cpu_s=None, requests_path=None
        )
        for i, a in enumerate(aggs)
    ]
    s = spreads(reps)
    assert s["output_throughput"].mean == 12.0 and s["output_throughput"].method == "student_t"
    assert s["output_throughput"].ci95_high == pytest.approx(16.9683, abs=1e-4)
    assert "energy_per_output_token_j" not in s
    rs = request_spreads(closed_loop(2, 30))
    # Batch means over 10 contiguous batches (a bootstrap over requests assumed them independent).
    assert rs["median_e2el_ms"].method == "batch_means" and rs["median_e2el_ms"].n == 10
    assert {"p99_ttft_ms", "mean_itl_ms", "output_throughput"} <= rs.keys()


def test_poisson_chance_is_not_a_client_failure() -> None:
    # 6 sends over 7 s at an offered 1 req/s: 0.71 req/s delivered, but 5 exponential gaps
    # summing to 7 s is ordinary chance (z = 0.89) when the schedule is unknown.
    sends = [0.0, 1.0, 2.5, 4.0, 6.0, 7.0]
    reqs = [req(i, s, 0.1, s + 0.5) for i, s in enumerate(sends)]
    v = check_point(PointTimeline(reqs, duration_s=7.5, offered_rate=1.0), SPEC)
    assert v.valid, v.reasons
    assert v.figures["delivered_rate_z"] == pytest.approx((7.0 - 5.0) / 5**0.5)
    # The same sends against a known, evenly spaced 1 s schedule: the client fell behind.
    late = check_point(
        PointTimeline(reqs, duration_s=7.5, offered_rate=1.0, scheduled_s=[0, 1, 2, 3, 4, 5]), SPEC
    )
    assert not late.valid and any("delivered 0.714 req/s < offered 1 req/s" in r for r in late.reasons)


def test_a_window_shorter_than_two_latencies_is_not_judged() -> None:
    # Four requests at once, a fifth 0.2 s after the first completes: mean in flight 3.3 < 3.6,
    # but over a 1.2 s window with 1 s requests the refill moment dominates.
    reqs = [req(i, i * 1e-3, 0.1, 1.0) for i in range(4)] + [req(4, 1.2, 0.1, 2.2)]
    v = check_point(PointTimeline(reqs, duration_s=2.2, target_concurrency=4), SPEC)
    assert v.valid, v.reasons
    assert v.figures["mean_in_flight"] == pytest.approx(3.33, abs=0.02)
