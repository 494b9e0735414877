"""The load generator on N worker processes, each with its own event loop, fed from one schedule.

Why: one Python event loop spends tens of microseconds per streamed chunk; a fast server
streaming tens of thousands of tokens per second keeps it busy all the time, and a busy loop
reads chunks late and in bursts. Workers share that cost.

How the schedule stays vLLM's:

* The parent draws the whole arrival schedule once (:func:`harness.loadgen.arrivals`, the same
  gamma process as ``vllm bench serve --seed``) and deals request ``i`` to worker ``i % N``
  with its offset unchanged; every worker sends at ``origin + offset`` where ``origin`` is one
  ``time.perf_counter()`` instant (Linux ``CLOCK_MONOTONIC``, shared by all processes) that the
  parent picks once every worker is ready. The union of the workers' send times is therefore
  the single-process schedule (:func:`deal` and :func:`merged_offsets`, tested against vLLM's).
* A concurrency limit is split as evenly as possible (worker ``w`` gets ``C // N`` plus one if
  ``w < C % N``); each worker keeps its own share busy from its own queue. This is an
  approximation of one shared semaphore: a worker whose requests finish early does not take
  over another's. ``N`` is capped at ``C``.

The per-request rows come back to the parent, are put on the parent's timeline (relative to
``origin``) and merged into one table ordered by request index. Each worker samples its own
event-loop lag (:class:`harness.loadgen.lag.LagProbe`) and its process CPU time (the probe
thread included) from ``origin`` to the end of its gather.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from harness.loadgen.lag import LagProbe, WorkerHealth
from harness.loadgen.metrics import RequestTiming
from harness.workloads.build import WorkItem

READY_TIMEOUT_S = 120.0
START_MARGIN_S = 0.1  # origin this far after the last worker reported ready


def deal(n: int, workers: int) -> list[list[int]]:
    """Request indices of each worker: round-robin, so each gets every N-th arrival."""
    return [list(range(w, n, workers)) for w in range(workers)]


def split_concurrency(concurrency: int | None, workers: int) -> list[int | None]:
    """Each worker's share of the concurrency limit (None: no limit)."""
    if concurrency is None:
        return [None] * workers
    return [concurrency // workers + (1 if w < concurrency % workers else 0) for w in range(workers)]


def merged_offsets(parts: Sequence[Sequence[tuple[int, float]]]) -> list[float]:
    """The workers' (index, offset) lists merged back into one schedule ordered by index."""
    return [t for _, t in sorted(p for part in parts for p in part)]


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process sends: its requests, their offsets and its concurrency share."""

    worker: int
    url_base: str
    model: str
    temperature: float | None
    top_p: float | None
    request_timeout_s: float | None
    indices: list[int]
    items: list[WorkItem]
    offsets_s: list[float]
    concurrency: int | None
    use_uvloop: bool
    http: str = "harness"  # harness.loadgen.stream.HTTP_CLIENTS


def _worker_main(conn: Connection) -> None:
    """A worker: get its job, report ready, wait for the origin, run, send the rows back."""
    try:
        job: WorkerJob = conn.recv()
        if job.use_uvloop:
            import uvloop

            uvloop.install()
        box: dict[str, float] = {}
        rows, end_s, lags, aborted = asyncio.run(_worker_run(job, conn, box))
        health = WorkerHealth(
            lags_s=lags, cpu_s=time.process_time() - box["cpu0"], wall_s=end_s - box["origin"]
        )
        conn.send(("done", (rows, end_s, health, aborted)))
    except BaseException:  # noqa: BLE001 - the parent raises it with this text
        conn.send(("error", traceback.format_exc()[-3000:]))
    finally:
        conn.close()


async def _worker_run(
    job: WorkerJob, conn: Connection, box: dict[str, float]
) -> tuple[list[RequestTiming], float, list[float], bool]:
    """Warm the client's code path (one GET of /v1/models), report ready, wait for the origin
    (blocking: nothing else runs yet), then send this worker's requests on the schedule."""
    from harness.loadgen.stream import StreamingClient, get_ok, open_session, prewarm

    client = StreamingClient(job.url_base, job.model, temperature=job.temperature, top_p=job.top_p)
    timings = [
        RequestTiming(i, math.nan, w.input_tokens) for i, w in zip(job.indices, job.items, strict=True)
    ]
    probe = LagProbe()
    sem = asyncio.Semaphore(job.concurrency) if job.concurrency else None
    aborted = False
    async with open_session(job.http, job.url_base, job.concurrency or 0, job.request_timeout_s) as session:
        with contextlib.suppress(Exception):  # a server without the route is still measured
            await get_ok(session, job.url_base, "/v1/models")
        await prewarm(session, min(job.concurrency or 0, len(job.items)))
        gc.collect()
        gc.freeze()
        conn.send(("ready", None))
        origin: float = conn.recv()
        box["origin"], box["cpu0"] = origin, time.process_time()
        probe.start(asyncio.get_running_loop())

        async def one(r: RequestTiming, w: WorkItem) -> None:
            if sem is None:
                await client.one(session, r, w.prompt, w.output_tokens)
            else:
                async with sem:
                    await client.one(session, r, w.prompt, w.output_tokens)
            conn.send(("progress", 1))  # a few bytes per request, never per chunk

        async def dispatch() -> None:
            tasks = []
            for r, w, offset in zip(timings, job.items, job.offsets_s, strict=True):
                # uvloop's timers have millisecond resolution and may fire early: sleep again
                while (wait_s := origin + offset - time.perf_counter()) > 0:
                    await asyncio.sleep(wait_s)
                tasks.append(asyncio.create_task(one(r, w)))
            await asyncio.gather(*tasks)

        task = asyncio.ensure_future(dispatch())
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            if not task.done() and conn.poll():  # the parent says stop
                aborted = True
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not aborted:
            task.result()
    end_s = time.perf_counter()
    probe.stop()
    return timings, end_s, probe.lags_s, aborted


@dataclass
class WorkersResult:
    """The merged rows (absolute ``perf_counter`` times) and what the workers measured."""

    requests: list[RequestTiming]
    origin_s: float
    end_s: float
    health: list[WorkerHealth]
    parent_cpu_s: float
    aborted: str | None


def run_workers(
    jobs: Sequence[WorkerJob],
    on_done: Callable[[], None] | None = None,
    abort: Callable[[], str | None] | None = None,
) -> WorkersResult:
    """Start one process per job, release them at one origin, merge their rows.

    Raises ``RuntimeError`` with the worker's traceback if one fails or never gets ready.
    """
    # Each worker is a fresh interpreter running this module (not a fork: the parent has threads,
    # and multiprocessing's spawn would re-run the caller's __main__).
    procs: list[subprocess.Popen[bytes]] = []
    conns: list[Connection] = []
    try:
        for job in jobs:
            mine, theirs = socket.socketpair()
            p = subprocess.Popen(
                [sys.executable, "-m", "harness.loadgen.workers", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            theirs.close()
            c = Connection(mine.detach())
            c.send(job)
            procs.append(p)
            conns.append(c)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for w, c in enumerate(conns):
            while not c.poll(0.2):
                if time.monotonic() > deadline or procs[w].poll() is not None:
                    raise RuntimeError(f"load generator worker {w} did not get ready")
                if abort is not None and (reason := abort()):
                    raise RuntimeError(f"aborted before the load started: {reason}")
            kind, payload = c.recv()
            if kind != "ready":
                raise RuntimeError(f"load generator worker {w} failed to start:\n{payload}")
        origin = time.perf_counter() + START_MARGIN_S
        cpu0 = time.thread_time()
        for c in conns:
            c.send(origin)
        results: dict[int, Any] = {}
        aborted: str | None = None
        pending = dict(enumerate(conns))
        while pending:
            ready = wait(list(pending.values()), timeout=0.2)
            for ready_conn in ready:
                w = next(k for k, v in pending.items() if v is ready_conn)
                try:
                    kind, payload = pending[w].recv()
                except EOFError:
                    raise RuntimeError(f"load generator worker {w} died (exit {procs[w].poll()})") from None
                if kind == "progress":
                    if on_done is not None:
                        on_done()
                    continue
                if kind == "error":
                    raise RuntimeError(f"load generator worker {w} failed:\n{payload}")
                results[w] = payload
                del pending[w]
            if aborted is None and abort is not None and (reason := abort()):
                aborted = reason
                for c in pending.values():
                    c.send("stop")
        parent_cpu = time.thread_time() - cpu0
    finally:
        for c in conns:
            c.close()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
    rows = sorted((r for w in sorted(results) for r in results[w][0]), key=lambda r: r.index)
    return WorkersResult(
        requests=rows,
        origin_s=origin,
        end_s=max(results[w][1] for w in results),
        health=[results[w][2] for w in sorted(results)],
        parent_cpu_s=parent_cpu,
        aborted=aborted,
    )


if __name__ == "__main__":
    _worker_main(Connection(int(sys.argv[1])))
