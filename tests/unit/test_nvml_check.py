"""`harness telemetry-check`: its pure scoring on series from the hardware-modelling fake, its CLI
without a GPU (exit 2 with the reason), and its imports (torch and nvidia-ml-py only)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from harness.telemetry.check_score import (
    Measured,
    Score,
    disturbance_scores,
    exit_status,
    format_scores,
    latency_scores,
    level_scores,
    measure,
    period_scores,
    settle_time_s,
    square_wave_scores,
    whole_run_scores,
    window_errors,
    window_length_scores,
)
from tests.fakenvml import RealClock

REPO = Path(__file__).resolve().parents[2]


def series(gpu, t0: float, t1: float, step: float):
    """(counter mJ, instant W, average W) as NVML would answer polls every ``step`` seconds."""
    n = round((t1 - t0) / step)
    ts = [t0 + i * step for i in range(n + 1)]
    counter = [
        (t, float(gpu.energy_offset_mj + round(gpu.energy_j_at(gpu.counter_time(t)) * 1000))) for t in ts
    ]
    return counter, [(t, gpu.power_at(t)) for t in ts], [(t, gpu.average_power_at(t)) for t in ts]


def square(t0: float, t1: float, period: float, low: float, high: float, duty: float = 0.5):
    """A power trace stepping between ``low`` and ``high``: steps fall between any sampler's ticks."""
    pts, t = [(0.0, low)], t0
    while t < t1:
        pts += [(t, low), (t, high), (t + duty * period, high), (t + duty * period, low)]
        t += period
    return pts


def test_counter_update_period_found_from_a_tight_poll(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(0.0, 600.0)])
    counter, instant, average = series(gpu, 1000.0, 1001.5, 0.001)
    scores = {s.name: s for s in period_scores({"energy counter": counter, "instant power": instant})}
    assert scores["energy counter"].value == pytest.approx(100.0, abs=1.0) and scores["energy counter"].passed
    assert (
        scores["instant power"].value is None and scores["instant power"].passed is None
    )  # flat: never moves


def test_a_slow_counter_fails_the_period_check(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(0.0, 600.0)], counter_period_s=0.5)
    counter, _, _ = series(gpu, 1000.0, 1003.0, 0.001)
    (score,) = period_scores({"energy counter": counter})
    assert score.value == pytest.approx(500.0, abs=2.0) and score.passed is False


def test_read_latency_p99_threshold() -> None:
    ok = latency_scores({"energy counter": [20e-6] * 1990 + [400e-6] * 10})
    slow = latency_scores({"instant power": [20e-6] * 1900 + [5e-3] * 100})
    assert [s.passed for s in ok] == [None, True] and ok[0].value == pytest.approx(0.02)
    assert slow[1].passed is False and slow[1].value == pytest.approx(5.0)


def test_settling_time_of_a_cooling_gpu(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(1000.0, 160.0), (1012.0, 70.0)])
    _, instant, _ = series(gpu, 1000.0, 1030.0, 0.05)
    settle = settle_time_s(instant, 1000.0)
    assert settle is not None and 12.0 <= settle <= 14.5
    assert settle_time_s(instant[:200], 1000.0) is None  # still falling at the end of the data


def test_steady_loads_agree_three_ways_and_are_ordered(fake_nvml) -> None:
    levels = {}
    for name, watts in (("decode", 250.0), ("mid", 420.0), ("matmul", 690.0)):
        gpu = fake_nvml.add_gpu(power=[(0.0, watts)])
        levels[name] = measure(*series(gpu, 1000.0, 1008.0, 0.05), 1001.5, 1008.0)
    scores = level_scores(levels, 70.0, 700.0)
    assert all(s.passed in (True, None) for s in scores), format_scores(scores)
    over = level_scores(
        {**levels, "matmul": Measured(6.5, 6.5 * 800.0, 6.5 * 800.0, 6.5 * 800.0)}, 70.0, 700.0
    )
    assert over[-1].passed is False  # 800 W > 1.05 x 700 W
    swapped = level_scores({**levels, "decode": levels["mid"], "mid": levels["decode"]}, 70.0, 700.0)
    assert swapped[-1].passed is False


