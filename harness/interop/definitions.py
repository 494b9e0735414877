"""A scenario's headline figures under each tool's published definitions, from its request rows.

The tools agree on the words and not on the arithmetic; each function below follows one tool's
source (file and version in docs/definitions.md). In brief, for the successful requests:

========================  ===================================  ==================================  ===================================
figure                    vLLM 0.32 ``vllm bench serve``       GuideLLM 0.8.1                      AIPerf 0.13
========================  ===================================  ==================================  ===================================
TTFT                      first chunk - send; mean of requests same                                 same
ITL                       every gap between chunks, pooled     (last - first chunk) / (n - 1),     (last - first chunk) / (n - 1),
                          (mean over gaps)                     mean weighted by n - 1 per request  plain mean over requests (= vLLM's
                                                                                                   TPOT)
TPOT                      (last - first chunk) / (n - 1),      (last chunk - send) / n: the first  (AIPerf has none; its ITL is it)
                          plain mean over requests with n > 1  token included, weighted by n
output tok/s              output tokens / benchmark duration   output tokens / benchmark duration  output tokens / profiling phase
                          (dispatch start to gather end)       (benchmark start to end)            window (phase start to end)
output tokens ``n``       server usage (else chunks)           server usage (else chunks)          client tokenizer (server usage
                                                                                                   with --use-server-token-count)
========================  ===================================  ==================================  ===================================

``n`` is the request's output tokens as the row has them (the server's usage count where it gave
one). When a chunk carries several tokens, pooled chunk gaps (vLLM's ITL, AIPerf's inter-chunk
latency) are per chunk, not per token, and differ from the per-token figures by the tokens per
chunk; the figures say so through ``mean_output_tokens_per_chunk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from harness.loadgen.metrics import RequestTiming

Tool = Literal["vllm", "guidellm", "aiperf"]
TOOLS: tuple[Tool, ...] = ("vllm", "guidellm", "aiperf")

#: Headline figures each tool's function returns (milliseconds, tokens per second).
FIGURES = ("output_throughput", "mean_ttft_ms", "mean_itl_ms", "mean_tpot_ms", "mean_output_tokens_per_chunk")


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _weighted(values: Sequence[float], weights: Sequence[float]) -> float | None:
    total = float(sum(weights))
    return float(np.dot(values, weights) / total) if values and total > 0 else None


def _per_chunk(ok: Sequence[RequestTiming]) -> float | None:
    chunks = sum(len(r.chunk_s) for r in ok)
    # rows without per-chunk times (GuideLLM's) keep only the first chunk: no figure
    if not ok or any(len(r.chunk_s) <= 1 < r.output_tokens for r in ok):
        return None
    return sum(r.output_tokens for r in ok) / chunks if chunks else None


def _last_chunk(r: RequestTiming) -> float | None:
    """The last token's arrival: the last chunk, or the row's end where chunks are not kept."""
    return r.end_s if r.end_s is not None else (r.chunk_s[-1] if r.chunk_s else None)


def vllm_figures(requests: Sequence[RequestTiming], duration_s: float) -> dict[str, float | None]:
    """vLLM ``benchmarks/serve.py`` ``calculate_metrics``: pooled ITL gaps, per-request TPOT without the first token."""
    ok = [r for r in requests if r.ok]
    gaps = [g for r in ok for g in r.itl_s]
    has_gaps = not any(len(r.chunk_s) <= 1 < r.output_tokens for r in ok)
    tpots = [t for r in ok if (t := r.tpot_s) is not None]
    return {
        "output_throughput": sum(r.output_tokens for r in ok) / duration_s if duration_s > 0 else None,
        "mean_ttft_ms": _ms(_mean([r.ttft_s for r in ok if r.ttft_s is not None])),
        "mean_itl_ms": _ms(_mean(gaps)) if has_gaps else None,
        "mean_tpot_ms": _ms(_mean(tpots)),
        "mean_output_tokens_per_chunk": _per_chunk(ok),
    }


def guidellm_figures(requests: Sequence[RequestTiming], duration_s: float) -> dict[str, float | None]:
    """GuideLLM ``schemas/base/request_stats.py`` per request, ``benchmark/schemas/metrics.py`` weights."""
    ok = [r for r in requests if r.ok]
    itl_v, itl_w, tpot_v, tpot_w = [], [], [], []
    for r in ok:
        last, first, n = _last_chunk(r), r.first_token_s, r.output_tokens
        if last is None or first is None:
            continue
        if n > 1:
            itl_v.append((last - first) / (n - 1))
            itl_w.append(n - 1)
        if n > 0:
            tpot_v.append((last - r.send_s) / n)
            tpot_w.append(n)
    return {
        "output_throughput": sum(r.output_tokens for r in ok) / duration_s if duration_s > 0 else None,
        "mean_ttft_ms": _ms(_mean([r.ttft_s for r in ok if r.ttft_s is not None])),
        "mean_itl_ms": _ms(_weighted(itl_v, itl_w)),
        "mean_tpot_ms": _ms(_weighted(tpot_v, tpot_w)),
        "mean_output_tokens_per_chunk": _per_chunk(ok),
    }


def aiperf_figures(
    requests: Sequence[RequestTiming], duration_s: float | None = None
) -> dict[str, float | None]:
    """AIPerf ``metrics/types/*.py``: ITL per request over (n - 1); throughput over the profiling window.

    ``duration_s`` is the profiling phase's window (AIPerf's ``observation_duration``: the
    export's ``end_time - start_time``, the analogue of the harness's dispatch-to-gather
    duration); None takes AIPerf's ``benchmark_duration`` instead, first request to last response.
    """
    ok = [r for r in requests if r.ok]
    itls = []
    for r in ok:
        last, first = _last_chunk(r), r.first_token_s
        if last is not None and first is not None and r.output_tokens >= 2:
            itls.append((last - first) / (r.output_tokens - 1))
    ends = [e for r in ok if (e := _last_chunk(r)) is not None]
    window = duration_s if duration_s else ((max(ends) - min(r.send_s for r in ok)) if ends else 0.0)
    return {
        "output_throughput": sum(r.output_tokens for r in ok) / window if window > 0 else None,
        "mean_ttft_ms": _ms(_mean([r.ttft_s for r in ok if r.ttft_s is not None])),
        "mean_itl_ms": _ms(_mean(itls)),
        "mean_tpot_ms": None,  # AIPerf reports no TPOT; its ITL is vLLM's TPOT
        "mean_output_tokens_per_chunk": _per_chunk(ok),
    }


def figures(tool: Tool, requests: Sequence[RequestTiming], duration_s: float) -> dict[str, float | None]:
    """The headline figures of one scenario under ``tool``'s definitions."""
    fn = {"vllm": vllm_figures, "guidellm": guidellm_figures, "aiperf": aiperf_figures}[tool]
    return fn(requests, duration_s)


def _ms(x: float | None) -> float | None:
    return None if x is None else x * 1000.0


def with_definition_columns(
    rows: list[dict[str, Any]], results: Path, tools: Sequence[str]
) -> list[dict[str, Any]]:
    """``load_runs`` rows with ``<tool>.<figure>`` columns from each point's request table (null without one)."""
    from harness.loadgen.client import requests_from_parquet

    for tool in tools:
        if tool not in TOOLS:
            raise ValueError(f"unknown definitions {tool!r}: one of {', '.join(TOOLS)}")
    out = []
    for row in rows:
        rel, duration = row.get("requests_path"), row.get("duration")
        path = Path(results) / "runs" / str(row.get("run_id")) / str(rel) if rel else None
        reqs = requests_from_parquet(path) if path is not None and path.is_file() else None
        extra: dict[str, Any] = {}
        for tool in tools:
            figs = figures(tool, reqs, float(duration or 0.0)) if reqs is not None else {}  # type: ignore[arg-type]
            extra |= {f"{tool}.{k}": figs.get(k) for k in FIGURES}
        out.append(row | extra)
    return out
