"""A fake ``pynvml`` for tests: ``FakeNvml`` replaces the ``pynvml`` module with ``create_autospec(pynvml)`` (so every
call is checked against the real signatures), keeps the real constants and NVMLError classes,
and scripts each GPU's power trace, energy counter and fields on a fake clock.

The fake models the hardware's known behaviour, so that tests cannot pass on traces where the
counter and the power integral agree by construction:

* the energy counter is updated only every ``counter_period_s`` (100 ms on recent data-centre
  GPUs), at a phase unrelated to the sampler's ticks: a read returns the energy up to the last
  update, not up to now;
* ``nvmlDeviceGetPowerUsage`` is a trailing one-second average (``power_avg_s``); only the
  instantaneous field (``NVML_FI_DEV_POWER_INSTANT``) follows load steps at once;
* load steps are scripted in the power trace at any time, between the sampler's ticks;
* NVML enumerates GPUs in an order that need not be PCI bus order (``pci_bus_id``), a GPU can be
  in MIG mode (``mig_mode``), and a field can answer for another scope than the one asked
  (``reported_scope``: GH200's module power);
* each GPU lists the PIDs holding a compute context on it (``processes``), as
  ``nvmlDeviceGetComputeRunningProcesses`` does.

``RealClock`` runs the fake on ``time.perf_counter`` instead, for tests that drive the harness's
own threads (the runner, the sampler) in real time.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class RealClock:
    """``time.perf_counter`` as a fake clock: the fake GPUs then live in the harness's own time."""

    @property
    def t(self) -> float:
        return time.perf_counter()

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeGpu:
    """One scripted GPU. ``power`` is a piecewise-linear trace [(t, W)], constant beyond its ends."""

    uuid: str
    name: str = "NVIDIA Fake 80GB"
    power: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 100.0)])
    energy_offset_mj: int = 5_000_000_000  # counter since driver load: large, not zero
    counter: Callable[[float], int] | None = None  # overrides the trace's integral (e.g. a reset)
    unsupported: set[str] = field(default_factory=set)  # energy, instant, power, memory, utilization, ...
    fail_once: dict[str, int] = field(default_factory=dict)  # field -> NVML error code, raised once
    memory_used: int = 60 * 2**30
    memory_total: int = 80 * 2**30
    util: tuple[int, int] = (90, 40)
    sm_clock: int = 1980
    mem_clock: int = 2619
    gfx_clock: int = 1980
    temperature: int = 55
    power_limit_mw: int = 700_000
    persistence: int = 1
    mig_of: str | None = None  # set on MIG instances: the parent's uuid
    mig_mode: int = 0  # 1: MIG enabled on this physical GPU
    pci_bus_id: str = ""  # set by add_gpu in enumeration order unless given
    counter_period_s: float = 0.1  # the counter moves in steps this far apart (0: continuous)
    counter_phase_s: float = 0.037  # its updates happen at phase + k * period (fake-clock seconds)
    power_avg_s: float = 1.0  # nvmlDeviceGetPowerUsage averages over this trailing window
    module_extra_w: float = 0.0  # CPU + memory power of a GH200 module beside the GPU's
    reported_scope: int | None = None  # scope the instant field answers with (None: as asked)
    processes: Callable[[], set[int]] | set[int] = field(default_factory=set)  # PIDs with a context here

    def power_at(self, t: float) -> float:
        pts = self.power
        if t <= pts[0][0]:
            return pts[0][1]
        for (ta, pa), (tb, pb) in zip(pts, pts[1:], strict=False):
            if ta <= t <= tb:
                return pb if tb == ta else pa + (pb - pa) * (t - ta) / (tb - ta)
        return pts[-1][1]

    def counter_time(self, t: float) -> float:
        """When the counter was last updated at or before ``t``."""
        if self.counter_period_s <= 0:
            return t
        k = math.floor((t - self.counter_phase_s) / self.counter_period_s + 1e-9)
        return self.counter_phase_s + k * self.counter_period_s

    def average_power_at(self, t: float) -> float:
        """The trailing ``power_avg_s`` mean of the trace, as nvmlDeviceGetPowerUsage reports it."""
        w = self.power_avg_s
        return self.power_at(t) if w <= 0 else (self.energy_j_at(t) - self.energy_j_at(t - w)) / w

    def energy_j_at(self, t: float) -> float:
        """Exact integral of the trace from t=0."""
        pts = (
            [(0.0, self.power_at(0.0))] + [p for p in self.power if 0.0 < p[0] < t] + [(t, self.power_at(t))]
        )
        return sum((tb - ta) * (pa + pb) / 2 for (ta, pa), (tb, pb) in zip(pts, pts[1:], strict=False))


