"""Read a GuideLLM 0.8 benchmarks report (``--output kind=json`` or ``kind=yaml``).

Each entry of ``benchmarks`` becomes one scenario. Per request GuideLLM keeps
``info.timings`` (``request_start``, ``first_token_iteration``, ``last_token_iteration``,
``request_end``, ``token_iterations``) and the token counts (``output_metrics.total_tokens``:
the server's usage, else one token per iteration, as GuideLLM counts them), not the time of
every chunk: the request table then has the first and last token only, so pooled chunk gaps
(vLLM's ITL) are null for these runs. The benchmark window is the benchmark's
``start_time``..``end_time`` (GuideLLM's throughput window).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.interop.common import Fields, ImportedRun, ImportedScenario, ImportFormatError, read_json

_FIGURES = {
    "mean_ttft_ms": "time_to_first_token_ms",
    "mean_itl_ms": "inter_token_latency_ms",
    "mean_tpot_ms": "time_per_output_token_ms",
    "output_throughput": "output_tokens_per_second",
    "mean_request_latency_s": "request_latency",
}


def _load(path: Path) -> Any:
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "file"
            raise ImportFormatError(
                path, where, "a complete YAML document", str(exc).splitlines()[0]
            ) from exc
    return read_json(path)


def read_guidellm(path: Path) -> ImportedRun:
    """Parse one report; raises ImportFormatError naming the field on anything unexpected."""
    path = Path(path)
    f = Fields(path, _load(path))
    meta = f.sub("metadata")
    version = meta.text("guidellm_version", optional=True)
    benches = f.array("benchmarks")
    if not benches:
        raise ImportFormatError(path, "benchmarks", "at least one benchmark")
    spec = f.sub("config").sub("spec") if f.has("config") else None
    backend = spec.sub("backend").obj if spec and spec.has("backend") else {}
    data = (spec.obj.get("data") or [{}])[0] if spec else {}
    seed = spec.obj.get("seed", {}).get("value") if spec and isinstance(spec.obj.get("seed"), dict) else None
    tokenizer = (
        spec.obj.get("tokenizer", {}).get("model")
        if spec and isinstance(spec.obj.get("tokenizer"), dict)
        else None
    )
    scenarios = []
    t_first: float | None = None
    t_last: float | None = None
    for b_i, raw in enumerate(benches):
        b = Fields(path, raw, f"benchmarks[{b_i}]")
        start, end = b.num("start_time"), b.num("end_time")
        if end <= start:
            raise ImportFormatError(path, f"benchmarks[{b_i}].end_time", "a time after start_time", end)
        t_first = start if t_first is None else min(t_first, start)
        t_last = end if t_last is None else max(t_last, end)
        strategy = b.sub("config").sub("strategy").obj
        reqs = b.sub("requests")
        rows: list[tuple[Fields, str]] = []
        for status in ("successful", "errored", "incomplete"):
            for i, r in enumerate(reqs.array(status)):
                rows.append((Fields(path, r, f"benchmarks[{b_i}].requests.{status}[{i}]"), status))
        requests = _requests(rows, start)
        metrics = b.sub("metrics")
        figures: dict[str, float | None] = {}
        for mine, theirs in _FIGURES.items():
            if metrics.has(theirs):
                figures[mine] = metrics.sub(theirs).sub("successful").number("mean", optional=True)
        totals = metrics.sub("request_totals").obj if metrics.has("request_totals") else {}
        notes = [
            "GuideLLM keeps no per-chunk times: the request table has the first and last token only",
            "duration: the benchmark's start_time..end_time (GuideLLM's measurement window)",
        ]
        listed = sum(1 for _ in rows)
        if isinstance(totals.get("total"), int) and totals["total"] != listed:
            notes.append(f"the report lists {listed} of its {totals['total']} requests (a sample)")
        kind = str(strategy.get("type_", "benchmark"))
        streams = strategy.get("streams")
        rate = strategy.get("rate")
        scenarios.append(
            ImportedScenario(
                name=f"{kind}@{streams if streams is not None else rate}" if streams or rate else kind,
                requests=requests,
                duration_s=end - start,
                input_tokens=data.get("prompt_tokens")
                if isinstance(data.get("prompt_tokens"), int)
                else None,
                output_tokens=data.get("output_tokens")
                if isinstance(data.get("output_tokens"), int)
                else None,
                concurrency=int(streams) if isinstance(streams, int) else None,
                request_rate=float(rate) if isinstance(rate, int | float) and kind != "concurrent" else None,
                seed=seed if isinstance(seed, int) else None,
                tool_figures=figures,
                notes=notes,
            )
        )
    assert t_first is not None and t_last is not None
    return ImportedRun(
        tool="guidellm",
        version=version,
        files=[path],
        model=str(backend.get("model") or "unknown"),
        tokenizer=tokenizer if isinstance(tokenizer, str) else None,
        started_at=datetime.fromtimestamp(t_first, timezone.utc),
        finished_at=datetime.fromtimestamp(t_last, timezone.utc),
        endpoint=backend.get("target") if isinstance(backend.get("target"), str) else None,
        scenarios=scenarios,
        unmeasured={"source.command": "GuideLLM's report keeps its configuration, not the command line"},
    )


def _requests(rows: list[tuple[Fields, str]], t0: float) -> list[Any]:
    from harness.loadgen.metrics import RequestTiming

    out = []
    for i, (r, status) in enumerate(rows):
        info = r.sub("info")
        t = info.sub("timings")
        start = t.number("request_start", optional=True)
        send = (start if start is not None else t0) - t0
        inp = (
            r.sub("input_metrics").integer("total_tokens", optional=True) if r.has("input_metrics") else None
        )
        timing = RequestTiming(index=i, send_s=send, input_tokens=inp or 0)
        first = t.number("first_token_iteration", optional=True)
        last = t.number("last_token_iteration", optional=True)
        if status != "successful" or start is None or first is None or last is None:
            err = info.obj.get("error") or r.obj.get("error")
            timing.error = str(err) if err else f"{status} (no first and last token)"
            out.append(timing)
            continue
        usage = (
            r.sub("output_metrics").integer("total_tokens", optional=True)
            if r.has("output_metrics")
            else None
        )
        n = usage if usage is not None else t.integer("token_iterations", optional=True)
        if n is None:
            raise ImportFormatError(r.path, f"{r.where}.output_metrics.total_tokens", "a token count")
        timing.first_token_s = first - t0
        timing.chunk_s = [first - t0]
        timing.end_s = last - t0
        timing.output_tokens = n
        timing.usage_reported = usage is not None
        out.append(timing)
    return out
