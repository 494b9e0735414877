"""What differs in method between two runs when one or both were imported from another tool.

The gate and ``compare`` print these lines beside their verdicts: an imported run's figures
are recomputed under vLLM's definitions (the record's) from the file's rows, but the rows
themselves were timed by another client, over another benchmark window, with tokens counted
its way, and what that tool does not keep (per-chunk times, energy, engine arguments) is null.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.record.run_record import RunRecord

#: How each tool's rows differ from the harness's own (the differences that move figures).
_METHOD = {
    "vllm-bench": "client: vllm bench serve (aiohttp, one chunk = one token unless usage says more); "
    "window: dispatch start to gather end, as the harness's",
    "guidellm": "client: GuideLLM (httpx, HTTP/2); window: benchmark start_time..end_time; "
    "no per-chunk times kept, so pooled chunk gaps (ITL) are null",
    "aiperf": "client: AIPerf (aiohttp workers, timestamps in ns); window: the profiling phase; "
    "output tokens by its client tokenizer unless --use-server-token-count",
    "lm-eval": "lm-eval's own run: same tasks and metrics, its request batching and concurrency",
}


def method_label(record: RunRecord) -> str:
    """``measured here`` or ``imported from <tool> <version>`` (for a provenance row)."""
    src = record.source
    if src is None:
        return "measured here"
    return f"imported from {src.tool} {src.version or '(version unknown)'} ({src.sha256[:12]})"


def method_notes(baseline: RunRecord, candidate: RunRecord) -> list[str]:
    """One line per difference in method; empty when both runs were measured here the same way."""
    b, c = baseline.source, candidate.source
    if b is None and c is None:
        return []
    notes = [f"method: baseline {method_label(baseline)}, candidate {method_label(candidate)}"]
    for role, src in (("baseline", b), ("candidate", c)):
        if src is not None and (b is None or c is None or b.tool != c.tool):
            notes.append(f"{role} {_METHOD.get(src.tool, src.tool)}")
            missing = sorted(
                k for k in src.unmeasured if k.startswith(("scenarios.", "engine.", "environment"))
            )
            if missing:
                notes.append(f"{role} lacks (null in its record): {', '.join(missing)}")
    return notes
