"""Process bookkeeping for the integration tests.

Every integration test runs with a tag of its own in the environment (``HARNESS_TEST_PROC_TAG``,
set by an autouse fixture). Whatever the test starts inherits it: the harness CLI in a
subprocess, the engine server, the engine's workers, and any orphan that outlives them even
after it is re-parented away from this process. A leftover is any live process carrying the tag.
"""

from __future__ import annotations

import contextlib
import os
import time

import psutil

TAG_ENV = "HARNESS_TEST_PROC_TAG"


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Live processes (zombies excepted) whose environment carries `tag`, this one excepted.

    Process-group leaders (the engine servers) come first.
    """
    out = []
    for p in psutil.process_iter():
        if p.pid == os.getpid():
            continue
        try:
            if p.environ().get(TAG_ENV) != tag or p.status() == psutil.STATUS_ZOMBIE:
                continue
            out.append(p)
        except (psutil.Error, OSError):
            continue

    def leader_first(p: psutil.Process) -> int:
        try:
            return 0 if os.getpgid(p.pid) == p.pid else 1
        except OSError:
            return 1

    out.sort(key=leader_first)
    return out


def current_tag() -> str:
    return os.environ[TAG_ENV]


def leftovers(timeout_s: float = 0.0) -> list[psutil.Process]:
    """This test's processes still alive after waiting up to `timeout_s` for them to go."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = tagged_processes(current_tag())
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.2)


def describe(procs: list[psutil.Process]) -> str:
    parts = []
    for p in procs:
        try:
            parts.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            parts.append(str(p.pid))
    return "; ".join(parts)


def kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=10)
