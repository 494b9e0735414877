"""A background GPU sampler: power and the energy counter at 20 Hz, the other fields at 2 Hz.

The sampler reads, per GPU and per tick, power (W) and the energy counter (mJ); every
``slow_interval_s`` (0.5 s) it also reads memory used (bytes), GPU and memory utilization (%),
SM clock (MHz) and temperature (°C), which change slowly and would only add NVML calls (each one
takes the driver's lock, shared with the engine's own NVML use). It runs on its own
daemon thread on a fixed-rate schedule (it does not drift by the read time, and after a stall it
resumes rather than bursting). NVML releases the GIL inside its C calls, so the engine client's
threads barely notice it. A field the GPU does not offer is read once, then skipped, and its
reason kept in :attr:`GpuSampler.unsupported`.

Windows are measured with two synchronous samples (:meth:`GpuSampler.sample_now`) at their
edges, so every window is covered by samples whatever the rate. The arithmetic on the series is
in :mod:`harness.telemetry.series`.

Readings stream to a Parquet spool file in batches of ``flush_rows`` rows; in memory the sampler
keeps only what open windows still need (:meth:`GpuSampler.forget_before`), so a long run does
not grow the harness's memory. :meth:`GpuSampler.write_parquet` moves the spool into the run.

Only this module, :mod:`~harness.telemetry.series` and :mod:`harness.telemetry.nvml` are needed by
the GPU check; none imports pydantic. pyarrow is imported only to write the Parquet file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.telemetry.nvml import GpuDevice, NvmlError, NvmlNotSupported
from harness.telemetry.periodic import PeriodicThread
from harness.telemetry.series import counter_delta_mj, integrate_power_j, interp, max_gap_s

__all__ = [
    "DEFAULT_INTERVAL_S",
    "GpuSampler",
    "Reading",
    "counter_delta_mj",
    "integrate_power_j",
    "interp",
    "max_gap_s",
]

T = TypeVar("T")

DEFAULT_INTERVAL_S = 0.05  # 20 Hz: twice the counter's ~10 Hz update
SLOW_INTERVAL_S = 0.5  # 2 Hz for memory, utilization, clocks and temperature
FLUSH_ROWS = 1200  # rows per Parquet row group written to the spool

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
        slow_interval_s: seconds between reads of memory, utilization, clock and temperature.
        flush_rows: readings per Parquet row group streamed to the spool file (0: keep the whole
            series in memory, as the GPU check does where pyarrow may be missing).
    """

    def __init__(
        self,
        gpus: Sequence[GpuDevice],
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
        slow_interval_s: float = SLOW_INTERVAL_S,
        flush_rows: int = FLUSH_ROWS,
    ) -> None:
        self.gpus = list(gpus)
        self.interval_s = interval_s
        self.slow_interval_s = slow_interval_s
        self.flush_rows = flush_rows
        self.clock = clock
        self.phase: str | None = None
        self.t_origin_s: float | None = None  # t_s in the Parquet file is relative to this
        self.unsupported: dict[tuple[int, str], str] = {}
        self.read_errors = 0
        self.last_error: str | None = None
        self.rows = 0  # readings taken in all
        self._readings: list[Reading] = []
        self._pending: list[Reading] = []  # not yet in the spool
        self._spool: Path | None = None
        self._writer: Any = None
        self._spool_closed = False
        self._last_slow: dict[int, float] = {}
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
        if self.t_origin_s is None:
            self.t_origin_s = self._started_at
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
        """Read every GPU now (power and counter; the slow fields when due), store and return them."""
        with self._lock:
            tick = self._ticks
            self._ticks += 1
        if self.t_origin_s is None:
            self.t_origin_s = self.clock()
        phase = self.phase
        out = [self._read(gpu, tick, phase) for gpu in self.gpus]
        with self._lock:
            self._readings.extend(out)
            self._pending.extend(out)
            self.rows += len(out)
            flush = 0 < self.flush_rows <= len(self._pending) and not self._spool_closed
        if flush:
            self._flush()
        return out

    def _read(self, gpu: GpuDevice, tick: int, phase: str | None) -> Reading:
        t = self.clock()
        power = self._field(gpu, "power_w", gpu.power_w)
        energy = self._field(gpu, "energy_mj", gpu.energy_mj)
        memory = util = sm = temp = None
        last = self._last_slow.get(gpu.index)
        if last is None or t - last >= self.slow_interval_s - 1e-9:
            self._last_slow[gpu.index] = t
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

    def forget_before(self, t_s: float) -> None:
        """Drop in-memory readings older than ``t_s`` (one per GPU before it is kept as an edge pad).

        They stay in the Parquet spool; only windows and intervals after ``t_s`` can be measured.
        """
        with self._lock:
            keep_pad: dict[int, Reading] = {}
            for r in self._readings:
                if r.t_s < t_s and (r.gpu_index not in keep_pad or keep_pad[r.gpu_index].t_s <= r.t_s):
                    keep_pad[r.gpu_index] = r
            self._readings = sorted(
                [*keep_pad.values(), *(r for r in self._readings if r.t_s >= t_s)], key=lambda r: r.t_s
            )

    def in_memory(self) -> int:
        """Readings held in memory now."""
        with self._lock:
            return len(self._readings)

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

    def _table(self, rows: Sequence[Reading]) -> Any:
        import pyarrow as pa

        origin = self.t_origin_s or 0.0
        return pa.table(
            {
                "t_s": pa.array([r.t_s - origin for r in rows], pa.float64()),
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
        )

    def _flush(self) -> None:
        """Append the pending readings to the spool file (one row group)."""
        try:
            import pyarrow.parquet as pq
        except ImportError:  # the GPU check runs without pyarrow: keep the series in memory only
            self._spool_closed = True
            return

        with self._lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        table = self._table(rows)
        if self._writer is None:
            fd, name = tempfile.mkstemp(prefix="harness-gpu-samples-", suffix=".parquet")
            os.close(fd)
            self._spool = Path(name)
            weakref.finalize(self, _unlink, self._spool)
            self._writer = pq.ParquetWriter(self._spool, table.schema)
        self._writer.write_table(table)

    def write_parquet(self, path: Path, t_origin_s: float | None = None) -> int:
        """Write the whole series to Parquet (``telemetry/gpu_samples.parquet``); rows written.

        ``t_s`` is relative to the sampler's origin (its first reading, or ``t_origin_s`` if set
        before then). ``energy_counter_j`` is the counter in joules since driver load. Readings
        taken after this call are kept in memory only.
        """
        if t_origin_s is not None and self._writer is None:
            self.t_origin_s = t_origin_s
        self._flush()
        self._spool_closed = True
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        if self._writer is None:
            import pyarrow.parquet as pq

            pq.write_table(self._table([]), tmp)
        else:
            self._writer.close()
            self._writer = None
            assert self._spool is not None
            shutil.move(str(self._spool), tmp)
        tmp.replace(path)  # atomic, like the store's writes
        return self.rows


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
