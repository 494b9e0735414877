"""A point's workload from its ``workload`` section, and what the record says about it afterwards.

The runner calls :func:`scenario_workload` (None for today's random exact-length load, which
the load generator draws itself, as ``vllm bench serve`` does), sends it with
:func:`harness.loadgen.client.run_load` or :func:`harness.loadgen.sessions.run_sessions`, then
folds the per-request rows into :func:`workload_info`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.loadgen.metrics import RequestTiming
from harness.record.run_record import TurnStats, WorkloadInfo
from harness.spec.workload import BUILTIN, resolve_path
from harness.workloads.build import Workload, WorkloadShape, build_workload

if TYPE_CHECKING:
    from harness.spec.scenario import ScenarioPoint


def text_tools(tokenizer_path: str) -> tuple[Callable[[str], int], Callable[[int, np.random.Generator], str]]:
    """(count a prompt's tokens as the server will, with special tokens; random text of ~n tokens)."""
    from transformers import AutoTokenizer

    from harness.loadgen.prompts import usable_token_ids

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    pool = np.asarray(usable_token_ids(tokenizer_path))

    def count(text: str) -> int:
        return len(tok(text).input_ids)

    def make_text(n: int, rng: np.random.Generator) -> str:
        return str(tok.decode(pool[rng.integers(0, len(pool), size=n)].tolist()))

    return count, make_text


def scenario_workload(
    point: ScenarioPoint,
    seed: int,
    token_ids: Sequence[int],
    tokenizer_path: str,
    base_dir: Path | None,
    block_size: int | None,
) -> Workload | None:
    """The point's requests, or None when its workload section is unset (random exact lengths)."""
    if point.workload.is_default:
        return None
    count, make_text = text_tools(tokenizer_path)
    load, work = point.load, point.workload
    shape = WorkloadShape(
        input_tokens=load.input_tokens,
        output_tokens=load.output_tokens,
        num_requests=load.num_requests,
        warmup_requests=load.warmup_requests,
        prompts=work.prompts,
        prefix=work.prefix,
        conversation=work.conversation,
        trace=work.trace,
    )
    return build_workload(shape, seed, token_ids, count, make_text, base_dir, block_size or 16)


def _file_info(path: str | None, base_dir: Path | None) -> tuple[str | None, str | None]:
    if path is None:
        return None, None
    p = BUILTIN.get(path) or resolve_path(path, base_dir)
    return path, hashlib.sha256(p.read_bytes()).hexdigest()


def turn_stats(requests: Sequence[RequestTiming]) -> list[TurnStats]:
    """TTFT and prefix-cache share by turn position, over every session's measured turns."""
    out = []
    for turn in sorted({r.turn for r in requests if r.turn is not None}):
        rows = [r for r in requests if r.turn == turn]
        ok = [r for r in rows if r.ok and r.ttft_s is not None]
        ttfts = [1000.0 * r.ttft_s for r in ok if r.ttft_s is not None]
        cached = [r for r in ok if r.cached_tokens is not None]
        prompt = sum(r.input_tokens for r in cached)
        out.append(
            TurnStats(
                turn=turn,
                requests=len(rows),
                mean_input_tokens=float(np.mean([r.input_tokens for r in rows])) if rows else None,
                median_ttft_ms=float(np.median(ttfts)) if ttfts else None,
                mean_ttft_ms=float(np.mean(ttfts)) if ttfts else None,
                cached_tokens_frac=(sum(r.cached_tokens or 0 for r in cached) / prompt)
                if cached and prompt
                else None,
            )
        )
    return out


def workload_info(
    point: ScenarioPoint, workload: Workload | None, requests: Sequence[RequestTiming], base_dir: Path | None
) -> WorkloadInfo | None:
    """What the point sent, for the record; None for the default random load."""
    if workload is None:
        return None
    scenario, warmup = point.workload, point.load.warmup_requests
    source: str = scenario.prompts.kind if scenario.prompts is not None else "random"
    path = scenario.prompts.path if scenario.prompts is not None else None
    if scenario.trace is not None:
        source, path = "trace", scenario.trace.path
    shown, sha = _file_info(path, base_dir)
    sent = [r for r in requests if r.error is None or r.first_token_s is not None]
    return WorkloadInfo(
        prompt_source=source,
        dataset_path=shown,
        dataset_sha256=sha,
        mean_input_tokens=float(np.mean([r.input_tokens for r in sent])) if sent else None,
        mean_output_tokens=float(np.mean([r.output_tokens for r in sent])) if sent else None,
        prefix_groups=scenario.prefix.groups if scenario.prefix is not None else None,
        prefix_tokens=scenario.prefix.length if scenario.prefix is not None else None,
        turns=scenario.conversation.turns if scenario.conversation is not None else None,
        sessions=len(workload.sessions) - warmup if workload.is_conversation else None,
        per_turn=turn_stats(requests) if workload.is_conversation else [],
        trace_speedup=scenario.trace.speedup if scenario.trace is not None else None,
        notes=list(workload.notes),
    )
