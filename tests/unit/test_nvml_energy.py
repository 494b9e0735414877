"""Energy windows, the sampler and the telemetry session against a scripted fake NVML."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

from harness.record.energy import scenario_energy_value, window_value
from harness.record.load import LoadShape
from harness.record.run_record import (
    Environment,
    ModelInfo,
    PhaseResources,
    Resources,
    RunRecord,
    ScenarioResult,
    ScenarioSettings,
    SuiteInfo,
)
from harness.telemetry.energy import NvmlGpuMeter
from harness.telemetry.nvml import open_gpus
from harness.telemetry.sampler import GpuSampler, counter_delta_mj, integrate_power_j
from harness.telemetry.session import NullGpuMeter, TelemetrySession

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

STEP_S = 0.05


def make_meter(fake, env: dict[str, str] | None = None) -> NvmlGpuMeter:
    """A started meter on the fake clock, without its thread: tests drive the ticks."""
    meter = NvmlGpuMeter(open_gpus(env or {}), clock=fake.clock, background=False, sleep=fake.clock.advance)
    meter.start()
    return meter


def run(fake, meter: NvmlGpuMeter, seconds: float, step: float = STEP_S) -> None:
    """Let fake time pass with the sampler ticking every ``step`` seconds."""
    for _ in range(round(seconds / step)):
        fake.clock.advance(step)
        meter.sampler.sample_now()


def window(fake, meter: NvmlGpuMeter, seconds: float, name: str = "w", step: float = STEP_S):
    meter.begin_window(name)
    run(fake, meter, seconds, step)
    r = meter.end_window(name)
    return r.energy_j, r.reason, r.gpu


# -- pure arithmetic -------------------------------------------------------------------------


def test_trapezoid_is_exact_for_linear_power_and_clips_to_the_interval() -> None:
    pts = [(0.0, 100.0), (10.0, 300.0)]
    assert integrate_power_j(pts, 0.0, 10.0) == pytest.approx(2000.0)
    assert integrate_power_j(pts, 5.0, 10.0) == pytest.approx(1250.0)  # 200 W -> 300 W over 5 s
    assert integrate_power_j(pts, -1.0, 10.0) is None  # no guessing before the first sample
    assert integrate_power_j([(0.0, 1.0)], 0.0, 0.0) is None


def test_counter_delta_interpolates_edges_and_rejects_a_reset() -> None:
    pts = [(0.0, 1000.0), (1.0, 2000.0), (2.0, 3000.0)]
    assert counter_delta_mj(pts, 0.5, 1.5) == (1000.0, None)
    delta, why = counter_delta_mj([(0.0, 5000.0), (1.0, 6000.0), (2.0, 100.0), (3.0, 900.0)], 0.0, 3.0)
    assert delta is None and why is not None and "backwards" in why
    assert counter_delta_mj(pts, 0.0, 5.0)[0] is None


# -- windows ---------------------------------------------------------------------------------


def test_counter_window_energy_power_and_phase_tags(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 200.0)])
    meter = make_meter(fake_nvml)
    run(fake_nvml, meter, 1.0)
    energy_j, reason, tel = window(fake_nvml, meter, 10.0, name="accuracy")
    meter.stop()
    assert reason is None and tel is not None
    assert energy_j == pytest.approx(2000.0, abs=1e-3)  # 200 W x 10 s, from the counter in mJ
    assert tel.energy_source == "counter" and tel.devices[0].energy_source == "counter"
    assert tel.duration_s == pytest.approx(10.0)
    assert tel.avg_power_w == pytest.approx(200.0)
    assert tel.peak_power_w == pytest.approx(200.0)
    assert tel.peak_memory_used_bytes == 60 * 2**30
    assert tel.mean_gpu_util_pct == 90.0 and tel.mean_mem_util_pct == 40.0
    assert not tel.energy_low_confidence and tel.energy_above_idle_j is None
    assert tel.sample_rate_hz == pytest.approx(20.0, rel=0.02)
    phases = {r.phase for r in meter.sampler.readings(t0=fake_nvml.t - 9.0, t1=fake_nvml.t - 1.0)}
    assert phases == {"accuracy"}
    assert meter.sampler.phase is None


def test_counter_reset_invalidates_the_window(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(0.0, 200.0)])
    gpu.counter = lambda t: (
        9_000_000 + round((t - 1000) * 200_000) if t < 1005 else round((t - 1005) * 200_000)
    )
    meter = make_meter(fake_nvml)
    energy_j, reason, tel = window(fake_nvml, meter, 10.0)
    meter.stop()
    assert energy_j is None and tel is not None and tel.energy_j is None
    assert reason is not None and "backwards" in reason.reason and "GPU 0" in reason.reason
    # Not silently replaced by power integration, nor by the sum of the pieces.
    assert tel.energy_source is None and tel.devices[0].energy_source is None


def test_missing_counter_falls_back_to_power_integration(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(1000.0, 100.0), (1010.0, 300.0)], unsupported={"energy"})
    meter = make_meter(fake_nvml)
    energy_j, reason, tel = window(fake_nvml, meter, 10.0)
    meter.stop()
    assert reason is None and tel is not None
    assert energy_j == pytest.approx(2000.0)  # linear ramp: the trapezoid is exact
    assert tel.energy_source == "power_integration"
    assert meter.environment_fields()["gpus"][0].energy_counter is False


def test_multi_gpu_windows_sum_over_gpus(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 100.0)], memory_used=10 * 2**30)
    fake_nvml.add_gpu(power=[(0.0, 300.0)], memory_used=20 * 2**30)
    meter = make_meter(fake_nvml)
    energy_j, _, tel = window(fake_nvml, meter, 10.0)
    meter.stop()
    assert tel is not None
    assert energy_j == pytest.approx(4000.0, abs=1e-2)
    assert [d.energy_j for d in tel.devices] == [
        pytest.approx(1000.0, abs=1e-2),
        pytest.approx(3000.0, abs=1e-2),
    ]
    assert tel.gpu_count == 2 and tel.avg_power_w == pytest.approx(400.0)
    assert tel.peak_power_w == pytest.approx(400.0)
    assert tel.peak_memory_used_bytes == 30 * 2**30


def test_mixed_sources_are_named_mixed(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 100.0)])
    fake_nvml.add_gpu(power=[(0.0, 100.0)], unsupported={"energy"})
    meter = make_meter(fake_nvml)
    energy_j, _, tel = window(fake_nvml, meter, 5.0)
    meter.stop()
    assert tel is not None and tel.energy_source == "mixed"
    assert energy_j == pytest.approx(1000.0, abs=1e-2)


def test_a_gpu_without_any_energy_voids_the_sum(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 100.0)])
    fake_nvml.add_gpu(unsupported={"energy", "power"})
    meter = make_meter(fake_nvml)
    energy_j, reason, tel = window(fake_nvml, meter, 5.0)
    meter.stop()
    assert energy_j is None and reason is not None
    assert reason.reason.startswith("GPU 1: no energy counter")
    assert "no power reading" in reason.reason
    assert tel is not None and tel.devices[0].energy_j == pytest.approx(500.0, abs=1e-2)


def test_windows_under_50_counter_periods_are_low_confidence(fake_nvml) -> None:
    """Issue 10 item 3: the counter's measured ~100 ms period, not a fixed 1 s, sets confidence.

    A 1.5 s window passed the old 1 s rule, yet its edges can be 100 ms (7 %) off.
    """
    fake_nvml.add_gpu()
    meter = make_meter(fake_nvml)
    assert meter.counter_period_s == {0: pytest.approx(0.1, abs=0.002)}  # measured at start
    _, _, short = window(fake_nvml, meter, 1.5)
    _, _, longer = window(fake_nvml, meter, 6.0)
    meter.stop()
    assert short is not None and short.energy_low_confidence
    assert "under 50 updates of the energy counter (measured period 100 ms)" in (
        short.low_confidence_reason or ""
    )
    assert short.counter_update_period_s == pytest.approx(0.1, abs=0.002)
    assert longer is not None and not longer.energy_low_confidence
    gpu_info = meter.environment_fields()["gpus"][0]
    assert gpu_info.counter_update_period_s == pytest.approx(0.1, abs=0.002)


def test_sparse_power_samples_make_an_integrated_window_low_confidence(fake_nvml) -> None:
    fake_nvml.add_gpu(unsupported={"energy"})
    meter = make_meter(fake_nvml)
    energy_j, _, tel = window(fake_nvml, meter, 3.0, step=1.5)
    meter.stop()
    assert energy_j == pytest.approx(300.0)
    assert tel is not None and tel.energy_low_confidence
    assert "apart" in (tel.low_confidence_reason or "")


def test_idle_baseline_is_measured_and_subtracted(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(1020.0, 60.0), (1020.0, 300.0)])
    fake_nvml.add_gpu(power=[(1020.0, 40.0), (1020.0, 100.0)])
    meter = make_meter(fake_nvml)
    t_idle = fake_nvml.t
    idle = meter.measure_idle(5.0, sleep=lambda s: run(fake_nvml, meter, s))
    assert idle.power_w == pytest.approx(100.0, abs=0.5) and idle.reason is None
    assert idle.device_power_w == [pytest.approx(60.0, abs=0.5), pytest.approx(40.0, abs=0.5)]
    assert idle.energy_source == "counter" and idle.memory_used_bytes == 2 * 60 * 2**30
    assert idle.memory_total_bytes == 2 * 80 * 2**30
    assert (
        idle.settled
        and idle.settle_s is not None
        and 2.0 <= idle.settle_s <= 3.0
        and idle.power_spread_w == pytest.approx(0.0)
    )
    idle_rows = meter.sampler.readings(t0=t_idle + 3.5, t1=t_idle + 6.5)
    assert {r.phase for r in idle_rows} == {"idle"}
    run(fake_nvml, meter, round((1020.0 - fake_nvml.t) / STEP_S) * STEP_S)  # to t=1020, where the load starts
    energy_j, _, tel = window(fake_nvml, meter, 10.0)
    meter.stop()
    # The counter moves every 100 ms: a window's edges are off by up to one period's energy.
    assert tel is not None and energy_j == pytest.approx(4000.0, abs=0.1 * 400)
    assert tel.idle_power_w == pytest.approx(100.0, abs=0.5)
    assert tel.energy_above_idle_j == pytest.approx(3000.0, abs=0.1 * 400 + 5)


def test_interval_measures_a_sub_window_from_the_series(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(1005.0, 100.0), (1005.0, 400.0)])
    meter = make_meter(fake_nvml)
    window(fake_nvml, meter, 10.0)
    r = meter.interval(1006.02, 1008.02)
    energy_j, reason, tel = r.energy_j, r.reason, r.gpu  # between ticks: interpolated
    assert reason is None and tel is not None
    assert energy_j == pytest.approx(800.0, abs=0.1 * 400)  # within one counter period
    assert tel.energy_source == "counter"
    assert meter.interval(900.0, 1001.0).energy_j is None  # before telemetry started: no figure
    meter.stop()


# -- the sampler -----------------------------------------------------------------------------


def test_unsupported_fields_are_null_with_reason_and_not_reread(fake_nvml) -> None:
    fake_nvml.add_gpu(unsupported={"utilization", "temperature"})
    meter = make_meter(fake_nvml)
    run(fake_nvml, meter, 1.0)
    _, _, tel = window(fake_nvml, meter, 2.0)
    meter.stop()
    rows = meter.sampler.readings()
    assert all(r.gpu_util_pct is None and r.temperature_c is None for r in rows)
    assert all(r.power_w is not None for r in rows)
    assert {r.sm_clock_mhz for r in rows} == {None, 1980}  # the slow fields at 2 Hz only
    assert "Not Supported" in (meter.sampler.unsupported_reason(0, "utilization") or "")
    assert fake_nvml.lib.nvmlDeviceGetUtilizationRates.call_count == 1
    assert tel is not None and tel.mean_gpu_util_pct is None and tel.energy_j is not None


def test_transient_read_errors_leave_a_gap_and_are_counted(fake_nvml) -> None:
    fake_nvml.add_gpu(fail_once={"energy": fake_nvml.real.NVML_ERROR_TIMEOUT})
    gpus = open_gpus({})
    sampler = GpuSampler(gpus, clock=fake_nvml.clock)
    first = sampler.sample_now()[0]
    second = sampler.sample_now()[0]
    gpus.close()
    assert first.energy_mj is None and second.energy_mj is not None
    assert sampler.read_errors == 1 and "Timeout" in (sampler.last_error or "")
    assert sampler.field_supported(0, "energy_mj")


def test_sampler_thread_starts_and_stops_without_leaking(fake_nvml) -> None:
    fake_nvml.add_gpu()
    fake_nvml.add_gpu()
    before = set(threading.enumerate())
    gpus = open_gpus({})
    sampler = GpuSampler(gpus, interval_s=0.01)
    sampler.stop()  # before start: a no-op
    sampler.start()
    sampler.start()  # idempotent: still one thread
    names = [t.name for t in threading.enumerate() if t.name == "harness-gpu-sampler"]
    assert names == ["harness-gpu-sampler"]
    deadline = time.monotonic() + 5.0
    while len(sampler.readings()) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    sampler.stop()
    gpus.close()
    assert not sampler.running
    assert set(threading.enumerate()) == before
    assert len(sampler.readings(gpu_index=1)) >= 5
    assert sampler.achieved_rate_hz() is not None


def test_meter_stop_joins_the_thread_and_releases_nvml(fake_nvml) -> None:
    fake_nvml.add_gpu()
    meter = NvmlGpuMeter(open_gpus({}), interval_s=0.01)
    meter.start()
    meter.begin_window("w")
    meter.end_window("w")
    meter.stop()
    assert not any(t.name == "harness-gpu-sampler" for t in threading.enumerate())
    assert fake_nvml.lib.nvmlShutdown.call_count == 1


def test_time_series_parquet(fake_nvml, tmp_path) -> None:
    fake_nvml.add_gpu()
    fake_nvml.add_gpu(unsupported={"temperature"})
    meter = make_meter(fake_nvml)
    window(fake_nvml, meter, 1.0, name="scenario:a")
    meter.stop()
    path = tmp_path / "telemetry" / "gpu_samples.parquet"
    assert meter.write_samples(path) == len(meter.sampler.readings())
    table = pq.read_table(path)
    assert table.column_names == [
        "t_s",
        "gpu_index",
        "power_w",
        "memory_used_bytes",
        "gpu_util_pct",
        "mem_util_pct",
        "sm_clock_mhz",
        "temperature_c",
        "phase",
        "energy_counter_j",
    ]
    rows = table.to_pylist()
    # t_s counts from the meter's start; measuring the counter's period came first.
    assert rows[0]["t_s"] == pytest.approx(0.537, abs=0.002) and rows[-1]["t_s"] == pytest.approx(
        1.537, abs=0.002
    )
    assert {r["gpu_index"] for r in rows} == {0, 1}
    assert {r["phase"] for r in rows} == {None, "scenario:a"}
    assert all(r["temperature_c"] is None for r in rows if r["gpu_index"] == 1)
    assert rows[0]["energy_counter_j"] == pytest.approx(5_000_000 + 100_000, abs=0.6 * 100)


# -- the session -----------------------------------------------------------------------------


def closed_loop_requests() -> list[dict]:
    """Concurrency 2: ramp-up to 0.2 s, steady until 2.2 s, drain to 3.0 s; 100 tokens each."""
    spans = [(0.0, 1.0), (0.2, 1.2), (1.001, 2.0), (1.201, 2.2), (2.001, 3.0)]
    return [
        {
            "send_s": s,
            "first_token_s": s + 0.1,
            "end_s": e,
            "output_tokens": 100,
            "itl_ms": None,
            "error": None,
        }
        for s, e in spans
    ]


def test_session_scenario_energy_counts_the_measured_interval_not_the_warm_up(fake_nvml, tmp_path) -> None:
    """Issue 10 item 1: the scenario window opens before warm-up and prompt building (here 2 s
    at 400 W); its tokens are the measured requests' only. The old J/token charged the warm-up
    to them: (800 + 750) J / 500 tokens = 3.1 J/token instead of 1.5."""
    t0 = 1000.0 + 0.55  # the meter's start measures the counter period first
    fake_nvml.add_gpu(
        power=[(0.0, 250.0), (t0 + 4.0, 250.0), (t0 + 4.0, 400.0), (t0 + 6.0, 400.0), (t0 + 6.0, 250.0)]
    )
    meter = make_meter(fake_nvml)
    with TelemetrySession(None, gpu=meter) as tel:
        run(fake_nvml, meter, round((t0 - fake_nvml.t) / STEP_S) * STEP_S)
        tel.begin_window("accuracy")
        run(fake_nvml, meter, 4.0)
        acc_phase = tel.end_window("accuracy")
        tel.begin_window("scenario:c2")
        run(fake_nvml, meter, 2.0)  # warm-up requests and prompt building, at 400 W
        first_send_s = fake_nvml.t
        run(fake_nvml, meter, 3.0)
        phase = tel.end_window("scenario:c2")
        run(fake_nvml, meter, 0.5)  # the sampler goes on after the window
        requests = closed_loop_requests()
        energy = tel.scenario_energy(
            "scenario:c2", 500, requests, target_concurrency=2, first_send_s=first_send_s
        )
        acc = tel.accuracy_energy("accuracy", n_samples=40)
        assert tel.write_gpu_samples(tmp_path) == "telemetry/gpu_samples.parquet"
    period_j = 0.1 * 400  # the counter's edges are good to one update period
    assert isinstance(phase.gpu, type(acc_phase.gpu)) and phase.energy_j == pytest.approx(
        1550.0, abs=period_j
    )
    gross = window_value(phase, 500, None)  # stored once, as the window's reading (schema v4)
    assert energy.gross is None and gross.energy_j == pytest.approx(1550.0, abs=period_j)
    assert gross.energy_per_output_token_j == pytest.approx(3.1, abs=0.1)
    assert energy.measured is not None and energy.measured.window == "measured"
    assert (energy.measured.start_s, energy.measured.end_s) == (0.0, 3.0)
    head = energy.measured  # schema v3: stored once
    assert head.energy_j == pytest.approx(750.0, abs=period_j) and head.source == "counter"
    assert head.energy_per_output_token_j == pytest.approx(1.5, abs=0.05)
    assert head.energy_per_request_j == pytest.approx(150.0, abs=10)
    assert head.avg_power_w == pytest.approx(250.0, abs=10)
    steady = energy.steady_state
    assert steady is not None and energy.steady_state_reason is None
    assert (steady.start_s, steady.end_s) == (pytest.approx(0.3), pytest.approx(2.2))
    assert steady.energy_j == pytest.approx(475.0, abs=period_j)
    assert steady.energy_per_output_token_j == pytest.approx(475.0 / (steady.output_tokens or 0), rel=0.1)
    assert steady.window == "steady_state"
    assert acc.energy_j == pytest.approx(1000.0, abs=0.1 * 250)
    assert acc.energy_per_sample_j == pytest.approx(25.0, rel=0.03)
    assert (tmp_path / "telemetry" / "gpu_samples.parquet").is_file()


def test_rate_scenario_has_no_steady_state(fake_nvml) -> None:
    fake_nvml.add_gpu()
    meter = make_meter(fake_nvml)
    with TelemetrySession(None, gpu=meter) as tel:
        tel.begin_window("s")
        run(fake_nvml, meter, 4.0)
        tel.end_window("s")
        energy = tel.scenario_energy(
            "s", 10, closed_loop_requests(), target_concurrency=None, first_send_s=fake_nvml.t - 3.5
        )
    assert energy.steady_state is None and "request-rate" in (energy.steady_state_reason or "")
    assert energy.measured is not None and energy.measured.energy_j is not None


def test_without_a_gpu_every_gpu_figure_is_null_with_its_reason(tmp_path) -> None:
    """The CPU-only smoke path: nothing pretends, and the record still validates."""
    why = "NVML unavailable: nvmlInit: NVML Shared Library Not Found"
    with TelemetrySession(None, gpu=NullGpuMeter(why)) as tel:
        t_start = time.monotonic()
        idle = tel.measure_idle(5.0)
        assert time.monotonic() - t_start < 1.0  # nothing to measure: no waiting
        tel.begin_window("accuracy")
        acc_phase = tel.end_window("accuracy")
        tel.begin_window("scenario:c2")
        phase = tel.end_window("scenario:c2")
        energy = tel.scenario_energy(
            "scenario:c2", 500, closed_loop_requests(), 2, first_send_s=time.perf_counter()
        )
        acc = tel.accuracy_energy("accuracy", 40)
        assert tel.write_gpu_samples(tmp_path) is None
        env_fields = tel.environment_fields()
    assert idle.power_w is None and idle.reason == why
    assert (
        phase.energy_j is None
        and phase.energy is not None
        and phase.energy.reason == why
        and phase.gpu is None
    )
    head = energy.measured
    assert head is not None and head.energy_j is None and head.reason == why
    assert head.energy_per_output_token_j is None and head.output_tokens_per_j is None
    assert energy.steady_state is not None and energy.steady_state.energy_j is None
    assert energy.steady_state.reason == why
    assert acc.energy_j is None and acc.energy is not None and acc.energy.reason == why
    assert not (tmp_path / "telemetry").exists()

    settings = ScenarioSettings(
        load=LoadShape(
            input_tokens=8,
            output_tokens=100,
            num_requests=5,
            concurrency=2,
            request_rate=None,
            warmup_requests=0,
        ),
        seed=0,
    )
    aggregates: dict = dict.fromkeys(
        [
            f"{s}_{m}_ms"
            for m in ("ttft", "tpot", "itl", "e2el")
            for s in ("mean", "median", "std", "p90", "p99")
        ]
    )
    scenario = ScenarioResult(
        name="c2",
        settings=settings,
        completed=5,
        failed=0,
        duration=3.0,
        total_input_tokens=40,
        total_output_tokens=500,
        request_throughput=1.0,
        output_throughput=100.0,
        total_token_throughput=110.0,
        max_concurrency_reached=2,
        client_cpu_s=0.1,
        client_cpu_us_per_output_token=1.0,
        resources=phase,
        energy=energy,
        **aggregates,
    )
    now = datetime.now(timezone.utc)
    record = RunRecord(
        run_id="r",
        status="ok",
        suite=SuiteInfo(name="smoke"),
        model=ModelInfo(preset="p", family="llama", source="s", served_name="m"),
        environment=Environment(
            harness_version="0",
            git_sha=None,
            python="3",
            platform="linux",
            hostname="h",
            cpu_model=None,
            cpu_count=2,
            memory_total_bytes=None,
            **env_fields,
        ),
        started_at=now,
        finished_at=now,
        scenarios=[scenario],
        resources=Resources(
            engine_peak_rss_bytes=None,
            phases={"accuracy": acc_phase, "scenario:c2": phase},
            idle=idle,
            accuracy_energy=acc,
        ),
    )
    again = RunRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert again.environment.gpus == [] and again.environment.gpu_reason == why
    perf = again.performance["c2"].energy
    assert perf is not None and perf.measured is not None and perf.measured.reason == why
    # The new figures of issue 10 are null with the same reason, never invented.
    gross = scenario_energy_value(again.performance["c2"], "scenario_window")
    for value in (perf.measured, gross, again.resources.accuracy_energy.value):  # type: ignore[union-attr]
        assert (
            value is not None and value.energy_j is None and value.reason == why and value.confidence is None
        )
    assert again.resources.accuracy_energy.energy_per_correct_sample_j is None  # type: ignore[union-attr]
    assert again.resources.idle.settle_s is None and again.resources.idle.memory_total_bytes is None  # type: ignore[union-attr]
    # ... and the run page shows each with its reason.
    from harness.dashboard.energysection import energy_section

    html = energy_section(again)
    assert 'id="energy"' in html and "c2: measured interval (headline)" in html
    assert html.count("NVML unavailable") >= 3 and "whole window, with warm-up" in html


def test_phase_resources_still_accepts_no_gpu() -> None:
    # The field's old default (None) still validates.
    assert PhaseResources(duration_s=1.0, engine_cpu_s=None, engine_peak_rss_bytes=None).gpu is None


def test_session_records_kv_cache_usage_per_phase() -> None:
    from harness.engine.poller import MetricsPoller

    pages = iter(["vllm:kv_cache_usage_perc 0.3\n", "vllm:kv_cache_usage_perc 0.6\n"])
    poller = MetricsPoller("http://engine:8000", fetch=lambda url: next(pages))
    tel = TelemetrySession(None, gpu=NullGpuMeter(), kv_cache=poller)
    tel.kv_capacity_tokens = 1000
    tel.begin_window("scenario:a")
    poller.poll_once()
    poller.poll_once()
    phase = tel.end_window("scenario:a")
    assert phase.kv_cache is not None
    assert (phase.kv_cache.peak_usage_frac, phase.kv_cache.peak_usage_tokens, phase.kv_cache.polls) == (
        0.6,
        600,
        2,
    )
