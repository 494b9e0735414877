"""Asynchronous streaming load generator for OpenAI-compatible completion servers.

Prompts are lists of token ids of exactly ``input_tokens`` length, drawn from the model's
ordinary (non-special) vocabulary with the suite's seed, so the server sees the exact input
length without a decode/re-encode round trip. The output length is forced with
``max_tokens`` + ``ignore_eos`` (+ ``min_tokens``), and ``stream_options.include_usage``
makes the server report the true token counts.

Load shapes: a closed loop at a fixed concurrency, or Poisson arrivals at a request rate
(optionally capped by a concurrency). The event loop runs in a thread of its own so that
``time.thread_time()`` measures the generator's own CPU cost, which goes in the record:
the load generator must never be the bottleneck, and this is how we show it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from harness.loadgen.metrics import RequestTiming


@dataclass(frozen=True)
class LoadSpec:
    input_tokens: int
    output_tokens: int
    num_requests: int
    concurrency: int | None
    request_rate: float | None
    warmup_requests: int
    seed: int


@dataclass
class LoadResult:
    requests: list[RequestTiming]  # measured requests only, times relative to the first send
    client_cpu_s: float
    wall_s: float
    first_send_s: float | None = None  # time.perf_counter() of the first measured send


def make_prompts(count: int, length: int, token_ids: Sequence[int], seed: int) -> list[list[int]]:
    """`count` prompts of exactly `length` token ids drawn uniformly from `token_ids`."""
    rng = np.random.default_rng(seed)
    pool = np.asarray(token_ids)
    return [pool[rng.integers(0, len(pool), size=length)].tolist() for _ in range(count)]


def usable_token_ids(tokenizer_path: str) -> list[int]:
    """Ordinary vocabulary ids of a tokenizer: no special or added tokens, no byte fallbacks."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    special = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}) or {})
    vocab = tok.get_vocab()
    ids = [i for t, i in vocab.items() if i not in special and not (t.startswith("<0x") and t.endswith(">"))]
    return sorted(ids)


class StreamingClient:
    def __init__(self, base_url: str, model: str, timeout_s: float = 600.0) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/completions"
        self.model = model
        self.timeout_s = timeout_s

    def _payload(self, prompt: list[int], output_tokens: int) -> dict[str, object]:
        return {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": output_tokens,
            "min_tokens": output_tokens,
            "ignore_eos": True,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def one(
        self, session: aiohttp.ClientSession, index: int, prompt: list[int], output_tokens: int
    ) -> RequestTiming:
        r = RequestTiming(index=index, send_s=time.perf_counter(), input_tokens=len(prompt))
        try:
            async with session.post(self.url, json=self._payload(prompt, output_tokens)) as resp:
                if resp.status != 200:
                    body = (await resp.text())[:300]
                    r.error = f"HTTP {resp.status}: {body}"
                    r.end_s = time.perf_counter()
                    return r
                buf = b""
                async for raw in resp.content:
                    buf += raw
                    if not buf.endswith(b"\n"):
                        continue
                    line, buf = buf.strip(), b""
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    now = time.perf_counter()
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        r.input_tokens = int(chunk["usage"].get("prompt_tokens", r.input_tokens))
                        r.output_tokens = int(chunk["usage"].get("completion_tokens", 0))
                    choices = chunk.get("choices") or []
                    if choices and choices[0].get("text"):
                        if r.first_token_s is None:
                            r.first_token_s = now
                        r.chunk_s.append(now)
                r.end_s = r.chunk_s[-1] if r.chunk_s else time.perf_counter()
                if r.first_token_s is None:
                    r.error = "no tokens streamed"
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError, ValueError) as exc:
            r.error = f"{type(exc).__name__}: {exc}"[:300]
            r.end_s = time.perf_counter()
        return r


async def _run(
    spec: LoadSpec,
    client: StreamingClient,
    prompts: list[list[int]],
    on_done: Callable[[], None] | None,
    marks: dict[str, float],
) -> list[RequestTiming]:
    timeout = aiohttp.ClientTimeout(total=client.timeout_s)
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
        warm = prompts[: spec.warmup_requests]
        measured = prompts[spec.warmup_requests :]
        warm_sem = asyncio.Semaphore(spec.concurrency or 1)

        async def warm_one(i: int, p: list[int]) -> None:
            async with warm_sem:
                await client.one(session, -1 - i, p, spec.output_tokens)

        await asyncio.gather(*(warm_one(i, p) for i, p in enumerate(warm)))
        # The generator's own cost is charged from here: warm-up and session set-up excluded.
        marks["cpu0"] = time.thread_time()

        sem = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None

        async def measured_one(i: int, p: list[int], delay_s: float) -> RequestTiming:
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            if sem is None:
                res = await client.one(session, i, p, spec.output_tokens)
            else:
                async with sem:
                    res = await client.one(session, i, p, spec.output_tokens)
            if on_done is not None:
                on_done()
            return res

        if spec.request_rate is None:
            delays = [0.0] * len(measured)
        else:
            rng = np.random.default_rng(spec.seed + 1)
            gaps = rng.exponential(1.0 / spec.request_rate, size=len(measured))
            delays = np.concatenate([[0.0], np.cumsum(gaps)[:-1]]).tolist()
        return list(
            await asyncio.gather(
                *(measured_one(i, p, d) for i, (p, d) in enumerate(zip(measured, delays, strict=True)))
            )
        )


def run_load(
    spec: LoadSpec,
    base_url: str,
    model: str,
    token_ids: Sequence[int],
    on_done: Callable[[], None] | None = None,
    timeout_s: float = 600.0,
) -> LoadResult:
    """Run one scenario; blocks until every request has finished or failed."""
    prompts = make_prompts(spec.warmup_requests + spec.num_requests, spec.input_tokens, token_ids, spec.seed)
    client = StreamingClient(base_url, model, timeout_s=timeout_s)
    box: dict[str, object] = {}

    def target() -> None:
        marks: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            box["requests"] = asyncio.run(_run(spec, client, prompts, on_done, marks))
        except BaseException as exc:  # surfaced in the caller's thread
            box["error"] = exc
        box["cpu"] = time.thread_time() - marks.get("cpu0", 0.0)
        box["wall"] = time.perf_counter() - t0

    th = threading.Thread(target=target, name="harness-loadgen", daemon=True)
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    requests: list[RequestTiming] = box["requests"]  # type: ignore[assignment]
    t0: float | None = None
    if requests:
        t0 = min(r.send_s for r in requests)
        for r in requests:
            r.send_s -= t0
            r.first_token_s = None if r.first_token_s is None else r.first_token_s - t0
            r.end_s = None if r.end_s is None else r.end_s - t0
            r.chunk_s = [c - t0 for c in r.chunk_s]
    return LoadResult(
        requests=requests,
        client_cpu_s=float(box["cpu"]),  # type: ignore[arg-type]
        wall_s=float(box["wall"]),  # type: ignore[arg-type]
        first_send_s=t0,
    )


def write_requests_parquet(path: str, requests: Sequence[RequestTiming]) -> None:
    """The per-request table beside the record (schema documented in harness.records)."""
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
            )
        )
    return out
