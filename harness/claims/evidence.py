"""The figures a claim compares, read from run records and the files beside them (pure readers).

* **KV cache per sequence** at each point of a context sweep: the engine's KV-cache gauge
  (``vllm:kv_cache_usage_perc``, a fraction of its blocks) × its slots (blocks × block size) ÷ the
  sequences running at that poll, over the polls of ``telemetry/server_metrics.parquet`` inside
  the scenario's window with at least one sequence running; the median is reported (a poll
  during a prefill can catch blocks the sliding-window manager frees on the next step, so the
  peak is kept beside it). The architecture's prediction (:mod:`harness.arch`) with and without
  the window is set beside each point for a sequence at the end of its request.
* **KV bytes per token** measured as the engine's KV-cache bytes ÷ its physical slots
  (blocks × block size). Not ÷ the logged "KV cache size: N tokens": since vLLM 0.1x that
  figure is group-aware (max concurrency × max_model_len), so for a sliding-window model it
  counts the tokens the window lets the cache *serve*, several times its slots.
* **Per-request TPOT** from ``requests.parquet``: (end-to-end − TTFT) / (output tokens − 1).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.record.run_record import RunRecord, ScenarioResult, scenario_energy_value


@dataclass(frozen=True)
class SweepPoint:
    """One context length of a sweep on one model; token counts are per sequence."""

    scenario: str
    input_tokens: int
    output_tokens: int
    context_tokens: int  # input + output: the sequence at the end of its request
    measured_kv_tokens: float | None  # median over the decode polls
    peak_kv_tokens: float | None
    polls: int
    measured_kv_bytes: float | None  # measured tokens × measured KV bytes per token
    predicted_tokens_full: int  # without the window: every token cached
    predicted_tokens_windowed: int | None  # with the architecture's window (None: no window)
    predicted_tokens_blocks: (
        int | None
    )  # vLLM's block accounting halfway through decode (None: no block size)
    median_ttft_ms: float | None
    median_tpot_ms: float | None
    reason: str | None = None  # why the measured figures are null, where they are


@dataclass(frozen=True)
class KvBytes:
    """KV bytes per token of one run: measured, and the architecture's with and without its savings."""

    measured: float | None
    predicted: int | None
    mha: int | None  # multi-head attention of the same shape and dtype
    capacity_tokens: int | None  # physical slots: blocks × block size (the logged capacity as a fallback)
    reason: str | None = None


def physical_tokens(mem: Any, usable: bool = True) -> tuple[int | None, str | None]:
    """KV-cache slots in tokens: blocks × block size, where the engine says both; `usable` leaves
    out vLLM's null block, as its usage gauge does (1 − free ÷ (blocks − 1))."""
    if mem is None:
        return None, "the record has no engine memory figures"
    if mem.kv_cache_num_blocks and mem.kv_cache_block_size:
        return (mem.kv_cache_num_blocks - int(usable)) * mem.kv_cache_block_size, None
    if mem.kv_cache_capacity_tokens:
        return mem.kv_cache_capacity_tokens, "blocks unknown: the logged capacity (group-aware) used instead"
    return None, "the engine reported no KV-cache capacity"


def architecture(rec: RunRecord) -> dict[str, Any] | None:
    """The record's architecture facts as a dict (``analytics.architecture``), where it has them."""
    a = rec.analytics
    arch = a.get("architecture") if isinstance(a, dict) else getattr(a, "architecture", None)
    if arch is None:
        return None
    return arch if isinstance(arch, dict) else arch.model_dump(mode="json")


def _memory(rec: RunRecord) -> Any:
    return rec.resources.memory if rec.resources is not None else None


def kv_bytes(rec: RunRecord) -> KvBytes:
    arch = architecture(rec) or {}
    mem = _memory(rec)
    cap, reason = physical_tokens(mem, usable=False)
    total = mem.kv_cache_memory_bytes if mem is not None else None
    measured = None
    if cap is None:
        pass
    elif not total:
        reason = "the engine did not report its KV-cache bytes (cache_config_info kv_cache_memory_bytes)"
    else:
        measured = total / cap
    return KvBytes(
        measured=measured,
        predicted=arch.get("kv_bytes_per_token"),
        mha=arch.get("kv_bytes_per_token_mha"),
        capacity_tokens=cap,
        reason=reason,
    )


def _series(run_dir: Path | None, rec: RunRecord) -> list[Any] | None:
    rel = rec.resources.server_metrics_path if rec.resources is not None else None
    if run_dir is None or rel is None or not (run_dir / rel).is_file():
        return None
    from harness.engine.server_metrics import read_series

    return read_series(run_dir / rel)


