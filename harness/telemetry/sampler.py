"""A background GPU sampler (20 Hz by default) and the arithmetic on its time series.

The sampler reads, per GPU and per tick: power (W), memory used (bytes), GPU and memory
utilization (%), SM clock (MHz), temperature (°C) and the energy counter (mJ). It runs on its own
daemon thread on a fixed-rate schedule (it does not drift by the read time, and after a stall it
resumes rather than bursting). NVML releases the GIL inside its C calls, so the engine client's
threads barely notice it. A field the GPU does not offer is read once, then skipped, and its
reason kept in :attr:`GpuSampler.unsupported`.

Windows are measured with two synchronous samples (:meth:`GpuSampler.sample_now`) at their
edges, so every window is covered by samples whatever the rate. Energy over an interval:

* from the hardware counter (:func:`counter_delta_mj`): the difference of the readings at the
  two edges, linearly interpolated between samples for an edge that falls between ticks. A
  reading lower than an earlier one (a driver reload resets the counter) invalidates the figure;
  we never add up the pieces on either side of a reset.
* from power samples (:func:`integrate_power_j`): the trapezoidal rule over the samples,
  clipped to the interval with linear interpolation at its edges. Used where the counter is
  missing (pre-Volta GPUs, some virtualised ones).

Only this module and :mod:`harness.telemetry.nvml` are needed by the GPU check; neither imports
pydantic. pyarrow is imported only to write the Parquet file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.periodic import PeriodicThread
from harness.telemetry.nvml import GpuDevice, NvmlError, NvmlNotSupported

T = TypeVar("T")

DEFAULT_INTERVAL_S = 0.05  # 20 Hz: twice the floor, and twice the counter's ~10 Hz update

# Fields the sampler reads, as named in the Parquet file (plus the counter, in mJ).
FIELDS = (
    "power_w",
    "memory_used_bytes",
    "gpu_util_pct",
    "mem_util_pct",
    "sm_clock_mhz",
    "temperature_c",
    "energy_mj",
)


@dataclass(frozen=True, slots=True)
class Reading:
    """One GPU at one instant. ``t_s`` is the sampler clock (``time.perf_counter`` by default)."""

    t_s: float
    gpu_index: int
    tick: int
    phase: str | None
    power_w: float | None
    memory_used_bytes: int | None
    gpu_util_pct: float | None
    mem_util_pct: float | None
    sm_clock_mhz: int | None
    temperature_c: int | None
    energy_mj: int | None


class GpuSampler:
    """Samples every GPU of a set on a background thread; thread-safe; start/stop idempotent.

    Args:
        gpus: the devices to read (a :class:`~harness.telemetry.nvml.GpuSet` or any sequence).
        interval_s: seconds between ticks of the background thread.
        clock: time source for ``t_s`` (monotonic seconds); tests pass a fake one and drive
            :meth:`sample_now` by hand.
    """

    def __init__(
        self,
        gpus: Sequence[GpuDevice],
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.gpus = list(gpus)
        self.interval_s = interval_s
        self.clock = clock
        self.phase: str | None = None
        self.unsupported: dict[tuple[int, str], str] = {}
        self.read_errors = 0
        self.last_error: str | None = None
        self._readings: list[Reading] = []
        self._ticks = 0
        self._background_ticks = 0
        self.busy_s = 0.0  # wall time the thread spent reading NVML (its overhead)
        self._lock = threading.Lock()
        self._thread: PeriodicThread | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (one synchronous sample first). No-op if running."""
        if self._thread is not None:
            return
        self._started_at = self.clock()
        self._stopped_at = None
        self.sample_now()
        self._thread = PeriodicThread(self._tick, self.interval_s, "harness-gpu-sampler")
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the background thread. No-op if not running."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()
            self._stopped_at = self.clock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.running

    def __enter__(self) -> GpuSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        try:
            t_read = time.perf_counter()
            self.sample_now()
            self.busy_s += time.perf_counter() - t_read
            self._background_ticks += 1
        except Exception as exc:  # never let the sampler die silently mid-run
            self.read_errors += 1
            self.last_error = f"sampler: {exc!r}"

    # -- reading ---------------------------------------------------------------------------

    def sample_now(self) -> list[Reading]:
        """Read every GPU now, store the readings and return them (one per GPU)."""
        with self._lock:
            tick = self._ticks
            self._ticks += 1
        phase = self.phase
        out = [self._read(gpu, tick, phase) for gpu in self.gpus]
        with self._lock:
            self._readings.extend(out)
        return out

    def _read(self, gpu: GpuDevice, tick: int, phase: str | None) -> Reading:
        t = self.clock()
        power = self._field(gpu, "power_w", gpu.power_w)
        energy = self._field(gpu, "energy_mj", gpu.energy_mj)
        memory = self._field(gpu, "memory_used_bytes", gpu.memory_used_bytes)
        util = self._field(gpu, "utilization", gpu.utilization_pct)
        sm = self._field(gpu, "sm_clock_mhz", gpu.sm_clock_mhz)
        temp = self._field(gpu, "temperature_c", gpu.temperature_c)
        return Reading(
            t_s=t,
            gpu_index=gpu.index,
            tick=tick,
            phase=phase,
            power_w=power,
            memory_used_bytes=memory,
            gpu_util_pct=util[0] if util else None,
            mem_util_pct=util[1] if util else None,
            sm_clock_mhz=sm,
            temperature_c=temp,
            energy_mj=energy,
        )

    def _field(self, gpu: GpuDevice, name: str, read: Callable[[], T]) -> T | None:
        key = (gpu.index, name)
        if key in self.unsupported:
            return None
        try:
            return read()
        except NvmlNotSupported as exc:
            self.unsupported[key] = str(exc)
            return None
        except NvmlError as exc:  # transient (or a lost GPU): a gap in the series, counted
            self.read_errors += 1
            self.last_error = f"GPU {gpu.index}: {exc}"
            return None

    def field_supported(self, gpu_index: int, name: str) -> bool:
        """False once the GPU has said it does not offer the field ('utilization' for both utils)."""
        return (gpu_index, name) not in self.unsupported

    def unsupported_reason(self, gpu_index: int, name: str) -> str | None:
        return self.unsupported.get((gpu_index, name))

    # -- the series ------------------------------------------------------------------------

    def readings(
        self, gpu_index: int | None = None, t0: float | None = None, t1: float | None = None
    ) -> list[Reading]:
        """Stored readings, optionally of one GPU and within [t0, t1] (inclusive)."""
        with self._lock:
            rows = list(self._readings)
        return [
            r
            for r in rows
            if (gpu_index is None or r.gpu_index == gpu_index)
            and (t0 is None or r.t_s >= t0)
            and (t1 is None or r.t_s <= t1)
        ]

    def achieved_rate_hz(self) -> float | None:
        """Background ticks per second while running (the synchronous edge samples excluded)."""
        if self._started_at is None:
            return None
        end = self._stopped_at if self._stopped_at is not None else self.clock()
        span = end - self._started_at
        return self._background_ticks / span if span > 0 else None

    def busy_fraction(self) -> float | None:
        """Share of wall time the background thread spent reading (the sampler's overhead)."""
        if self._started_at is None:
            return None
        end = self._stopped_at if self._stopped_at is not None else self.clock()
        span = end - self._started_at
        return self.busy_s / span if span > 0 else None

    def write_parquet(self, path: Path, t_origin_s: float) -> int:
        """Write the series to Parquet (columns of ``telemetry/gpu_samples.parquet``); rows written.

        ``t_s`` is made relative to ``t_origin_s`` (the run's telemetry start). ``energy_counter_j``
        is an extra column: the counter reading in joules since driver load.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self.readings()
        columns = {
            "t_s": pa.array([r.t_s - t_origin_s for r in rows], pa.float64()),
            "gpu_index": pa.array([r.gpu_index for r in rows], pa.int32()),
            "power_w": pa.array([r.power_w for r in rows], pa.float64()),
            "memory_used_bytes": pa.array([r.memory_used_bytes for r in rows], pa.int64()),
            "gpu_util_pct": pa.array([r.gpu_util_pct for r in rows], pa.float64()),
            "mem_util_pct": pa.array([r.mem_util_pct for r in rows], pa.float64()),
            "sm_clock_mhz": pa.array([r.sm_clock_mhz for r in rows], pa.int32()),
            "temperature_c": pa.array([r.temperature_c for r in rows], pa.int32()),
            "phase": pa.array([r.phase for r in rows], pa.string()),
            "energy_counter_j": pa.array(
                [r.energy_mj / 1000.0 if r.energy_mj is not None else None for r in rows], pa.float64()
            ),
        }
        table = pa.table(columns)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)  # atomic, like the store's writes
        return len(rows)


# ---------------------------------------------------------------------------------------------
# Arithmetic on (t_s, value) series; pure.


def _interp(points: Sequence[tuple[float, float]], t: float) -> float | None:
    """Linear interpolation of a time-sorted series at t; None outside its span."""
    if not points or t < points[0][0] or t > points[-1][0]:
        return None
    for (ta, va), (tb, vb) in zip(points, points[1:], strict=False):
        if ta <= t <= tb:
            return va if tb == ta else va + (vb - va) * (t - ta) / (tb - ta)
    return points[-1][1]  # a single point, t equal to it


def integrate_power_j(points: Sequence[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Energy (J) over [t0, t1] from (t_s, power_w) samples by the trapezoidal rule.

    The series is clipped to the interval with linearly interpolated edge values. None when the
    samples do not cover the interval (no guessing beyond the data) or t1 < t0.
    """
    pts = sorted(points)
    if t1 < t0 or len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
        return None
    p0, p1 = _interp(pts, t0), _interp(pts, t1)
    assert p0 is not None and p1 is not None
    inner = [(t, p) for t, p in pts if t0 < t < t1]
    series = [(t0, p0), *inner, (t1, p1)]
    return sum((tb - ta) * (pa + pb) / 2.0 for (ta, pa), (tb, pb) in zip(series, series[1:], strict=False))


