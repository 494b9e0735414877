"""The load generator's own HTTP/1.1 client (harness.loadgen.wire) against scripted raw servers.

Each test server is an asyncio server on 127.0.0.1 that answers every request with bytes the
test chose, written in pieces cut anywhere (inside the status line, a chunk-size line, an SSE
event, the final CRLF), so the parser's every state is crossed by a read boundary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.loadgen.metrics import RequestTiming
from harness.loadgen.stream import StreamingClient, _EventSink
from harness.loadgen.wire import Pool, ResponseError

Answer = Callable[[bytes], list[bytes] | None]  # request -> the writes of its answer (None: hang up)


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def ev(obj: dict[str, Any] | str) -> bytes:
    return b"data: " + (obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()) + b"\n\n"


def tok(text: str) -> bytes:
    return ev({"choices": [{"index": 0, "text": text}]})


class Scripted(asyncio.Protocol):
    def __init__(self, answer: Answer, log: list[bytes], close_after: bool) -> None:
        self.answer, self.log, self.close_after = answer, log, close_after
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            req, self.buf = head + b"\r\n\r\n" + rest[:length], rest[length:]
            self.log.append(req)
            asyncio.get_running_loop().create_task(self.play(self.answer(req)))

    async def play(self, writes: list[bytes] | None) -> None:
        if writes is None:
            self.tr.close()
            return
        for w in writes:
            self.tr.write(w)  # type: ignore[attr-defined]
            await asyncio.sleep(0.002)  # separate reads on the client
        if self.close_after:
            self.tr.close()


async def serve(answer: Answer, close_after: bool = False) -> tuple[asyncio.AbstractServer, str, list[bytes]]:
    log: list[bytes] = []
    srv = await asyncio.get_running_loop().create_server(
        lambda: Scripted(answer, log, close_after), "127.0.0.1", 0
    )
    port = srv.sockets[0].getsockname()[1]
    return srv, f"http://127.0.0.1:{port}", log


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 10_000])
def test_chunked_sse_split_anywhere_gives_every_event_once_in_order(piece: int) -> None:
    body = chunked(
        tok("a"), tok("b") + tok("c"), ev({"choices": [], "usage": {"completion_tokens": 3}}), ev("[DONE]")
    )

    async def go() -> RequestTiming:
        srv, url, log = await serve(lambda req: cut(HEAD_CHUNKED + body, piece))
        async with srv, Pool(url, timeout_s=10) as pool:
            r = RequestTiming(0, 0.0, 4)
            await StreamingClient(url, "m").one(pool, r, [1, 2, 3, 4], 3)
        assert log[0].startswith(b"POST /v1/completions HTTP/1.1\r\n")
        sent = json.loads(log[0].partition(b"\r\n\r\n")[2])
        assert sent["max_tokens"] == 3 and sent["stream"] is True and sent["prompt"] == [1, 2, 3, 4]
        return r

    r = run(go())
    assert r.error is None and r.ok
    assert r.generated_text == "abc" and r.output_tokens == 3 and r.usage_reported
    assert len(r.chunk_s) == 3 and r.chunk_s == sorted(r.chunk_s)
    assert len(set(r.chunk_s)) == 3  # events of one read are stamped one by one, never equal
    assert r.end_s == r.chunk_s[-1]


def test_keep_alive_connections_are_reused_and_prewarm_opens_them_before_the_requests() -> None:
    answer = lambda req: [HEAD_CHUNKED, chunked(tok("x"), ev("[DONE]"))]  # noqa: E731

    async def go() -> tuple[int, int]:
        srv, url, _ = await serve(answer)
        async with srv, Pool(url, timeout_s=10) as pool:
            await pool.prewarm(3)
            assert pool.connects == 3
            client = StreamingClient(url, "m")
            sem = asyncio.Semaphore(3)

            async def one(i: int) -> None:
                async with sem:
                    r = await client.one(pool, RequestTiming(i, 0.0, 1), [1], 1)
                    assert r.ok, r.error

            await asyncio.gather(*(one(i) for i in range(12)))
            return pool.connects, pool.retries

    connects, retries = run(go())
    assert connects == 3 and retries == 0


def test_content_length_and_close_delimited_bodies_and_http_errors() -> None:
    def answer(req: bytes) -> list[bytes]:
        if b"GET /len" in req:
            return [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhel", b"lo"]
        return [b"HTTP/1.0 503 Service Unavailable\r\n\r\nover", b"loaded"]

    async def go() -> tuple[Any, ...]:
        srv, url, _ = await serve(answer, close_after=True)
        async with srv, Pool(url, timeout_s=10) as pool:
            a = await pool.request("GET", "/len")
            b = await pool.request("GET", "/close")
            r = await StreamingClient(url, "m").one(pool, RequestTiming(0, 0.0, 1), [1], 1)
            return a, b, r

    a, b, r = run(go())
    assert a == (200, b"hello") and b == (503, b"overloaded")
    assert r.error == "HTTP 503: overloaded" and not r.ok


def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one() -> None:
    seen: list[bytes] = []

    def answer(req: bytes) -> list[bytes] | None:
        seen.append(req)
        if len(seen) == 2:  # the server closes the kept-alive connection as the request arrives
            return None
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]

    async def go() -> tuple[int, int, tuple[int, bytes]]:
        srv, url, _ = await serve(answer)
        async with srv, Pool(url, timeout_s=10) as pool:
            await pool.request("GET", "/a")
            got = await pool.request("GET", "/b")  # reuses the first connection, then retries
            return pool.connects, pool.retries, got

    connects, retries, got = run(go())
    assert got == (200, b"ok") and connects == 2 and retries == 1 and len(seen) == 3


def test_timeout_and_a_truncated_response_become_the_requests_errors() -> None:
    def answer(req: bytes) -> list[bytes]:
        if b"slow" in req:
            return [HEAD_CHUNKED, chunked(tok("a"))[:8]]  # then silence
        return [HEAD_CHUNKED, b"5\r\nabc"]  # then the connection closes mid-chunk

    async def go() -> tuple[BaseException, BaseException]:
        hang, hang_url, _ = await serve(answer)
        srv, url, _ = await serve(answer, close_after=True)
        async with hang, Pool(hang_url, timeout_s=0.3) as pool:
            with pytest.raises(TimeoutError) as slow:
                await pool.request("POST", "/slow", b"{}", sink=lambda d: None)
        async with srv, Pool(url, timeout_s=5) as pool:
            with pytest.raises(ConnectionResetError) as cut_short:
                await pool.request("POST", "/cut", b"{}", sink=lambda d: None)
            return slow.value, cut_short.value

    slow, cut_short = run(go())
    assert "timed out" in str(slow) and "before the response ended" in str(cut_short)


def test_malformed_responses_are_rejected_with_what_was_wrong() -> None:
    answers = {
        b"/status": [b"SPDY/3 200 OK\r\n\r\n"],
        b"/size": [HEAD_CHUNKED, b"zz\r\n"],
    }

    async def go() -> list[str]:
        srv, url, _ = await serve(lambda req: answers[req.split(b" ")[1]], close_after=True)
        out = []
        async with srv, Pool(url, timeout_s=5) as pool:
            for path in ("/status", "/size"):
                with pytest.raises(ResponseError) as e:
                    await pool.request("POST", path, b"{}", sink=lambda d: None)
                out.append(str(e.value))
        return out

    status, size = run(go())
    assert "bad status line" in status and "bad chunk size line" in size


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="http://host:port only"):
        Pool("https://example.invalid")


def test_event_sink_splits_events_across_feeds_and_stops_at_done() -> None:
    seen: list[bytes] = []
    sink = _EventSink(RequestTiming(0, 0.0, 1), lambda r, data, now: seen.append(data))
    for piece in cut(b': comment\n\ndata: {"a":1}\r\n\r\ndata:{"b":2}\n\ndata: [DONE]\n\ndata: late\n\n', 5):
        sink(piece)
    assert seen == [b'{"a":1}', b'{"b":2}'] and sink.done
