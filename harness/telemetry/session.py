"""The telemetry seam: process-tree figures plus a pluggable GPU meter."""

from __future__ import annotations

import time
from typing import Any, Protocol

from harness.records import PhaseResources, Unmeasured
from harness.telemetry.cpu import ProcessTreeMonitor


class GpuMeter(Protocol):
    """Energy and GPU figures per window. Implementations: NVML (harness.telemetry.nvml), null."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def begin_window(self, name: str) -> None: ...

    def end_window(self, name: str) -> tuple[float | None, Unmeasured | None, dict[str, Any] | None]:
        """(energy_j, reason if energy_j is None, GPU figures for the window or None)."""
        ...


class NullGpuMeter:
    """The meter for machines without an NVIDIA GPU: every energy figure is unmeasured, with why."""

    def __init__(self, reason: str = "no NVIDIA GPU visible: no energy counter on this machine") -> None:
        self.reason = reason

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def begin_window(self, name: str) -> None:
        return None

    def end_window(self, name: str) -> tuple[float | None, Unmeasured | None, dict[str, Any] | None]:
        return None, Unmeasured(reason=self.reason), None


def default_gpu_meter() -> GpuMeter:
    """The best meter this machine supports."""
    return NullGpuMeter()


class TelemetrySession:
    """Windows over the engine process tree and the GPU meter, one per run phase."""

    def __init__(self, engine_pid: int | None, gpu: GpuMeter | None = None, interval_s: float = 0.1) -> None:
        self.tree = ProcessTreeMonitor(engine_pid, interval_s=interval_s)
        self.gpu: GpuMeter = gpu if gpu is not None else default_gpu_meter()
        self._open: dict[str, tuple[float, float | None]] = {}
        self.phases: dict[str, PhaseResources] = {}

    def __enter__(self) -> TelemetrySession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.tree.start()
        self.gpu.start()

    def stop(self) -> None:
        self.tree.stop()
        self.gpu.stop()

    def attach(self, engine_pid: int | None) -> None:
        """Follow the engine's process tree from now on (it exists only once the engine started).

        A window open across attach() charges the tree's CPU seconds since its processes began,
        which for the engine start-up window is exactly the start-up cost.
        """
        self.tree.pid = engine_pid
        self.tree.start()

    def begin_window(self, name: str) -> None:
        self.tree.open_window(name)
        self.gpu.begin_window(name)
        self._open[name] = (time.perf_counter(), self.tree.cpu_seconds())

    def end_window(self, name: str) -> PhaseResources:
        t0, cpu0 = self._open.pop(name)
        cpu1 = self.tree.cpu_seconds()
        peak = self.tree.close_window(name)
        energy_j, energy_reason, gpu = self.gpu.end_window(name)
        phase = PhaseResources(
            duration_s=time.perf_counter() - t0,
            engine_cpu_s=(cpu1 - (cpu0 or 0.0)) if cpu1 is not None else None,
            engine_peak_rss_bytes=peak,
            energy_j=energy_j,
            energy=energy_reason,
            gpu=gpu,
        )
        self.phases[name] = phase
        return phase
