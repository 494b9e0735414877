"""Telemetry windows around each phase of a run.

:class:`TelemetrySession` combines the engine process-tree monitor (CPU seconds, peak RSS;
always available) with a GPU energy meter (NVML on NVIDIA machines; a null meter elsewhere
that reports energy as unmeasured with its reason). Callers never branch on hardware:

    with TelemetrySession(engine_pid) as tel:
        tel.begin_window("accuracy")
        ...
        phase = tel.end_window("accuracy")   # a frozen PhaseResources
"""

from __future__ import annotations

from harness.telemetry.session import GpuMeter, NullGpuMeter, TelemetrySession

__all__ = ["GpuMeter", "NullGpuMeter", "TelemetrySession"]
