"""The load generator's knowledge of its own timing error: event-loop lag and busy share.

A chunk that reaches the socket while the event loop is busy with other callbacks is stamped
when the loop gets to it, not when it arrived; that delay is the client's timing error. The
probe measures it directly: a thread of the same process asks the loop, every
``interval_s`` (20 ms), to run a callback (``call_soon_threadsafe``, which wakes the loop through its
self-pipe exactly as an arriving chunk wakes it through its socket) and records how long the
callback waited. Its p99 is the record's estimated timing-error bound (an approximation: a
chunk's wait has the same distribution as the probe's only if chunks arrive independently of
the loop's busy stretches).

A point whose probe lag p99 exceeds ``CLIENT_LAG_LIMIT_MS``, or whose busiest worker used more
than ``CLIENT_BUSY_LIMIT`` of a core, is *client-bound*: its latencies say as much about the
client as about the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CLIENT_LAG_LIMIT_MS = 5.0  # p99 event-loop lag beyond which a point is client-bound
CLIENT_BUSY_LIMIT = 0.9  # share of one core used by the busiest worker beyond which it is
BUSY_TARGET = 0.5  # the share of a core each worker should stay below when the count is automatic
# 50 samples a second: enough for a p99 over a few seconds. Each sample wakes the loop, which is
# the probe's cost: at 10 ms it was a fifth of the client's CPU per token at c=4 (365 tok/s).
PROBE_INTERVAL_S = 0.02


class LagProbe:
    """Samples one event loop's lag from a daemon thread; ``lags_s`` grows while it runs."""

    def __init__(self, interval_s: float = PROBE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.lags_s: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_s = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        def ping() -> None:
            try:
                # A plain sleep, not Event.wait(timeout): the timed lock wait costs more per
                # tick, measured (c=4: 97-115 against 85-87 µs per token). stop() waits for the
                # current sleep to end, at most one interval.
                while True:
                    time.sleep(self.interval_s)
                    if self._stop.is_set():
                        return
                    t = time.perf_counter()
                    try:
                        loop.call_soon_threadsafe(self._hit, t)
                    except RuntimeError:  # the loop has closed
                        return
            finally:
                self._cpu_s = time.thread_time()

        self._thread = threading.Thread(target=ping, name="harness-lag-probe", daemon=True)
        self._thread.start()

    def thread_cpu_s(self) -> float:
        """CPU seconds the probe's own thread has used so far: part of the generator's cost
        (under 1 % of a core at 50 samples a second), charged with the loop's."""
        th = self._thread
        if th is not None and th.is_alive() and th.ident is not None:
            with contextlib.suppress(OSError):
                return time.clock_gettime(time.pthread_getcpuclockid(th.ident))
        return self._cpu_s

    def _hit(self, sent_s: float) -> None:
        self.lags_s.append(time.perf_counter() - sent_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(timeout=1.0)


@dataclass(frozen=True)
class WorkerHealth:
    """One worker's figures: its lag samples (seconds) and the CPU it used over the wall time."""

    lags_s: Sequence[float]
    cpu_s: float
    wall_s: float

    @property
    def busy_share(self) -> float | None:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else None


@dataclass(frozen=True)
class ClientHealth:
    """The client's self-knowledge for one scenario (pooled over workers)."""

    workers: int
    workers_reason: str
    event_loop: str
    lag_samples: int
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_max_ms: float | None
    busy_share_max: float | None
    lag_limit_ms: float = CLIENT_LAG_LIMIT_MS
    busy_limit: float = CLIENT_BUSY_LIMIT
    http_client: str = "harness"

    @property
    def timing_error_bound_ms(self) -> float | None:
        """Estimated bound on a timestamp's error (the lag p99; see the module docstring)."""
        return self.lag_p99_ms

    @property
    def client_bound(self) -> str | None:
        """Why the point is client-bound, or None."""
        why = []
        if self.lag_p99_ms is not None and self.lag_p99_ms > self.lag_limit_ms:
            why.append(f"event-loop lag p99 {self.lag_p99_ms:.2f} ms > {self.lag_limit_ms:g} ms")
        if self.busy_share_max is not None and self.busy_share_max > self.busy_limit:
            why.append(f"busiest worker {self.busy_share_max:.0%} of a core > {self.busy_limit:.0%}")
        return f"client-bound: {'; '.join(why)}" if why else None


def summarize(
    workers: Sequence[WorkerHealth],
    workers_reason: str,
    event_loop: str,
    lag_limit_ms: float = CLIENT_LAG_LIMIT_MS,
    busy_limit: float = CLIENT_BUSY_LIMIT,
    http_client: str = "harness",
) -> ClientHealth:
    """Pool the workers' lag samples and take the busiest worker's share."""
    lags = np.asarray([x for w in workers for x in w.lags_s], dtype=float) * 1000.0
    busy = [b for w in workers if (b := w.busy_share) is not None]
    return ClientHealth(
        workers=len(workers),
        workers_reason=workers_reason,
        event_loop=event_loop,
        lag_samples=int(lags.size),
        lag_p50_ms=float(np.median(lags)) if lags.size else None,
        lag_p99_ms=float(np.percentile(lags, 99)) if lags.size else None,
        lag_max_ms=float(lags.max()) if lags.size else None,
        busy_share_max=max(busy) if busy else None,
        lag_limit_ms=lag_limit_ms,
        busy_limit=busy_limit,
        http_client=http_client,
    )


def workers_needed(predicted_busy_share: float, max_workers: int, target: float = BUSY_TARGET) -> int:
    """Workers that keep each below ``target`` of a core, at most ``max_workers`` (at least 1)."""
    if not predicted_busy_share > 0:
        return 1
    need = int(np.ceil(predicted_busy_share / target))
    return max(1, min(need, max_workers))
