"""Streaming one request: the SSE reader and the OpenAI-compatible completions client.

What every load generator process shares (the single-loop driver in
:mod:`harness.loadgen.client` and the worker processes in :mod:`harness.loadgen.workers`):
it knows how to send one request and time its chunks, and nothing about schedules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from harness.loadgen.metrics import RequestTiming

_loads: Callable[[bytes], Any] = json.loads
try:  # msgspec (a vLLM dependency) decodes a chunk several times faster than the json module
    import msgspec

    def _fast_loads(data: bytes) -> Any:
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError as exc:  # the same error as the json module's, for the record
            raise json.JSONDecodeError(str(exc), data.decode(errors="replace"), 0) from None

    _loads = _fast_loads
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


class StreamingClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float | None = 0.0,
        top_p: float | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/completions"
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
        session: aiohttp.ClientSession,
        r: RequestTiming,
        prompt: list[int] | str,
        output_tokens: int,
    ) -> RequestTiming:
        """Send one request and fill in ``r``; never raises except for cancellation."""
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
