"""Writing run pages, on every core when there are many.

A run page reads its run's tables (Parquet) and renders charts: about 1.5 ms of CPU each, so a
full build of a thousand runs is mostly run pages. They are independent of one another, so a
large batch is split over forked worker processes (as ``sphinx -j auto`` splits documents);
each worker writes its pages and sends back only the warnings. Forking is used only where it is
safe: on POSIX, with no other thread alive in this process (a thread holding a lock at the fork
would leave the child deadlocked).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence

from harness.dashboard.data import RunView

PARALLEL_MIN_PAGES = 200  # below this, forking costs more than it saves
MAX_WORKERS = 8

WriteOne = Callable[[RunView], list[str]]

_JOB: tuple[Sequence[RunView], WriteOne] | None = None  # read by forked workers


def _chunk(bounds: tuple[int, int]) -> list[list[str]]:
    assert _JOB is not None
    views, write_one = _JOB
    return [write_one(v) for v in views[bounds[0] : bounds[1]]]


def workers_for(n_pages: int) -> int:
    """How many processes to use for ``n_pages`` pages (1: write them here)."""
    if n_pages < PARALLEL_MIN_PAGES or os.name != "posix" or threading.active_count() > 1:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, MAX_WORKERS))


def write_run_pages(views: Sequence[RunView], write_one: WriteOne) -> list[list[str]]:
    """``write_one(view)`` for each view (it writes the page and returns its warnings), in order."""
    n = workers_for(len(views))
    if n == 1:
        return [write_one(v) for v in views]
    import pyarrow.parquet  # noqa: F401 - once here, not once per worker after the fork

    global _JOB
    _JOB = (views, write_one)
    try:
        size = -(-len(views) // (n * 4))  # a few chunks per worker evens out slow pages
        bounds = [(i, min(i + size, len(views))) for i in range(0, len(views), size)]
        with multiprocessing.get_context("fork").Pool(n) as pool:
            chunks = pool.map(_chunk, bounds)
    finally:
        _JOB = None
    return [warnings for chunk in chunks for warnings in chunk]