class FakeNvml:
    """A fake ``pynvml`` module over scripted GPUs and a fake clock (the harness clock too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import pynvml

        self.real = pynvml
        self.clock: FakeClock | RealClock = FakeClock()
        self.gpus: list[FakeGpu] = []
        self.migs: list[FakeGpu] = []
        self.init_error: int | None = None
        self.inits = 0  # successful nvmlInit calls
        self.driver = "550.54.15"
        self.field_scopes: list[int] = []  # scopeId asked for in each field request
        lib = mock.create_autospec(pynvml)
        for name in dir(pynvml):
            value = getattr(pynvml, name)
            if name.startswith("NVML_") or (isinstance(value, type) and issubclass(value, Exception)):
                setattr(lib, name, value)
        self.lib = lib
        self._wire()
        monkeypatch.setitem(sys.modules, "pynvml", lib)

    # -- scripting -------------------------------------------------------------------------

    def add_gpu(self, **kw: Any) -> FakeGpu:
        n = len(self.gpus)
        kw.setdefault("pci_bus_id", f"00000000:{0x10 + n:02X}:00.0")
        gpu = FakeGpu(uuid=kw.pop("uuid", f"GPU-{n:08d}-aaaa-bbbb-cccc-dddddddddddd"), **kw)
        self.gpus.append(gpu)
        return gpu

    def add_mig(self, parent: FakeGpu, uuid: str) -> FakeGpu:
        mig = FakeGpu(uuid=uuid, mig_of=parent.uuid)
        self.migs.append(mig)
        return mig

    @property
    def t(self) -> float:
        return self.clock.t

    def error(self, code: int) -> Exception:
        return self.real.NVMLError(code)

    # -- the fake functions ----------------------------------------------------------------

    def _check(self, gpu: FakeGpu, what: str) -> None:
        if what in gpu.unsupported:
            raise self.error(self.real.NVML_ERROR_NOT_SUPPORTED)
        code = gpu.fail_once.pop(what, None)
        if code is not None:
            raise self.error(code)

    def _wire(self) -> None:
        lib, real = self.lib, self.real

        def init() -> None:
            if self.init_error is not None:
                raise self.error(self.init_error)
            self.inits += 1

        def by_uuid(uuid: Any) -> FakeGpu:
            for g in self.gpus + self.migs:
                if g.uuid == uuid:
                    return g
            raise self.error(real.NVML_ERROR_NOT_FOUND)

        def energy(h: FakeGpu) -> int:
            self._check(h, "energy")
            t = h.counter_time(self.t)
            if h.counter is not None:
                return h.counter(t)
            return h.energy_offset_mj + round(h.energy_j_at(t) * 1000)

        def fields(h: FakeGpu, ids: list[Any]) -> list[Any]:
            # NVML answers per field: the call succeeds, the field carries its own return code.
            out = []
            for entry in ids:
                field_id, scope = entry if isinstance(entry, tuple) else (entry, 0)
                self.field_scopes.append(scope)
                ok = "instant" not in h.unsupported and "power" not in h.unsupported
                code = h.fail_once.pop("instant", None) if ok else real.NVML_ERROR_NOT_SUPPORTED
                answered = scope if h.reported_scope is None else h.reported_scope
                watts = h.power_at(self.t) + (
                    h.module_extra_w if answered == real.NVML_POWER_SCOPE_MODULE else 0
                )
                out.append(
                    SimpleNamespace(
                        fieldId=field_id,
                        scopeId=answered,
                        nvmlReturn=code or 0,
                        valueType=real.NVML_VALUE_TYPE_UNSIGNED_INT,
                        value=SimpleNamespace(uiVal=round(watts * 1000) if ok else 0),
                    )
                )
            return out

        def power(h: FakeGpu) -> int:
            self._check(h, "power")
            return round((h.average_power_at(self.t) + h.module_extra_w) * 1000)

        def mig_mode(h: FakeGpu) -> list[int]:
            self._check(h, "mig")
            return [h.mig_mode, h.mig_mode]

        def pci(h: FakeGpu) -> Any:
            self._check(h, "pci")
            return SimpleNamespace(busId=h.pci_bus_id, busIdLegacy=h.pci_bus_id[4:])

        def memory(h: FakeGpu, version: Any = None) -> Any:
            self._check(h, "memory")
            return SimpleNamespace(
                used=h.memory_used, total=h.memory_total, free=h.memory_total - h.memory_used
            )

        def util(h: FakeGpu) -> Any:
            self._check(h, "utilization")
            return SimpleNamespace(gpu=h.util[0], memory=h.util[1])

        def clock(h: FakeGpu, kind: int) -> int:
            self._check(h, "clock")
            return {real.NVML_CLOCK_SM: h.sm_clock, real.NVML_CLOCK_MEM: h.mem_clock}.get(kind, h.gfx_clock)

        def temperature(h: FakeGpu, sensor: int) -> int:
            self._check(h, "temperature")
            return h.temperature

        def limit(h: FakeGpu) -> int:
            self._check(h, "power_limit")
            return h.power_limit_mw

        def persistence(h: FakeGpu) -> int:
            self._check(h, "persistence")
            return h.persistence

        def processes(h: FakeGpu) -> list[Any]:
            self._check(h, "processes")
            pids = h.processes() if callable(h.processes) else h.processes
            return [SimpleNamespace(pid=pid, usedGpuMemory=2**30) for pid in sorted(pids)]

        def parent(h: FakeGpu) -> FakeGpu:
            return by_uuid(h.mig_of)

        lib.nvmlInit.side_effect = init
        lib.nvmlShutdown.return_value = None
        lib.nvmlDeviceGetCount.side_effect = lambda: len(self.gpus)
        lib.nvmlDeviceGetHandleByIndex.side_effect = lambda i: self.gpus[i]
        lib.nvmlDeviceGetHandleByUUID.side_effect = by_uuid
        lib.nvmlDeviceGetDeviceHandleFromMigDeviceHandle.side_effect = parent
        lib.nvmlDeviceGetUUID.side_effect = lambda h: h.uuid
        lib.nvmlDeviceGetName.side_effect = lambda h: h.name
        lib.nvmlDeviceGetTotalEnergyConsumption.side_effect = energy
        lib.nvmlDeviceGetFieldValues.side_effect = fields
        lib.nvmlDeviceGetPowerUsage.side_effect = power
        lib.nvmlDeviceGetMemoryInfo.side_effect = memory
        lib.nvmlDeviceGetUtilizationRates.side_effect = util
        lib.nvmlDeviceGetClockInfo.side_effect = clock
        lib.nvmlDeviceGetTemperature.side_effect = temperature
        lib.nvmlDeviceGetEnforcedPowerLimit.side_effect = limit
        lib.nvmlDeviceGetPersistenceMode.side_effect = persistence
        lib.nvmlDeviceGetMigMode.side_effect = mig_mode
        lib.nvmlDeviceGetPciInfo.side_effect = pci
        lib.nvmlDeviceGetComputeRunningProcesses.side_effect = processes
        lib.nvmlSystemGetDriverVersion.side_effect = lambda: self.driver
        lib.nvmlSystemGetCudaDriverVersion.side_effect = lambda: 12040
        lib.nvmlSystemGetNVMLVersion.side_effect = lambda: "12." + self.driver
