"""Process bookkeeping for the integration tests (a module of its own: pytest imports conftest.py
under another module name, so state kept there would exist twice)."""

from __future__ import annotations

import os

import psutil

# Process groups of servers shared by the session, which the no-orphan checks must ignore.
SHARED_PGIDS: set[int] = set()


def vllm_processes() -> list[psutil.Process]:
    """vLLM processes descending from this test process, shared session servers excepted.

    Each vLLM server runs in its own process group, whose leader is listed first.
    """
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if os.getpgid(p.pid) in SHARED_PGIDS or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if any("vllm" in part for part in p.cmdline()) or p.name().startswith(("VLLM", "EngineCore")):
                out.append(p)
        except (psutil.Error, OSError):
            continue
    out.sort(key=lambda p: 0 if os.getpgid(p.pid) == p.pid else 1)
    return out