def test_average_power_lags_a_load_step_and_fails_a_short_window(fake_nvml) -> None:
    # A load step at 1000.5 s: the 1 s average is still rising through the first second.
    gpu = fake_nvml.add_gpu(power=[(1000.5, 70.0), (1000.5, 690.0)])
    m = measure(*series(gpu, 999.0, 1003.0, 0.05), 1000.5, 1002.0)
    scores = {s.name: s for s in level_scores({"matmul": m}, None, None)}
    assert scores["matmul: integrated instant power / counter - 1"].passed
    assert scores["matmul: integrated average power / counter - 1"].passed is False


def test_square_waves_the_counter_holds_while_20_hz_power_aliases(fake_nvml) -> None:
    # 70 ms period, 50 % duty, 690 W / 70 W: sampled at 20 Hz the steps alias (part-time sampling).
    gpu = fake_nvml.add_gpu(power=square(1000.0, 1009.0, 0.07, 70.0, 690.0))
    counter, instant, average = series(gpu, 1000.0, 1009.0, 0.05)
    m = measure(counter, instant, average, 1000.5, 1008.5)
    counter_err, drift = square_wave_scores(0.07, 0.5, m, 690.0, 70.0)
    assert counter_err.passed and abs(counter_err.value) < 0.02  # type: ignore[arg-type]
    assert drift.passed is None and abs(drift.value) > 0.05  # type: ignore[arg-type]


def test_window_length_errors_recommend_the_50_period_rule(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(0.0, 690.0)])
    rng = random.Random(1)  # the sampler thread's ticks jitter by up to 10 ms
    ts = [1000.0 + i * 0.05 + rng.uniform(-0.01, 0.01) for i in range(401)]
    counter = [
        (t, float(gpu.energy_offset_mj + round(gpu.energy_j_at(gpu.counter_time(t)) * 1000))) for t in ts
    ]
    errors = window_errors(counter, 1000.5, 1019.5, [0.1, 1.0, 5.0, 8.0])
    # Edges good to one 100 ms update: the error is about period / length.
    assert errors[0.1] == pytest.approx(1.0) and errors[1.0] == pytest.approx(0.1)
    assert errors[5.0] == pytest.approx(0.02) and errors[8.0] == pytest.approx(0.0125)
    shortest = window_length_scores(errors)[-1]
    assert shortest.value == 5.0 and shortest.passed


def test_whole_run_catches_a_backwards_counter_and_read_errors() -> None:
    pts = [(float(t), 1000.0 * t) for t in range(10)]
    power = [(float(t), 1.0) for t in range(10)]
    assert all(s.passed for s in whole_run_scores(pts, power, 0))
    bad = whole_run_scores([*pts[:5], (5.0, 0.0), *pts[6:]], power, 3)
    assert [s.passed for s in bad[1:]] == [False, False]


def test_whole_run_can_leave_out_the_square_waves(fake_nvml) -> None:
    # 20 s steady, then 8 s of 100 ms waves sampled at 20 Hz (aliased on purpose), then 10 s steady.
    waves = square(1020.0, 1028.0, 0.1, 70.0, 690.0)[1:]  # without its leading (0 s, low)
    gpu = fake_nvml.add_gpu(power=[(0.0, 300.0), (1020.0, 300.0), *waves, (1028.0, 300.0)])
    rng = random.Random(2)
    ts = [1000.0 + i * 0.05 for i in range(761)]
    ts = [t + rng.uniform(0, 0.002) for t in ts]
    counter = [
        (t, float(gpu.energy_offset_mj + round(gpu.energy_j_at(gpu.counter_time(t)) * 1000))) for t in ts
    ]
    power = [(t, gpu.power_at(t)) for t in ts]
    kept = whole_run_scores(counter, power, 0, exclude=(1020.0, 1028.0))[0]
    assert kept.passed and "left out" in kept.name and abs(kept.value) < 0.01  # type: ignore[arg-type]


def test_sampler_disturbance_thresholds() -> None:
    assert all(s.passed in (True, None) for s in disturbance_scores(1000.0, 990.0, 0.01, 19.8))
    lost = disturbance_scores(1000.0, 950.0, 0.2, 18.0)
    assert lost[2].passed is False and lost[2].value == pytest.approx(0.05) and lost[4].passed is False


