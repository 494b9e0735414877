"""Steady-state window, tokens inside it, and the per-scenario energy figures (pure functions)."""

from __future__ import annotations

import pytest

from harness.record.energy import window_value
from harness.record.run_record import GpuPhaseTelemetry, PhaseResources, Unmeasured
from harness.telemetry.energy import (
    SteadySpan,
    WindowEnergy,
    accuracy_energy,
    measured_interval,
    scenario_energy,
    steady_state_energy,
    steady_state_window,
    tokens_between,
)


def req(
    send: float, end: float, tokens: int = 10, first: float | None = None, itl: list | None = None
) -> dict:
    return {
        "send_s": send,
        "end_s": end,
        "first_token_s": send + 0.1 if first is None else first,
        "output_tokens": tokens,
        "itl_ms": itl,
    }


# Concurrency 2 in a closed loop: ramp-up until 0.2 s, steady until 2.2 s, then the drain.
CLOSED_LOOP = [req(0.0, 1.0), req(0.2, 1.2), req(1.001, 2.0), req(1.201, 2.2), req(2.001, 3.0)]


def test_steady_state_is_ml_energys_definition() -> None:
    """Issue 10 item 2: from all `target` requests past their first token to the first completion
    after the last send (the batch can no longer be refilled). The old code started at 0.2 s, when
    the second request was *sent* (its prefill not yet done)."""
    span, why = steady_state_window(CLOSED_LOOP, 2)
    assert why is None and span is not None
    assert (span.start_s, span.end_s) == (pytest.approx(0.3), 2.2)
    assert span.requests == 4  # r0 (1.0), r1 (1.2), r2 (2.0), r3 (2.2) complete inside (0.3, 2.2]
    assert span.low_confidence_reason is None  # refilled at once: the batch stayed full


def test_a_slow_refill_does_not_end_the_steady_state_but_lowers_its_confidence() -> None:
    slow_refill = [req(0.0, 1.0), req(0.2, 3.0), req(1.5, 3.0), req(1.6, 4.0)]
    span, _ = steady_state_window(slow_refill, 2)
    assert span is not None and (span.start_s, span.end_s) == (pytest.approx(0.3), 3.0)
    assert "fewer than 2 requests were in flight for 19 %" in (span.low_confidence_reason or "")


def test_a_single_batch_has_a_short_low_confidence_steady_state() -> None:
    span, why = steady_state_window([req(0.0, 1.0), req(0.0, 2.0)], 2)
    assert span is not None and (span.start_s, span.end_s) == (pytest.approx(0.1), 1.0)
    assert "only 1 request(s) completed" in (span.low_confidence_reason or "")


def test_target_never_reached_says_so() -> None:
    span, why = steady_state_window(CLOSED_LOOP, 3)
    assert span is None and why is not None and "peak 2" in why
    assert steady_state_window([], 1)[0] is None


def test_failed_requests_never_decode_and_do_not_count() -> None:
    reqs = [req(0.0, 1.0), {"send_s": 0.5, "end_s": 0.9, "first_token_s": None, "output_tokens": 0}]
    reqs.append({"send_s": 0.6, "end_s": None, "first_token_s": None, "output_tokens": 0})
    span, why = steady_state_window(reqs, 2)
    assert span is None and why is not None and "peak 1" in why


def test_measured_interval_is_first_send_to_last_completion() -> None:
    span, why = measured_interval(CLOSED_LOOP)
    assert why is None and span is not None
    assert (span.start_s, span.end_s, span.output_tokens, span.requests) == (0.0, 3.0, 50.0, 5)
    assert measured_interval([])[0] is None


def test_tokens_between_uses_chunk_times() -> None:
    # Chunks at 1.0, 1.1, 1.3, 1.6 s; 8 tokens -> 2 per chunk.
    r = req(0.5, 1.6, tokens=8, first=1.0, itl=[100.0, 200.0, 300.0])
    assert tokens_between([r], 1.05, 1.35) == pytest.approx(4.0)
    assert tokens_between([r], 0.0, 10.0) == pytest.approx(8.0)