def predicted_tokens(arch: dict[str, Any] | None, context_tokens: int) -> int | None:
    """Token-equivalents one sequence caches at `context_tokens` with the window (None: no window).

    Windowed layers hold at most the window; the others every token (as
    :meth:`harness.model.facts.ArchFacts.kv_bytes_per_sequence`, in tokens of all layers)."""
    if not arch or not arch.get("sliding_window"):
        return None
    window, layers = int(arch["sliding_window"]), int(arch["num_layers"])
    windowed = int(arch.get("windowed_layers") or layers)
    held = windowed * min(context_tokens, window) + (layers - windowed) * context_tokens
    return round(held / layers)


def block_tokens(context_tokens: int, block_size: int | None, window: int | None) -> int | None:
    """Slots (tokens) vLLM's KV manager holds for a sequence of `context_tokens`: whole blocks up to
    the last token, less, with a window, the blocks wholly before the window's start (vLLM frees a
    block once every token in it lies before ``context − window + 1``), so between the window and
    the window plus one block."""
    if not block_size:
        return None
    allocated = -(-context_tokens // block_size)
    skipped = max(0, context_tokens - window + 1) // block_size if window else 0
    return (allocated - skipped) * block_size


def kv_sweep(rec: RunRecord, run_dir: Path | None, prefix: str = "ctx-") -> list[SweepPoint]:
    """The sweep points (scenarios named ``prefix…``) of a record, shortest context first."""
    arch = architecture(rec)
    mem = _memory(rec)
    cap, _ = physical_tokens(mem)
    per_token = kv_bytes(rec).measured
    block = mem.kv_cache_block_size if mem is not None else None
    window = int(arch["sliding_window"]) if arch and arch.get("sliding_window") else None
    # Mixed windowed and full layers make two KV groups, whose blocks block_tokens does not model.
    mixed = bool(window) and int((arch or {}).get("windowed_layers") or 0) < int(
        (arch or {}).get("num_layers") or 0
    )
    series = _series(run_dir, rec)
    points = []
    for name, s in rec.performance.items():
        if not name.startswith(prefix):
            continue
        ctx = s.settings.load.input_tokens + s.settings.load.output_tokens
        values, reason = _per_sequence(s, series, cap)
        median = statistics.median(values) if values else None
        points.append(
            SweepPoint(
                scenario=name,
                input_tokens=s.settings.load.input_tokens,
                output_tokens=s.settings.load.output_tokens,
                context_tokens=ctx,
                measured_kv_tokens=median,
                peak_kv_tokens=max(values) if values else None,
                polls=len(values),
                measured_kv_bytes=median * per_token if median is not None and per_token else None,
                predicted_tokens_full=ctx,
                predicted_tokens_windowed=predicted_tokens(arch, ctx),
                predicted_tokens_blocks=None
                if mixed
                else block_tokens(
                    s.settings.load.input_tokens + s.settings.load.output_tokens // 2, block, window
                ),
                median_ttft_ms=s.median_ttft_ms,
                median_tpot_ms=s.median_tpot_ms,
                reason=reason,
            )
        )
    return sorted(points, key=lambda p: p.context_tokens)


def _per_sequence(
    s: ScenarioResult, series: list[Any] | None, cap: int | None
) -> tuple[list[float], str | None]:
    """KV tokens per running sequence at each poll of the scenario's window."""
    if cap is None:
        return [], "the engine reported no KV-cache capacity"
    w = s.server
    if w is None or w.start_s is None or w.end_s is None:
        return [], "the scenario has no server window"
    if series is None:
        return [], "no server_metrics.parquet beside the record"
    t0 = w.dispatch_s if w.dispatch_s is not None else w.start_s
    out = [
        p.kv_cache_usage_frac * cap / p.running
        for p in series
        if t0 <= p.t_s <= w.end_s and p.running and p.kv_cache_usage_frac is not None
    ]
    return out, None if out else "no /metrics poll with a running sequence inside the window"


def request_tpot_ms(rec: RunRecord, run_dir: Path | None, scenario: str) -> list[float]:
    """Per-request TPOT (ms) of one scenario, from its requests.parquet; empty when absent."""
    s = rec.performance.get(scenario)
    if s is None or s.requests_path is None or run_dir is None or not (run_dir / s.requests_path).is_file():
        return []
    import pyarrow.parquet as pq

    rows = pq.read_table(run_dir / s.requests_path, columns=["ttft_ms", "e2el_ms", "output_tokens", "error"])
    out = []
    for r in rows.to_pylist():
        if (
            r["error"] is None
            and r["ttft_ms"] is not None
            and r["e2el_ms"] is not None
            and r["output_tokens"] > 1
        ):
            out.append((r["e2el_ms"] - r["ttft_ms"]) / (r["output_tokens"] - 1))
    return out


def point_figure(s: ScenarioResult, figure: str) -> float | None:
    """A scenario's point figure: output tok/s or J per output token (None where unmeasured)."""
    if figure == "output_throughput":
        return s.output_throughput or None
    if figure == "energy_per_token_j":
        e = scenario_energy_value(s)
        value = e.energy_per_output_token_j if e is not None else None
        return float(value) if value is not None else None
    raise KeyError(figure)
