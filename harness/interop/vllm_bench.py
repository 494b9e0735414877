"""Read a ``vllm bench serve --save-result`` JSON (with ``--save-detailed`` per-request arrays).

Per request the detailed file has ``start_times`` (perf_counter seconds), ``ttfts``,
``itls`` (the gaps after the first chunk), ``latencies``, ``input_lens``, ``output_lens`` and
``errors``; they become the request table, times relative to the first start. Without the
detailed arrays the run keeps the file's aggregates only (no request table; the figures are
the file's own) and says so. The benchmark window is the file's ``duration`` (dispatch start to
gather end, which the rows alone cannot give).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.interop.common import (
    Fields,
    ImportedRun,
    ImportedScenario,
    ImportFormatError,
    numbers,
    read_json,
)

#: The file's own headline figures kept beside the recomputed ones (vLLM's key names).
FIGURE_KEYS = (
    "completed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "output_throughput",
    "total_token_throughput",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p99_itl_ms",
    "mean_e2el_ms",
    "median_e2el_ms",
    "std_e2el_ms",
    "p99_e2el_ms",
)


def read_vllm_bench(path: Path) -> ImportedRun:
    """Parse one result file; raises ImportFormatError naming the field on anything unexpected."""
    from harness.loadgen.metrics import RequestTiming

    path = Path(path)
    f = Fields(path, read_json(path))
    duration = f.num("duration")
    if duration <= 0:
        raise ImportFormatError(path, "duration", "a positive number of seconds", duration)
    f.integer("completed")
    figures = {k: f.number(k, optional=True) for k in FIGURE_KEYS if k in f.obj}
    requests: list[RequestTiming] = []
    notes = []
    unmeasured: dict[str, str] = {}
    if "ttfts" in f.obj:
        starts = numbers(path, "start_times", f.array("start_times"))
        n = len(starts)
        ttfts_raw, itls_raw = f.array("ttfts", n), f.array("itls", n)
        lat = numbers(path, "latencies", f.array("latencies", n))
        in_lens, out_lens = f.array("input_lens", n), f.array("output_lens", n)
        errors = f.array("errors", n)
        t0 = min(starts) if starts else 0.0
        for i in range(n):
            err = errors[i]
            if err is not None and not isinstance(err, str):
                raise ImportFormatError(path, f"errors[{i}]", "a string", err)
            for name, arr in (("input_lens", in_lens), ("output_lens", out_lens)):
                if isinstance(arr[i], bool) or not isinstance(arr[i], int) or arr[i] < 0:
                    raise ImportFormatError(path, f"{name}[{i}]", "a count >= 0", arr[i])
            if not isinstance(itls_raw[i], list):
                raise ImportFormatError(path, f"itls[{i}]", "a list of seconds", itls_raw[i])
            send = starts[i] - t0
            ttft = ttfts_raw[i]
            ok = not err and isinstance(ttft, int | float) and ttft > 0
            r = RequestTiming(index=i, send_s=send, input_tokens=in_lens[i], output_tokens=out_lens[i])
            if ok:
                gaps = numbers(path, f"itls[{i}]", itls_raw[i])
                r.first_token_s = send + float(ttft)
                chunks = [r.first_token_s]
                for g in gaps:
                    chunks.append(chunks[-1] + g)
                r.chunk_s = chunks
                r.end_s = send + lat[i]
                r.usage_reported = True
            else:
                r.error = err or "failed (the file gives no message)"
                r.output_tokens = 0
            requests.append(r)
    else:
        notes.append(
            "the file has no per-request arrays (run vllm bench with --save-detailed): no request table"
        )
        unmeasured["scenarios.requests_path"] = "the file was saved without --save-detailed"
    rate = f.raw("request_rate", None)
    date = f.text("date", optional=True)
    try:
        started = (
            datetime.strptime(date, "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
            if date
            else datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        )
    except ValueError as exc:
        raise ImportFormatError(path, "date", "vllm bench's YYYYMMDD-HHMMSS", date) from exc
    if not date:
        unmeasured["started_at"] = "the file has no date; the file's modification time stands in"
    else:
        unmeasured["started_at"] = "vllm bench writes its local time without a zone; read as UTC"
    model = f.text("model_id", optional=True) or "unknown"
    max_conc = f.integer("max_concurrency", optional=True)
    scenario = ImportedScenario(
        name=f.text("label", optional=True) or "vllm-bench",
        requests=requests,
        duration_s=duration,
        concurrency=max_conc,
        request_rate=None if rate in (None, "inf") or not isinstance(rate, int | float) else float(rate),
        tool_figures=figures,
        notes=notes,
    )
    if not requests:  # aggregates only: the record carries the file's own figures
        for key in ("failed", "total_input_tokens", "total_output_tokens", "request_throughput"):
            f.number(key)
        scenario.aggregates = {k: f.obj.get(k) for k in f.obj if not isinstance(f.obj.get(k), list | dict)}
    return ImportedRun(
        tool="vllm-bench",
        version=None,
        files=[path],
        model=f.text("served_model_name", optional=True) or model,
        tokenizer=f.text("tokenizer_id", optional=True),
        started_at=started,
        finished_at=started + timedelta(seconds=duration),
        endpoint=None,
        scenarios=[scenario],
        unmeasured=unmeasured
        | {
            "source.version": "vllm bench's result file does not record vLLM's version",
            "engine.endpoint": "the result file does not record the base URL",
        },
    )
