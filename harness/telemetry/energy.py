"""GPU energy per measurement window, measured the way the energy-measurement literature says.

Method (per GPU, summed over the GPUs the engine uses):

1. **Hardware counter first.** NVML's ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since
   driver load; Volta and newer) is read at the start and at the end of each window; the
   difference, converted to joules once, is the window's energy (``energy_source='counter'``).
   It counts every joule, unlike power polling, which misses what happens between polls.
2. **Power integration where the counter is missing.** Sampled power (instantaneous field where
   NVML has it) is integrated with the trapezoidal rule over the window
   (``energy_source='power_integration'``; ``'mixed'`` when GPUs differ).
3. **A counter that goes backwards invalidates the figure** (null, with the reason) instead of a
   partial sum; so does any GPU without a figure: a multi-GPU sum is all GPUs or nothing.
4. **Short windows are low-confidence.** The counter updates about every 100 ms, so a window
   shorter than :data:`LOW_CONFIDENCE_S` (1 s) carries ``energy_low_confidence``; so does a
   power-integrated window whose samples are more than 0.5 s apart somewhere.
5. **Idle baseline.** :meth:`NvmlGpuMeter.measure_idle` measures power with the engine loaded and
   no requests; later windows report ``energy_above_idle_j = energy_j - idle_power_w * duration_s``.
6. **Steady state.** :func:`steady_state_window` finds, from per-request send/end times, the
   interval from the moment the target concurrency is first reached to the moment it first
   drops (ML.ENERGY's definition); :meth:`NvmlGpuMeter.interval` measures any such sub-interval
   from the stored time series (counter readings interpolated between samples).

The background sampler (:class:`~harness.telemetry.sampler.GpuSampler`) runs from
:meth:`NvmlGpuMeter.start` to :meth:`NvmlGpuMeter.stop` and tags its readings with the open
window's name; its series goes to ``telemetry/gpu_samples.parquet``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records import (
    AccuracyEnergy,
    GpuDeviceWindow,
    GpuInfo,
    GpuPhaseTelemetry,
    IdleBaseline,
    PhaseResources,
    ScenarioEnergy,
    SteadyStateEnergy,
    Unmeasured,
)
from harness.telemetry.nvml import GpuDevice, GpuSet, NvmlError, open_gpus
from harness.telemetry.sampler import (
    DEFAULT_INTERVAL_S,
    GpuSampler,
    Reading,
    counter_delta_mj,
    integrate_power_j,
    max_gap_s,
)

LOW_CONFIDENCE_S = 1.0  # the counter's ~100 ms update granularity is >10 % of a shorter window
MAX_POWER_GAP_S = 0.5  # power samples further apart than this make an integrated figure doubtful
GPU_SAMPLES_FILE = "telemetry/gpu_samples.parquet"

WindowResult = tuple[float | None, Unmeasured | None, GpuPhaseTelemetry | None]


class NvmlGpuMeter:
    """The :class:`~harness.telemetry.session.GpuMeter` for NVIDIA GPUs.

    Args:
        gpus: the GPUs the engine uses (from :func:`~harness.telemetry.nvml.open_gpus`); the
            meter owns it and releases NVML on :meth:`stop`.
        interval_s: sampler period (0.05 s = 20 Hz).
        clock: monotonic seconds; the runner's request timestamps must use the same clock
            (``time.perf_counter``) for :meth:`interval`.
        background: run the sampler thread (tests drive :meth:`GpuSampler.sample_now` instead).
    """

    def __init__(
        self,
        gpus: GpuSet,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
        background: bool = True,
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self.background = background
        self.sampler = GpuSampler(gpus, interval_s=interval_s, clock=clock)
        self.idle_power_w: float | None = None
        self.t_origin_s: float | None = None
        self._open: dict[str, list[Reading]] = {}
        self._phase_stack: list[str] = []
        self._environment: dict[str, Any] | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Describe the GPUs (clocks at start) and start sampling. Idempotent."""
        if self._started:
            return
        self._started = True
        self.t_origin_s = self.clock()
        self._environment = describe_gpus(self.gpus)
        if self.background:
            self.sampler.start()
        else:
            self.sampler.sample_now()

    def stop(self) -> None:
        """Stop sampling and release NVML; the stored series stays readable."""
        self.sampler.stop()
        self.gpus.close()

    # -- windows ---------------------------------------------------------------------------

    def begin_window(self, name: str) -> None:
        """Open a window: tag samples with ``name`` and read every GPU now (counter included)."""
        if name in self._open:
            raise ValueError(f"window {name!r} is already open")
        self._phase_stack.append(name)
        self.sampler.phase = name
        self._open[name] = self.sampler.sample_now()

    def end_window(self, name: str) -> WindowResult:
        """Close a window: (energy_j, why it is null, GPU figures)."""
        begin = self._open.pop(name)
        end = self.sampler.sample_now()
        if name in self._phase_stack:
            self._phase_stack.remove(name)
        self.sampler.phase = self._phase_stack[-1] if self._phase_stack else None
        edges = [(b.t_s, e.t_s) for b, e in zip(begin, end, strict=True)]
        return self._figures(edges)

    def interval(self, t0_s: float, t1_s: float) -> WindowResult:
        """Figures over any past interval of the sampler clock (e.g. a scenario's steady state)."""
        return self._figures([(t0_s, t1_s)] * len(self.gpus))

    def measure_idle(self, seconds: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> IdleBaseline:
        """Measure idle power (engine loaded, no requests) for ``seconds``; later windows subtract it."""
        self.begin_window("idle")
        sleep(seconds)
        energy_j, reason, tel = self.end_window("idle")
        if tel is None or energy_j is None:
            return IdleBaseline(power_w=None, reason=reason.reason if reason else "no GPU figures")
        self.idle_power_w = tel.avg_power_w
        return IdleBaseline(
            duration_s=tel.duration_s,
            power_w=tel.avg_power_w,
            energy_j=energy_j,
            energy_source=tel.energy_source,
            device_power_w=[d.avg_power_w for d in tel.devices],
            memory_used_bytes=tel.peak_memory_used_bytes,
        )

    # -- outputs ---------------------------------------------------------------------------

    def environment_fields(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~harness.records.Environment` (GPU provenance)."""
        if self._environment is None:
            self._environment = describe_gpus(self.gpus)
        return dict(self._environment)

    def write_samples(self, path: Path) -> int:
        """Write the GPU time series to Parquet; returns the number of rows."""
        origin = self.t_origin_s if self.t_origin_s is not None else 0.0
        return self.sampler.write_parquet(path, origin)

    def achieved_rate_hz(self) -> float | None:
        return self.sampler.achieved_rate_hz()

    # -- arithmetic ------------------------------------------------------------------------

    def _figures(self, edges: Sequence[tuple[float, float]]) -> WindowResult:
        devices = [self._device_figures(gpu, t0, t1) for gpu, (t0, t1) in zip(self.gpus, edges, strict=True)]
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
        if duration < LOW_CONFIDENCE_S:
            low.append(
                f"window of {duration:.3f} s is shorter than {LOW_CONFIDENCE_S:g} s; "
                "the energy counter updates only about every 100 ms"
            )
        for d, (t0, t1) in zip(devices, edges, strict=True):
            if d.energy_source == "power_integration":
                gap = max_gap_s([r.t_s for r in self._series(d.index, "power_w", t0, t1, pad=True)])
                if gap > MAX_POWER_GAP_S:
                    low.append(f"GPU {d.index}: power samples up to {gap:.2f} s apart")

        per_tick_power = _per_tick_sums(readings, "power_w", len(self.gpus))
        per_tick_mem = _per_tick_sums(readings, "memory_used_bytes", len(self.gpus))
        gpu_utils = [r.gpu_util_pct for r in readings if r.gpu_util_pct is not None]
        mem_utils = [r.mem_util_pct for r in readings if r.mem_util_pct is not None]
        n_per_gpu = len(readings) / max(1, len(self.gpus))
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
            peak_memory_used_bytes=int(max(per_tick_mem)) if per_tick_mem else None,
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
            devices=devices,
        )
        return energy_j, reason, tel

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
        if counter_reason is None:
            pts = [
                (r.t_s, float(r.energy_mj or 0))
                for r in self._series(gpu.index, "energy_mj", t0, t1, pad=True)
            ]
            delta_mj, why = counter_delta_mj(pts, t0, t1)
            if delta_mj is not None:
                energy_j, source = delta_mj / 1000.0, "counter"  # mJ -> J, once
            elif "backwards" in (why or ""):
                pass  # a reset invalidates the figure; integrating instead would hide it
            else:
                counter_reason = why
        if energy_j is None and counter_reason is not None:
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


# ---------------------------------------------------------------------------------------------
# Provenance.


def describe_gpus(gpus: GpuSet) -> dict[str, Any]:
    """GPU provenance as keyword arguments for :class:`~harness.records.Environment`.

    Keys: ``gpus`` (list of :class:`~harness.records.GpuInfo`, clocks as of now), ``gpu_reason``,
    ``cuda_driver_version``, ``nvml_version``, ``cuda_visible_devices``, ``gpu_notes``. Fields a
    GPU does not offer are null, with the reason in ``GpuInfo.unmeasured``.
    """
    driver = gpus.driver_version()
    infos = []
    for gpu in gpus:
        unmeasured: dict[str, str] = {}

        def read(field: str, fn: Callable[[], Any], unmeasured: dict[str, str] = unmeasured) -> Any:
            try:
                return fn()
            except NvmlError as exc:
                unmeasured[field] = str(exc)
                return None

        counter = read("energy_counter", gpu.energy_mj)
        read("power_reading", gpu.power_w)  # settles which power reading this GPU offers
        infos.append(
            GpuInfo(
                index=gpu.index,
                name=gpu.name,
                uuid=gpu.uuid,
                memory_total_bytes=read("memory_total_bytes", gpu.memory_total_bytes),
                driver_version=driver,
                nvml_index=gpu.nvml_index,
                power_limit_w=read("power_limit_w", gpu.power_limit_w),
                persistence_mode=read("persistence_mode", gpu.persistence_mode),
                sm_clock_mhz=read("sm_clock_mhz", gpu.sm_clock_mhz),
                graphics_clock_mhz=read("graphics_clock_mhz", gpu.graphics_clock_mhz),
                memory_clock_mhz=read("memory_clock_mhz", gpu.memory_clock_mhz),
                energy_counter=counter is not None,
                power_reading=gpu.power_reading,  # type: ignore[arg-type]
                unmeasured=unmeasured,
            )
        )
    return {
        "gpus": infos,
        "gpu_reason": gpus.reason,
        "cuda_driver_version": gpus.cuda_driver_version(),
        "nvml_version": gpus.nvml_version(),
        "cuda_visible_devices": gpus.visible_devices,
        "gpu_notes": list(gpus.notes),
    }


def gpu_environment(env: Mapping[str, str] | None = None, max_devices: int | None = None) -> dict[str, Any]:
    """:func:`describe_gpus` for a run that has no meter yet (opens and releases NVML)."""
    with open_gpus(env, max_devices) as gpus:
        return describe_gpus(gpus)


# ---------------------------------------------------------------------------------------------
# Steady state and per-phase figures; pure.


@dataclass(frozen=True)
class SteadySpan:
    """Steady state of a scenario, in seconds after its first send."""

    start_s: float
    end_s: float
    output_tokens: float


def steady_state_window(
    requests: Sequence[Mapping[str, Any]], target_concurrency: int, gap_tolerance_s: float = 0.1
) -> tuple[SteadySpan | None, str | None]:
    """The interval with ``target_concurrency`` requests in flight, and the tokens streamed in it.

    From the moment the in-flight count first reaches the target to the moment it first drops
    below it. A closed-loop client sends the next request a moment after one completes, so a
    dip shorter than ``gap_tolerance_s`` (0.1 s, the energy counter's resolution) is not a drop.

    Args:
        requests: rows of the per-request table (``send_s``, ``end_s``, ``first_token_s``,
            ``output_tokens``, ``itl_ms``); rows without ``send_s``/``end_s`` are ignored.
        target_concurrency: the scenario's concurrency.

    Returns:
        (span, None), or (None, why) when the target is never reached.
    """
    if target_concurrency < 1:
        return None, "no concurrency target"
    events: list[tuple[float, int]] = []
    for row in requests:
        send, end = row.get("send_s"), row.get("end_s")
        if send is None or end is None or end < send:
            continue
        events.append((float(send), +1))
        events.append((float(end), -1))
    events.sort(key=lambda e: (e[0], e[1]))  # at equal times, completions first
    # Step function: (time, in-flight count from this time on).
    steps: list[tuple[float, int]] = []
    count = 0
    for t, d in events:
        count += d
        if steps and steps[-1][0] == t:
            steps[-1] = (t, count)
        else:
            steps.append((t, count))
    peak = max((c for _, c in steps), default=0)
    start = next((t for t, c in steps if c >= target_concurrency), None)
    if start is None:
        return None, f"target concurrency {target_concurrency} never reached (peak {peak} in flight)"
    stop: float | None = None
    i = next(i for i, (t, _) in enumerate(steps) if t == start)
    while i < len(steps):
        t, c = steps[i]
        if c < target_concurrency:
            back = next((j for j in range(i + 1, len(steps)) if steps[j][1] >= target_concurrency), None)
            if back is None or steps[back][0] - t > gap_tolerance_s:
                stop = t
                break
            i = back
        i += 1
    if stop is None or stop <= start:
        return None, "steady state has no duration"
    return SteadySpan(start, stop, tokens_between(requests, start, stop)), None


def tokens_between(requests: Sequence[Mapping[str, Any]], t0: float, t1: float) -> float:
    """Output tokens streamed in [t0, t1], from each request's chunk times.

    Chunk times are ``first_token_s`` plus the cumulative ``itl_ms`` gaps; a request's tokens are
    spread evenly over its chunks. Without gaps, tokens are spread evenly from first token to end.
    """
    total = 0.0
    for row in requests:
        first, n = row.get("first_token_s"), row.get("output_tokens") or 0
        if first is None or n <= 0:
            continue
        gaps = [float(g) for g in (row.get("itl_ms") or []) if g is not None]
        if gaps:
            times = [float(first)]
            for g in gaps:
                times.append(times[-1] + g / 1000.0)
            per_chunk = n / len(times)
            total += per_chunk * sum(1 for t in times if t0 <= t <= t1)
        else:
            end = row.get("end_s")
            if end is None or end <= first or n == 1:
                total += n if t0 <= first <= t1 else 0
            else:
                overlap = max(0.0, min(t1, end) - max(t0, first))
                total += n * overlap / (end - first)
    return total


def scenario_energy_figures(
    energy_j: float | None, output_tokens: float, duration_s: float | None
) -> dict[str, float | None]:
    """``energy_per_output_token_j``, ``output_tokens_per_j`` and ``avg_power_w``; null where undefined."""
    ok = energy_j is not None and math.isfinite(energy_j)
    return {
        "energy_per_output_token_j": energy_j / output_tokens if ok and output_tokens > 0 else None,  # type: ignore[operator]
        "output_tokens_per_j": output_tokens / energy_j if ok and energy_j > 0 else None,  # type: ignore[operator]
        "avg_power_w": energy_j / duration_s if ok and duration_s else None,  # type: ignore[operator]
    }


def _per(value: float | None, n: float) -> float | None:
    return value / n if value is not None and n > 0 else None


def _no_gpu_reason(phase: PhaseResources) -> Unmeasured:
    return phase.energy or Unmeasured(reason="no GPU telemetry for this phase")


def scenario_energy(
    phase: PhaseResources,
    output_tokens: int,
    steady_state: SteadyStateEnergy | None = None,
    steady_state_reason: str | None = None,
) -> ScenarioEnergy:
    """A scenario's energy figures from its window (``TelemetrySession.end_window``)."""
    tel = phase.gpu
    if tel is None or tel.energy_j is None:
        return ScenarioEnergy(
            energy_j=None,
            energy=tel.energy if tel is not None and tel.energy else _no_gpu_reason(phase),
            output_tokens=output_tokens,
            duration_s=tel.duration_s if tel else phase.duration_s,
            steady_state=steady_state,
            steady_state_reason=steady_state_reason,
        )
    figures = scenario_energy_figures(tel.energy_j, output_tokens, tel.duration_s)
    return ScenarioEnergy(
        energy_j=tel.energy_j,
        energy_source=tel.energy_source,
        energy_low_confidence=tel.energy_low_confidence,
        duration_s=tel.duration_s,
        avg_power_w=figures["avg_power_w"],
        output_tokens=output_tokens,
        energy_per_output_token_j=figures["energy_per_output_token_j"],
        output_tokens_per_j=figures["output_tokens_per_j"],
        energy_above_idle_j=tel.energy_above_idle_j,
        energy_per_output_token_above_idle_j=_per(tel.energy_above_idle_j, output_tokens),
        steady_state=steady_state,
        steady_state_reason=steady_state_reason,
    )


def steady_state_energy(span: SteadySpan, target_concurrency: int, result: WindowResult) -> SteadyStateEnergy:
    """Steady-state figures from its span and the meter's :meth:`~NvmlGpuMeter.interval` result."""
    energy_j, reason, tel = result
    figures = scenario_energy_figures(energy_j, span.output_tokens, span.end_s - span.start_s)
    above = tel.energy_above_idle_j if tel is not None else None
    return SteadyStateEnergy(
        start_s=span.start_s,
        end_s=span.end_s,
        duration_s=span.end_s - span.start_s,
        target_concurrency=target_concurrency,
        output_tokens=span.output_tokens,
        energy_j=energy_j,
        energy_source=tel.energy_source if tel is not None else None,
        energy=reason,
        energy_low_confidence=tel.energy_low_confidence if tel is not None else False,
        avg_power_w=figures["avg_power_w"],
        energy_per_output_token_j=figures["energy_per_output_token_j"],
        output_tokens_per_j=figures["output_tokens_per_j"],
        energy_above_idle_j=above,
        energy_per_output_token_above_idle_j=_per(above, span.output_tokens),
    )


def accuracy_energy(phase: PhaseResources, n_samples: int) -> AccuracyEnergy:
    """The accuracy phase's energy per evaluated sample, from its window."""
    tel = phase.gpu
    if tel is None or tel.energy_j is None:
        return AccuracyEnergy(
            energy_j=None,
            energy=tel.energy if tel is not None and tel.energy else _no_gpu_reason(phase),
            n_samples=n_samples,
            duration_s=tel.duration_s if tel else phase.duration_s,
        )
    return AccuracyEnergy(
        energy_j=tel.energy_j,
        energy_source=tel.energy_source,
        energy_low_confidence=tel.energy_low_confidence,
        duration_s=tel.duration_s,
        avg_power_w=tel.avg_power_w,
        n_samples=n_samples,
        energy_per_sample_j=_per(tel.energy_j, n_samples),
        energy_above_idle_j=tel.energy_above_idle_j,
        energy_per_sample_above_idle_j=_per(tel.energy_above_idle_j, n_samples),
    )
