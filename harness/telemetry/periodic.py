"""One periodic background thread, shared by the GPU sampler and the ``/metrics`` poller.

:class:`PeriodicThread` calls a function on a daemon thread on a fixed-rate schedule: tick *n*
is due at ``start + n × interval_s``, so the period does not drift by the time a tick takes,
and after a stall (a loaded machine, a slow read) the schedule resumes from now rather than
bursting to catch up. A tick that raises is counted and kept in :attr:`last_error`; the thread
carries on, because a sampler that dies silently mid-run loses the rest of the run's data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PeriodicThread:
    """Runs ``tick()`` every ``interval_s`` seconds on a daemon thread; start/stop idempotent.

    Args:
        tick: the work of one period (its return value is ignored); exceptions are counted, not raised.
        interval_s: seconds between the starts of two ticks.
        name: the thread's name (shows in ``py-spy`` and thread dumps).
        immediate: run the first tick as soon as the thread starts instead of one period later.
    """

    def __init__(
        self, tick: Callable[[], object], interval_s: float, name: str, *, immediate: bool = False
    ) -> None:
        self.tick = tick
        self.interval_s = interval_s
        self.name = name
        self.immediate = immediate
        self.ticks = 0  # ticks run on the thread, failed ones included
        self.errors = 0
        self.last_error: str | None = None
        self.busy_s = 0.0  # wall time spent inside tick() (the thread's overhead)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the thread; False (and nothing done) if it is already running."""
        if self._thread is not None:
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop and join the thread; False if it was not running."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return False
        thread.join(timeout=timeout_s)
        return True

    def _run_tick(self) -> None:
        t0 = time.perf_counter()
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            self.errors += 1
            self.last_error = f"{self.name}: {exc!r}"
        finally:
            self.busy_s += time.perf_counter() - t0
            self.ticks += 1

    def _loop(self) -> None:
        # The schedule runs on the real monotonic clock, whatever clock the caller stamps data with.
        next_t = time.monotonic() + (0.0 if self.immediate else self.interval_s)
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            self._run_tick()
            next_t += self.interval_s
            now = time.monotonic()
            if next_t < now:  # fell behind: resume, do not burst
                next_t = now
