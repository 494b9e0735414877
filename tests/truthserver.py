"""A ground-truth streaming server: OpenAI-compatible completions whose chunks leave at known times.

Every streamed request gets a schedule drawn from its own seeded generator: the first chunk is
due ``TTFT`` after the request was read, each next one ``ITL`` after the previous *scheduled*
time (lateness never accumulates). TTFT and ITL are drawn from a distribution (``const``,
``uniform`` over mean ± jitter, ``exp`` shifted so that its minimum is mean − jitter). After
each chunk is handed to the kernel (``transport.write`` returned with nothing left in the
buffer) the server notes ``time.monotonic()``; that clock is the host's ``CLOCK_MONOTONIC``, the
same as ``time.perf_counter()`` in a client on this host, so a client's TTFT/ITL/E2EL can be
compared with what the server really did. When the request ends one JSON line is appended to
``<truth-dir>/truth-<pid>.jsonl``: ``arrival_s`` (when the kernel received the request's last
bytes: the socket's ``SO_TIMESTAMPNS`` receive timestamp, put on the monotonic clock; null where
the kernel gives none), ``recv_s`` (when the server's loop had read and parsed it: later than
the arrival by the server's own loop lag, which a real server's TTFT includes too), ``sched_s``
and ``sent_s`` (per chunk), ``buffered`` (chunks that did not leave at once: the client read too slowly),
``prompt_tokens``, ``max_tokens``, ``path``.

What it models of vLLM's server: the SSE chunk shapes of ``/v1/completions`` and
``/v1/chat/completions`` (one token per chunk, ``finish_reason`` on the last, a usage-only chunk
when ``stream_options.include_usage``, then ``[DONE]``), ``/v1/models``, ``/health``, keep-alive
HTTP/1.1 with chunked transfer encoding. What it does not: batching, queueing, real tokens (each
chunk's text is `` a``), errors, non-streaming bodies beyond a minimal answer.

Cheap by construction: the HTTP parser is a few lines, chunk bytes are encoded once, each chunk
is one ``loop.call_at`` callback, sockets are read with ``recvmsg`` (for the receive timestamp)
and written with ``send`` from the loop's reader and writer callbacks, no transports; ``--processes N`` forks N copies sharing the port through
``SO_REUSEPORT``. Loopback only.

    python -m tests.truthserver --port 8199 --truth-dir /tmp/truth --ttft-ms 20 --itl-ms 10 --itl-jitter-ms 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Dist = str  # "const" | "uniform" | "exp"


@dataclass(frozen=True)
class Timing:
    """The server's timing model, milliseconds."""

    ttft_ms: float = 20.0
    ttft_jitter_ms: float = 0.0
    itl_ms: float = 10.0
    itl_jitter_ms: float = 0.0
    dist: Dist = "uniform"
    seed: int = 0

    def draw(self, rng: random.Random, mean_ms: float, jitter_ms: float) -> float:
        if jitter_ms <= 0 or self.dist == "const":
            return mean_ms
        if self.dist == "uniform":
            return rng.uniform(mean_ms - jitter_ms, mean_ms + jitter_ms)
        if self.dist == "exp":  # minimum mean − jitter, mean kept
            return (mean_ms - jitter_ms) + rng.expovariate(1.0 / jitter_ms)
        raise ValueError(f"unknown distribution {self.dist!r}")

    def min_itl_ms(self) -> float:
        """The smallest gap the schedule can hold (the bound "bunching" is judged against)."""
        return self.itl_ms if self.dist == "const" else max(self.itl_ms - self.itl_jitter_ms, 0.0)

    def schedule_s(self, key: int, n_tokens: int, ttft_ms: float | None, itl_ms: float | None) -> list[float]:
        """Offsets of each chunk after the request was read, seconds; drawn from ``key``'s own seed."""
        rng = random.Random(self.seed * 1_000_003 + key)
        t = self.draw(rng, self.ttft_ms if ttft_ms is None else ttft_ms, self.ttft_jitter_ms)
        out = [t / 1000.0]
        for _ in range(n_tokens - 1):
            t += self.draw(rng, self.itl_ms if itl_ms is None else itl_ms, self.itl_jitter_ms)
            out.append(t / 1000.0)
        return out


