"""The GPU energy check's plumbing (the measurement itself runs in tests/gpu on a real GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.telemetry.check import CheckResult, WindowFigures, _window, format_result, run_check
from harness.telemetry.nvml import open_gpus
from harness.telemetry.sampler import GpuSampler

REPO = Path(__file__).resolve().parents[2]


def test_cli_registers_telemetry_check() -> None:
    args = build_parser().parse_args(["telemetry-check", "--duration-s", "10", "--idle-s", "2", "--json"])
    assert (args.duration_s, args.idle_s, args.json, args.size) == (10.0, 2.0, True, 8192)


def test_no_gpu_exits_2_with_the_reason(fake_nvml, capsys) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_DRIVER_NOT_LOADED
    assert main(["telemetry-check"]) == 2
    err = capsys.readouterr().err
    assert "no NVIDIA GPU to check" in err and "driver is not loaded" in err


def test_gpu_but_no_cuda_torch_exits_2(fake_nvml, capsys, monkeypatch) -> None:
    fake_nvml.add_gpu()
    fake_torch = type(sys)("torch")
    fake_torch.__version__ = "2.13.0+cpu"  # type: ignore[attr-defined]
    fake_torch.cuda = type("cuda", (), {"is_available": staticmethod(lambda: False)})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert main(["telemetry-check"]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err


def test_check_refuses_to_run_past_two_minutes(fake_nvml) -> None:
    with pytest.raises(Exception, match="two minutes"):
        run_check(duration_s=100.0, idle_s=5.0)


def test_benchmark_script_runs_from_a_checkout() -> None:
    # Without a GPU the script must say why and exit 2 (this machine, or any CPU-only CI).
    code = (
        "import runpy, sys\n"
        "sys.modules['pynvml'] = None\n"  # as on a machine without nvidia-ml-py's library
        "sys.argv = ['gpu_energy_check.py']\n"
        "runpy.run_path('benchmarks/gpu_energy_check.py', run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "gpu energy check: no NVIDIA GPU to check" in out.stderr


def test_window_counter_and_integral_agree_on_a_scripted_load(fake_nvml) -> None:
    # 100 W idle, then a 600 W load from t=1010; the counter is exact, the samples at 20 Hz.
    fake_nvml.add_gpu(power=[(1010.0, 100.0), (1010.0, 600.0)])
    with open_gpus({}) as gpus:
        sampler = GpuSampler(gpus, clock=fake_nvml.clock)
        for _ in range(round(30.0 / 0.05) + 1):
            sampler.sample_now()
            fake_nvml.clock.advance(0.05)
        idle = _window(sampler, gpus[0], 1001.0, 1009.0)
        load = _window(sampler, gpus[0], 1010.0, 1029.5)
    # The counter moves every 100 ms: its edges are good to one period's energy.
    assert idle.counter_j == pytest.approx(800.0, abs=10) and idle.ratio == pytest.approx(1.0, abs=0.01)
    assert load.counter_j == pytest.approx(11700.0, abs=60)
    assert load.ratio == pytest.approx(1.0, abs=0.005)  # the step at 1010 s costs < half a tick
    assert load.peak_power_w == 600.0 and load.counter_power_w == pytest.approx(600.0)


def result(ratio: float) -> CheckResult:
    idle = WindowFigures(5.0, 350.0, None, 348.0, 69.6, 71.0, 101)
    load = WindowFigures(30.0, 21000.0, None, 21000.0 * ratio, 700.0, 712.0, 601)
    return CheckResult(
        gpu_name="NVIDIA H100 80GB HBM3",
        gpu_uuid="GPU-1",
        gpu_index=0,
        driver_version="550.54.15",
        power_limit_w=700.0,
        power_reading="instant",
        interval_s=0.05,
        sample_rate_hz=19.8,
        sampler_busy_frac=0.004,
        idle=idle,
        load=load,
        matmuls=18000,
        size=8192,
        tflops=660.0,
        tolerance=0.05,
    )


def test_report_and_verdict() -> None:
    good, bad = result(0.99), result(0.90)
    assert good.agrees and not bad.agrees
    text = format_result(good)
    assert "counter 21,000.0 J (700.0 W)" in text and "integral 20,790.0 J" in text
    assert "sampler: 19.8 Hz achieved (target 20 Hz), reading NVML 0.40 % of the time" in text
    assert "RESULT: integral/counter = 0.9900 (-1.00 %) on the load window: PASS" in text
    assert "FAIL" in format_result(bad)
    figures = json.loads(json.dumps(good.to_json()))
    assert figures["ratio"] == pytest.approx(0.99) and figures["load"]["counter_power_w"] == 700.0


def test_gpu_check_imports_with_only_the_standard_library() -> None:
    # The check must run where only torch and nvidia-ml-py are installed: no pydantic, psutil, vLLM.
    code = (
        "import sys\n"
        "for m in ('pydantic', 'psutil', 'vllm', 'torch', 'pyarrow', 'numpy'): sys.modules[m] = None\n"
        "import harness.telemetry.check\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
