"""The load generator's own HTTP/1.1 client: requests written straight onto the socket, streamed
responses parsed and timed in the protocol's ``data_received``.

Why not aiohttp (docs/timing.md, "Why the TTFT error grew with load"): on Python 3.11 aiohttp
writes each request from a task of its own, one loop iteration after the caller stamped the send,
and wakes the reading task once per chunk through a stream reader. At a few hundred streams an
iteration carries hundreds of chunk callbacks, so both cost timing accuracy and CPU. Here a send
is one ``transport.write`` in the caller's step, and each chunk is framed, split into server-sent
events and handed to the request's sink inside the read callback: no task wakes until the
response has ended.

What it speaks: ``http://host:port`` (no TLS, no proxies: the engine is local), keep-alive
connections reused last-in first-out, responses framed by chunked transfer encoding,
``Content-Length`` or connection close. A connection idle longer than ``idle_s`` (below uvicorn's
5 s keep-alive) is not reused, and a reused connection that the server closed before answering
is retried once on a fresh one, so a keep-alive race never becomes a request error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["Pool", "ResponseError", "Sink"]

# A streaming response's body bytes go to a sink (``feed(data)``, called from data_received);
# ``None`` collects the body instead. The sink may raise: the request then fails with its error.
Sink = Callable[[bytes], None]

_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


class ResponseError(Exception):
    """The server's bytes were not a well-formed HTTP/1.1 response."""


