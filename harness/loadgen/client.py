"""Asynchronous streaming load generator for OpenAI-compatible completion servers.

It reproduces ``vllm bench serve`` (vLLM 0.32, ``benchmarks/serve.py`` and
``benchmarks/lib/endpoint_request_func.py``) on the same workload:

* Request body: ``max_tokens`` with ``ignore_eos`` forces the output length (no ``min_tokens``,
  which switches on a per-step logits processor in the engine); ``repetition_penalty: 1.0`` so a
  model whose generation config sets one does not pay for it here only; greedy
  (``temperature: 0``) unless the scenario sets ``temperature``/``top_p``; streamed, with
  ``stream_options.include_usage`` for the server's own token counts.
* Chunks, success, TTFT, ITL, end time: see :mod:`harness.loadgen.metrics`.
* Arrivals: :mod:`harness.loadgen.arrivals`; a closed loop is an infinite rate capped by the
  concurrency. ``duration`` runs from the start of dispatch to the end of the gather.
* One HTTP session per loop: the load generator's own keep-alive client by default
  (:mod:`harness.loadgen.wire`), or aiohttp as vLLM (``LoadSpec.client_http``), whose connector
  holds at most ``concurrency`` connections; a per-request timeout (default 6 h, as vLLM); any
  exception of one request becomes that request's error.
* The garbage collector is frozen (after a full collection) during measurement, as vLLM does.

The event loop runs in a thread of its own so that ``time.thread_time()`` (plus the lag
probe's thread) measures the generator's own CPU cost, which goes in the record: the load generator must never be the
bottleneck, and this is how we show it. With ``client_workers`` other than 1 the measured
requests may instead go out from several worker processes (:mod:`harness.loadgen.workers`);
``None`` sizes them from the warm-up (its CPU per chunk and chunk rate predict the busy share at
full load; enough workers to keep each below half a core, at most one per CPU). Either way each
loop's lag is sampled (:mod:`harness.loadgen.lag`) and comes back as ``LoadResult.health``. An ``abort`` callback (the engine watchdog) cancels the
requests in flight; each becomes an error and the requests finished so far are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import math
import os
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.loadgen.arrivals import arrival_offsets_s
from harness.loadgen.lag import ClientHealth, LagProbe, WorkerHealth, summarize, workers_needed
from harness.loadgen.metrics import RequestTiming
from harness.loadgen.prompts import make_prompts, token_counter, usable_token_ids
from harness.loadgen.stream import SseChunks, StreamingClient, http_client_for, open_session, prewarm
from harness.record.load import DEFAULT_REQUEST_TIMEOUT_S, LoadShape
from harness.workloads.build import WorkItem

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT_S",
    "LoadResult",
    "LoadShape",
    "LoadSpec",
    "SseChunks",
    "StreamingClient",
    "make_prompts",
    "requests_from_parquet",
    "run_load",
    "token_counter",
    "usable_token_ids",
    "write_requests_parquet",
]


@dataclass(frozen=True)
class LoadSpec:
    """What :func:`run_load` sends: one point's load, the seed of its prompts and arrivals, and
    how the client itself runs."""

    load: LoadShape
    seed: int
    # Each loop on uvloop: None (default) when it is importable (the `loadgen` extra), True
    # always (an error without it), False never. See docs/timing.md for the figures.
    client_uvloop: bool | None = None
    # The HTTP client: None (default) the harness's own (harness.loadgen.wire) for http:// URLs,
    # else aiohttp; or "harness" / "aiohttp". See docs/timing.md for the figures.
    client_http: str | None = None

    def offsets_s(self) -> list[float]:
        """Send offsets of the measured requests after the start of dispatch."""
        load = self.load
        return arrival_offsets_s(
            load.num_requests,
            math.inf if load.request_rate is None else load.request_rate,
            seed=self.seed,
            burstiness=load.burstiness,
            ramp_up_strategy=load.ramp_up_strategy,
            ramp_up_start_rps=load.ramp_up_start_rps,
            ramp_up_end_rps=load.ramp_up_end_rps,
        )


@dataclass
class LoadResult:
    requests: list[RequestTiming]  # measured requests only, times relative to the start of dispatch
    client_cpu_s: float
    wall_s: float
    first_send_s: float | None = None  # time.perf_counter() of the start of dispatch (time origin)
    duration_s: float | None = None  # start of dispatch to end of gather (vllm bench serve's duration)
    aborted: str | None = None  # why the scenario was cut short (watchdog), else None
    health: ClientHealth | None = None  # the client's own event-loop lag and busy share


async def _run(
    spec: LoadSpec,
    client: StreamingClient,
    work: Sequence[WorkItem],
    on_done: Callable[[], None] | None,
    marks: dict[str, Any],
    abort: Callable[[], str | None] | None,
    on_dispatch: Callable[[], None] | None = None,
) -> list[RequestTiming]:
    http = http_client_for(client.base_url, spec.client_http)
    limit = spec.load.concurrency or 0
    async with open_session(http, client.base_url, limit, spec.load.request_timeout_s) as session:
        warm = work[: spec.load.warmup_requests]
        measured = work[spec.load.warmup_requests :]
        warm_sem = asyncio.Semaphore(spec.load.concurrency or 1)

        async def warm_one(i: int, w: WorkItem) -> None:
            async with warm_sem:
                await client.one(
                    session, RequestTiming(-1 - i, 0.0, w.input_tokens), w.prompt, w.output_tokens
                )

        await _abortable(asyncio.gather(*(warm_one(i, p) for i, p in enumerate(warm))), abort, marks)
        if marks.get("aborted"):
            return []
        # a closed loop's connections are open before the first measured send (harness client)
        await prewarm(session, min(spec.load.concurrency or 0, len(measured)))
        if on_dispatch is not None:
            on_dispatch()  # the warm-up is over; the measured dispatch starts after this returns
        sem = asyncio.Semaphore(spec.load.concurrency) if spec.load.concurrency else None
        timings = [RequestTiming(i, math.nan, w.input_tokens) for i, w in enumerate(measured)]

        async def measured_one(r: RequestTiming, w: WorkItem) -> None:
            if sem is None:
                await client.one(session, r, w.prompt, w.output_tokens)
            else:
                async with sem:
                    await client.one(session, r, w.prompt, w.output_tokens)
            if on_done is not None:
                on_done()

        async def dispatch() -> None:
            tasks = []
            for r, p, offset in zip(timings, measured, offsets, strict=True):
                # uvloop's timers have millisecond resolution and may fire early: sleep again
                while offset > 0 and (wait := origin + offset - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(measured_one(r, p)))
            await asyncio.gather(*tasks)

        # A trace gives every request its own send time; otherwise the arrival process does.
        traced = [w.at_s for w in measured]
        offsets = (
            [t for t in traced if t is not None] if all(t is not None for t in traced) else spec.offsets_s()
        )
        # The generator's own cost and the benchmark's duration are charged from here.
        marks["cpu0"] = time.thread_time()
        marks["probe_cpu0"] = marks["probe"].thread_cpu_s() if "probe" in marks else 0.0
        origin = time.perf_counter()
        marks["origin"] = origin
        await _abortable(dispatch(), abort, marks)
        marks["duration"] = time.perf_counter() - origin
        for r in timings if marks.get("aborted") else ():
            if math.isnan(r.send_s):  # never sent: the scenario was aborted before its turn
                r.send_s = marks["duration"] + origin
                r.end_s = r.send_s
                r.error = f"not sent: {marks.get('aborted')}"
            elif r.end_s is None or (r.error is None and not r.ok):
                r.end_s = r.end_s if r.end_s is not None else time.perf_counter()
                r.error = f"cancelled: {marks.get('aborted')}"
        return timings


async def _abortable(work: Any, abort: Callable[[], str | None] | None, marks: dict[str, Any]) -> None:
    """Await ``work``; if ``abort()`` returns a reason meanwhile, cancel it and note the reason."""
    task = asyncio.ensure_future(work)
    if abort is None:
        await task
        return
    while not task.done():
        await asyncio.wait({task}, timeout=0.2)
        if not task.done() and (reason := abort()):
            marks["aborted"] = reason
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
    task.result()


def run_load(
    spec: LoadSpec,
    base_url: str,
    model: str,
    token_ids: Sequence[int],
    on_done: Callable[[], None] | None = None,
    count_tokens: Callable[[str], int] | None = None,
    abort: Callable[[], str | None] | None = None,
    items: Sequence[WorkItem] | None = None,
    on_dispatch: Callable[[], None] | None = None,
) -> LoadResult:
    """Run one scenario; blocks until every request has finished or failed, or ``abort()``
    (polled five times a second) returns a reason to stop.

    ``on_dispatch`` is called once, after the warm-up and before the first measured send (the
    runner polls the engine's /metrics there, so the server window's counters exclude the warm-up).

    ``count_tokens`` counts a response's tokens where the server sent no usage (vLLM counts with
    the tokenizer); without it such a response counts as its number of chunks. ``items`` are the
    scenario's requests, warm-up first (a :mod:`harness.workloads` workload); without them, random
    token-id prompts of exactly ``spec.load.input_tokens`` are drawn with ``spec.seed``.
    """
    if items is None:
        prompts = make_prompts(
            spec.load.warmup_requests + spec.load.num_requests, spec.load.input_tokens, token_ids, spec.seed
        )
        items = [
            WorkItem(prompt=p, input_tokens=len(p), output_tokens=spec.load.output_tokens) for p in prompts
        ]
    client = StreamingClient(base_url, model, temperature=spec.load.temperature, top_p=spec.load.top_p)
    work = list(items)
    loop = event_loop_for(spec.client_uvloop)
    http = http_client_for(client.base_url, spec.client_http)
    if spec.load.client_workers == 1:
        return drive(
            lambda marks: _run(spec, client, work, on_done, marks, abort, on_dispatch),
            count_tokens,
            "set: 1",
            loop,
            http,
        )
    warm, measured = work[: spec.load.warmup_requests], work[spec.load.warmup_requests :]
    warm_cpu_s, chunks, stream_s = _warm_up(spec, client, warm, abort, loop)
    if on_dispatch is not None:
        on_dispatch()
    traced = [w.at_s for w in measured]
    offsets = [t for t in traced if t is not None] if all(t is not None for t in traced) else spec.offsets_s()
    if spec.load.client_workers is not None:
        n, reason = spec.load.client_workers, f"set: {spec.load.client_workers}"
    elif chunks == 0 or stream_s <= 0:
        n, reason = 1, "auto: 1 (no warm-up chunks to calibrate on)"
    else:
        per_stream = chunks / stream_s  # chunks/s of one stream
        if spec.load.request_rate is None and all(t is None for t in traced):
            rate = per_stream * min(spec.load.concurrency or len(measured), len(measured))
        else:
            span = max(offsets[-1], 1e-9) if offsets else 1.0
            rate = min(
                sum(w.output_tokens for w in measured) / span, per_stream * (spec.load.concurrency or 10**9)
            )
        busy = rate * warm_cpu_s / chunks
        n = workers_needed(busy, os.cpu_count() or 1)
        reason = (
            f"auto: warm-up {warm_cpu_s / chunks * 1e6:.0f} us/chunk x predicted {rate:.0f} chunks/s "
            f"= {busy:.2f} cores -> {n}"
        )
    n = max(1, min(n, len(measured) or 1, spec.load.concurrency or n))
    rest = dataclasses.replace(spec, load=spec.load.model_copy(update={"warmup_requests": 0}))
    if n == 1:
        return drive(
            lambda marks: _run(rest, client, measured, on_done, marks, abort),
            count_tokens,
            reason,
            loop,
            http,
        )
    return _run_on_workers(
        rest, client, measured, offsets, n, reason, on_done, count_tokens, abort, loop, http
    )


def _warm_up(
    spec: LoadSpec,
    client: StreamingClient,
    warm: Sequence[WorkItem],
    abort: Callable[[], str | None] | None,
    event_loop: str = "asyncio",
) -> tuple[float, int, float]:
    """Send the warm-up requests on this thread; its CPU seconds, chunks received, stream seconds."""
    if not warm:
        return 0.0, 0, 0.0
    rows = [RequestTiming(-1 - i, 0.0, w.input_tokens) for i, w in enumerate(warm)]

    async def go() -> None:
        http = http_client_for(client.base_url, spec.client_http)
        limit = spec.load.concurrency or 0
        async with open_session(http, client.base_url, limit, spec.load.request_timeout_s) as session:
            sem = asyncio.Semaphore(spec.load.concurrency or 1)

            async def one(r: RequestTiming, w: WorkItem) -> None:
                async with sem:
                    await client.one(session, r, w.prompt, w.output_tokens)

            cpu["0"] = time.thread_time()  # the session's set-up is not a per-chunk cost
            await _abortable(asyncio.gather(*(one(r, w) for r, w in zip(rows, warm, strict=True))), abort, {})
            cpu["1"] = time.thread_time()

    cpu: dict[str, float] = {}
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:  # the measured loop's kind
        runner.run(go())
    chunks = sum(len(r.chunk_s) for r in rows)
    stream_s = sum(r.chunk_s[-1] - r.chunk_s[0] for r in rows if len(r.chunk_s) > 1)
    return cpu.get("1", 0.0) - cpu.get("0", 0.0), chunks, stream_s


def _run_on_workers(
    spec: LoadSpec,
    client: StreamingClient,
    measured: Sequence[WorkItem],
    offsets: Sequence[float],
    n: int,
    reason: str,
    on_done: Callable[[], None] | None,
    count_tokens: Callable[[str], int] | None,
    abort: Callable[[], str | None] | None,
    event_loop: str = "asyncio",
    http: str = "harness",
) -> LoadResult:
    """The measured requests on ``n`` worker processes (:mod:`harness.loadgen.workers`)."""
    from harness.loadgen.workers import WorkerJob, deal, run_workers, split_concurrency

    shares = split_concurrency(spec.load.concurrency, n)
    jobs = [
        WorkerJob(
            worker=w,
            url_base=client.base_url,
            model=client.model,
            temperature=client.temperature,
            top_p=client.top_p,
            request_timeout_s=spec.load.request_timeout_s,
            indices=idx,
            items=[measured[i] for i in idx],
            offsets_s=[float(offsets[i]) for i in idx],
            concurrency=shares[w],
            use_uvloop=event_loop == "uvloop",
            http=http,
        )
        for w, idx in enumerate(deal(len(measured), n))
    ]
    t0 = time.perf_counter()
    out = run_workers(jobs, on_done=on_done, abort=abort)
    for r in out.requests if out.aborted else ():
        if math.isnan(r.send_s):
            r.send_s = r.end_s = out.end_s
            r.error = f"not sent: {out.aborted}"
        elif r.end_s is None or (r.error is None and not r.ok):
            r.end_s = r.end_s if r.end_s is not None else out.end_s
            r.error = f"cancelled: {out.aborted}"
    to_origin(out.requests, out.origin_s, count_tokens)
    return LoadResult(
        requests=out.requests,
        client_cpu_s=sum(h.cpu_s for h in out.health) + out.parent_cpu_s,
        wall_s=time.perf_counter() - t0,
        first_send_s=out.origin_s,
        duration_s=out.end_s - out.origin_s,
        aborted=out.aborted,
        health=summarize(out.health, reason, event_loop, http_client=http),
    )


def drive(
    make: Callable[[dict[str, Any]], Coroutine[Any, Any, list[RequestTiming]]],
    count_tokens: Callable[[str], int] | None,
    workers_reason: str = "set: 1",
    event_loop: str = "asyncio",
    http_client: str = "harness",
) -> LoadResult:
    """Run a load coroutine on a thread of its own with the garbage collector frozen, on
    ``event_loop`` (``asyncio`` or ``uvloop``); ``http_client`` is what the coroutine sends
    with, for the record.

    The coroutine notes in ``marks`` when measurement starts (``cpu0``: the thread's CPU clock;
    ``origin``: the start of dispatch), the scenario's ``duration`` and an ``aborted`` reason.
    Times come back relative to the origin, and output tokens are counted with the tokenizer
    where the server sent no usage.
    """
    box: dict[str, Any] = {}
    marks: dict[str, Any] = {}
    probe = LagProbe()
    marks["probe"] = probe

    async def probed() -> list[RequestTiming]:
        probe.start(asyncio.get_running_loop())
        try:
            return await make(marks)
        finally:
            probe.stop()

    def target() -> None:
        t0 = time.perf_counter()
        frozen = False
        try:
            gc.collect()
            gc.freeze()
            frozen = True
            with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
                box["requests"] = runner.run(probed())
        except BaseException as exc:  # surfaced in the caller's thread
            box["error"] = exc
        finally:
            if frozen:
                gc.unfreeze()
        # the loop thread's CPU and the lag probe's thread's, from the start of measurement
        probe_cpu = probe.thread_cpu_s() - marks.get("probe_cpu0", 0.0)
        box["cpu"] = time.thread_time() - marks.get("cpu0", 0.0) + probe_cpu
        box["wall"] = time.perf_counter() - t0

    th = threading.Thread(target=target, name="harness-loadgen", daemon=True)
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    requests: list[RequestTiming] = box["requests"]
    origin: float | None = marks.get("origin")
    to_origin(requests, origin, count_tokens)
    duration = marks.get("duration")
    health = summarize(
        [WorkerHealth(probe.lags_s, float(box["cpu"]), duration or float(box["wall"]))],
        workers_reason,
        event_loop,
        http_client=http_client,
    )
    return LoadResult(
        requests=requests,
        client_cpu_s=float(box["cpu"]),
        wall_s=float(box["wall"]),
        first_send_s=origin,
        duration_s=marks.get("duration"),
        aborted=marks.get("aborted"),
        health=health,
    )


def event_loop_for(client_uvloop: bool | None) -> str:
    """``uvloop`` or ``asyncio`` for :attr:`LoadSpec.client_uvloop` (None: uvloop if importable)."""
    if client_uvloop is False:
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if client_uvloop:
            raise RuntimeError(
                "client_uvloop is set but uvloop is not installed (the loadgen extra)"
            ) from None
        return "asyncio"
    return "uvloop"


def loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop constructor for ``event_loop`` (None: asyncio's default)."""
    if event_loop == "asyncio":
        return None
    if event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    raise ValueError(f"event_loop: expected asyncio or uvloop, got {event_loop!r}")


