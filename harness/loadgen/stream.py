"""Streaming one request: the SSE reader and the OpenAI-compatible completions client.

What every load generator process shares (the single-loop driver in
:mod:`harness.loadgen.client` and the worker processes in :mod:`harness.loadgen.workers`):
it knows how to send one request and time its chunks, and nothing about schedules.

Two HTTP clients carry the requests (``HTTP_CLIENTS``): ``harness``, the load generator's own
(:mod:`harness.loadgen.wire`: the request written in the caller's step, each chunk timed in the
read callback; the default), and ``aiohttp`` (what ``vllm bench serve`` uses; kept to compare
against and for servers the own client does not speak to, such as https). docs/timing.md has
the measurements that chose the default.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from harness.loadgen.metrics import RequestTiming
from harness.loadgen.wire import Pool

HTTP_CLIENTS = ("harness", "aiohttp")
DEFAULT_HTTP_CLIENT = "harness"
Session = aiohttp.ClientSession | Pool

_dumps: Callable[[Any], bytes] = lambda obj: json.dumps(obj).encode()  # noqa: E731

_loads: Callable[[bytes], Any] = json.loads
try:  # msgspec (a vLLM dependency) decodes a chunk several times faster than the json module
    import msgspec

    def _fast_loads(data: bytes) -> Any:
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError as exc:  # the same error as the json module's, for the record
            raise json.JSONDecodeError(str(exc), data.decode(errors="replace"), 0) from None

    _loads = _fast_loads
    _dumps = msgspec.json.encode
except ImportError:  # pragma: no cover - the json module is the same parser, slower
    pass


class SseChunks:
    """Splits a byte stream into server-sent-event ``data:`` payloads (comments and other
    fields skipped), tolerant of events cut anywhere across network reads."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out = []
        for raw in lines:
            line = raw.strip()
            if line.startswith(b"data:"):
                out.append(line[5:].strip())
        return out


def http_client_for(base_url: str, choice: str | None) -> str:
    """The HTTP client a run uses: ``choice`` (None: the default, unless the URL is not plain
    http, which only aiohttp speaks)."""
    if choice is None:
        return DEFAULT_HTTP_CLIENT if base_url.startswith("http://") else "aiohttp"
    if choice not in HTTP_CLIENTS:
        raise ValueError(f"http client: expected one of {', '.join(HTTP_CLIENTS)}, got {choice!r}")
    return choice


@contextlib.asynccontextmanager
async def open_session(
    http: str, base_url: str, limit: int, timeout_s: float | None
) -> AsyncIterator[Session]:
    """A session of the ``http`` client for one loop: a :class:`~harness.loadgen.wire.Pool`, or
    an aiohttp session whose connector holds at most ``limit`` connections (0: no limit)."""
    if http == "harness":
        async with Pool(base_url, timeout_s=timeout_s) as pool:
            yield pool
        return
    conn = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=60)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s), connector=conn) as s:
        yield s


async def get_ok(session: Session, url_base: str, path: str) -> None:
    """GET ``path`` and read the answer (a worker warms its code path with /v1/models)."""
    if isinstance(session, Pool):
        await session.request("GET", path)
        return
    async with session.get(f"{url_base.rstrip('/')}{path}") as resp:
        await resp.read()


async def prewarm(session: Session, n: int) -> None:
    """Have ``n`` connections open before the measured requests (the own client only; aiohttp
    connects inside the first requests, as vllm bench serve does)."""
    if isinstance(session, Pool) and n > 0:
        await session.prewarm(n)


class _EventSink:
    """Splits a streamed body into SSE ``data:`` events inside the read callback, stamping and
    handling each one as it is split (one ``perf_counter()`` per event, as on the aiohttp path)."""

    __slots__ = ("r", "buf", "done", "handle")

    def __init__(self, r: RequestTiming, handle: Callable[[RequestTiming, bytes, float], None]) -> None:
        self.r, self.buf, self.done, self.handle = r, b"", False, handle

    def __call__(self, data: bytes) -> None:
        if self.done:
            return
        *lines, self.buf = (self.buf + data if self.buf else data).split(b"\n")
        for raw in lines:
            line = raw.strip()
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    self.done = True
                    return
                self.handle(self.r, payload, time.perf_counter())


class StreamingClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float | None = 0.0,
        top_p: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/v1/completions"
        self.path = "/v1/completions"
        self.model = model
        self.temperature = temperature
        self.top_p = top_p

    def payload(self, prompt: list[int] | str, output_tokens: int) -> dict[str, object]:
        body: dict[str, object] = {
            "model": self.model,
            "prompt": prompt,
            "repetition_penalty": 1.0,
            "max_tokens": output_tokens,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.temperature is not None:  # None: the server's default, as an unset top_p
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        return body

    async def one(
        self,
        session: Session,
        r: RequestTiming,
        prompt: list[int] | str,
        output_tokens: int,
    ) -> RequestTiming:
        """Send one request and fill in ``r``; never raises except for cancellation."""
        if isinstance(session, Pool):
            return await self._one_own(session, r, prompt, output_tokens)
        r.send_s = time.perf_counter()
        try:
            async with session.post(self.url, json=self.payload(prompt, output_tokens)) as resp:
                if resp.status != 200:
                    body = (await resp.text())[:300]
                    r.error = f"HTTP {resp.status}: {body}"
                    r.end_s = time.perf_counter()
                    return r
                sse = SseChunks()
                done = False
                async for raw in resp.content.iter_any():
                    for data in sse.feed(raw):
                        if data == b"[DONE]":
                            done = True
                            break
                        # One stamp per event, when it is handled, as vllm bench serve stamps each
                        # chunk: events that share a read still come out in order, never equal.
                        self._on_event(r, data, time.perf_counter())
                    if done:
                        break
                r.end_s = r.chunk_s[-1] if r.chunk_s else time.perf_counter()
                if r.first_token_s is None:
                    r.error = "no chunk with choices received"
        except Exception as exc:  # noqa: BLE001 - any failure of one request is that request's error
            r.error = f"{type(exc).__name__}: {exc}"[:300]
            r.end_s = time.perf_counter()
        return r

    async def _one_own(
        self, pool: Pool, r: RequestTiming, prompt: list[int] | str, output_tokens: int
    ) -> RequestTiming:
        # Stamped before the body is built, as vllm bench serve stamps before session.post; the
        # request is on the socket before this step yields (a connection has to open first).
        r.send_s = time.perf_counter()
        try:
            body = _dumps(self.payload(prompt, output_tokens))
            status, text = await pool.request("POST", self.path, body, _EventSink(r, self._on_event))
            if status != 200:
                r.error = f"HTTP {status}: {text.decode(errors='replace')[:300]}"
                r.end_s = time.perf_counter()
                return r
            r.end_s = r.chunk_s[-1] if r.chunk_s else time.perf_counter()
            if r.first_token_s is None:
                r.error = "no chunk with choices received"
        except Exception as exc:  # noqa: BLE001 - any failure of one request is that request's error
            r.error = f"{type(exc).__name__}: {exc}"[:300]
            r.end_s = time.perf_counter()
        return r

    @staticmethod
    def _on_event(r: RequestTiming, data: bytes, now: float) -> None:
        event = _loads(data)
        if choices := event.get("choices"):
            if r.first_token_s is None:
                r.first_token_s = now
            r.chunk_s.append(now)
            r.generated_text += choices[0].get("text") or ""
        if usage := event.get("usage"):
            if (done := usage.get("completion_tokens")) is not None:
                r.output_tokens = int(done)
                r.usage_reported = True
            if (pt := usage.get("prompt_tokens")) is not None:
                r.input_tokens = int(pt)
            if (details := usage.get("prompt_tokens_details")) and details.get("cached_tokens") is not None:
                r.cached_tokens = int(details["cached_tokens"])  # --enable-prompt-tokens-details
