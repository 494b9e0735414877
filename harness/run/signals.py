"""Signals during a run: the first one unwinds, the rest wait until the record is on disk.

A run turns SIGINT/SIGTERM into KeyboardInterrupt so that its ``finally`` blocks stop the engine
and write the record. Two rules keep that record:

* **one interrupt per run.** :class:`SignalLog` raises for the first signal only; a second one
  (an impatient Ctrl-C, a supervisor's SIGTERM right after SIGINT) is noted and does not cut the
  cleanup short. Once cleanup has begun (:meth:`SignalLog.hold`), even the first is only noted.
* **a measured scenario ends like a watchdog trip.** Inside :func:`polled`, a signal does not
  raise into the load generator: it becomes the ``abort`` reason the generator polls, so the
  requests completed so far are written and kept, exactly as when the watchdog ends a frozen
  engine.
* **the record is written with signals deferred** (:func:`deferred`): they are noted while the
  record is built and written, and one KeyboardInterrupt is raised after it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)

Abort = Callable[[], str | None]


class SignalLog(list[int]):
    """The signals received (numbers, in order) and whether the next one raises."""

    def __init__(self) -> None:
        super().__init__()
        self.raising = True  # the next signal raises KeyboardInterrupt
        self.polling = 0  # >0: a block polls :meth:`reason` instead

    def hold(self) -> None:
        """From now on signals are only noted (cleanup has begun)."""
        self.raising = False

    def reason(self) -> str | None:
        """Why to stop, once a signal came: e.g. ``interrupted (signal SIGINT)``."""
        return f"interrupted (signal {signal.Signals(self[0]).name})" if self else None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.append(signum)
        if self.polling or not self.raising:
            return
        self.raising = False
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


_active: list[SignalLog] = []


@contextmanager
def as_interrupt() -> Iterator[SignalLog]:
    """SIGTERM and SIGINT unwind as one KeyboardInterrupt (main thread only; elsewhere the log
    only stays empty). The previous handlers come back on exit."""
    log = SignalLog()
    if threading.current_thread() is not threading.main_thread():
        yield log
        return
    previous = {s: signal.signal(s, log.handler) for s in SIGNALS}
    _active.append(log)
    try:
        yield log
    finally:
        _active.remove(log)
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def polled(other: Abort | None = None) -> Iterator[Abort | None]:
    """Inside, a signal to the active run becomes an abort reason (with `other`'s, e.g. the
    watchdog's, first); yields the combined ``abort`` callback, or `other` when no run is active."""
    if not _active:
        yield other
        return
    log = _active[-1]

    def abort() -> str | None:
        return (other() if other is not None else None) or log.reason()

    log.polling += 1
    try:
        yield abort
    finally:
        log.polling -= 1


@contextmanager
def deferred() -> Iterator[SignalLog]:
    """Signals are noted, not acted on, inside; if one came, KeyboardInterrupt is raised after
    the block has finished (the record written). Main thread only; elsewhere a no-op."""
    log = SignalLog()
    log.hold()
    if threading.current_thread() is not threading.main_thread():
        yield log
        return
    previous = {s: signal.signal(s, log.handler) for s in SIGNALS}
    try:
        yield log
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if log:
        raise KeyboardInterrupt(
            f"signal {signal.Signals(log[0]).name} (deferred until the record was written)"
        )
