"""Read an AIPerf 0.13 profile export: ``profile_export_aiperf.json`` plus its per-record JSONL.

PATH is the export folder, the summary JSON or the JSONL (the other file is found beside it).
Each JSONL record has ``metadata.request_start_ns`` and ``metrics`` (``time_to_first_token``,
``request_latency``, ``inter_chunk_latency`` in ms, ``output_sequence_length``,
``input_sequence_length``); records of the warm-up phase are left out, as AIPerf leaves them out
of its figures. The benchmark window is the profiling phase, ``end_time - start_time`` of the
summary (AIPerf's throughput denominator), which the file gives to the microsecond only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.interop.common import (
    Fields,
    ImportedRun,
    ImportedScenario,
    ImportFormatError,
    numbers,
    read_json,
    read_jsonl,
)

SUMMARY = "profile_export_aiperf.json"
RECORDS = "profile_export.jsonl"


def _paths(path: Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        return path / SUMMARY, path / RECORDS
    if path.suffix == ".jsonl":
        return path.with_name(SUMMARY), path
    return path, path.with_name(RECORDS)


def _stat(path: Path, f: Fields, key: str) -> float | None:
    if key not in f.obj or f.obj[key] is None:
        return None
    return f.sub(key).number("avg", optional=True)


def _time(path: Path, f: Fields, key: str) -> datetime:
    text = f.text(key)
    assert text is not None
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ImportFormatError(path, key, "an ISO 8601 time", text) from exc
    return t if t.tzinfo else t.astimezone(timezone.utc)  # AIPerf writes local time without a zone


def read_aiperf(path: Path) -> ImportedRun:
    """Parse one export; raises ImportFormatError naming the file and field on anything unexpected."""
    from harness.loadgen.metrics import RequestTiming

    summary_path, records_path = _paths(path)
    for p in (summary_path, records_path):
        if not p.is_file():
            raise ImportFormatError(p, "file", f"AIPerf's {p.name} (run aiperf with --export-level records)")
    f = Fields(summary_path, read_json(summary_path))
    version = f.text("aiperf_version")
    started, finished = _time(summary_path, f, "start_time"), _time(summary_path, f, "end_time")
    window = (finished - started).total_seconds()
    if window <= 0:
        raise ImportFormatError(summary_path, "end_time", "a time after start_time", f.obj.get("end_time"))
    cfg = f.sub("input_config")
    endpoint = cfg.sub("endpoint") if cfg.has("endpoint") else None
    server_counts = bool(endpoint.obj.get("use_server_token_count")) if endpoint else False
    urls = endpoint.obj.get("urls") if endpoint else None
    models = cfg.obj.get("models", {}).get("items", []) if isinstance(cfg.obj.get("models"), dict) else []
    model = models[0].get("name") if models and isinstance(models[0], dict) else None
    phases = [p for p in cfg.obj.get("phases", []) if isinstance(p, dict) and p.get("kind") == "profiling"]
    concurrency = phases[0].get("concurrency") if phases else None
    rate = phases[0].get("rate") if phases else None
    datasets = cfg.obj.get("datasets") or [{}]
    prompts = datasets[0].get("prompts", {}) if isinstance(datasets[0], dict) else {}

    rows = read_jsonl(records_path)
    starts_ns: list[int] = []
    parsed = []
    for n, row in enumerate(rows, start=1):
        r = Fields(records_path, row, f"line {n}")
        meta = r.sub("metadata")
        if meta.obj.get("benchmark_phase", "profiling") != "profiling":
            continue
        start_ns = meta.integer("request_start_ns")
        assert start_ns is not None
        starts_ns.append(start_ns)
        parsed.append((r, start_ns))
    if not parsed:
        raise ImportFormatError(records_path, "(records)", "at least one record of the profiling phase")
    t0 = min(starts_ns)
    requests = []
    for i, (r, start_ns) in enumerate(parsed):
        m = r.sub("metrics")
        send = (start_ns - t0) / 1e9

        def value(key: str, m: Fields = m) -> float | None:
            return m.sub(key).number("value", optional=True) if m.has(key) else None

        isl, osl = value("input_sequence_length"), value("output_sequence_length")
        timing = RequestTiming(index=i, send_s=send, input_tokens=int(isl or 0))
        ttft, lat = value("time_to_first_token"), value("request_latency")
        err = r.obj.get("error")
        if err or ttft is None or lat is None:
            timing.error = str(err.get("message") if isinstance(err, dict) else err or "no content response")
        else:
            gaps = numbers(records_path, f"{r.where}.metrics.inter_chunk_latency.value", _icl(m))
            timing.first_token_s = send + ttft / 1000.0
            chunks = [timing.first_token_s]
            for g in gaps:
                chunks.append(chunks[-1] + g / 1000.0)
            timing.chunk_s = chunks
            timing.end_s = send + lat / 1000.0
            timing.output_tokens = int(osl or 0)
            timing.usage_reported = server_counts
        requests.append(timing)
    figures = {
        "mean_ttft_ms": _stat(summary_path, f, "time_to_first_token"),
        "mean_itl_ms": _stat(summary_path, f, "inter_token_latency"),
        "mean_inter_chunk_latency_ms": _stat(summary_path, f, "inter_chunk_latency"),
        "mean_request_latency_ms": _stat(summary_path, f, "request_latency"),
        "output_throughput": _stat(summary_path, f, "output_token_throughput"),
        "request_throughput": _stat(summary_path, f, "request_throughput"),
        "benchmark_duration_s": _stat(summary_path, f, "benchmark_duration"),
    }
    notes = [
        "output tokens: "
        + (
            "the server's usage counts (--use-server-token-count)"
            if server_counts
            else "AIPerf's client tokenizer"
        ),
        "duration: AIPerf's profiling window (summary end_time - start_time, microseconds)",
    ]
    run_info: dict[str, Any] = f.obj["run_info"] if isinstance(f.obj.get("run_info"), dict) else {}
    command = run_info.get("cli_command") if isinstance(run_info.get("cli_command"), str) else None
    isl = prompts.get("isl", {}).get("mean") if isinstance(prompts.get("isl"), dict) else None
    osl = prompts.get("osl", {}).get("mean") if isinstance(prompts.get("osl"), dict) else None
    scenario = ImportedScenario(
        name="aiperf" + (f"-c{concurrency}" if concurrency else ""),
        requests=requests,
        duration_s=window,
        input_tokens=int(isl) if isinstance(isl, int | float) else None,
        output_tokens=int(osl) if isinstance(osl, int | float) else None,
        concurrency=int(concurrency) if isinstance(concurrency, int) else None,
        request_rate=float(rate) if isinstance(rate, int | float) else None,
        seed=run_info.get("random_seed") if isinstance(run_info.get("random_seed"), int) else None,
        tool_figures=figures,
        notes=notes,
    )
    tokenizer = (
        cfg.obj.get("tokenizer", {}).get("name") if isinstance(cfg.obj.get("tokenizer"), dict) else None
    )
    return ImportedRun(
        tool="aiperf",
        version=version,
        files=[summary_path, records_path],
        model=str(model or "unknown"),
        tokenizer=tokenizer,
        started_at=started,
        finished_at=finished,
        endpoint=urls[0] if isinstance(urls, list) and urls else None,
        command=command,
        scenarios=[scenario],
    )


def _icl(m: Fields) -> list[float]:
    if not m.has("inter_chunk_latency"):
        return []  # one content chunk only
    v = m.sub("inter_chunk_latency").raw("value")
    if not isinstance(v, list):
        raise ImportFormatError(m.path, f"{m.where}.inter_chunk_latency.value", "a list of milliseconds", v)
    return v
