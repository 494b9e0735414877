"""The NVML module against a fake pynvml: device mapping, error translation, reads, provenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.record.run_record import Environment
from harness.telemetry.energy import describe_gpus
from harness.telemetry.nvml import (
    NvmlError,
    NvmlGpuLost,
    NvmlNotSupported,
    NvmlUnavailable,
    open_gpus,
    parse_cuda_visible_devices,
    resolve_visible,
    translate_error,
)
from harness.telemetry.session import NullGpuMeter, default_gpu_meter

REPO = Path(__file__).resolve().parents[2]
UUIDS = ["GPU-aaaa1111", "GPU-bbbb2222", "GPU-aaaa3333", "GPU-cccc4444"]


# -- CUDA_VISIBLE_DEVICES --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("0,1", ["0", "1"]),
        (" 2 , 0 ", ["2", "0"]),
        ("1,-1,0", ["1"]),
        ("0,,1", ["0"]),
        ("-1", []),
        ("GPU-aaaa1111,1", ["GPU-aaaa1111", "1"]),
    ],
)
def test_parse_cuda_visible_devices(value: str | None, expected: list[str] | None) -> None:
    assert parse_cuda_visible_devices(value) == expected


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (None, [0, 1, 2, 3]),
        ([], []),
        (["2", "0"], [2, 0]),
        (["1", "7", "0"], [1]),  # an index past the last GPU ends the list, as in CUDA
        (["1", "1"], [1]),  # a repeat ends the list
        (["GPU-bbbb"], [1]),  # unique UUID prefix
        (["GPU-aaaa"], []),  # ambiguous prefix: matches two GPUs
        (["GPU-cccc4444", "0"], [3, 0]),
        (["GPU-ffff"], []),
    ],
)
def test_resolve_visible(entries: list[str] | None, expected: list[int]) -> None:
    assert resolve_visible(entries, UUIDS) == expected


def test_open_gpus_follows_cuda_visible_devices(fake_nvml) -> None:
    for _ in range(4):
        fake_nvml.add_gpu()
    with open_gpus({"CUDA_VISIBLE_DEVICES": "2,0"}) as gpus:
        assert [(g.index, g.nvml_index) for g in gpus] == [(0, 2), (1, 0)]
        assert gpus[0].uuid == fake_nvml.gpus[2].uuid
        assert gpus.visible_devices == "2,0"


def test_open_gpus_by_uuid_and_tensor_parallel_size(fake_nvml) -> None:
    for _ in range(4):
        fake_nvml.add_gpu()
    env = {"CUDA_VISIBLE_DEVICES": f"{fake_nvml.gpus[3].uuid[:14]},1,2"}
    with open_gpus(env, max_devices=2) as gpus:
        assert [g.nvml_index for g in gpus] == [3, 1]


def test_open_gpus_unset_means_all(fake_nvml) -> None:
    fake_nvml.add_gpu()
    fake_nvml.add_gpu()
    with open_gpus({}) as gpus:
        assert len(gpus) == 2 and gpus.reason is None


def test_mig_instance_is_measured_through_its_parent(fake_nvml) -> None:
    fake_nvml.add_gpu()
    parent = fake_nvml.add_gpu()
    fake_nvml.add_mig(parent, "MIG-1234-5678")
    with open_gpus({"CUDA_VISIBLE_DEVICES": "MIG-1234-5678"}) as gpus:
        assert [g.nvml_index for g in gpus] == [1] and gpus[0].mig
        assert "MIG instance" in gpus.notes[0] and "no energy figure" in gpus.notes[1]


def test_no_visible_gpu_gives_an_empty_set_with_reason(fake_nvml) -> None:
    fake_nvml.add_gpu()
    gpus = open_gpus({"CUDA_VISIBLE_DEVICES": ""})
    assert len(gpus) == 0
    assert gpus.reason == "no NVIDIA GPU visible (CUDA_VISIBLE_DEVICES='')"
    assert fake_nvml.lib.nvmlShutdown.call_count == 1  # released at once


def test_missing_library_gives_null_meter_with_reason(fake_nvml) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    meter = default_gpu_meter({})
    assert isinstance(meter, NullGpuMeter)
    assert "libnvidia-ml.so not found" in meter.reason
    result = meter.end_window("x")
    assert result.energy_j is None and result.gpu is None and "NVML unavailable" in (result.why or "")


def test_machine_without_gpus_gives_null_meter(fake_nvml) -> None:
    meter = default_gpu_meter({})
    assert isinstance(meter, NullGpuMeter)
    assert meter.reason == "no NVIDIA GPU visible"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (3, NvmlNotSupported),
        (13, NvmlNotSupported),
        (12, NvmlUnavailable),
        (15, NvmlGpuLost),
        (999, NvmlError),
    ],
)
def test_nvml_errors_become_ours(code: int, cls: type[NvmlError]) -> None:
    import pynvml

    err = translate_error(pynvml.NVMLError(code), "power")
    assert type(err) is cls
    assert err.code == code
    assert str(err).startswith("power: ")


def test_device_reads_raise_our_types(fake_nvml) -> None:
    fake_nvml.add_gpu(
        unsupported={"energy"}, fail_once={"temperature": fake_nvml.real.NVML_ERROR_GPU_IS_LOST}
    )
    with open_gpus({}) as gpus:
        with pytest.raises(NvmlNotSupported, match="energy counter"):
            gpus[0].energy_mj()
        with pytest.raises(NvmlGpuLost):
            gpus[0].temperature_c()
        assert gpus[0].temperature_c() == 55


# -- reads -----------------------------------------------------------------------------------


def test_power_prefers_the_instant_field(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 312.5)])
    with open_gpus({}) as gpus:
        assert gpus[0].power_w() == pytest.approx(312.5)
        assert gpus[0].power_reading == "instant"
    assert fake_nvml.lib.nvmlDeviceGetPowerUsage.call_count == 0


def test_power_falls_back_to_the_average_reading(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 250.0)], unsupported={"instant"})
    with open_gpus({}) as gpus:
        assert gpus[0].power_w() == pytest.approx(250.0)
        assert gpus[0].power_w() == pytest.approx(250.0)
        assert gpus[0].power_reading == "average"
    assert fake_nvml.lib.nvmlDeviceGetFieldValues.call_count == 1  # settled once


def test_reads_are_in_si_units(fake_nvml) -> None:
    fake_nvml.add_gpu()
    with open_gpus({}) as gpus:
        g = gpus[0]
        assert g.memory_used_bytes() == 60 * 2**30
        assert g.memory_total_bytes() == 80 * 2**30
        assert g.utilization_pct() == (90.0, 40.0)
        assert (g.sm_clock_mhz(), g.memory_clock_mhz(), g.graphics_clock_mhz()) == (1980, 2619, 1980)
        assert g.power_limit_w() == 700.0
        assert g.persistence_mode() is True
        # 100 W up to the counter's last update (999.937 s: it moves only every 100 ms)
        assert g.energy_mj() == 5_000_000_000 + 99_993_700


# -- provenance ------------------------------------------------------------------------------


def test_provenance_with_unsupported_fields_null_with_reason(fake_nvml) -> None:
    fake_nvml.add_gpu(name="NVIDIA H100 80GB HBM3")
    fake_nvml.add_gpu(unsupported={"energy", "persistence", "instant"})
    with open_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}) as gpus:
        fields = describe_gpus(gpus)
    env = Environment(
        harness_version="0",
        git_sha=None,
        python="3",
        platform="linux",
        hostname="h",
        cpu_model=None,
        cpu_count=None,
        memory_total_bytes=None,
        **fields,
    )
    a, b = env.gpus
    assert a.name == "NVIDIA H100 80GB HBM3" and a.uuid == fake_nvml.gpus[0].uuid
    assert a.driver_version == "550.54.15" and env.cuda_driver_version == "12.4"
    assert a.power_limit_w == 700.0 and a.persistence_mode is True and a.sm_clock_mhz == 1980
    assert a.energy_counter is True and a.power_reading == "instant" and a.unmeasured == {}
    assert b.energy_counter is False and b.persistence_mode is None and b.power_reading == "average"
    assert set(b.unmeasured) == {"energy_counter", "persistence_mode"}
    assert "Not Supported" in b.unmeasured["persistence_mode"]
    assert env.cuda_visible_devices == "0,1" and env.gpu_reason is None


def test_null_meter_environment_says_why() -> None:
    fields = NullGpuMeter("no NVIDIA GPU visible").environment_fields()
    assert fields == {"gpus": [], "gpu_reason": "no NVIDIA GPU visible"}


# -- import weight ---------------------------------------------------------------------------


def test_import_harness_does_not_load_pynvml_or_torch() -> None:
    code = "import sys, harness, harness.telemetry; print(sorted({'pynvml','torch','pydantic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
