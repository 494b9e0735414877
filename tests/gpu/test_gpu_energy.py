"""Energy on a real NVIDIA GPU: counter and integrated power agree, and the meter works end to end."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.gpu


def test_telemetry_check_passes_on_this_gpu() -> None:
    """The whole `harness telemetry-check` (about 2 minutes): every figure within its threshold."""
    from harness.telemetry.check import run_check

    report = run_check()
    print(report.text())
    assert report.exit_status == 0, report.text()


def test_meter_windows_on_the_real_gpu(tmp_path) -> None:
    from harness.telemetry.session import TelemetrySession, default_gpu_meter

    meter = default_gpu_meter()
    with TelemetrySession(None, gpu=meter) as tel:
        idle = tel.measure_idle(2.0)  # after power has settled (up to 30 s)
        tel.begin_window("wait")
        time.sleep(2.0)
        phase = tel.end_window("wait")
        env = tel.environment_fields()
        path = tel.write_gpu_samples(tmp_path)
    assert idle.power_w is not None and idle.power_w > 0
    assert phase.gpu is not None and phase.energy_j is not None and phase.energy_j > 0
    assert phase.gpu.energy_source in ("counter", "power_integration")
    assert phase.gpu.sample_rate_hz is not None and phase.gpu.sample_rate_hz >= 10.0
    assert phase.gpu.counter_update_period_s is not None and phase.gpu.counter_update_period_s < 0.5
    assert idle.settled is not None and idle.memory_total_bytes
    assert env["gpus"] and env["gpus"][0].uuid.startswith("GPU-") and env["cuda_driver_version"]
    assert path == "telemetry/gpu_samples.parquet" and (tmp_path / path).stat().st_size > 0
