"""A counting relay in front of the engine: the evaluation's traffic, told apart from the load's.

While a load point runs, lm-eval (and the invariance probe) talk to the engine through this relay
on 127.0.0.1; the load generator talks to the engine directly. The relay forwards each request
unchanged and counts requests, prompts, the engine's reported token usage and send times, so the
record can say how much evaluation traffic ran beside the load, and the load generator's own
latency figures never include it. It adds one loopback hop to the evaluation's requests only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web


@dataclass
class RelayCounts:
    """What went through the relay; send times on ``time.monotonic()`` seconds."""

    send_s: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)  # (send, end) of each answered request
    prompts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_missing: int = 0
    failed: int = 0


def _prompt_count(body: bytes) -> int:
    try:
        prompt = json.loads(body).get("prompt")
    except (ValueError, AttributeError):
        return 0
    if isinstance(prompt, list) and prompt and all(isinstance(p, list | str) for p in prompt):
        return len(prompt)
    return 1 if prompt is not None else 0


class CountingRelay:
    """``with CountingRelay(engine_url) as relay:`` send to ``relay.base_url``, read ``relay.counts``."""

    def __init__(self, target_url: str, timeout_s: float = 6 * 60 * 60) -> None:
        self.target = target_url.rstrip("/")
        self.timeout_s = timeout_s
        self.counts = RelayCounts()
        self.first_request = threading.Event()
        self.base_url = ""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> CountingRelay:
        self._thread = threading.Thread(target=self._serve, name="eval-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the evaluation relay did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner: web.AppRunner | None = None
        session: aiohttp.ClientSession | None = None
        try:
            session = loop.run_until_complete(self._session())
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/{tail:.*}", self._handler(session))
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            self.base_url = f"http://127.0.0.1:{port}"
        except BaseException as exc:  # noqa: BLE001 - handed to __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(session.close())
            loop.close()

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s), connector=aiohttp.TCPConnector(limit=0)
        )

    def _handler(self, session: aiohttp.ClientSession) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            sent = time.monotonic()
            with self._lock:
                self.counts.send_s.append(sent)
                self.counts.prompts += _prompt_count(body)
            self.first_request.set()
            headers = {
                k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")
            }
            async with session.request(
                request.method, self.target + request.path_qs, data=body or None, headers=headers
            ) as resp:
                data = await resp.read()
                status, ctype = resp.status, resp.headers.get("Content-Type", "application/json")
            with self._lock:
                self.counts.spans.append((sent, time.monotonic()))
            self._count_usage(status, data)
            return web.Response(body=data, status=status, headers={"Content-Type": ctype})

        return handle

    def _count_usage(self, status: int, data: bytes) -> None:
        usage = None
        with contextlib.suppress(ValueError, AttributeError):
            usage = json.loads(data).get("usage")
        with self._lock:
            if status >= 400:
                self.counts.failed += 1
            if isinstance(usage, dict):
                self.counts.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.counts.completion_tokens += int(usage.get("completion_tokens") or 0)
            else:
                self.counts.usage_missing += 1