def test_tokens_between_without_chunk_times_spreads_evenly() -> None:
    r = req(0.0, 2.0, tokens=100, first=1.0)
    assert tokens_between([r], 1.5, 5.0) == pytest.approx(50.0)
    assert tokens_between([req(0.0, 1.0, tokens=1, first=0.5)], 0.0, 0.6) == 1
    assert tokens_between([req(0.0, 1.0, tokens=0)], 0.0, 1.0) == 0


def gpu_window(
    energy_j: float | None, duration_s: float = 10.0, idle_w: float | None = None
) -> GpuPhaseTelemetry:
    return GpuPhaseTelemetry(
        gpu_count=1,
        duration_s=duration_s,
        energy_j=energy_j,
        energy_source="counter" if energy_j is not None else None,
        energy=None if energy_j is not None else Unmeasured(reason="GPU 0: counter went backwards"),
        avg_power_w=energy_j / duration_s if energy_j is not None else None,
        idle_power_w=idle_w,
        energy_above_idle_j=energy_j - idle_w * duration_s
        if energy_j is not None and idle_w is not None
        else None,
    )


def phase(tel: GpuPhaseTelemetry | None) -> PhaseResources:
    return PhaseResources(
        duration_s=10.0,
        engine_cpu_s=None,
        engine_peak_rss_bytes=None,
        energy_j=tel.energy_j if tel else None,
        energy=tel.energy if tel else Unmeasured(reason="no NVIDIA GPU visible"),
        gpu=tel,
    )


def test_scenario_energy_headline_is_the_measured_interval_and_gross_is_kept() -> None:
    measured = (
        SteadySpan(0.0, 10.0, 1500.0, 15),
        WindowEnergy(3000.0, None, gpu_window(3000.0, idle_w=100.0)),
    )
    window = phase(gpu_window(3600.0, duration_s=12.0, idle_w=100.0))
    e = scenario_energy(window, output_tokens=1500, measured=measured, completed=15)
    # The whole window is stored once, as the scenario's meter reading; readers derive it (schema v4).
    assert e.gross is None
    gross = window_value(window, 1500, 15)
    assert gross.energy_j == 3600.0 and gross.window == "scenario_window"
    assert "warm-up" in (gross.window_note or "")
    assert e.measured is not None and e.measured.energy_per_request_j == 200.0
    assert "prefill energy is charged to the output tokens" in (e.measured.window_note or "")
    head = e.measured  # schema v3: the headline is stored once, as this value
    assert head.energy_j == 3000.0 and head.avg_power_w == 300.0
    assert head.energy_per_output_token_j == 2.0 and head.output_tokens_per_j == 0.5
    assert head.energy_above_idle_j == 2000.0
    assert head.energy_per_output_token_above_idle_j == pytest.approx(4 / 3)


def test_scenario_energy_null_keeps_the_reason() -> None:
    e = scenario_energy(phase(gpu_window(None)), output_tokens=10)
    assert e.measured is not None and e.measured.energy_j is None and e.measured.reason
    assert "backwards" in e.measured.reason
    e = scenario_energy(phase(None), output_tokens=10)
    assert e.measured is not None and e.measured.reason == "no NVIDIA GPU visible"


def test_steady_state_energy_from_an_interval() -> None:
    span = SteadySpan(1.0, 5.0, output_tokens=800.0, requests=8, low_confidence_reason="few requests")
    s = steady_state_energy(
        span, WindowEnergy(1200.0, None, gpu_window(1200.0, duration_s=4.0, idle_w=100.0))
    )
    assert s.confidence == "low" and s.low_confidence_reason == "few requests"
    assert s.window == "steady_state" and s.energy_per_request_j == 150.0
    assert s.duration_s == 4.0 and s.avg_power_w == 300.0
    assert s.energy_per_output_token_j == 1.5 and s.output_tokens_per_j == pytest.approx(2 / 3)
    assert s.energy_above_idle_j == 800.0 and s.energy_per_output_token_above_idle_j == 1.0


def test_accuracy_energy_per_sample() -> None:
    a = accuracy_energy(phase(gpu_window(2000.0, idle_w=50.0)), n_samples=100)
    assert a.energy_per_sample_j == 20.0 and a.energy_per_sample_above_idle_j == 15.0
    assert accuracy_energy(phase(None), 100).energy_per_sample_j is None
