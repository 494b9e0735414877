"""Telemetry windows around each phase of a run.

:class:`TelemetrySession` combines the engine process-tree monitor (CPU seconds, peak RSS;
always available) with a GPU energy meter (NVML on NVIDIA machines; a null meter elsewhere
that reports energy as unmeasured with its reason). Callers never branch on hardware:

    with TelemetrySession(engine_pid) as tel:
        tel.begin_window("accuracy")
        ...
        phase = tel.end_window("accuracy")   # a frozen PhaseResources

The names below load on first use, so that ``harness.telemetry.nvml``, ``.sampler`` and
``.check`` import without pydantic or psutil (the GPU check needs only torch and nvidia-ml-py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.telemetry.session import GpuMeter, NullGpuMeter, TelemetrySession

__all__ = ["GpuMeter", "NullGpuMeter", "TelemetrySession"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("harness.telemetry.session"), name)
    raise AttributeError(f"module 'harness.telemetry' has no attribute {name!r}")
