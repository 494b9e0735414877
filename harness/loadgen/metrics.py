"""Aggregate per-request timings the way ``vllm bench serve`` does, with its key names.

Definitions (all times in seconds inside, milliseconds in the output keys):

* A chunk is any server-sent event whose JSON carries a non-empty ``choices`` list, even when
  its text is empty (vLLM's server sends such chunks for partial UTF-8 byte tokens and skipped
  special tokens); the final usage-only event is not a chunk.
* success: HTTP 200 and at least one chunk.
* TTFT: first chunk minus send time.
* ITL: gaps between consecutive chunks of one request, pooled over all requests.
* TPOT: (e2e latency - TTFT) / (output tokens - 1), only for requests with > 1 output token.
* E2EL: last chunk minus send time.
* output tokens: the server's ``usage.completion_tokens``; without usage, the generated text
  counted with the tokenizer (the client does that).
* duration: from the start of dispatch to the end of the gather of the measured requests (the
  load generator measures it); without it, first send to last completion.
* throughputs: completed requests, output tokens and input+output tokens per second of duration.

Percentiles use numpy's default linear interpolation, as vLLM's benchmark does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RequestTiming:
    """One request's timeline; times are seconds on a monotonic clock."""

    index: int
    send_s: float
    input_tokens: int
    first_token_s: float | None = None
    end_s: float | None = None
    chunk_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    error: str | None = None
    generated_text: str = ""
    usage_reported: bool = False  # the server sent usage.completion_tokens
    cached_tokens: int | None = None  # prompt tokens served from the prefix cache, where the server says
    session: int | None = None  # multi-turn scenarios: the session and its 1-based turn
    turn: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.end_s is not None and self.first_token_s is not None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.send_s

    @property
    def e2el_s(self) -> float | None:
        return None if self.end_s is None or not self.ok else self.end_s - self.send_s

    @property
    def itl_s(self) -> list[float]:
        c = self.chunk_s
        return [b - a for a, b in zip(c, c[1:], strict=False)]

    @property
    def tpot_s(self) -> float | None:
        e2e, ttft = self.e2el_s, self.ttft_s
        if e2e is None or ttft is None or self.output_tokens <= 1:
            return None
        return (e2e - ttft) / (self.output_tokens - 1)


_STATS = ("mean", "median", "std", "p90", "p99")


def _stats_ms(prefix: str, values_s: Sequence[float]) -> dict[str, float | None]:
    if not values_s:
        return {f"{s}_{prefix}_ms": None for s in _STATS}
    a = np.asarray(values_s, dtype=float) * 1000.0
    return {
        f"mean_{prefix}_ms": float(a.mean()),
        f"median_{prefix}_ms": float(np.median(a)),
        f"std_{prefix}_ms": float(a.std()),
        f"p90_{prefix}_ms": float(np.percentile(a, 90)),
        f"p99_{prefix}_ms": float(np.percentile(a, 99)),
    }


def max_in_flight(requests: Sequence[RequestTiming]) -> int:
    """Most requests outstanding at once (an end at the same instant as a send frees first)."""
    events: list[tuple[float, int]] = []
    for r in requests:
        events.append((r.send_s, 1))
        end = r.end_s if r.end_s is not None else r.send_s
        events.append((end, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    peak = cur = 0
    for _, delta in events:
        cur += delta
        peak = max(peak, cur)
    return peak


def aggregate(requests: Sequence[RequestTiming], duration_s: float | None = None) -> dict[str, Any]:
    """vLLM-bench-style aggregates over the measured requests (warm-up excluded by the caller).

    ``duration_s`` is the benchmark's duration as the load generator timed it (dispatch start to
    gather end, as ``vllm bench serve``); when None, first send to last completion.
    """
    ok = [r for r in requests if r.ok]
    failed = len(requests) - len(ok)
    if duration_s is not None:
        duration = duration_s
    elif requests:
        start = min(r.send_s for r in requests)
        ends = [r.end_s for r in requests if r.end_s is not None]
        duration = (max(ends) - start) if ends else 0.0
    else:
        duration = 0.0
    total_in = sum(r.input_tokens for r in ok)
    total_out = sum(r.output_tokens for r in ok)

    def per_s(x: float) -> float:
        return x / duration if duration > 0 else 0.0

    out: dict[str, Any] = {
        "completed": len(ok),
        "failed": failed,
        "duration": duration,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": per_s(len(ok)),
        "output_throughput": per_s(total_out),
        "total_token_throughput": per_s(total_in + total_out),
    }
    out |= _stats_ms("ttft", [r.ttft_s for r in ok if r.ttft_s is not None])
    out |= _stats_ms("tpot", [t for r in ok if (t := r.tpot_s) is not None])
    out |= _stats_ms("itl", [g for r in ok for g in r.itl_s])
    out |= _stats_ms("e2el", [e for r in ok if (e := r.e2el_s) is not None])
    out["max_concurrency_reached"] = max_in_flight(requests)
    out["errors"] = sorted({r.error for r in requests if r.error})[:20]
    return out
