"""Multi-turn load: sessions that send their whole history plus a new user message each turn.

Concurrency counts sessions (a closed loop keeps that many conversations going); with a request
rate, sessions start on the arrival schedule instead. Inside a session the turns go one after
another: a turn is sent when the previous reply has finished streaming and ``think_time_s`` has
passed. Each turn's prompt is :func:`harness.workloads.build.render_turn` of the history with the
model's actual replies, so turn k's prompt begins with turn k-1's prompt and reply, as a chat
client's would, and a prefix cache can serve it.

Every turn is one row of the per-request table (``session``, ``turn``); the first
``spec.load.warmup_requests`` sessions are warm-up and are not measured.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.loadgen.client import LoadResult, LoadSpec, StreamingClient, _abortable, drive, event_loop_for
from harness.loadgen.metrics import RequestTiming
from harness.loadgen.stream import http_client_for, open_session
from harness.workloads.build import Session, render_turn


async def _run_sessions(
    spec: LoadSpec,
    client: StreamingClient,
    sessions: Sequence[Session],
    think_time_s: float,
    count_tokens: Callable[[str], int] | None,
    on_done: Callable[[], None] | None,
    marks: dict[str, Any],
    abort: Callable[[], str | None] | None,
) -> list[RequestTiming]:
    limit = spec.load.concurrency or 0
    rows: list[RequestTiming] = []
    kind = http_client_for(client.base_url, spec.client_http)
    async with open_session(kind, client.base_url, limit, spec.load.request_timeout_s) as http:

        async def converse(s: Session, measured: bool) -> None:
            history: list[tuple[str, str]] = []
            for k, (message, out) in enumerate(zip(s.user_messages, s.output_tokens, strict=True), 1):
                if k > 1 and think_time_s > 0:
                    await asyncio.sleep(think_time_s)
                prompt = render_turn(history, message)
                r = RequestTiming(
                    len(rows) if measured else -1, math.nan, count_tokens(prompt) if count_tokens else 0
                )
                r.session, r.turn = s.index, k
                if measured:
                    rows.append(r)
                await client.one(http, r, prompt, out)
                if measured and on_done is not None:
                    on_done()
                if r.error is not None:
                    return  # a session cannot go on without its reply
                history.append((message, r.generated_text))

        warm = sessions[: spec.load.warmup_requests]
        measured = sessions[spec.load.warmup_requests :]
        warm_sem = asyncio.Semaphore(spec.load.concurrency or 1)

        async def warm_one(s: Session) -> None:
            async with warm_sem:
                await converse(s, measured=False)

        await _abortable(asyncio.gather(*(warm_one(s) for s in warm)), abort, marks)
        if marks.get("aborted"):
            return []
        sem = asyncio.Semaphore(spec.load.concurrency) if spec.load.concurrency else None
        offsets = spec.offsets_s()

        async def one_session(s: Session) -> None:
            if sem is None:
                await converse(s, measured=True)
            else:
                async with sem:
                    await converse(s, measured=True)

        async def dispatch() -> None:
            tasks = []
            for s, offset in zip(measured, offsets, strict=True):
                wait = origin + offset - time.perf_counter()
                if offset > 0 and wait > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(one_session(s)))
            await asyncio.gather(*tasks)

        marks["cpu0"] = time.thread_time()
        origin = time.perf_counter()
        marks["origin"] = origin
        await _abortable(dispatch(), abort, marks)
        marks["duration"] = time.perf_counter() - origin
        for r in rows if marks.get("aborted") else ():
            if r.end_s is None or (r.error is None and not r.ok):
                r.end_s = r.end_s if r.end_s is not None else time.perf_counter()
                r.error = f"cancelled: {marks.get('aborted')}"
    return rows


def run_sessions(
    spec: LoadSpec,
    base_url: str,
    model: str,
    sessions: Sequence[Session],
    think_time_s: float = 0.0,
    on_done: Callable[[], None] | None = None,
    count_tokens: Callable[[str], int] | None = None,
    abort: Callable[[], str | None] | None = None,
) -> LoadResult:
    """Run a multi-turn scenario; ``spec.load.num_requests`` and ``spec.load.concurrency`` count sessions."""
    client = StreamingClient(base_url, model, temperature=spec.load.temperature, top_p=spec.load.top_p)
    return drive(
        lambda marks: _run_sessions(
            spec, client, sessions, think_time_s, count_tokens, on_done, marks, abort
        ),
        count_tokens,
        event_loop=event_loop_for(spec.client_uvloop),
        http_client=http_client_for(base_url, spec.client_http),
    )
