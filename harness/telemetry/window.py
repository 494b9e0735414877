"""What a GPU meter returns for one window: a frozen record, not a tuple."""

from __future__ import annotations

from dataclasses import dataclass

from harness.record.run_record import GpuPhaseTelemetry, Unmeasured


@dataclass(frozen=True)
class WindowEnergy:
    """One window's GPU energy (summed over GPUs) and the GPU figures behind it.

    Attributes:
        energy_j: joules, or None with ``reason``.
        reason: why ``energy_j`` is None (no GPU, a counter reset, a gap, MIG ...).
        gpu: the window's GPU figures, where a GPU was measured at all.
    """

    energy_j: float | None
    reason: Unmeasured | None = None
    gpu: GpuPhaseTelemetry | None = None

    @property
    def why(self) -> str | None:
        return self.reason.reason if self.reason is not None else None

    @property
    def low_confidence_reason(self) -> str | None:
        return self.gpu.low_confidence_reason if self.gpu is not None else None

    @classmethod
    def unmeasured(cls, reason: str) -> WindowEnergy:
        return cls(None, Unmeasured(reason=reason), None)
