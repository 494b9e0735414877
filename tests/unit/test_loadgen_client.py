"""The streaming client against hand-made SSE streams (vllm bench serve's definitions).

A small aiohttp server on 127.0.0.1 plays scripted responses: each script is a list of
``(delay_s, bytes)`` writes, or an HTTP status, chosen by the request's first prompt token.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from harness.loadgen.client import LoadShape, LoadSpec, SseChunks, run_load
from harness.loadgen.metrics import aggregate

Script = list[tuple[float, bytes]] | int


def ev(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunk(text: str) -> bytes:
    return ev({"id": "x", "object": "text_completion", "choices": [{"index": 0, "text": text}]})


def usage(prompt: int, completion: int) -> bytes:
    return ev({"id": "x", "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})


DONE = b"data: [DONE]\n\n"


@dataclass
class FakeServer:
    scripts: dict[int, Script]
    default: Script = field(default_factory=lambda: [(0.0, chunk("a")), (0.0, usage(4, 1)), (0.0, DONE)])
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        script = self.scripts.get(body["prompt"][0], self.default)
        if isinstance(script, int):
            return web.Response(status=script, text="scripted failure")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for delay, data in script:
                if delay:
                    await asyncio.sleep(delay)
                if data == b"<close>":
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                await resp.write(data)
            await resp.write_eof()
            return resp
        finally:
            self.in_flight -= 1


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    loops: list[tuple[asyncio.AbstractEventLoop, web.AppRunner, threading.Thread]] = []

    def start(scripts: dict[int, Script], **kw: Any) -> FakeServer:
        fake = FakeServer(scripts, **kw)
        app = web.Application()
        app.router.add_post("/v1/completions", fake.handle)
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        fake.base_url = f"http://127.0.0.1:{port}"
        th = threading.Thread(target=loop.run_forever, daemon=True)
        th.start()
        loops.append((loop, runner, th))
        return fake

    yield start
    for loop, runner, th in loops:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        th.join(5)


def spec(n: int = 1, concurrency: int | None = 1, **kw: Any) -> LoadSpec:
    base: dict[str, Any] = dict(
        input_tokens=4,
        output_tokens=3,
        num_requests=n,
        concurrency=concurrency,
        request_rate=None,
        warmup_requests=0,
        client_workers=1,
    )
    fields = base | kw
    seed = fields.pop("seed", 0)
    return LoadSpec(load=LoadShape(**fields), seed=seed)


def test_empty_text_chunks_count_for_ttft_itl_and_end(serve: Callable[..., FakeServer]) -> None:
    # vLLM's server sends empty-text chunks for partial UTF-8 bytes and skipped special tokens.
    script: Script = [
        (0.05, chunk("")),
        (0.05, chunk("é")),
        (0.05, chunk("")),
        (0.0, usage(4, 3)),
        (0.0, DONE),
    ]
    fake = serve({7: script})
    res = run_load(spec(), fake.base_url, "m", [7])
    (r,) = res.requests
    assert r.ok and r.error is None
    assert len(r.chunk_s) == 3 and len(r.itl_s) == 2
    assert r.first_token_s == r.chunk_s[0] and r.end_s == r.chunk_s[-1]
    assert r.ttft_s is not None and r.ttft_s >= 0.05
    assert r.output_tokens == 3 and r.usage_reported and r.input_tokens == 4
    assert r.generated_text == "é"
    m = aggregate(res.requests, duration_s=res.duration_s)
    assert m["completed"] == 1 and m["mean_tpot_ms"] == pytest.approx((r.e2el_s - r.ttft_s) / 2 * 1000)


def test_missing_usage_counts_tokens_with_the_tokenizer(serve: Callable[..., FakeServer]) -> None:
    fake = serve({7: [(0.0, chunk("ab")), (0.0, chunk("cd ef")), (0.0, DONE)]})
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return len(text.split())

    (r,) = run_load(spec(), fake.base_url, "m", [7], count_tokens=count).requests
    assert r.ok and not r.usage_reported
    assert counted == ["abcd ef"] and r.output_tokens == 2
    # Without a tokenizer, each chunk counts as one token.
    (r2,) = run_load(spec(), fake.base_url, "m", [7]).requests
    assert r2.output_tokens == 2


def test_one_chunk_output(serve: Callable[..., FakeServer]) -> None:
    fake = serve({7: [(0.02, chunk("all three tokens")), (0.0, usage(4, 3)), (0.0, DONE)]})
    res = run_load(spec(), fake.base_url, "m", [7])
    (r,) = res.requests
    assert r.ok and r.itl_s == [] and r.ttft_s == r.e2el_s
    m = aggregate(res.requests, duration_s=res.duration_s)
    assert m["mean_itl_ms"] is None
    assert m["mean_tpot_ms"] == pytest.approx(0.0)  # (e2el - ttft) / (3 - 1)
    assert m["total_output_tokens"] == 3


def test_failures_are_per_request_errors(serve: Callable[..., FakeServer]) -> None:
    fake = serve(
        {
            1: 503,
            2: [(0.0, usage(4, 0)), (0.0, DONE)],  # HTTP 200 but no chunk with choices
            3: [(0.0, chunk("a")), (0.0, b"<close>")],  # connection dropped mid-stream
            4: [(0.0, b"data: {not json\n\n")],
        }
    )
    seen: dict[int, str | None] = {}
    for first in (1, 2, 3, 4, 5):
        (r,) = run_load(spec(), fake.base_url, "m", [first]).requests
        seen[first] = r.error
        assert r.end_s is not None
    assert seen[1] is not None and seen[1].startswith("HTTP 503")
    assert seen[2] == "no chunk with choices received"
    assert seen[3] is not None and seen[4] is not None and "JSONDecodeError" in seen[4]
    assert seen[5] is None


def test_events_split_across_reads_and_comments() -> None:
    sse = SseChunks()
    whole = chunk("x") + b": ping\n\n" + usage(1, 1) + DONE
    out: list[bytes] = []
    for i in range(0, len(whole), 7):
        out += sse.feed(whole[i : i + 7])
    assert [json.loads(o)["choices"] for o in out[:2]] == [[{"index": 0, "text": "x"}], []]
    assert out[2] == b"[DONE]" and len(out) == 3


def test_request_body_matches_vllm_bench_serve(serve: Callable[..., FakeServer]) -> None:
    fake = serve({})
    run_load(spec(), fake.base_url, "served", [7])
    body = fake.bodies[-1]
    assert body["prompt"] == [7, 7, 7, 7] and body["max_tokens"] == 3 and body["model"] == "served"
    assert "min_tokens" not in body and "top_p" not in body
    assert body["ignore_eos"] is True and body["repetition_penalty"] == 1.0
    assert body["temperature"] == 0.0  # greedy unless the scenario says otherwise
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    run_load(spec(temperature=0.7, top_p=0.9), fake.base_url, "served", [7])
    assert fake.bodies[-1]["temperature"] == 0.7 and fake.bodies[-1]["top_p"] == 0.9


def test_concurrency_caps_requests_in_flight_and_duration_spans_the_gather(
    serve: Callable[..., FakeServer],
) -> None:
    slow: Script = [(0.1, chunk("a")), (0.1, chunk("b")), (0.0, usage(4, 2)), (0.0, DONE)]
    fake = serve({7: slow})
    res = run_load(spec(n=6, concurrency=2), fake.base_url, "m", [7])
    assert fake.max_in_flight == 2
    assert all(r.ok for r in res.requests)
    assert res.duration_s is not None
    assert res.duration_s >= max(r.end_s for r in res.requests if r.end_s is not None)
    assert min(r.send_s for r in res.requests) >= 0.0  # times count from the start of dispatch
    assert res.duration_s >= 0.6  # three waves of two 0.2 s requests


def test_open_loop_sends_on_the_schedule(serve: Callable[..., FakeServer]) -> None:
    fake = serve({})
    s = spec(n=8, concurrency=None, request_rate=20.0, seed=3)
    res = run_load(s, fake.base_url, "m", [7])
    sends = sorted(r.send_s for r in res.requests)
    planned = s.offsets_s()
    assert planned[0] > 0  # vLLM's first delay
    assert all(
        p <= t < p + 0.25 for t, p in zip(sends, planned, strict=True)
    )  # never early, late only by lag


def test_request_timeout_fails_that_request_only(serve: Callable[..., FakeServer]) -> None:
    fake = serve({8: [(2.0, chunk("late")), (0.0, DONE)]})
    res = run_load(spec(n=1, request_timeout_s=0.3), fake.base_url, "m", [8])
    assert res.requests[0].error is not None and "Timeout" in res.requests[0].error
    res = run_load(spec(n=1, request_timeout_s=0.3), fake.base_url, "m", [7])
    assert res.requests[0].ok


def test_abort_keeps_finished_requests_and_fails_the_rest(serve: Callable[..., FakeServer]) -> None:
    fake = serve({8: [(5.0, chunk("late")), (0.0, DONE)]})
    t0 = time.monotonic()

    def abort() -> str | None:
        return "engine hung" if time.monotonic() - t0 > 0.5 else None

    # prompts alternate between ids 7 (fast) and 8 (hangs)
    res = run_load(spec(n=6, concurrency=6, input_tokens=1), fake.base_url, "m", [7, 8], abort=abort)
    assert time.monotonic() - t0 < 4.0  # the hanging requests would take 5 s
    assert res.aborted == "engine hung"
    ok = [r for r in res.requests if r.ok]
    bad = [r for r in res.requests if not r.ok]
    assert ok and bad and len(ok) + len(bad) == 6
    assert all(r.error == "cancelled: engine hung" for r in bad)
    m = aggregate(res.requests, duration_s=res.duration_s)
    assert m["completed"] == len(ok) and m["failed"] == len(bad)
