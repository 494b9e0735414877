"""The telemetry seam: process-tree figures plus a pluggable GPU meter."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness.record.run_record import (
    AccuracyEnergy,
    EnergyValue,
    IdleBaseline,
    KvCacheUsage,
    PhaseResources,
    ScenarioEnergy,
    TaskResult,
)
from harness.telemetry.cpu import ProcessTreeMonitor
from harness.telemetry.window import WindowEnergy


class GpuMeter(Protocol):
    """Energy and GPU figures per window. Implementations: NVML (harness.telemetry.energy), null."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def check_engine(self, pids: Collection[int]) -> object:
        """Check that the engine's processes run on the metered GPUs (once the engine is up)."""
        ...

    def begin_window(self, name: str) -> None: ...

    def end_window(self, name: str) -> WindowEnergy:
        """The window's energy (or why not) and its GPU figures."""
        ...

    def interval(self, t0_s: float, t1_s: float) -> WindowEnergy:
        """Figures over a past interval of ``time.perf_counter`` seconds (inside the run)."""
        ...

    def measure_idle(self, seconds: float = 5.0) -> IdleBaseline:
        """Idle power for ``seconds`` (engine loaded, no requests); later windows subtract it."""
        ...

    def environment_fields(self) -> dict[str, Any]:
        """GPU provenance: keyword arguments for :class:`~harness.record.run_record.Environment`."""
        ...

    def write_samples(self, path: Path) -> int:
        """Write the GPU time series (Parquet); returns rows written (0: no file)."""
        ...


