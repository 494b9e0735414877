"""The NVML GPU meter: energy per measurement window, the way the measurement literature says.

Method (per GPU, summed over the GPUs the engine uses):

1. **Hardware counter first.** NVML's ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since
   driver load; Volta and newer) is read at the start and at the end of each window; the
   difference, converted to joules once, is the window's energy (``energy_source='counter'``).
   It counts every joule, unlike power polling, which misses what happens between polls.
2. **Power integration where the counter is missing.** Sampled power (the instantaneous field
   where NVML has it) is integrated with the trapezoidal rule (``'power_integration'``;
   ``'mixed'`` when GPUs differ).
3. **No figure rather than a wrong one.** A counter that goes backwards, counter readings more
   than :data:`~harness.telemetry.series.COUNTER_GAP_S` apart, a GPU in MIG mode (whole-GPU
   energy is never reported as a slice's), or any GPU without a figure makes the window null,
   with the reason: a multi-GPU sum is all GPUs or nothing.
4. **Confidence from the counter's real resolution.** :meth:`NvmlGpuMeter.start` measures how
   often each counter moves (about every 100 ms on recent GPUs); a window shorter than 50 such
   periods (period / length > 2 %) is low-confidence, as is a power-integrated window whose
   samples are more than 0.5 s apart somewhere.
5. **Idle baseline after settling.** :meth:`NvmlGpuMeter.measure_idle` first waits until the
   one-second mean power is flat (right after weight loading and graph capture a GPU is still
   cooling; capped at 30 s), then measures; later windows report
   ``energy_above_idle_j = energy_j - idle_power_w * duration_s``.
6. **The right GPUs, checked.** :meth:`NvmlGpuMeter.check_engine`, once the engine is up,
   finds the GPUs where NVML lists the engine's processes and compares their UUIDs with the
   metered ones (:mod:`~harness.telemetry.identity`); on a mismatch every later window is null.
7. **Any past interval.** :meth:`NvmlGpuMeter.interval` measures a sub-interval (a scenario's
   measured interval or steady state) from the stored series, counter readings interpolated
   between samples.

The background sampler (:class:`~harness.telemetry.sampler.GpuSampler`) runs from
:meth:`NvmlGpuMeter.start` to :meth:`NvmlGpuMeter.stop`, tags its readings with the open
window's name and streams them to ``telemetry/gpu_samples.parquet``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from harness.record.run_record import (
    GpuDeviceWindow,
    GpuIdentity,
    GpuPhaseTelemetry,
    IdleBaseline,
    Unmeasured,
)
from harness.telemetry.identity import IdentityCheck, check_identity
from harness.telemetry.nvml import GpuDevice, GpuSet, describe_gpus
from harness.telemetry.sampler import DEFAULT_INTERVAL_S, GpuSampler, Reading
from harness.telemetry.series import (
    COUNTER_GAP_S,
    counter_delta_mj,
    counter_resolution_reason,
    integrate_power_j,
    max_gap_s_of,
    measure_counter_period,
)
from harness.telemetry.window import WindowEnergy

MAX_POWER_GAP_S = 0.5  # power samples further apart than this make an integrated figure doubtful
RETAIN_S = 2.0  # readings kept in memory before a new window (edge pads), once no window is open
SETTLE_MAX_S = 30.0  # longest wait for idle power to go flat
SETTLE_STEP_S = 0.5  # how often flatness is checked
SETTLE_TOL_FRAC = 0.01  # consecutive 1 s means within 1 % ...
SETTLE_TOL_W = 1.0  # ... or 1 W per GPU, whichever is larger, count as flat


class NvmlGpuMeter:
    """The :class:`~harness.telemetry.session.GpuMeter` for NVIDIA GPUs.

    Args:
        gpus: the GPUs the engine uses (from :func:`~harness.telemetry.nvml.open_gpus`); the
            meter owns it and releases NVML on :meth:`stop`.
        interval_s: sampler period (0.05 s = 20 Hz).
        clock: monotonic seconds; the runner's request timestamps must use the same clock
            (``time.perf_counter``) for :meth:`interval`.
        background: run the sampler thread (tests drive :meth:`GpuSampler.sample_now` instead).
        sleep: how to wait (tests pass one that moves a fake clock).
    """

    def __init__(
        self,
        gpus: GpuSet,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
        background: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self.sleep = sleep
        self.background = background
        self.sampler = GpuSampler(gpus, interval_s=interval_s, clock=clock)
        self.idle_power_w: float | None = None
        self.t_origin_s: float | None = None
        self.counter_period_s: dict[int, float | None] = {}
        self._open: dict[str, list[Reading]] = {}
        self._phase_stack: list[str] = []
        self._environment: dict[str, Any] | None = None
        self._started = False
        self.identity: IdentityCheck | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Describe the GPUs, measure each counter's update period, and start sampling. Idempotent."""
        if self._started:
            return
        self._started = True
        self.t_origin_s = self.clock()
        self.sampler.t_origin_s = self.t_origin_s
        periods = measure_counter_period([g.energy_mj for g in self.gpus], self.clock, self.sleep)
        self.counter_period_s = {g.index: p for g, p in zip(self.gpus, periods, strict=True)}
        self._environment = describe_gpus(self.gpus, self.counter_period_s)
        if self.background:
            self.sampler.start()
        else:
            self.sampler.sample_now()

    def stop(self) -> None:
        """Stop sampling and release NVML; the stored series stays readable."""
        self.sampler.stop()
        self.gpus.close()

    def check_engine(self, pids: Collection[int]) -> IdentityCheck:
        """Check by UUID that the engine's processes (``pids``) run on exactly the metered GPUs.

        Call once the engine is up (its CUDA contexts exist). On a mismatch every window measured
        from then on (and any past interval) is null with the reason; the outcome goes into the
        record's environment (``gpu_identity``).
        """
        listed = self.gpus.compute_pids() if pids else {}
        self.identity = check_identity([g.uuid for g in self.gpus], listed, pids)
        return self.identity

    # -- windows ---------------------------------------------------------------------------

    def begin_window(self, name: str) -> None:
        """Open a window: tag samples with ``name`` and read every GPU now (counter included)."""
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        if not self._open:  # nothing still needs older readings: they live on in the Parquet spool
            self.sampler.forget_before(self.clock() - RETAIN_S)
        self._phase_stack.append(name)
        self.sampler.phase = name
        self._open[name] = self.sampler.sample_now()

    def end_window(self, name: str) -> WindowEnergy:
        """Close a window: its energy (or why not) and GPU figures."""
        begin = self._open.pop(name)
        end = self.sampler.sample_now()
        if name in self._phase_stack:
            self._phase_stack.remove(name)
        self.sampler.phase = self._phase_stack[-1] if self._phase_stack else None
        edges = [(b.t_s, e.t_s) for b, e in zip(begin, end, strict=True)]
        return self._figures(edges)

    def interval(self, t0_s: float, t1_s: float) -> WindowEnergy:
        """Figures over any past interval of the sampler clock (e.g. a scenario's steady state)."""
        return self._figures([(t0_s, t1_s)] * len(self.gpus))

    def measure_idle(
        self, seconds: float = 5.0, sleep: Callable[[float], None] | None = None
    ) -> IdleBaseline:
        """Idle power (engine loaded, no requests) for ``seconds``, once power has settled.

        Waits until two consecutive one-second means of total power differ by under 1 % (or
        1 W per GPU), at most :data:`SETTLE_MAX_S`; then measures. Later windows subtract it.
        The memory reading survives a failed energy reading.
        """
        wait = sleep or self.sleep
        settle_s, settled = self._settle(wait)
        self.begin_window("idle")
        wait(seconds)
        result = self.end_window("idle")
        tel = result.gpu
        mem_used = tel.peak_memory_used_bytes if tel is not None else None
        totals = [g.memory_total_bytes for g in self.environment_fields().get("gpus", [])]
        mem_total = sum(totals) if totals and all(t is not None for t in totals) else None
        spread = self._power_spread(tel.duration_s if tel is not None else seconds)
        if tel is None or result.energy_j is None:
            return IdleBaseline(
                power_w=None,
                reason=result.why or "no GPU figures",
                duration_s=tel.duration_s if tel is not None else None,
                memory_used_bytes=mem_used,
                memory_total_bytes=mem_total,
                settle_s=settle_s,
                settled=settled,
                power_spread_w=spread,
            )
        self.idle_power_w = tel.avg_power_w
        return IdleBaseline(
            duration_s=tel.duration_s,
            power_w=tel.avg_power_w,
            energy_j=result.energy_j,
            energy_source=tel.energy_source,
            device_power_w=[d.avg_power_w for d in tel.devices],
            memory_used_bytes=mem_used,
            memory_total_bytes=mem_total,
            settle_s=settle_s,
            settled=settled,
            power_spread_w=spread,
        )

    def _settle(self, wait: Callable[[float], None]) -> tuple[float | None, bool | None]:
        """Wait until the 1 s mean power is flat; (seconds waited, whether it went flat)."""
        t0 = self.clock()
        if all(not self.sampler.field_supported(g.index, "power_w") for g in self.gpus):
            return None, None
        tol_w = SETTLE_TOL_W * len(self.gpus)
        while True:
            wait(SETTLE_STEP_S)
            now = self.clock()
            if now - t0 >= 2.0:
                recent, before = self._mean_power(now - 1.0, now), self._mean_power(now - 2.0, now - 1.0)
                flat = recent is not None and before is not None
                if flat and abs(recent - before) <= max(tol_w, SETTLE_TOL_FRAC * recent):  # type: ignore[operator]
                    return now - t0, True
            if now - t0 >= SETTLE_MAX_S:
                return now - t0, False

    def _mean_power(self, t0: float, t1: float) -> float | None:
        """Mean sampled power over [t0, t1], summed over GPUs (None without samples for every GPU)."""
        means = []
        for g in self.gpus:
            vals = [r.power_w for r in self.sampler.readings(g.index, t0, t1) if r.power_w is not None]
            if not vals:
                return None
            means.append(sum(vals) / len(vals))
        return sum(means)

    def _power_spread(self, seconds: float) -> float | None:
        now = self.clock()
        rows = self.sampler.readings(t0=now - seconds, t1=now)
        per_tick = _per_tick_sums(rows, "power_w", len(self.gpus))
        return statistics.pstdev(per_tick) if len(per_tick) >= 2 else None

    # -- outputs ---------------------------------------------------------------------------

    def environment_fields(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~harness.record.run_record.Environment` (GPU provenance)."""
        if self._environment is None:
            self._environment = describe_gpus(self.gpus, self.counter_period_s)
        fields = dict(self._environment)
        if self.identity is not None:
            fields["gpu_identity"] = GpuIdentity(**self.identity.as_record())  # type: ignore[arg-type]
        return fields

    def write_samples(self, path: Path) -> int:
        """Write the GPU time series to Parquet; returns the number of rows."""
        return self.sampler.write_parquet(path, self.t_origin_s)

    def achieved_rate_hz(self) -> float | None:
        return self.sampler.achieved_rate_hz()

    # -- arithmetic ------------------------------------------------------------------------

    def _figures(self, edges: Sequence[tuple[float, float]]) -> WindowEnergy:
        devices = [self._device_figures(gpu, t0, t1) for gpu, (t0, t1) in zip(self.gpus, edges, strict=True)]
        if self.identity is not None and self.identity.voids_energy:
            void = Unmeasured(reason=self.identity.reason or "GPU identity mismatch")
            devices = [
                d.model_copy(
                    update={"energy_j": None, "energy_source": None, "energy": void, "avg_power_w": None}
                )
                for d in devices
            ]
        t_start = min(t0 for t0, _ in edges)
        t_end = max(t1 for _, t1 in edges)
        duration = t_end - t_start
        readings = self.sampler.readings(t0=t_start, t1=t_end)

        missing = [d for d in devices if d.energy_j is None]
        energy_j: float | None = None
        reason: Unmeasured | None = None
        source = None
        if missing:
            why = "; ".join(f"GPU {d.index}: {d.energy.reason if d.energy else 'no figure'}" for d in missing)
            reason = Unmeasured(reason=why)
        else:
            energy_j = sum(d.energy_j for d in devices if d.energy_j is not None)
            sources = {d.energy_source for d in devices}
            source = sources.pop() if len(sources) == 1 else "mixed"

        low: list[str] = []
        periods = [p for p in self.counter_period_s.values() if p is not None]
        period = max(periods) if periods else None
        if any(d.energy_source == "counter" for d in devices) or not devices:
            resolution = counter_resolution_reason(duration, period)
            if resolution:
                low.append(resolution)
        for d, (t0, t1) in zip(devices, edges, strict=True):
            if d.energy_source == "power_integration":
                gap = max_gap_s_of([r.t_s for r in self._series(d.index, "power_w", t0, t1, pad=True)])
                if gap > MAX_POWER_GAP_S:
                    low.append(f"GPU {d.index}: power samples up to {gap:.2f} s apart")

        per_tick_power = _per_tick_sums(readings, "power_w", len(self.gpus))
        mems = _latest_sums(readings, "memory_used_bytes", len(self.gpus))
        gpu_utils = [r.gpu_util_pct for r in readings if r.gpu_util_pct is not None]
        mem_utils = [r.mem_util_pct for r in readings if r.mem_util_pct is not None]
        n_per_gpu = sum(1 for r in readings if r.power_w is not None or r.energy_mj is not None) / max(
            1, len(self.gpus)
        )
        tel = GpuPhaseTelemetry(
            gpu_count=len(self.gpus),
            duration_s=duration,
            energy_j=energy_j,
            energy_source=source,  # type: ignore[arg-type]
            energy=reason,
            energy_low_confidence=bool(low),
            low_confidence_reason="; ".join(low) or None,
            avg_power_w=energy_j / duration if energy_j is not None and duration > 0 else None,
            peak_power_w=max(per_tick_power) if per_tick_power else None,
            peak_memory_used_bytes=int(max(mems)) if mems else None,
            mean_gpu_util_pct=_mean(gpu_utils),
            mean_mem_util_pct=_mean(mem_utils),
            idle_power_w=self.idle_power_w,
            energy_above_idle_j=(
                energy_j - self.idle_power_w * duration
                if energy_j is not None and self.idle_power_w is not None
                else None
            ),
            samples=len(readings),
            sample_rate_hz=(n_per_gpu - 1) / duration if duration > 0 and n_per_gpu > 1 else None,
            counter_update_period_s=period,
            devices=devices,
        )
        return WindowEnergy(energy_j, reason, tel)

    def _series(self, gpu_index: int, name: str, t0: float, t1: float, pad: bool) -> list[Reading]:
        """Readings of one GPU with a value for ``name``, in [t0, t1] plus (pad) one on each side."""
        # Sorted: the thread and the window edges sample concurrently, so rows may interleave.
        rows = sorted(
            (r for r in self.sampler.readings(gpu_index) if getattr(r, name) is not None), key=lambda r: r.t_s
        )
        if not pad:
            return [r for r in rows if t0 <= r.t_s <= t1]
        before = [r for r in rows if r.t_s < t0][-1:]
        after = [r for r in rows if r.t_s > t1][:1]
        return before + [r for r in rows if t0 <= r.t_s <= t1] + after

    def _device_figures(self, gpu: GpuDevice, t0: float, t1: float) -> GpuDeviceWindow:
        duration = t1 - t0
        energy_j: float | None = None
        source: str | None = None
        why: str | None = None

        counter_reason = self.sampler.unsupported_reason(gpu.index, "energy_mj")
        if gpu.mig:
            why = (
                "GPU in MIG mode: NVML's energy counter and power are the whole GPU's, shared by every "
                "instance, and are never reported as one instance's"
            )
        elif counter_reason is None:
            pts = [
                (r.t_s, float(r.energy_mj or 0))
                for r in self._series(gpu.index, "energy_mj", t0, t1, pad=True)
            ]
            delta_mj, why = counter_delta_mj(pts, t0, t1, COUNTER_GAP_S)
            if delta_mj is not None:
                energy_j, source = delta_mj / 1000.0, "counter"  # mJ -> J, once
            elif not ("backwards" in (why or "") or "apart" in (why or "")):
                counter_reason = why  # a reset or a gap voids the figure; integrating would hide it
        if not gpu.mig and energy_j is None and counter_reason is not None:
            power_reason = self.sampler.unsupported_reason(gpu.index, "power_w")
            pts = [
                (r.t_s, float(r.power_w or 0.0)) for r in self._series(gpu.index, "power_w", t0, t1, pad=True)
            ]
            integrated = integrate_power_j(pts, t0, t1) if power_reason is None else None
            if integrated is not None:
                energy_j, source, why = integrated, "power_integration", None
            elif power_reason is not None:
                why = f"no energy counter ({counter_reason}) and no power reading ({power_reason})"
            else:
                why = f"no energy counter ({counter_reason}) and power samples do not cover the window"

        inside = self.sampler.readings(gpu.index, t0, t1)
        powers = [r.power_w for r in inside if r.power_w is not None]
        mems = [r.memory_used_bytes for r in inside if r.memory_used_bytes is not None]
        return GpuDeviceWindow(
            index=gpu.index,
            uuid=gpu.uuid,
            energy_j=energy_j,
            energy_source=source,  # type: ignore[arg-type]
            energy=Unmeasured(reason=why or "no figure") if energy_j is None else None,
            avg_power_w=energy_j / duration if energy_j is not None and duration > 0 else None,
            peak_power_w=max(powers) if powers else None,
            peak_memory_used_bytes=max(mems) if mems else None,
            mean_gpu_util_pct=_mean([r.gpu_util_pct for r in inside if r.gpu_util_pct is not None]),
            mean_mem_util_pct=_mean([r.mem_util_pct for r in inside if r.mem_util_pct is not None]),
            samples=len(inside),
        )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _per_tick_sums(readings: Sequence[Reading], name: str, n_gpus: int) -> list[float]:
    """Sum over GPUs of one field, per sampler tick where every GPU has a value."""
    ticks: dict[int, list[float]] = {}
    for r in readings:
        value = getattr(r, name)
        if value is not None:
            ticks.setdefault(r.tick, []).append(float(value))
    return [sum(v) for v in ticks.values() if len(v) == n_gpus]


def _latest_sums(readings: Sequence[Reading], name: str, n_gpus: int) -> list[float]:
    """Sum over GPUs of each GPU's latest value of a slow field, at every reading of it."""
    latest: dict[int, float] = {}
    out: list[float] = []
    for r in sorted(readings, key=lambda r: r.t_s):
        value = getattr(r, name)
        if value is None:
            continue
        latest[r.gpu_index] = float(value)
        if len(latest) == n_gpus:
            out.append(sum(latest.values()))
    return out
