"""The server's own view of a run: vLLM's ``/metrics`` as a time series, and per-window summaries.

Each poll of ``/metrics`` becomes one :class:`ServerSample` (queue depths, KV-cache usage and the
cumulative counters of prefix caching, preemptions, tokens and speculative decoding). A window
(one scenario) is summarised by :func:`summarize_window`: peaks of the gauges, and differences of
the counters between the last poll at or before the window's start and the last poll inside it.
Counters are summed over engines (data-parallel ranks); vLLM exposes them with ``_total``.

Pure functions on text and rows; the polling thread is :class:`~harness.engine.poller.MetricsPoller`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from harness.engine.vllm_metrics import KV_USAGE_METRICS, parse_prometheus
from harness.record.run_record import ServerWindow

GAUGES = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage_frac": KV_USAGE_METRICS,
}
COUNTERS = {
    "prefix_cache_queries": ("vllm:prefix_cache_queries",),
    "prefix_cache_hits": ("vllm:prefix_cache_hits",),
    "preemptions": ("vllm:num_preemptions",),
    "prompt_tokens": ("vllm:prompt_tokens",),
    "generation_tokens": ("vllm:generation_tokens",),
    "spec_decode_drafts": ("vllm:spec_decode_num_drafts",),
    "spec_decode_draft_tokens": ("vllm:spec_decode_num_draft_tokens",),
    "spec_decode_accepted_tokens": ("vllm:spec_decode_num_accepted_tokens",),
}


@dataclass(frozen=True)
class ServerSample:
    """One poll of ``/metrics``; None where the server does not expose the metric."""

    t_s: float
    running: float | None = None
    waiting: float | None = None
    kv_cache_usage_frac: float | None = None
    prefix_cache_queries: float | None = None
    prefix_cache_hits: float | None = None
    preemptions: float | None = None
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    spec_decode_drafts: float | None = None
    spec_decode_draft_tokens: float | None = None
    spec_decode_accepted_tokens: float | None = None


def server_sample(text: str, t_s: float) -> ServerSample:
    """The gauges (max over engines; the KV gauge is a fraction) and counters (summed) of one page."""
    by_name: dict[str, list[float]] = {}
    for s in parse_prometheus(text):
        by_name.setdefault(s.name, []).append(s.value)
    values: dict[str, float | None] = {}
    for key, names in GAUGES.items():
        found = next((by_name[n] for n in names if n in by_name), None)
        values[key] = max(found) if found else None
    for key, names in COUNTERS.items():
        found = next(
            (by_name[n + suffix] for n in names for suffix in ("_total", "") if n + suffix in by_name), None
        )
        values[key] = sum(found) if found else None
    return ServerSample(t_s=t_s, **values)


def _delta(before: ServerSample | None, last: ServerSample, key: str) -> float | None:
    end = getattr(last, key)
    if end is None:
        return None
    # A counter absent before (no earlier poll, or not yet exposed) had counted nothing.
    start = (getattr(before, key) if before is not None else None) or 0.0
    if end < start:  # a restarted engine resets its counters
        return None
    return end - start


def summarize_window(
    samples: Sequence[ServerSample], t0_s: float, t1_s: float, implied_prefix_hit_rate: float | None = None
) -> ServerWindow:
    """Peaks and counter differences of the polls inside ``[t0_s, t1_s]``.

    The counters' starting values come from the last poll at or before ``t0_s`` (zero when the
    window starts before the first poll, as the engine's counters start at zero).
    """
    inside = [s for s in samples if t0_s <= s.t_s <= t1_s]
    if not inside:
        return ServerWindow(polls=0, reason="no /metrics poll inside the window")
    before = next((s for s in reversed(samples) if s.t_s <= t0_s), None)
    last = inside[-1]

    def peak(key: str) -> float | None:
        vals = [getattr(s, key) for s in inside if getattr(s, key) is not None]
        return max(vals) if vals else None

    d = {key: _delta(before, last, key) for key in COUNTERS}
    queries, hits = d["prefix_cache_queries"], d["prefix_cache_hits"]
    drafts, draft_tokens, accepted = (
        d["spec_decode_drafts"],
        d["spec_decode_draft_tokens"],
        d["spec_decode_accepted_tokens"],
    )
    running, waiting = peak("running"), peak("waiting")
    return ServerWindow(
        polls=len(inside),
        peak_running=int(running) if running is not None else None,
        peak_waiting=int(waiting) if waiting is not None else None,
        peak_kv_cache_usage_frac=peak("kv_cache_usage_frac"),
        preemptions=int(d["preemptions"]) if d["preemptions"] is not None else None,
        prompt_tokens=int(d["prompt_tokens"]) if d["prompt_tokens"] is not None else None,
        generation_tokens=int(d["generation_tokens"]) if d["generation_tokens"] is not None else None,
        prefix_cache_queries=int(queries) if queries is not None else None,
        prefix_cache_hits=int(hits) if hits is not None else None,
        prefix_cache_hit_rate=_hit_rate(hits, queries, d["prompt_tokens"]),
        implied_prefix_cache_hit_rate=implied_prefix_hit_rate,
        spec_decode_drafts=int(drafts) if drafts is not None else None,
        spec_decode_draft_tokens=int(draft_tokens) if draft_tokens is not None else None,
        spec_decode_accepted_tokens=int(accepted) if accepted is not None else None,
        spec_decode_acceptance_rate=(accepted / draft_tokens)
        if accepted is not None and draft_tokens
        else None,
        spec_decode_mean_accepted_length=(1 + accepted / drafts) if accepted is not None and drafts else None,
        spec_decode_draft_tokens_per_step=(draft_tokens / drafts)
        if draft_tokens is not None and drafts
        else None,
    )


def _hit_rate(hits: float | None, queries: float | None, prompt_tokens: float | None) -> float | None:
    """hits / queries; 0 when the engine processed prompt tokens but looked none up (prefix caching
    off: nothing was served from a cache); None when it says nothing."""
    if hits is not None and queries:
        return hits / queries
    if queries == 0 and prompt_tokens:
        return 0.0
    return None


def write_series(path: Path, samples: Sequence[ServerSample], t0_s: float | None = None) -> None:
    """The series as Parquet, one row per poll; ``t_s`` relative to `t0_s` when given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shift = t0_s or 0.0
    cols = {f.name: [getattr(s, f.name) for s in samples] for f in fields(ServerSample)}
    cols["t_s"] = [t - shift for t in cols["t_s"]]  # type: ignore[operator]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({k: pa.array(v, pa.float64()) for k, v in cols.items()}), path)


def read_series(path: Path) -> list[ServerSample]:
    import pyarrow.parquet as pq

    return [ServerSample(**row) for row in pq.read_table(path).to_pylist()]


def as_rows(samples: Sequence[ServerSample]) -> list[dict[str, float | None]]:
    return [asdict(s) for s in samples]