class _Stale(Exception):
    """A reused keep-alive connection was closed by the server before any byte of the answer."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection: at most one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.idle_since = 0.0
        self._fut: asyncio.Future[tuple[int, bytes]] | None = None
        self._sink: Sink | None = None
        self._buf = b""
        self._state = _DONE
        self._left = 0
        self._status = 0
        self._body: list[bytes] = []
        self._got_bytes = False
        self.keep_alive = True
        self._fd = -1

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self.open = True
        sock = transport.get_extra_info("socket")
        if sock is not None:  # asyncio sets it for TCP already; uvloop's pseudo-socket takes it too
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(OSError, AttributeError, ValueError):
                self._fd = sock.fileno()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._fut is None or self._fut.done():
            return
        if self._state == _UNTIL_CLOSE:
            self._finish()
        elif not self._got_bytes:
            self._fail(_Stale())
        else:
            self._fail(ConnectionResetError("the server closed the connection before the response ended"))

    def data_received(self, data: bytes) -> None:
        if self._fut is None or self._fut.done():
            return  # bytes after an aborted exchange: the connection is being dropped
        self._got_bytes = True
        try:
            self._parse(data)
        except Exception as exc:  # noqa: BLE001 - a parse or sink error is this request's error
            self._fail(exc)
            self.abort()

    # -- one exchange
    def exchange(self, request: bytes, sink: Sink | None) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self._fut = asyncio.get_running_loop().create_future()
        self._sink, self._buf, self._state, self._body = sink, b"", _HEAD, []
        self._got_bytes, self.keep_alive = False, True
        self._send(request)
        return self._fut

    def _send(self, data: bytes) -> None:
        """Put the request on the socket now. uvloop's ``transport.write`` queues the bytes until
        the end of the loop iteration (after every other callback in it: at a few hundred streams,
        milliseconds); so while the transport has nothing queued (always, one exchange at a time)
        the bytes go straight to the non-blocking socket, and only a remainder to the transport."""
        assert self.transport is not None
        if self._fd >= 0 and not self.transport.get_write_buffer_size():
            try:
                n = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                n = 0  # the transport's write reports the error through connection_lost
            data = data[n:]
        if data:
            self.transport.write(data)

    def abort(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    def _finish(self) -> None:
        self._state = _DONE
        if self._fut is not None and not self._fut.done():
            self._fut.set_result((self._status, b"".join(self._body)))

    def _fail(self, exc: BaseException) -> None:
        self._state = _DONE
        self.keep_alive = False
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(exc)

    def _deliver(self, data: bytes) -> None:
        if self._sink is not None and self._status == 200:
            self._sink(data)
        else:
            self._body.append(data)

    def _parse(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        while True:
            state = self._state
            if state == _DATA:
                if len(buf) < self._left:
                    if buf:
                        self._left -= len(buf)
                        self._deliver(buf)
                    return
                self._deliver(buf[: self._left])
                buf = buf[self._left :]
                self._state = _DATA_END
            elif state == _SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    self._buf = buf
                    return
                try:
                    self._left = int(buf[:end].split(b";", 1)[0], 16)
                except ValueError:
                    raise ResponseError(f"bad chunk size line {buf[:end][:40]!r}") from None
                buf = buf[end + 2 :]
                self._state = _DATA if self._left else _TRAILER
            elif state == _DATA_END:
                if len(buf) < 2:
                    self._buf = buf
                    return
                if buf[:2] != b"\r\n":
                    raise ResponseError("chunk not followed by CRLF")
                buf = buf[2:]
                self._state = _SIZE
            elif state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    self._buf = buf
                    return
                buf = buf[end + 2 :]
                if end == 0:  # the empty line that ends the trailers
                    self._finish()
                    return
            elif state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > 65536:
                        raise ResponseError("response head over 64 KiB")
                    self._buf = buf
                    return
                self._head(buf[:end])
                buf = buf[end + 4 :]
                if self._state == _DONE:
                    self._finish()
                    return
            elif state == _LENGTH:
                if len(buf) < self._left:
                    self._left -= len(buf)
                    if buf:
                        self._deliver(buf)
                    return
                self._deliver(buf[: self._left])
                self._finish()
                return
            elif state == _UNTIL_CLOSE:
                if buf:
                    self._deliver(buf)
                return
            else:
                return  # _DONE: trailing bytes of a finished exchange are ignored

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ResponseError(f"bad status line {lines[0][:60]!r}")
        try:
            self._status = int(parts[1])
        except ValueError:
            raise ResponseError(f"bad status line {lines[0][:60]!r}") from None
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        conn = headers.get(b"connection", b"")
        self.keep_alive = b"close" not in conn and (parts[0] == b"HTTP/1.1" or b"keep-alive" in conn)
        if 100 <= self._status < 200:
            self._state = _HEAD  # an interim response: the real one follows
        elif b"chunked" in headers.get(b"transfer-encoding", b""):
            self._state = _SIZE
        elif (length := headers.get(b"content-length")) is not None:
            self._left = int(length)
            self._state = _LENGTH if self._left else _DONE
        elif self._status in (204, 304):
            self._state = _DONE
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False


class Pool:
    """Keep-alive connections to one ``http://host:port`` server, opened as needed (no limit of
    its own: the caller's semaphore bounds them, as the aiohttp connector's limit did)."""

    def __init__(self, base_url: str, timeout_s: float | None = None, idle_s: float = 4.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the harness HTTP client speaks http://host:port only, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()
        self.connects = 0  # connections opened (a test and a benchmark read it)
        self.retries = 0  # requests sent again after a reused connection was found closed
        authority = self.host if parts.port is None else f"{self.host}:{self.port}"
        self._host_header = f"Host: {authority}\r\n".encode()

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for c in list(self._all):
            c.close()
        self._all.clear()
        self._idle.clear()

    def request_bytes(self, method: str, path: str, body: bytes | None) -> bytes:
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self._host_header
        if body is None:
            return head + b"User-Agent: harness\r\n\r\n"
        return (
            head
            + b"User-Agent: harness\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def request(
        self, method: str, path: str, body: bytes | None = None, sink: Sink | None = None
    ) -> tuple[int, bytes]:
        """Send one request and wait for its whole response: (status, body). A 200's body goes
        to ``sink`` when one is given (the returned body is then empty). Raises on a connection
        error, a malformed response or the timeout (``TimeoutError``)."""
        data = self.request_bytes(method, path, body)
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        for attempt in (0, 1):
            conn, reused = self._reuse()
            if conn is None:
                conn = await self._connect(deadline)
            try:
                fut = conn.exchange(data, sink)
                if deadline is None:
                    result = await fut
                else:
                    handle = loop.call_at(deadline, _expire, fut)
                    try:
                        result = await fut
                    finally:
                        handle.cancel()
            except _Stale:
                self._drop(conn)
                if reused and attempt == 0:
                    self.retries += 1
                    continue
                raise ConnectionResetError("the server closed the connection without answering") from None
            except BaseException:  # cancelled, timed out or failed mid-response: not reusable
                conn.abort()
                self._drop(conn)
                raise
            if conn.keep_alive and conn.open:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.close()
                self._drop(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def prewarm(self, n: int) -> None:
        """Open connections until ``n`` are idle, before the measured requests: a TTFT then never
        carries a TCP handshake (and the loop's connect callbacks) that a running client with a
        warm pool would not pay. Connections that fail to open are left to the requests."""
        now = time.monotonic()
        fresh = [c for c in self._idle if c.open and now - c.idle_since < self.idle_s]
        need = n - len(fresh)
        if need <= 0:
            return
        opened = await asyncio.gather(*(self._connect(None) for _ in range(need)), return_exceptions=True)
        now = time.monotonic()
        for c in opened:
            if isinstance(c, _Conn):
                c.idle_since = now
                self._idle.append(c)

    def _reuse(self) -> tuple[_Conn | None, bool]:
        now = time.monotonic()
        while self._idle:
            c = self._idle.pop()
            if c.open and now - c.idle_since < self.idle_s:
                return c, True
            c.close()
            self._drop(c)
        return None, False

    async def _connect(self, deadline: float | None) -> _Conn:
        loop = asyncio.get_running_loop()
        make = loop.create_connection(_Conn, self.host, self.port)
        if deadline is None:
            _, conn = await make
        else:
            _, conn = await asyncio.wait_for(make, max(deadline - loop.time(), 0.0))
        self._all.add(conn)
        self.connects += 1
        return conn

    def _drop(self, conn: _Conn) -> None:
        self._all.discard(conn)


def _expire(fut: asyncio.Future[tuple[int, bytes]]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("request timed out"))