def to_origin(
    requests: Sequence[RequestTiming], origin: float | None, count_tokens: Callable[[str], int] | None
) -> None:
    """Put rows on the scenario's timeline (relative to ``origin``) and count tokens without usage."""
    for r in requests:
        if r.error is None and not r.usage_reported:
            r.output_tokens = count_tokens(r.generated_text) if count_tokens else len(r.chunk_s)
        if origin is not None:
            r.send_s -= origin
            r.first_token_s = None if r.first_token_s is None else r.first_token_s - origin
            r.end_s = None if r.end_s is None else r.end_s - origin
            r.chunk_s = [c - origin for c in r.chunk_s]


def write_requests_parquet(path: str, requests: Sequence[RequestTiming]) -> None:
    """The per-request table beside the record (schema documented in harness.record.run_record)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def ms(x: float | None) -> float | None:
        return None if x is None else x * 1000.0

    table = pa.table(
        {
            "index": pa.array([r.index for r in requests], pa.int32()),
            "send_s": pa.array([r.send_s for r in requests], pa.float64()),
            "first_token_s": pa.array([r.first_token_s for r in requests], pa.float64()),
            "end_s": pa.array([r.end_s for r in requests], pa.float64()),
            "ttft_ms": pa.array([ms(r.ttft_s) if r.ok else None for r in requests], pa.float64()),
            "e2el_ms": pa.array([ms(r.e2el_s) for r in requests], pa.float64()),
            "input_tokens": pa.array([r.input_tokens for r in requests], pa.int32()),
            "output_tokens": pa.array([r.output_tokens for r in requests], pa.int32()),
            "itl_ms": pa.array([[g * 1000.0 for g in r.itl_s] for r in requests], pa.list_(pa.float64())),
            "error": pa.array([r.error for r in requests], pa.string()),
            "cached_tokens": pa.array([r.cached_tokens for r in requests], pa.int32()),
            "session": pa.array([r.session for r in requests], pa.int32()),
            "turn": pa.array([r.turn for r in requests], pa.int32()),
        }
    )
    pq.write_table(table, path)


def requests_from_parquet(path: str | Path) -> list[RequestTiming]:
    """The per-request table back as timings (for re-aggregation and tests)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    out = []
    for r in rows:
        first = r["first_token_s"]
        chunks = [first] if first is not None else []
        for gap in r["itl_ms"] or []:
            chunks.append(chunks[-1] + gap / 1000.0)
        out.append(
            RequestTiming(
                index=r["index"],
                send_s=r["send_s"],
                input_tokens=r["input_tokens"],
                first_token_s=first,
                end_s=r["end_s"],
                chunk_s=chunks,
                output_tokens=r["output_tokens"],
                error=r["error"],
                cached_tokens=r.get("cached_tokens"),  # absent from tables written before workloads
                session=r.get("session"),
                turn=r.get("turn"),
            )
        )
    return out
