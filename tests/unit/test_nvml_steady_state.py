"""Steady-state window, tokens inside it, and the per-scenario energy figures (pure functions)."""

from __future__ import annotations

import pytest

from harness.records import GpuPhaseTelemetry, PhaseResources, Unmeasured
from harness.telemetry.energy import (
    SteadySpan,
    accuracy_energy,
    scenario_energy,
    scenario_energy_figures,
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


def test_steady_state_from_first_reaching_to_first_dropping() -> None:
    span, why = steady_state_window(CLOSED_LOOP, 2)
    assert why is None and span is not None
    assert (span.start_s, span.end_s) == (0.2, 2.2)


def test_a_dip_longer_than_the_tolerance_ends_the_steady_state() -> None:
    span, _ = steady_state_window(CLOSED_LOOP, 2, gap_tolerance_s=0.0)
    assert span is not None and span.end_s == 1.0
    slow_refill = [req(0.0, 1.0), req(0.2, 3.0), req(1.5, 3.0)]  # 0.5 s before the refill
    span, _ = steady_state_window(slow_refill, 2)
    assert span is not None and (span.start_s, span.end_s) == (0.2, 1.0)


def test_simultaneous_end_and_send_is_no_drop() -> None:
    reqs = [req(0.0, 1.0), req(0.0, 2.0), req(1.0, 2.0)]
    span, _ = steady_state_window(reqs, 2, gap_tolerance_s=0.0)
    assert span is not None and (span.start_s, span.end_s) == (0.0, 2.0)


def test_target_never_reached_says_so() -> None:
    span, why = steady_state_window(CLOSED_LOOP, 3)
    assert span is None and why == "target concurrency 3 never reached (peak 2 in flight)"
    assert steady_state_window([], 1) == (None, "target concurrency 1 never reached (peak 0 in flight)")


def test_failed_or_unfinished_requests_still_occupy_their_slot_or_are_ignored() -> None:
    reqs = [req(0.0, 1.0), {"send_s": 0.5, "end_s": 0.9, "first_token_s": None, "output_tokens": 0}]
    reqs.append({"send_s": 0.6, "end_s": None, "first_token_s": None, "output_tokens": 0})
    span, _ = steady_state_window(reqs, 2)
    assert span is not None and (span.start_s, span.end_s) == (0.5, 0.9)
    assert span.output_tokens == pytest.approx(10 * 0.4 / 0.9)


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


def test_scenario_energy_figures() -> None:
    assert scenario_energy_figures(500.0, 1000, 10.0) == {
        "energy_per_output_token_j": 0.5,
        "output_tokens_per_j": 2.0,
        "avg_power_w": 50.0,
    }
    assert scenario_energy_figures(None, 1000, 10.0) == dict.fromkeys(
        ["energy_per_output_token_j", "output_tokens_per_j", "avg_power_w"]
    )
    assert scenario_energy_figures(500.0, 0, 10.0)["energy_per_output_token_j"] is None


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


def test_scenario_energy_gross_and_above_idle() -> None:
    e = scenario_energy(phase(gpu_window(3000.0, idle_w=100.0)), output_tokens=1500)
    assert e.energy_j == 3000.0 and e.avg_power_w == 300.0
    assert e.energy_per_output_token_j == 2.0 and e.output_tokens_per_j == 0.5
    assert e.energy_above_idle_j == 2000.0 and e.energy_per_output_token_above_idle_j == pytest.approx(4 / 3)


def test_scenario_energy_null_keeps_the_reason() -> None:
    e = scenario_energy(phase(gpu_window(None)), output_tokens=10)
    assert e.energy_j is None and e.energy is not None and "backwards" in e.energy.reason
    e = scenario_energy(phase(None), output_tokens=10)
    assert e.energy is not None and e.energy.reason == "no NVIDIA GPU visible"


def test_steady_state_energy_from_an_interval() -> None:
    span = SteadySpan(1.0, 5.0, output_tokens=800.0)
    s = steady_state_energy(span, 4, (1200.0, None, gpu_window(1200.0, duration_s=4.0, idle_w=100.0)))
    assert s.duration_s == 4.0 and s.avg_power_w == 300.0
    assert s.energy_per_output_token_j == 1.5 and s.output_tokens_per_j == pytest.approx(2 / 3)
    assert s.energy_above_idle_j == 800.0 and s.energy_per_output_token_above_idle_j == 1.0


def test_accuracy_energy_per_sample() -> None:
    a = accuracy_energy(phase(gpu_window(2000.0, idle_w=50.0)), n_samples=100)
    assert a.energy_per_sample_j == 20.0 and a.energy_per_sample_above_idle_j == 15.0
    assert accuracy_energy(phase(None), 100).energy_per_sample_j is None
