"""The periodic-thread helper under the GPU sampler, the RSS sampler and the /metrics poller."""

from __future__ import annotations

import threading

import pytest

from harness.telemetry.periodic import PeriodicThread

pytestmark = pytest.mark.usefixtures("no_leaked_threads")


def test_ticks_until_stopped_and_restarts() -> None:
    ran = threading.Event()
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count >= 3:
            ran.set()

    p = PeriodicThread(tick, 0.001, "test-periodic")
    assert p.start() and not p.start()  # the second start is a no-op
    assert ran.wait(5.0)
    assert p.stop() and not p.running and not p.stop()
    stopped_at = count
    assert p.ticks == stopped_at and p.busy_s >= 0.0
    ran.clear()
    p.start()  # a stopped thread starts again
    assert ran.wait(5.0) and count > stopped_at
    p.stop()


def test_a_failing_tick_is_counted_and_the_thread_carries_on() -> None:
    calls = threading.Event()
    seen = 0

    def tick() -> None:
        nonlocal seen
        seen += 1
        if seen >= 2:
            calls.set()
        raise RuntimeError("boom")

    p = PeriodicThread(tick, 0.001, "test-periodic", immediate=True)
    p.start()
    assert calls.wait(5.0)
    p.stop()
    assert p.errors == seen >= 2 and p.last_error is not None and "boom" in p.last_error