def test_exit_status_and_report_lines() -> None:
    good = Score("s", "x", 1.0, "W", "≤ 2 W", True)
    info = Score("s", "y", None, "", "reported", None)
    assert exit_status([good, info]) == 0 and exit_status([info]) == 1
    assert exit_status([good, Score("s", "z", 3.0, "W", "≤ 2 W", False)]) == 1
    text = format_scores([good, info])
    assert "[PASS] s: x = 1 W  (≤ 2 W)" in text and "[info] s: y = n/a" in text and "RESULT: PASS" in text


def test_cli_without_a_gpu_exits_2_with_the_reason_and_writes_the_json(tmp_path) -> None:
    out_json = tmp_path / "check.json"
    code = (
        "import runpy, sys\n"
        "sys.modules['pynvml'] = None\n"  # as on a machine without nvidia-ml-py's library
        f"sys.argv = ['gpu_energy_check.py', '--json', {str(out_json)!r}]\n"
        "runpy.run_path('benchmarks/gpu_energy_check.py', run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "telemetry check: no NVIDIA GPU to check" in out.stderr
    report = json.loads(out_json.read_text())
    assert report["exit_status"] == 2 and "no NVIDIA GPU" in report["reason"]
    assert sum(report["planned_s"].values()) <= 180.0  # the plan fits in 3 minutes


def test_gpu_check_imports_without_pydantic_numpy_or_torch() -> None:
    # The check must run where only torch and nvidia-ml-py are installed (torch loads lazily).
    code = (
        "import sys\n"
        "for m in ('pydantic', 'psutil', 'vllm', 'torch', 'pyarrow', 'numpy'): sys.modules[m] = None\n"
        "import harness.telemetry.check\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def _stub_torch(uuid: str):
    import time
    from types import SimpleNamespace

    cuda = SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        get_device_properties=lambda i: SimpleNamespace(uuid=uuid),
        set_device=lambda i: None,
        synchronize=lambda: None,
    )
    return SimpleNamespace(
        __version__="stub",
        cuda=cuda,
        bfloat16="bf16",
        randn=lambda *a, **k: object(),
        empty=lambda *a, **k: object(),
        matmul=lambda *a, **k: time.sleep(0.0002),
    )


def test_dry_run_of_every_step_on_a_fake_gpu_and_a_stub_torch(fake_nvml, monkeypatch, tmp_path) -> None:
    """Every step runs, every figure is printed with a threshold and the JSON is complete (the
    loads are stubs, so the load-ordering figure fails: exit status 1, not a crash)."""
    import harness.telemetry.check as check

    fake_nvml.clock = RealClock()
    gpu = fake_nvml.add_gpu(power=[(0.0, 120.0)], processes={os.getpid()})
    monkeypatch.setitem(sys.modules, "torch", _stub_torch(gpu.uuid[4:]))
    for name, value in {
        "SETTLE_LOAD_S": 0.3,
        "SETTLE_CAP_S": 3.0,
        "IDLE_S": 0.5,
        "POLL_S": 0.5,
        "LEVEL_S": 0.6,
        "LEVEL_RAMP_S": 0.1,
        "WAVE_S": 0.3,
        "DISTURB_S": 0.2,
    }.items():
        monkeypatch.setattr(check, name, value)
    out = tmp_path / "check.json"
    status = check.main(["--json", str(out)])
    report = json.loads(out.read_text())
    steps = {s["step"] for s in report["scores"]}
    assert steps == {
        "set-up",
        "read latency",
        "update period",
        "settling",
        "load levels",
        "window length",
        "square waves",
        "whole run",
        "sampler disturbance",
    }
    scores = {(s["step"], s["name"]): s for s in report["scores"]}
    assert scores[("set-up", "torch device UUID == NVML UUID")]["passed"] is True
    assert (
        scores[("set-up", "per-run identity: NVML lists this process on the GPU by UUID")]["passed"] is True
    )
    assert scores[("update period", "energy counter")]["value"] == pytest.approx(100.0, abs=15.0)
    assert scores[("whole run", "NVML read errors")]["passed"] is True
    assert scores[("load levels", "idle < decode < mid < matmul ≤ 1.05 × limit")]["passed"] is False
    assert status == report["exit_status"] == 1
    assert set(report["durations_s"]) == {
        "set-up",
        "read latency",
        "update periods",
        "settling",
        "load levels",
        "square waves",
        "sampler disturbance",
    }