class KvCacheProbe(Protocol):
    """Engine KV-cache usage per window (``harness.engine.poller.MetricsPoller``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def begin_window(self, name: str) -> None: ...

    def end_window(self, name: str, capacity_tokens: int | None = None) -> KvCacheUsage: ...


class NullGpuMeter:
    """The meter for machines without an NVIDIA GPU: every energy figure is unmeasured, with why."""

    def __init__(self, reason: str = "no NVIDIA GPU visible: no energy counter on this machine") -> None:
        self.reason = reason

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def check_engine(self, pids: Collection[int]) -> None:
        return None

    def begin_window(self, name: str) -> None:
        return None

    def end_window(self, name: str) -> WindowEnergy:
        return WindowEnergy.unmeasured(self.reason)

    def interval(self, t0_s: float, t1_s: float) -> WindowEnergy:
        return WindowEnergy.unmeasured(self.reason)

    def measure_idle(self, seconds: float = 5.0) -> IdleBaseline:
        # Nothing to measure: do not spend the seconds.
        return IdleBaseline(power_w=None, reason=self.reason)

    def environment_fields(self) -> dict[str, Any]:
        return {"gpus": [], "gpu_reason": self.reason}

    def write_samples(self, path: Path) -> int:
        return 0


def default_gpu_meter(env: Mapping[str, str] | None = None, max_devices: int | None = None) -> GpuMeter:
    """The best meter this machine supports: NVML when it starts and sees a GPU, else null with why.

    Args:
        env: the engine's environment (``CUDA_VISIBLE_DEVICES``); this process's by default.
        max_devices: GPUs the engine uses (tensor x pipeline parallel size); all visible by default.
    """
    from harness.telemetry.meter import NvmlGpuMeter
    from harness.telemetry.nvml import open_gpus

    gpus = open_gpus(env, max_devices)
    if not gpus:
        return NullGpuMeter(gpus.reason or "no NVIDIA GPU visible")
    return NvmlGpuMeter(gpus)


class TelemetrySession:
    """Windows over the engine process tree and the GPU meter, one per run phase."""

    def __init__(
        self,
        engine_pid: int | None,
        gpu: GpuMeter | None = None,
        interval_s: float = 0.1,
        *,
        gpu_env: Mapping[str, str] | None = None,
        gpu_count: int | None = None,
        kv_cache: KvCacheProbe | None = None,
    ) -> None:
        """
        Args:
            engine_pid: root of the engine's process tree (None: no process figures).
            gpu: the GPU meter; by default the best this machine has (:func:`default_gpu_meter`).
            interval_s: process-tree sampling period.
            gpu_env: the engine's environment, for its ``CUDA_VISIBLE_DEVICES``.
            gpu_count: GPUs the engine uses (tensor x pipeline parallel size).
            kv_cache: polls the engine's KV-cache usage; set :attr:`kv_capacity_tokens` once known.
        """
        self.tree = ProcessTreeMonitor(engine_pid, interval_s=interval_s)
        self.gpu: GpuMeter = gpu if gpu is not None else default_gpu_meter(gpu_env, gpu_count)
        self.kv_cache = kv_cache
        self.kv_capacity_tokens: int | None = None
        self._open: dict[str, tuple[float, float | None]] = {}
        self.phases: dict[str, PhaseResources] = {}
        self.idle: IdleBaseline | None = None

    def __enter__(self) -> TelemetrySession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.tree.start()
        self.gpu.start()
        if self.kv_cache is not None:
            self.kv_cache.start()

    def stop(self) -> None:
        self.tree.stop()
        self.gpu.stop()
        if self.kv_cache is not None:
            self.kv_cache.stop()

    def attach(self, engine_pid: int | None) -> None:
        """Follow the engine's process tree from now on (it exists only once the engine started).

        A window open across attach() charges the tree's CPU seconds since its processes began,
        which for the engine start-up window is exactly the start-up cost. The GPU meter then
        checks, by UUID, that the engine's processes run on the GPUs it reads.
        """
        self.tree.pid = engine_pid
        self.tree.start()
        self.gpu.check_engine(self.tree.pids())

    def begin_window(self, name: str) -> None:
        self.tree.open_window(name)
        self.gpu.begin_window(name)
        if self.kv_cache is not None:
            self.kv_cache.begin_window(name)
        self._open[name] = (time.perf_counter(), self.tree.cpu_seconds())

    def end_window(self, name: str) -> PhaseResources:
        t0, cpu0 = self._open.pop(name)
        cpu1 = self.tree.cpu_seconds()
        peak = self.tree.close_window(name)
        window = self.gpu.end_window(name)
        kv = self.kv_cache.end_window(name, self.kv_capacity_tokens) if self.kv_cache is not None else None
        phase = PhaseResources(
            duration_s=time.perf_counter() - t0,
            engine_cpu_s=(cpu1 - (cpu0 or 0.0)) if cpu1 is not None else None,
            engine_peak_rss_bytes=peak,
            energy_j=window.energy_j,
            energy=window.reason,
            gpu=window.gpu,
            kv_cache=kv,
        )
        self.phases[name] = phase
        return phase

    # -- GPU-specific figures (null with the reason on machines without a GPU) --------------

    def measure_idle(self, seconds: float = 5.0) -> IdleBaseline:
        """Idle GPU baseline; call with the engine loaded and before any request."""
        self.idle = self.gpu.measure_idle(seconds)
        return self.idle

    def scenario_energy(
        self,
        name: str,
        output_tokens: int,
        requests: Sequence[Mapping[str, Any]] | None = None,
        target_concurrency: int | None = None,
        first_send_s: float | None = None,
    ) -> ScenarioEnergy:
        """Energy figures of a closed scenario window: measured interval, gross window, steady state.

        Args:
            name: the window's name (already closed with :meth:`end_window`).
            output_tokens: the scenario's total output tokens (measured requests).
            requests: per-request rows (``send_s``, ``end_s``, ``first_token_s``,
                ``output_tokens``, ``itl_ms``), seconds after the first measured send.
            target_concurrency: the scenario's concurrency (None for request-rate scenarios).
            first_send_s: ``time.perf_counter()`` of the first measured send, which places the
                rows in time.
        """
        from harness.telemetry.energy import (
            measured_interval,
            scenario_energy,
            steady_state_energy,
            steady_state_window,
        )

        measured = None
        measured_why: str | None = None
        completed: int | None = None
        if requests is None or first_send_s is None:
            measured_why = "no per-request timeline: only the whole window (with warm-up) was measured"
        else:
            span, measured_why = measured_interval(requests)
            if span is not None:
                completed = span.requests
                measured = (span, self.gpu.interval(first_send_s + span.start_s, first_send_s + span.end_s))
        steady: EnergyValue | None = None
        why: str | None
        if target_concurrency is None:
            why = "no concurrency target (request-rate scenario)"
        elif requests is None or first_send_s is None:
            why = "no per-request timeline"
        else:
            steady_span, why = steady_state_window(requests, target_concurrency)
            if steady_span is not None:
                result = self.gpu.interval(
                    first_send_s + steady_span.start_s, first_send_s + steady_span.end_s
                )
                steady = steady_state_energy(steady_span, result)
        return scenario_energy(
            self.phases[name],
            output_tokens,
            steady,
            why,
            measured=measured,
            measured_reason=measured_why,
            completed=completed,
        )

    def accuracy_energy(
        self, name: str, n_samples: int, tasks: Sequence[TaskResult] | None = None
    ) -> AccuracyEnergy:
        """Energy per evaluated sample and per correct sample of a closed accuracy window."""
        from harness.telemetry.energy import accuracy_energy

        return accuracy_energy(self.phases[name], n_samples, tasks)

    def environment_fields(self) -> dict[str, Any]:
        """GPU provenance (name, UUIDs, driver, CUDA, power limit, persistence, clocks) for Environment."""
        return self.gpu.environment_fields()

    def write_gpu_samples(self, run_dir: Path) -> str | None:
        """Write ``telemetry/gpu_samples.parquet`` under ``run_dir``; its relative path, or None."""
        from harness.telemetry.energy import GPU_SAMPLES_FILE

        rows = self.gpu.write_samples(Path(run_dir) / GPU_SAMPLES_FILE)
        return GPU_SAMPLES_FILE if rows else None
