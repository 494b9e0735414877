"""Issue 10, "The figures": one test (or more) per item, on the fake NVML that models the hardware
(counter updated every 100 ms, power averaged over 1 s, load steps between sample ticks).

Items 1 and 2 are in test_nvml_energy.py (measured interval) and test_nvml_steady_state.py
(ML.ENERGY's steady state); item 3's period test is in test_nvml_energy.py too.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from harness.engine.vllm_metrics import engine_memory
from harness.engine.vllm_server import engine_env
from harness.record.run_record import GpuPhaseTelemetry, PhaseResources, TaskResult
from harness.telemetry.energy import accuracy_energy
from harness.telemetry.meter import NvmlGpuMeter
from harness.telemetry.nvml import open_gpus
from harness.telemetry.sampler import GpuSampler

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

STEP_S = 0.05


def make_meter(fake, env: dict[str, str] | None = None) -> NvmlGpuMeter:
    """A started meter on the fake clock whose waits tick the sampler at 20 Hz (no thread)."""
    meters: list[NvmlGpuMeter] = []

    def sleep(seconds: float) -> None:
        ticks = round(seconds / STEP_S)
        if ticks == 0:  # the counter-period poll's 1 ms waits
            fake.clock.advance(seconds)
        for _ in range(ticks):
            fake.clock.advance(STEP_S)
            meters[0].sampler.sample_now()

    meter = NvmlGpuMeter(open_gpus(env or {}), clock=fake.clock, background=False, sleep=sleep)
    meters.append(meter)
    meter.start()
    return meter


def run(fake, meter: NvmlGpuMeter, seconds: float, step: float = STEP_S) -> None:
    for _ in range(round(seconds / step)):
        fake.clock.advance(step)
        meter.sampler.sample_now()


def window(fake, meter: NvmlGpuMeter, seconds: float, name: str = "w"):
    meter.begin_window(name)
    run(fake, meter, seconds)
    return meter.end_window(name)


# -- item 3: a gap in the counter series voids the window --------------------------------------


def test_a_counter_gap_over_a_second_makes_the_window_null_not_interpolated(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(0.0, 300.0)])

    def counter(t: float) -> int:
        if 1003.0 <= t < 1004.5:  # the driver times out for 1.5 s
            raise fake_nvml.error(fake_nvml.real.NVML_ERROR_TIMEOUT)
        return gpu.energy_offset_mj + round(gpu.energy_j_at(t) * 1000)

    gpu.counter = counter
    meter = make_meter(fake_nvml)
    result = window(fake_nvml, meter, 8.0)
    meter.stop()
    assert result.energy_j is None and result.gpu is not None and result.gpu.energy_source is None
    assert "apart inside the window" in (result.why or "") and "not interpolated" in (result.why or "")
    assert meter.sampler.read_errors == 30  # counted, and not papered over by power integration


# -- item 4: idle baseline after settling ------------------------------------------------------


def test_idle_is_measured_once_power_has_settled(fake_nvml) -> None:
    # Right after graph capture the GPU is still cooling: 150 W falling to 70 W over 10 s.
    fake_nvml.add_gpu(power=[(1000.0, 150.0), (1010.0, 70.0)])
    meter = make_meter(fake_nvml)
    idle = meter.measure_idle(5.0)
    meter.stop()
    assert idle.settled is True and idle.settle_s is not None and 10.0 <= idle.settle_s <= 12.5
    assert idle.power_w == pytest.approx(70.0, abs=1.0)  # not the cooling tail (~120 W before)
    assert idle.power_spread_w is not None and idle.power_spread_w < 1.0


def test_settling_gives_up_after_30_s_and_says_so(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(1000.0, 400.0), (1040.0, 70.0)])  # still falling 8 W/s at the cap
    meter = make_meter(fake_nvml)
    idle = meter.measure_idle(2.0)
    meter.stop()
    assert idle.settled is False and idle.settle_s == pytest.approx(30.0, abs=0.6)


# -- item 5: MIG -------------------------------------------------------------------------------


def test_a_gpu_in_mig_mode_reports_no_energy_even_named_by_a_plain_index(fake_nvml) -> None:
    fake_nvml.add_gpu(mig_mode=1)
    meter = make_meter(fake_nvml, {"CUDA_VISIBLE_DEVICES": "0"})
    result = window(fake_nvml, meter, 6.0)
    env = meter.environment_fields()
    meter.stop()
    assert result.energy_j is None and "MIG mode" in (result.why or "")
    assert result.gpu is not None and result.gpu.devices[0].energy_source is None
    assert env["gpus"][0].mig_mode is True and any("MIG mode" in n for n in env["gpu_notes"])


# -- item 6: GPU identity ------------------------------------------------------------------------


def test_gpus_are_numbered_by_pci_bus_id_not_by_nvml_enumeration(fake_nvml) -> None:
    fake_nvml.add_gpu(uuid="GPU-bbbb", pci_bus_id="00000000:C1:00.0")
    fake_nvml.add_gpu(uuid="GPU-aaaa", pci_bus_id="00000000:41:00.0")
    with open_gpus({"CUDA_VISIBLE_DEVICES": "0"}) as gpus:
        assert [(g.uuid, g.nvml_index, g.pci_bus_id) for g in gpus] == [("GPU-aaaa", 1, "00000000:41:00.0")]
    with open_gpus({}) as gpus:
        assert [g.uuid for g in gpus] == ["GPU-aaaa", "GPU-bbbb"]


def test_the_engine_counts_gpus_in_pci_bus_order_too(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    assert engine_env(cpu=False, kv_cache_gib=1)["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def _two_gpus_out_of_pci_order(fake):
    """NVML enumerates C1 before 41; CUDA (PCI_BUS_ID) calls 41 device 0."""
    far = fake.add_gpu(uuid="GPU-cccc", pci_bus_id="00000000:C1:00.0", power=[(0.0, 400.0)])
    near = fake.add_gpu(uuid="GPU-aaaa", pci_bus_id="00000000:41:00.0", power=[(0.0, 100.0)])
    return near, far


def test_the_engine_is_found_on_the_metered_gpu_by_uuid(fake_nvml) -> None:
    near, far = _two_gpus_out_of_pci_order(fake_nvml)
    near.processes = {4242, 4243}  # the engine core holds a context on device 0
    far.processes = {999}  # somebody else's job
    meter = make_meter(fake_nvml, {"CUDA_VISIBLE_DEVICES": "0"})
    check = meter.check_engine([4241, 4242])
    result = window(fake_nvml, meter, 6.0)
    env = meter.environment_fields()
    meter.stop()
    assert check.status == "verified" and check.engine_uuids == ("GPU-aaaa",)
    assert result.energy_j == pytest.approx(600.0, rel=0.03)  # 100 W for 6 s: device 0, not C1's 400 W
    ident = env["gpu_identity"]
    assert ident.status == "verified" and ident.metered_gpu_uuids == ["GPU-aaaa"] and ident.reason is None


def test_an_engine_on_another_gpu_voids_every_energy_figure(fake_nvml) -> None:
    near, far = _two_gpus_out_of_pci_order(fake_nvml)
    far.processes = {4242}  # CUDA_DEVICE_ORDER was overridden: the engine landed on C1
    meter = make_meter(fake_nvml, {"CUDA_VISIBLE_DEVICES": "0"})
    meter.check_engine([4241, 4242])
    result = window(fake_nvml, meter, 6.0)
    idle = meter.measure_idle(2.0)
    env = meter.environment_fields()
    meter.stop()
    assert result.energy_j is None and result.gpu is not None and result.gpu.energy_j is None
    why = result.why or ""
    assert "GPU identity mismatch" in why and "GPU-cccc" in why and "GPU-aaaa" in why
    assert result.gpu.devices[0].energy_source is None and result.gpu.avg_power_w is None
    assert idle.power_w is None and "GPU identity mismatch" in (idle.reason or "")
    assert env["gpu_identity"].status == "mismatch" and env["gpu_identity"].engine_gpu_uuids == ["GPU-cccc"]


def test_a_container_that_hides_the_engine_pids_leaves_the_mapping_unverified(fake_nvml) -> None:
    near, _ = _two_gpus_out_of_pci_order(fake_nvml)
    near.processes = {77001}  # the host's PID for our engine: no match in our namespace
    meter = make_meter(fake_nvml, {"CUDA_VISIBLE_DEVICES": "0"})
    check = meter.check_engine([4242])
    result = window(fake_nvml, meter, 6.0)
    meter.stop()
    assert check.status == "unverified" and "PID namespace" in (check.reason or "")
    assert result.energy_j == pytest.approx(600.0, rel=0.03)  # unverified is said, not punished


def test_a_gpu_that_will_not_list_processes_is_not_called_a_mismatch(fake_nvml) -> None:
    near, far = _two_gpus_out_of_pci_order(fake_nvml)
    near.processes = {4242}
    far.unsupported.add("processes")
    meter = make_meter(fake_nvml, {})  # both GPUs metered (tensor parallel 2)
    check = meter.check_engine([4242])
    meter.stop()
    assert check.status == "unverified" and "GPU-cccc" in (check.reason or "")


@pytest.mark.parametrize(
    ("metered", "listed", "status"),
    [
        (["A", "B"], {"A": {1}, "B": {2}, "C": set()}, "verified"),  # tensor parallel: one worker each
        (["A", "B"], {"A": {1}, "B": set(), "C": set()}, "mismatch"),  # B metered, engine not there
        (["A"], {"A": {1}, "B": {2}, "C": set()}, "mismatch"),  # the engine spills onto B
        (["A"], {"A": set(), "B": set(), "C": None}, "unverified"),
    ],
)
def test_identity_outcomes(metered, listed, status) -> None:
    from harness.telemetry.identity import check_identity

    check = check_identity(metered, listed, [1, 2, 3])
    assert check.status == status
    assert check.voids_energy is (status == "mismatch")
    assert check_identity(metered, listed, []).status == "unverified"  # an external endpoint


# -- item 7: power field fallback and scope ------------------------------------------------------


def test_any_instant_power_error_falls_back_to_the_average_for_that_read(fake_nvml) -> None:
    fake_nvml.add_gpu(power=[(0.0, 250.0)], fail_once={"instant": fake_nvml.real.NVML_ERROR_UNKNOWN})
    with open_gpus({}) as gpus:
        sampler = GpuSampler(gpus, clock=fake_nvml.clock)
        first, second = sampler.sample_now()[0], sampler.sample_now()[0]
        assert first.power_w == pytest.approx(250.0) and second.power_w == pytest.approx(250.0)
        assert sampler.read_errors == 0 and gpus[0].average_fallbacks == 1
        assert gpus[0].power_reading == "instant"  # one bad read does not switch the GPU over


def test_the_instant_field_is_asked_for_the_gpu_scope_and_a_module_answer_is_recorded(fake_nvml) -> None:
    fake_nvml.add_gpu(
        power=[(0.0, 300.0)], reported_scope=fake_nvml.real.NVML_POWER_SCOPE_MODULE, module_extra_w=200
    )
    meter = make_meter(fake_nvml)
    env = meter.environment_fields()
    meter.stop()
    assert set(fake_nvml.field_scopes) == {fake_nvml.real.NVML_POWER_SCOPE_GPU}
    assert env["gpus"][0].power_scope == "module"
    assert any("whole module" in n for n in env["gpu_notes"])


# -- item 8: memory ------------------------------------------------------------------------------


def test_a_failed_idle_energy_keeps_the_memory_reading_and_the_right_reason(fake_nvml) -> None:
    gpu = fake_nvml.add_gpu(power=[(0.0, 70.0)], memory_used=50 * 2**30)
    meter = make_meter(fake_nvml)
    base = fake_nvml.t
    gpu.counter = lambda t: 9_000_000 if t < base + 4.0 else 1_000  # the driver reloads: reset
    idle = meter.measure_idle(3.0)
    meter.stop()
    assert idle.power_w is None and idle.reason is not None and "backwards" in idle.reason
    assert idle.memory_used_bytes == 50 * 2**30 and idle.memory_total_bytes == 80 * 2**30
    mem = engine_memory(
        nvml_memory_used_bytes=idle.memory_used_bytes,
        nvml_memory_total_bytes=idle.memory_total_bytes,
        nvml_reason=idle.reason,
    )
    assert mem.nvml_memory_total_bytes == 80 * 2**30 and "nvml_memory_used_bytes" not in mem.reasons
    no_gpu = engine_memory(nvml_reason="NVML unavailable: no driver")
    assert no_gpu.reasons["nvml_memory_total_bytes"] == "NVML unavailable: no driver"


# -- item 9: sampler cost ------------------------------------------------------------------------


def test_power_and_counter_at_20_hz_other_fields_at_2_hz(fake_nvml) -> None:
    fake_nvml.add_gpu()
    with open_gpus({}) as gpus:
        sampler = GpuSampler(gpus, clock=fake_nvml.clock)
        for _ in range(200):  # 10 s at 20 Hz
            sampler.sample_now()
            fake_nvml.clock.advance(STEP_S)
    lib = fake_nvml.lib
    assert lib.nvmlDeviceGetTotalEnergyConsumption.call_count == 200
    assert lib.nvmlDeviceGetFieldValues.call_count == 200
    for slow in ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo", "nvmlDeviceGetTemperature"):
        assert getattr(lib, slow).call_count == 20, slow


def test_readings_stream_to_parquet_instead_of_growing_in_memory(fake_nvml, tmp_path) -> None:
    fake_nvml.add_gpu()
    meter = make_meter(fake_nvml)
    meter.sampler.flush_rows = 200
    for i in range(30):  # 30 windows of 5 s: 3,000 readings
        window(fake_nvml, meter, 5.0, name=f"scenario:{i}")
        assert meter.sampler.in_memory() < 300  # the last closed window and its pads, not the run
    path = tmp_path / "gpu_samples.parquet"
    rows = meter.write_samples(path)
    meter.stop()
    table = pq.read_table(path)
    assert rows == table.num_rows == meter.sampler.rows > 3000
    assert table.column("phase").to_pylist()[-2] == "scenario:29"
    assert pq.ParquetFile(path).num_row_groups > 10  # written as the run went


# -- item 10: energy per correct answer ----------------------------------------------------------


def task(name: str, metric: str, value: float, n: int, higher: bool = True) -> TaskResult:
    return TaskResult(
        name=name,
        metric=metric,
        value=value,
        stderr=None,
        higher_is_better=higher,
        n_samples=n,
        num_fewshot=0,
    )


def test_accuracy_energy_per_evaluated_and_per_correct_sample() -> None:
    tel = GpuPhaseTelemetry(gpu_count=1, duration_s=10.0, energy_j=2000.0, energy_source="counter")
    phase = PhaseResources(
        duration_s=10.0, engine_cpu_s=None, engine_peak_rss_bytes=None, energy_j=2000.0, gpu=tel
    )
    tasks = [
        task("arc_easy", "acc", 0.5, 100),
        task("hellaswag", "acc_norm", 0.25, 200),
        task("wikitext", "word_perplexity", 31.2, 50, higher=False),
    ]
    acc = accuracy_energy(phase, 350, tasks)
    assert acc.energy_per_sample_j == pytest.approx(2000.0 / 350)
    assert acc.correct_samples == pytest.approx(100.0)
    assert acc.energy_per_correct_sample_j == pytest.approx(20.0)
    assert acc.correct_reason is not None and "wikitext" in acc.correct_reason
    assert acc.value is not None and acc.value.energy_per_correct_sample_j == acc.energy_per_correct_sample_j
    only_ppl = accuracy_energy(phase, 50, tasks[2:])
    assert only_ppl.energy_per_correct_sample_j is None and "no task scores" in (
        only_ppl.correct_reason or ""
    )


# -- item 1, the readers: the gate and the dashboard read the one energy value ------------------


def test_the_gate_and_the_dashboard_read_the_measured_interval_not_the_gross_window() -> None:
    from harness.dashboard.data import scenario_view
    from harness.gate.compare import figure
    from harness.gate.report import Check
    from harness.record.run_record import EnergyValue, ScenarioEnergy
    from tests.factories import gate_record, gate_scenario

    gross = gate_scenario(energy_j=1550.0)  # the whole window, warm-up included (as v1 records hold)
    measured = EnergyValue.derive(
        "measured", 750.0, 3.0, output_tokens=gross.total_output_tokens, requests=16
    )
    energy = ScenarioEnergy(measured=measured)
    sr = gross.model_copy(update={"energy": energy})
    check = Check("energy_per_output_token_j", "c1", "scenario", False, 0.05, None)
    per_token = figure(gate_record(performance={"c1": sr}), check).value
    assert per_token == pytest.approx(750.0 / gross.total_output_tokens)
    assert scenario_view("c1", sr).energy_per_token_j == pytest.approx(per_token)
    # A v1 record keeps its gross figure, labelled as such, so nobody mistakes it for a measured one.
    old = figure(gate_record(performance={"c1": gross}), check).value
    assert old == pytest.approx(1550.0 / gross.total_output_tokens)
    from harness.record.run_record import scenario_energy_value

    assert scenario_energy_value(gross).window == "scenario_window"  # type: ignore[union-attr]


def test_the_run_page_shows_each_energy_window_with_its_confidence() -> None:
    from harness.dashboard.energysection import energy_section
    from harness.record.run_record import EnergyValue, ScenarioEnergy
    from tests.factories import gate_record, gate_scenario

    sr = gate_scenario()
    n = sr.total_output_tokens
    measured = EnergyValue.derive("measured", 750.0, 3.0, output_tokens=n, requests=16, source="counter")
    gross = EnergyValue.derive("scenario_window", 1550.0, 5.0, output_tokens=n, source="counter")
    steady = EnergyValue.derive(
        "steady_state",
        475.0,
        1.9,
        output_tokens=n / 2,
        source="counter",
        low_confidence_reason="window of 1.900 s",
        start_s=0.3,
        end_s=2.2,
    )
    energy = ScenarioEnergy(measured=measured, gross=gross, steady_state=steady)
    html = energy_section(gate_record(performance={"c1": sr.model_copy(update={"energy": energy})}))
    assert "c1: measured interval (headline)" in html and "c1: whole window, with warm-up" in html
    assert "c1: steady state" in html and "low confidence: window of 1.900 s" in html
    assert "high confidence" in html and "prefill charged to output tokens" in html


def test_the_gate_refuses_a_gross_window_against_a_measured_one() -> None:
    from harness.gate.compare import config_mismatches
    from harness.record.run_record import EnergyValue, ScenarioEnergy
    from tests.factories import gate_record, gate_scenario

    old = gate_scenario(energy_j=1550.0)  # a v1 record: whole window only
    measured = EnergyValue.derive("measured", 750.0, 3.0, output_tokens=old.total_output_tokens)
    new = old.model_copy(update={"energy": ScenarioEnergy(measured=measured)})
    lines = config_mismatches(gate_record(performance={"c1": old}), gate_record(performance={"c1": new}))
    assert "scenario c1 energy window: 'scenario_window' → 'measured'" in lines


def test_a_v1_scenario_energy_migrates_its_whole_window_to_gross() -> None:
    from harness.record.energy import (
        V1_GROSS_NOTE,
        V1_STEADY_NOTE,
        migrate_v1_scenario_energy,
        migrate_v2_scenario_energy,
    )
    from harness.record.run_record import ScenarioEnergy, scenario_energy_value

    v1 = {
        "energy_j": 1550.0,
        "energy_source": "counter",
        "duration_s": 5.0,
        "avg_power_w": 310.0,
        "output_tokens": 500,
        "energy_per_output_token_j": 3.1,
        "output_tokens_per_j": 500 / 1550.0,
        "steady_state": {
            "start_s": 0.2,
            "end_s": 2.2,
            "duration_s": 2.0,
            "target_concurrency": 2,
            "output_tokens": 40.0,
            "energy_j": 500.0,
        },
    }
    v2 = migrate_v1_scenario_energy(v1)
    assert v2["energy_j"] is None and v2["energy"]["reason"] == V1_GROSS_NOTE
    e = ScenarioEnergy.model_validate(migrate_v2_scenario_energy(v2))  # v1 -> v2 -> v3
    assert e.measured is None and e.gross is not None and e.gross.window == "scenario_window"
    assert e.gross.energy_j == 1550.0 and e.gross.energy_per_output_token_j == pytest.approx(3.1)
    assert e.steady_state is not None and e.steady_state.energy_j == 500.0
    assert e.steady_state.confidence == "low" and e.steady_state.low_confidence_reason == V1_STEADY_NOTE

    class Scenario:  # what the gate and the dashboard see of a migrated v1 scenario
        energy, resources, total_output_tokens, completed = e, None, 500, 5

    value = scenario_energy_value(Scenario())
    assert value is not None and value.window == "scenario_window" and value.energy_j == 1550.0
