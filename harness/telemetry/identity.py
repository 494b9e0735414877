"""Which GPUs the engine really runs on, checked by UUID rather than assumed.

The meter picks its GPUs from ``CUDA_VISIBLE_DEVICES`` in PCI bus order, and the engine is
started with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so that CUDA numbers them the same way. That is
an assumption until it is checked: once the engine is up, NVML lists the processes holding a
compute context on every GPU, and the GPUs where the engine's process tree appears must be
exactly the GPUs the meter reads. If they differ, every energy figure of the run would belong
to other GPUs, so the meter reports none (null, with this check's reason).

Inside a container without the host's PID namespace NVML reports host PIDs, which match none
of the engine's: the mapping is then *unverified* (stated in the record), not wrong.

This module is pure: the NVML reading is done by the caller (:mod:`harness.telemetry.nvml`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

IdentityStatus = Literal["verified", "mismatch", "unverified"]


@dataclass(frozen=True)
class IdentityCheck:
    """The outcome of comparing the engine's GPUs with the metered ones (by UUID)."""

    status: IdentityStatus
    metered_uuids: tuple[str, ...]
    engine_uuids: tuple[str, ...] = ()
    reason: str | None = None
    unreadable: tuple[str, ...] = field(default=())  # GPUs whose process list NVML would not give

    @property
    def voids_energy(self) -> bool:
        """A mismatch means the meter reads GPUs the engine does not use (or misses some)."""
        return self.status == "mismatch"

    def as_record(self) -> dict[str, object]:
        """Keyword arguments for :class:`~harness.record.run_record.GpuIdentity`."""
        return {
            "status": self.status,
            "metered_gpu_uuids": list(self.metered_uuids),
            "engine_gpu_uuids": list(self.engine_uuids),
            "reason": self.reason,
        }


def check_identity(
    metered_uuids: Sequence[str],
    pids_by_uuid: Mapping[str, Collection[int] | None],
    engine_pids: Collection[int],
) -> IdentityCheck:
    """Compare the GPUs hosting the engine's processes with the GPUs the meter reads.

    Args:
        metered_uuids: UUIDs of the GPUs the meter reads (parents, for MIG instances).
        pids_by_uuid: every physical GPU's UUID -> the PIDs NVML lists with a compute context
            there (None: NVML would not say, e.g. Not Supported or no permission).
        engine_pids: the engine's process tree (root and descendants) as this machine sees it.
    """
    metered = tuple(metered_uuids)
    pids = set(engine_pids)
    if not pids:
        return IdentityCheck(
            "unverified",
            metered,
            reason="no engine process alive on this machine (an external endpoint, whose GPUs are the ones "
            "named by UUID with --endpoint-gpus, or an engine that already exited)",
        )
    unreadable = tuple(u for u, listed in pids_by_uuid.items() if listed is None)
    engine = tuple(u for u, listed in pids_by_uuid.items() if listed is not None and pids & set(listed))
    if not engine:
        if unreadable:
            why = f"NVML would not list the compute processes of {', '.join(unreadable)}"
        else:
            why = (
                "NVML lists none of the engine's processes on any GPU (inside a container without the "
                "host's PID namespace NVML reports host PIDs)"
            )
        return IdentityCheck(
            "unverified",
            metered,
            reason=f"{why}: the CUDA_DEVICE_ORDER=PCI_BUS_ID mapping is assumed",
            unreadable=unreadable,
        )
    if set(engine) == set(metered):
        return IdentityCheck("verified", metered, engine, unreadable=unreadable)
    extra = [u for u in engine if u not in metered]
    missing = [u for u in metered if u not in engine and u not in unreadable]
    unsure = [u for u in metered if u not in engine and u in unreadable]
    if not extra and not missing:  # the rest could not be listed: neither confirmed nor refuted
        return IdentityCheck(
            "unverified",
            metered,
            engine,
            reason=f"the engine's processes appear on {', '.join(engine)}; NVML would not list the "
            f"processes of {', '.join(unsure)}, so that GPU cannot be confirmed",
            unreadable=unreadable,
        )
    parts = []
    if extra:
        parts.append(f"the engine also runs on {', '.join(extra)}, which the meter does not read")
    if missing:
        parts.append(f"the meter reads {', '.join(missing)}, where no engine process runs")
    return IdentityCheck(
        "mismatch",
        metered,
        engine,
        reason="GPU identity mismatch: "
        + "; ".join(parts)
        + " (check CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER): no energy figure is reported",
        unreadable=unreadable,
    )