def _chunk(payload: bytes) -> bytes:
    """One HTTP chunk (chunked transfer encoding) holding ``payload``."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(obj: Any) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


_HEAD_SSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
_DONE = _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _json_response(obj: Any, status: str = "200 OK") -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status.encode(),
        len(body),
        body,
    )


# Linux (asm-generic/socket.h): ask for, and receive as SCM_TIMESTAMPNS, a struct timespec on
# CLOCK_REALTIME per read; the socket module does not name it.
SO_TIMESTAMPNS = 35


class RawTransport:
    """A non-blocking TCP socket driven by the loop's reader and writer callbacks: the parts of
    an asyncio transport the protocol uses, plus the kernel's receive timestamp of each read."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, proto: TruthProtocol) -> None:
        self.sock, self.loop, self.proto = sock, loop, proto
        self.fd = sock.fileno()
        self.out = bytearray()
        self.closed = False
        self.stamps = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            self.stamps = False
        proto.connection_made(self)
        loop.add_reader(self.fd, self._readable)

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def _readable(self) -> None:
        try:
            data, anc, _, _ = self.sock.recvmsg(65536, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, anc = b"", []
        if not data:
            self.close()
            return
        arrival = None
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = struct.unpack("qq", raw[:16])
                # CLOCK_REALTIME -> CLOCK_MONOTONIC, offset read now (NTP moves it by µs per s at most)
                arrival = sec + nsec * 1e-9 - (time.time() - time.monotonic())
        self.proto.arrival_s = arrival
        self.proto.data_received(data)

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.out:
            self.out += data
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self.close()
            return
        if n < len(data):
            self.out += data[n:]
            self.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            n = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        del self.out[:n]
        if not self.out:
            self.loop.remove_writer(self.fd)

    def get_write_buffer_size(self) -> int:
        return len(self.out)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.out:
            self.loop.remove_writer(self.fd)
        self.sock.close()
        self.proto.connection_lost(None)


@dataclass
class Stream:
    """One streamed request in flight."""

    key: int
    path: str
    recv_s: float
    arrival_s: float | None
    prompt_tokens: int
    max_tokens: int
    sched_s: list[float]
    sent_s: list[float] = field(default_factory=list)
    buffered: int = 0


class TruthProtocol:
    def __init__(self, server: TruthServer) -> None:
        self.srv = server
        self.buf = b""
        self.transport: RawTransport | None = None
        self.busy = False  # a streamed answer is going out; pipelined requests wait
        self.closed = False
        self.arrival_s: float | None = None  # kernel receive time of the latest read

    def connection_made(self, transport: RawTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._parse()

    def _parse(self) -> None:
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            method, path = (head[0].split(" ") + ["", ""])[:2]
            self._handle(method, path.split("?")[0], body, time.monotonic(), self.arrival_s)

    def _handle(self, method: str, path: str, body: bytes, recv_s: float, arrival_s: float | None) -> None:
        assert self.transport is not None
        if method == "GET" and path in ("/health", "/ping"):
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        elif method == "GET" and path == "/v1/models":
            self.transport.write(_json_response({"object": "list", "data": [{"id": self.srv.model}]}))
        elif method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                self.transport.write(_json_response({"error": "bad JSON"}, "400 Bad Request"))
                return
            self._stream(path, req, recv_s, arrival_s)
        else:
            self.transport.write(_json_response({"error": f"no route {method} {path}"}, "404 Not Found"))

    def _stream(self, path: str, req: dict[str, Any], recv_s: float, arrival_s: float | None) -> None:
        assert self.transport is not None
        chat = path.endswith("chat/completions")
        n = int(req.get("max_tokens") or req.get("max_completion_tokens") or 16)
        prompt = req.get("messages") if chat else req.get("prompt")
        prompt_tokens = len(prompt) if isinstance(prompt, list) else len(str(prompt).split())
        key = self.srv.next_key()
        sched = self.srv.timing.schedule_s(key, n, req.get("truth_ttft_ms"), req.get("truth_itl_ms"))
        st = Stream(key, path, recv_s, arrival_s, prompt_tokens, n, [recv_s + s for s in sched])
        if not req.get("stream"):
            self.busy = True
            loop = asyncio.get_running_loop()
            loop.call_at(self.srv.loop_time(st.sched_s[-1]), self._whole, st, chat)
            return
        usage = bool((req.get("stream_options") or {}).get("include_usage"))
        self.busy = True
        self.transport.write(_HEAD_SSE)
        self._plan(st, chat, usage)

    def _plan(self, st: Stream, chat: bool, usage: bool) -> None:
        loop = asyncio.get_running_loop()
        token, last = self.srv.chunks(chat)
        for i, at in enumerate(st.sched_s):
            final = i == len(st.sched_s) - 1
            loop.call_at(self.srv.loop_time(at), self._send, st, last if final else token, final, usage)

    def _send(self, st: Stream, data: bytes, final: bool, usage: bool) -> None:
        if self.closed or self.transport is None:
            return
        tr = self.transport
        tr.write(data)
        st.sent_s.append(time.monotonic())
        if tr.get_write_buffer_size():
            st.buffered += 1
        if final:
            if usage:
                u = st.prompt_tokens, st.max_tokens, st.prompt_tokens + st.max_tokens
                tr.write(
                    _sse(
                        {
                            "id": f"cmpl-{st.key}",
                            "object": "text_completion",
                            "model": self.srv.model,
                            "choices": [],
                            "usage": {"prompt_tokens": u[0], "completion_tokens": u[1], "total_tokens": u[2]},
                        }
                    )
                )
            tr.write(_DONE)
            self.srv.record(st)
            self.busy = False
            self._parse()

    def _whole(self, st: Stream, chat: bool) -> None:
        if self.closed or self.transport is None:
            return
        text = " a" * st.max_tokens
        choice: dict[str, Any] = (
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
            if chat
            else {"index": 0, "text": text, "finish_reason": "length"}
        )
        usage = {"prompt_tokens": st.prompt_tokens, "completion_tokens": st.max_tokens}
        self.transport.write(_json_response({"id": f"cmpl-{st.key}", "choices": [choice], "usage": usage}))
        st.sent_s.append(time.monotonic())
        self.srv.record(st)
        self.busy = False
        self._parse()


class TruthServer:
    def __init__(self, timing: Timing, truth_dir: Path, model: str, proc_index: int) -> None:
        self.timing = timing
        self.model = model
        self.proc_index = proc_index
        self._count = 0
        truth_dir.mkdir(parents=True, exist_ok=True)
        self._out = (truth_dir / f"truth-{os.getpid()}.jsonl").open("a", buffering=1)
        self._offset = 0.0
        self._chunks: dict[bool, tuple[bytes, bytes]] = {}
        for chat in (False, True):
            self._chunks[chat] = (self._token_chunk(chat, None), self._token_chunk(chat, "length"))

    def _token_chunk(self, chat: bool, finish: str | None) -> bytes:
        if chat:
            choice: dict[str, Any] = {"index": 0, "delta": {"content": " a"}, "finish_reason": finish}
            obj = "chat.completion.chunk"
        else:
            choice = {
                "index": 0,
                "text": " a",
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
            }
            obj = "text_completion"
        return _sse({"id": "cmpl-truth", "object": obj, "model": self.model, "choices": [choice]})

    def chunks(self, chat: bool) -> tuple[bytes, bytes]:
        return self._chunks[chat]

    def next_key(self) -> int:
        """A request key unique across processes (process index in the high bits)."""
        self._count += 1
        return self.proc_index << 32 | self._count

    def sync_clock(self) -> None:
        """The event loop's clock against ``time.monotonic`` (they are the same clock today)."""
        self._offset = asyncio.get_running_loop().time() - time.monotonic()

    def loop_time(self, monotonic_s: float) -> float:
        return monotonic_s + self._offset

    def record(self, st: Stream) -> None:
        line = {
            "key": st.key,
            "pid": os.getpid(),
            "path": st.path,
            "recv_s": st.recv_s,
            "arrival_s": st.arrival_s,
            "prompt_tokens": st.prompt_tokens,
            "max_tokens": st.max_tokens,
            "sched_s": st.sched_s,
            "sent_s": st.sent_s,
            "buffered": st.buffered,
        }
        self._out.write(json.dumps(line) + "\n")


def read_truth(truth_dir: Path) -> list[dict[str, Any]]:
    """Every request the server processes recorded, sorted by the time each was read."""
    rows: list[dict[str, Any]] = []
    for f in sorted(truth_dir.glob("truth-*.jsonl")):
        for line in f.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    rows.sort(key=lambda r: r["recv_s"])
    return rows


def serve(args: argparse.Namespace, proc_index: int, sock: socket.socket | None = None) -> None:
    timing = Timing(args.ttft_ms, args.ttft_jitter_ms, args.itl_ms, args.itl_jitter_ms, args.dist, args.seed)
    server = TruthServer(timing, Path(args.truth_dir), args.model, proc_index)
    if args.uvloop:
        import uvloop

        uvloop.install()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server.sync_clock()
        s = sock or _listen(args.host, args.port)
        conns: list[RawTransport] = []

        def accept() -> None:
            while True:
                try:
                    c, _ = s.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                c.setblocking(False)
                conns[:] = [t for t in conns if not t.closed]
                conns.append(RawTransport(c, loop, TruthProtocol(server)))

        loop.add_reader(s.fileno(), accept)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        loop.remove_reader(s.fileno())
        for t in conns:
            t.close()
        s.close()

    asyncio.run(main())


def _listen(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    s.listen(4096)
    s.setblocking(False)
    return s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8199)
    ap.add_argument("--model", default="truth")
    ap.add_argument("--truth-dir", required=True, help="folder of the truth-<pid>.jsonl files")
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--ttft-jitter-ms", type=float, default=0.0)
    ap.add_argument("--itl-ms", type=float, default=10.0)
    ap.add_argument("--itl-jitter-ms", type=float, default=0.0)
    ap.add_argument("--dist", choices=["const", "uniform", "exp"], default="uniform")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--processes", type=int, default=1, help="server processes sharing the port")
    ap.add_argument("--uvloop", action="store_true", help="run each process on uvloop")
    args = ap.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("the truth server binds loopback only")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    Path(args.truth_dir).mkdir(parents=True, exist_ok=True)
    children: list[int] = []
    for i in range(1, args.processes):
        pid = os.fork()
        if pid == 0:
            serve(args, i)
            os._exit(0)
        children.append(pid)
    try:
        serve(args, 0)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except OSError:
                pass
    sys.stdout.flush()


if __name__ == "__main__":
    main()
