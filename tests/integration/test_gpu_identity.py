"""Issue 10 item 6 through a whole run: the harness starts the engine (the fake server), the fake
NVML (tests.fakenvml, on the real clock) lists the engine's processes on one GPU, and the record
says whether that is the GPU the meter read."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from harness.api import run_suite
from harness.record.run_record import scenario_energy_value
from tests.fakenvml import FakeNvml, RealClock
from tests.integration.conftest import FakeEngine

pytestmark = pytest.mark.integration

SUITE = """\
name: identity
models: [tiny-mistral]
seed: 7
engine:
  max_model_len: 1024
performance:
  scenarios:
    - {name: c2, input_tokens: 32, output_tokens: 8, num_requests: 6, concurrency: 2}
"""


def _engine_pids() -> set[int]:
    """Every process this test started: the engine's tree (as NVML would list its CUDA contexts)."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_an_engine_on_a_gpu_the_meter_does_not_read_leaves_every_energy_figure_null(
    fake_engine: FakeEngine, results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_engine("--fake-token-delay-ms", "3")
    nvml = FakeNvml(monkeypatch)
    nvml.clock = RealClock()
    nvml.add_gpu(uuid="GPU-cccc", pci_bus_id="00000000:C1:00.0", power=[(0.0, 400.0)], processes=_engine_pids)
    nvml.add_gpu(uuid="GPU-aaaa", pci_bus_id="00000000:41:00.0", power=[(0.0, 100.0)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # device 0 in PCI order is GPU-aaaa
    suite = tmp_path / "identity.yaml"
    suite.write_text(SUITE)
    [rec] = run_suite(suite, results=results)
    assert rec.status == "ok", rec.error  # a wrong GPU costs the energy figures, not the run
    env = rec.environment
    assert env.gpu_identity is not None and env.gpu_identity.status == "mismatch"
    assert env.gpu_identity.metered_gpu_uuids == ["GPU-aaaa"] and env.gpu_identity.engine_gpu_uuids == [
        "GPU-cccc"
    ]
    # start() measured the counter's update period: the record keeps it (read after the run)
    assert env.gpus[0].counter_update_period_s == pytest.approx(0.1, abs=0.03)
    value = scenario_energy_value(rec.performance["c2"])
    assert value is not None and value.energy_j is None
    assert "GPU identity mismatch" in (value.reason or "")
    assert rec.resources is not None and rec.resources.idle is not None
    assert rec.resources.idle.power_w is None and "GPU identity mismatch" in (rec.resources.idle.reason or "")
    assert nvml.inits == nvml.lib.nvmlShutdown.call_count
