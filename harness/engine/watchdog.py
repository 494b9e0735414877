"""Engine watchdog: a hung or dead engine ends the run instead of waiting out request timeouts.

Requests may legitimately take hours (the load generator's timeout is ``vllm bench serve``'s
6 h), so request timeouts cannot tell a slow engine from a frozen one. The watchdog polls the
engine's ``/health`` (and, for an engine the harness started, its process) in a thread of its
own during every phase. When ``/health`` has not answered 200 for ``timeout_s`` seconds, or the
process has exited, it trips: :attr:`cause` says why, the load generator (which polls the
watchdog as its ``abort`` callback) cancels its requests in flight and keeps what finished, and
code running inside :meth:`guard` (the accuracy phase, blocked in lm-eval) gets
:class:`EngineHungError` raised in its thread.
"""

from __future__ import annotations

import ctypes
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.engine.base import EngineError


class EngineHungError(EngineError):
    """Raised inside :meth:`EngineWatchdog.guard` when the watchdog trips."""


class EngineWatchdog:
    """Polls ``{base_url}/health`` every ``poll_s`` seconds.

    Args:
        base_url: the engine's base URL.
        timeout_s: seconds without a 200 from ``/health`` before the watchdog trips.
        process_check: returns why the engine's process is gone (or None while it runs);
            a gone process trips at once. None for an external endpoint.
        process_state: returns the process's state (e.g. "stopped"), quoted in the cause.
        poll_s: seconds between probes.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 60.0,
        process_check: Callable[[], str | None] | None = None,
        process_state: Callable[[], str | None] | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/health"
        self.timeout_s = timeout_s
        self.process_check = process_check
        self.process_state = process_state
        self.poll_s = poll_s
        self.cause: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guarded: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        """The cause once tripped, else None (the load generator's ``abort`` callback)."""
        return self.cause

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="harness-engine-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=min(5.0, self.timeout_s)) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _loop(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.is_set():
            gone = self.process_check() if self.process_check is not None else None
            if gone:
                self._trip(gone)
                return
            if self._healthy():
                last_ok = time.monotonic()
            elif (silent := time.monotonic() - last_ok) >= self.timeout_s:
                state = self.process_state() if self.process_state is not None else None
                where = f" (process state: {state})" if state else ""
                self._trip(f"engine stopped answering {self.url} for {silent:.0f} s{where}")
                return
            self._stop.wait(self.poll_s)

    def _trip(self, cause: str) -> None:
        with self._lock:
            self.cause = cause
            for tid in self._guarded:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(tid), ctypes.py_object(EngineHungError)
                )

    @contextmanager
    def guard(self) -> Iterator[None]:
        """While inside, a trip raises :class:`EngineHungError` in the calling thread (delivered
        when that thread next runs Python code)."""
        tid = threading.get_ident()
        with self._lock:
            if self.cause:
                raise EngineHungError(self.cause)
            self._guarded.add(tid)
        try:
            yield
        finally:
            with self._lock:
                self._guarded.discard(tid)
                if self.cause:  # a trip that raced the end of the block is not raised after it
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Inside a :meth:`guard`, a block that stops by itself on a trip (it polls :attr:`cause`)
        and must not be interrupted: the load generator, which keeps what it measured."""
        tid = threading.get_ident()
        with self._lock:
            was = tid in self._guarded
            self._guarded.discard(tid)
        try:
            yield
        finally:
            with self._lock:
                if was:
                    self._guarded.add(tid)