def counter_delta_mj(
    points: Sequence[tuple[float, float]], t0: float, t1: float
) -> tuple[float | None, str | None]:
    """Counter increase (mJ) over [t0, t1] from (t_s, counter_mj) samples: (delta, None) or (None, why).

    A decrease anywhere between the edges (the driver reset the counter) invalidates the figure.
    """
    pts = sorted(points)
    if t1 < t0:
        return None, "window ends before it starts"
    if len(pts) < 2 or pts[0][0] > t0 or pts[-1][0] < t1:
        return None, "energy counter readings do not cover the window"
    # Every reading in the window, plus one on either side of it, must be non-decreasing.
    first = max(i for i, (t, _) in enumerate(pts) if t <= t0)
    last = min(i for i, (t, _) in enumerate(pts) if t >= t1)
    span = pts[first : last + 1]
    if any(b[1] < a[1] for a, b in zip(span, span[1:], strict=False)):
        return None, "energy counter went backwards (counter reset or driver reload): figure invalidated"
    e0, e1 = _interp(pts, t0), _interp(pts, t1)
    assert e0 is not None and e1 is not None
    return e1 - e0, None


def max_gap_s(times: Sequence[float]) -> float:
    """Longest gap between consecutive times (0 for fewer than two)."""
    ts = sorted(times)
    return max((b - a for a, b in zip(ts, ts[1:], strict=False)), default=0.0)
