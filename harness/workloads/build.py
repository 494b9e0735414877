"""Turn a workload description into concrete requests: pure, seeded, no engine needed.

A scenario's workload is a list of :class:`WorkItem` (one per request, warm-up first) or, for
multi-turn scenarios, a list of :class:`Session`. Token counting and vocabulary come in as
arguments (``count_tokens``, ``token_ids``, ``decode``), so everything here is testable on
hand-made inputs and never loads a tokenizer itself.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.spec.workload import (
    ConversationSpec,
    LengthDist,
    PrefixSpec,
    PromptSource,
    TraceSpec,
    WorkloadError,
    resolve_path,
)

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"  # the bundled lm-eval tasks
MOONCAKE_BLOCK_TOKENS = 512  # tokens per hash id in Mooncake's traces

Prompt = list[int] | str


@dataclass(frozen=True)
class WorkItem:
    """One request to send.

    ``input_tokens`` is exact for token-id prompts and the tokenizer's count for text prompts
    (the server's own count lands in the per-request table). ``at_s`` is the send time relative
    to the start of the scenario for trace replay (None: the load shape decides).
    """

    prompt: Prompt
    input_tokens: int
    output_tokens: int
    at_s: float | None = None
    prefix_group: int | None = None
    shared_prefix_tokens: int = 0


@dataclass(frozen=True)
class Session:
    """A multi-turn conversation: the user messages in order and each turn's output length.

    The history (previous messages and the model's actual replies) is assembled while the
    session runs, by :func:`render_turn`.
    """

    index: int
    user_messages: tuple[str, ...]
    output_tokens: tuple[int, ...]


@dataclass
class Workload:
    """A scenario's requests: either independent items or multi-turn sessions."""

    items: list[WorkItem] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    implied_prefix_hit_rate: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_conversation(self) -> bool:
        return bool(self.sessions)


# ---------------------------------------------------------------------------------------------
# Lengths


def sample_lengths(dist: LengthDist, mean_tokens: int, count: int, rng: np.random.Generator) -> list[int]:
    """`count` integer lengths around `mean_tokens` under `dist`, clipped to its bounds."""
    if dist.kind == "fixed":
        raw = np.full(count, float(mean_tokens))
    elif dist.kind == "uniform":
        low = math.floor(mean_tokens * (1 - dist.range_ratio))
        high = math.ceil(mean_tokens * (1 + dist.range_ratio))
        raw = rng.integers(max(low, 1), max(high, 1) + 1, size=count).astype(float)
    elif dist.kind == "normal":
        assert dist.std_tokens is not None
        raw = rng.normal(mean_tokens, dist.std_tokens, size=count)
    else:  # lognormal with the given mean and std of the lengths themselves
        assert dist.std_tokens is not None
        sigma2 = math.log1p((dist.std_tokens / mean_tokens) ** 2)
        mu = math.log(mean_tokens) - sigma2 / 2
        raw = rng.lognormal(mu, math.sqrt(sigma2), size=count)
    high_clip = dist.max_tokens if dist.max_tokens is not None else np.inf
    return [int(x) for x in np.clip(np.rint(raw), dist.min_tokens, high_clip)]


# ---------------------------------------------------------------------------------------------
# Sources


def read_dataset(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (a JSON array of rows also works, as the real ShareGPT file is one)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{path}:{n}: not a JSON object: {exc.msg}") from None
    if not all(isinstance(r, dict) for r in rows):
        raise WorkloadError(f"{path}: every row must be a JSON object")
    return rows


def conversation_turns(row: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(user message, reference reply or None) pairs of one dataset row, in order."""
    if "conversations" in row:
        turns: list[tuple[str, str | None]] = []
        conv = row["conversations"]
        for i, msg in enumerate(conv):
            if msg.get("from") in ("human", "user"):
                nxt = conv[i + 1] if i + 1 < len(conv) else None
                reply = nxt["value"] if nxt and nxt.get("from") in ("gpt", "assistant") else None
                turns.append((str(msg["value"]), reply))
        return turns
    if "prompt" in row:
        return [(str(row["prompt"]), None)]
    raise WorkloadError("a dataset row needs `conversations` (ShareGPT) or `prompt`")


def dataset_items(
    source: PromptSource,
    rows: Sequence[dict[str, Any]],
    count: int,
    output_tokens: int,
    count_tokens: Callable[[str], int],
    rng: np.random.Generator,
) -> list[WorkItem]:
    """Single-turn requests from a dataset, filtered as ``vllm bench serve``'s ShareGPT loader does.

    The rows are shuffled with the scenario's seed; a row's first user message is the prompt and
    its reference reply's token count the output length (unless ``fixed_output_tokens``, or a
    plain row's ``output_len``). Rows failing vLLM's length limits (prompt or answer under
    ``min_len``, prompt over ``max_prompt_len``, sum over ``max_total_len``) are dropped; if fewer
    than `count` remain, kept rows are reused in order (vLLM oversamples the same way).
    """
    order = rng.permutation(len(rows))
    kept: list[WorkItem] = []
    for i in order:
        row = rows[int(i)]
        turns = conversation_turns(row)
        if not turns:
            continue
        prompt, reply = turns[0]
        fixed = source.fixed_output_tokens or (reply is None and "output_len" not in row)
        if fixed:
            out = output_tokens
        elif "output_len" in row:
            out = int(row["output_len"])
        else:
            assert reply is not None
            out = count_tokens(reply)
        n_in = count_tokens(prompt)
        if n_in < source.min_len or n_in > source.max_prompt_len or n_in + out > source.max_total_len:
            continue
        if not fixed and out < source.min_len:
            continue
        kept.append(WorkItem(prompt=prompt, input_tokens=n_in, output_tokens=out))
        if len(kept) >= count:
            break
    if not kept:
        raise WorkloadError(
            "no dataset row passes the length limits (min_len, max_prompt_len, max_total_len)"
        )
    return [kept[i % len(kept)] for i in range(count)]


def task_prompts(task_names: Sequence[str]) -> list[str]:
    """The prompt text of every document of bundled lm-eval tasks (their `doc_to_text` rendered)."""
    import jinja2
    import yaml

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    out: list[str] = []
    for name in task_names:
        folder = TASKS_DIR / name
        config_path = folder / f"{name}.yaml"
        if not config_path.exists():
            known = sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
            raise WorkloadError(f"no bundled task {name!r}: known are {', '.join(known)}")
        config = yaml.safe_load(config_path.read_text())
        template = env.from_string(str(config["doc_to_text"]))
        for data in sorted(folder.glob("*.jsonl")):
            for line in data.read_text().splitlines():
                if line.strip():
                    out.append(template.render(**json.loads(line)))
    return out


def random_prompt(length: int, token_ids: Sequence[int], rng: np.random.Generator) -> list[int]:
    pool = np.asarray(token_ids)
    return pool[rng.integers(0, len(pool), size=length)].tolist()


# ---------------------------------------------------------------------------------------------
# Shapes


def implied_prefix_hit_rate(
    items: Sequence[WorkItem], block_size: int, warmup_requests: int = 0
) -> float | None:
    """Prompt-token hit rate a prefix cache would reach on the measured requests, served in order.

    The first request of each prefix group misses; every later one finds its shared prefix in
    whole blocks of `block_size` tokens (pass vLLM's ``cache_hit_alignment_tokens``: the
    granularity hits land on, which can differ from the KV block size). The first
    `warmup_requests` items are the warm-up: they fill the cache but are not counted, as the
    server's window (from the measured dispatch) does not count them either.
    """
    measured = items[warmup_requests:]
    total = sum(i.input_tokens for i in measured)
    if total == 0:
        return None
    seen = {i.prefix_group for i in items[:warmup_requests] if i.prefix_group is not None}
    hits = 0
    for item in measured:
        if item.prefix_group is None:
            continue
        if item.prefix_group in seen:
            hits += (item.shared_prefix_tokens // block_size) * block_size
        seen.add(item.prefix_group)
    return hits / total


def with_shared_prefixes(
    items: Sequence[WorkItem], prefix: PrefixSpec, token_ids: Sequence[int], rng: np.random.Generator
) -> list[WorkItem]:
    """Each token-id item gets one of `prefix.groups` shared prefixes (round robin) in front.

    The suffix keeps the item's own tokens, so a request's input is prefix + suffix tokens.
    """
    prefixes = [random_prompt(prefix.length, token_ids, rng) for _ in range(prefix.groups)]
    out = []
    for n, item in enumerate(items):
        if not isinstance(item.prompt, list):
            raise WorkloadError("shared prefixes need token-id prompts (prompts.kind: random)")
        g = n % prefix.groups
        out.append(
            WorkItem(
                prompt=prefixes[g] + item.prompt,
                input_tokens=prefix.length + item.input_tokens,
                output_tokens=item.output_tokens,
                prefix_group=g,
                shared_prefix_tokens=prefix.length,
            )
        )
    return out


def load_trace(path: Path, spec: TraceSpec) -> list[tuple[float, int, int, list[int]]]:
    """(send time in s from the first row, input tokens, output tokens, hash ids) per trace row.

    Reads Mooncake JSONL (``timestamp`` ms, ``input_length``, ``output_length``, ``hash_ids``)
    or BurstGPT CSV (``Timestamp`` s, ``Request tokens``, ``Response tokens``); times are sorted,
    shifted to start at 0 and divided by ``spec.speedup``.
    """
    rows: list[tuple[float, int, int, list[int]]] = []
    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            for n, r in enumerate(csv.DictReader(fh), 2):
                try:
                    rows.append(
                        (float(r["Timestamp"]), int(r["Request tokens"]), int(r["Response tokens"]), [])
                    )
                except (KeyError, ValueError) as exc:
                    raise WorkloadError(
                        f"{path}:{n}: BurstGPT row needs Timestamp, Request tokens, Response tokens ({exc})"
                    ) from None
    else:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                rows.append(
                    (
                        float(r["timestamp"]) / 1000.0,
                        int(r["input_length"]),
                        int(r["output_length"]),
                        list(r.get("hash_ids", [])),
                    )
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise WorkloadError(
                    f"{path}:{n}: Mooncake row needs timestamp, input_length, output_length ({exc})"
                ) from None
    if not rows:
        raise WorkloadError(f"{path}: the trace has no rows")
    rows.sort(key=lambda r: r[0])
    if spec.max_requests is not None:
        rows = rows[: spec.max_requests]
    t0 = rows[0][0]
    return [((t - t0) / spec.speedup, i, o, h) for t, i, o, h in rows]


def trace_items(
    rows: Sequence[tuple[float, int, int, list[int]]], token_ids: Sequence[int], seed: int
) -> list[WorkItem]:
    """Token-id requests at the trace's send times; rows sharing Mooncake hash ids share those blocks.

    Each hash id stands for one block of 512 tokens, drawn once from a generator seeded by
    (seed, id), so two requests with the same leading hash ids have the same leading tokens.
    """
    blocks: dict[int, list[int]] = {}
    out = []
    rng = np.random.default_rng(seed)
    for at, n_in, n_out, hashes in rows:
        prompt: list[int] = []
        for h in hashes:
            if len(prompt) >= n_in:
                break
            if h not in blocks:
                blocks[h] = random_prompt(MOONCAKE_BLOCK_TOKENS, token_ids, np.random.default_rng([seed, h]))
            prompt.extend(blocks[h])
        if len(prompt) < n_in:
            prompt.extend(random_prompt(n_in - len(prompt), token_ids, rng))
        out.append(WorkItem(prompt=prompt[:n_in], input_tokens=n_in, output_tokens=n_out, at_s=at))
    return out


def build_sessions(
    conv: ConversationSpec,
    count: int,
    mean_user_tokens: int,
    mean_output_tokens: int,
    rng: np.random.Generator,
    make_text: Callable[[int, np.random.Generator], str],
    dataset_rows: Sequence[dict[str, Any]] | None = None,
) -> list[Session]:
    """`count` sessions of `conv.turns` user messages each.

    With a dataset, a session takes the user messages of one multi-turn row (rows with fewer
    turns are topped up with generated text); otherwise each message is `make_text(n, rng)` of
    n tokens drawn from ``conv.user_tokens``. Output lengths are the scenario's.
    """
    sessions = []
    order = rng.permutation(len(dataset_rows)) if dataset_rows else None
    for s in range(count):
        msgs: list[str] = []
        if dataset_rows and order is not None:
            msgs = [u for u, _ in conversation_turns(dataset_rows[int(order[s % len(order)])])][: conv.turns]
        lengths = sample_lengths(conv.user_tokens, mean_user_tokens, conv.turns - len(msgs), rng)
        msgs += [make_text(n, rng) for n in lengths]
        sessions.append(
            Session(index=s, user_messages=tuple(msgs), output_tokens=(mean_output_tokens,) * conv.turns)
        )
    return sessions


USER, ASSISTANT = "User: ", "Assistant:"


def render_turn(history: Sequence[tuple[str, str]], user_message: str) -> str:
    """The completion prompt of one turn: every earlier (user, reply) pair, then the new message.

    Earlier turns are rendered byte-for-byte as they were sent, plus the reply, so each turn's
    prompt starts with the previous turn's prompt and a prefix cache can serve it.
    """
    parts = [f"{USER}{u}\n{ASSISTANT}{r}\n" for u, r in history]
    parts.append(f"{USER}{user_message}\n{ASSISTANT}")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# One scenario


@dataclass(frozen=True)
class WorkloadShape:
    """The fields a workload depends on: a point's lengths and its `workload` section."""

    input_tokens: int
    output_tokens: int
    num_requests: int
    warmup_requests: int = 0
    prompts: PromptSource | None = None
    prefix: PrefixSpec | None = None
    conversation: ConversationSpec | None = None
    trace: TraceSpec | None = None


def build_workload(
    shape: WorkloadShape,
    seed: int,
    token_ids: Sequence[int],
    count_tokens: Callable[[str], int],
    make_text: Callable[[int, np.random.Generator], str],
    base_dir: Path | None = None,
    block_size: int = 16,
) -> Workload:
    # block_size: the token granularity prefix-cache hits land on (for the implied hit rate)
    """Every request of one scenario, warm-up first (``shape.warmup_requests`` of them).

    For a multi-turn scenario the result holds sessions instead (warm-up sessions first).
    `seed` should already be the scenario's own (suite seed and scenario name), so two
    scenarios never draw the same prompts.
    """
    rng = np.random.default_rng(seed)
    source = shape.prompts or PromptSource()
    total = shape.warmup_requests + shape.num_requests
    if shape.conversation is not None:
        rows = (
            read_dataset(resolve_path(source.path, base_dir))
            if source.kind == "dataset" and source.path
            else None
        )
        if source.kind == "tasks":
            raise WorkloadError("multi-turn scenarios take `random` or `dataset` prompts")
        sessions = build_sessions(
            shape.conversation, total, shape.input_tokens, shape.output_tokens, rng, make_text, rows
        )
        return Workload(sessions=sessions)
    if shape.trace is not None:
        rows_t = load_trace(resolve_path(shape.trace.path, base_dir), shape.trace)
        items = trace_items(rows_t, token_ids, seed)
        return Workload(
            items=items, notes=[f"trace replay of {len(items)} requests at {shape.trace.speedup}x"]
        )
    if source.kind == "random":
        n_in = sample_lengths(source.input_len, shape.input_tokens, total, rng)
        n_out = sample_lengths(source.output_len, shape.output_tokens, total, rng)
        items = [
            WorkItem(prompt=random_prompt(i, token_ids, rng), input_tokens=i, output_tokens=o)
            for i, o in zip(n_in, n_out, strict=True)
        ]
    elif source.kind == "dataset":
        assert source.path is not None
        items = dataset_items(
            source,
            read_dataset(resolve_path(source.path, base_dir)),
            total,
            shape.output_tokens,
            count_tokens,
            rng,
        )
    else:
        texts = task_prompts(source.tasks)
        order = rng.permutation(len(texts))
        items = [
            WorkItem(
                prompt=texts[int(order[k % len(order)])],
                input_tokens=count_tokens(texts[int(order[k % len(order)])]),
                output_tokens=shape.output_tokens,
            )
            for k in range(total)
        ]
    implied = None
    if shape.prefix is not None:
        items = with_shared_prefixes(items, shape.prefix, token_ids, rng)
        implied = implied_prefix_hit_rate(items, block_size, shape.warmup_requests)
    return Workload(items=items, implied_prefix_hit_rate=implied)
