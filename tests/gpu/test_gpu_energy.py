"""Energy on a real NVIDIA GPU: counter and integrated power agree, and the meter works end to end."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.gpu


def test_counter_and_integrated_power_agree_on_a_matmul_load() -> None:
    from harness.telemetry.check import format_result, run_check

    result = run_check(duration_s=15.0, idle_s=3.0)
    print(format_result(result))
    assert result.load.counter_j is not None, result.load.counter_reason
    assert result.ratio is not None and abs(result.ratio - 1.0) <= 0.05, format_result(result)
    assert result.sample_rate_hz is not None and result.sample_rate_hz >= 10.0
    assert result.load.counter_power_w is not None and result.idle.counter_power_w is not None
    assert result.load.counter_power_w > result.idle.counter_power_w


def test_meter_windows_on_the_real_gpu(tmp_path) -> None:
    from harness.telemetry.session import TelemetrySession, default_gpu_meter

    meter = default_gpu_meter()
    with TelemetrySession(None, gpu=meter) as tel:
        idle = tel.measure_idle(2.0)
        tel.begin_window("wait")
        time.sleep(2.0)
        phase = tel.end_window("wait")
        env = tel.environment_fields()
        path = tel.write_gpu_samples(tmp_path)
    assert idle.power_w is not None and idle.power_w > 0
    assert phase.gpu is not None and phase.energy_j is not None and phase.energy_j > 0
    assert phase.gpu.energy_source in ("counter", "power_integration")
    assert phase.gpu.sample_rate_hz is not None and phase.gpu.sample_rate_hz >= 10.0
    assert env["gpus"] and env["gpus"][0].uuid.startswith("GPU-") and env["cuda_driver_version"]
    assert path == "telemetry/gpu_samples.parquet" and (tmp_path / path).stat().st_size > 0
