"""What a scenario sends: prompt sources, length distributions and traffic shapes (pydantic).

These models are the ``prompts``, ``prefix``, ``conversation`` and ``trace`` keys of a
performance scenario. They only describe the workload; :mod:`harness.workloads.build` turns
them into concrete requests (pure, seeded), so ``harness plan`` can say what will be sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LengthDist(_Spec):
    """A distribution of token counts, sampled per request with the scenario's seed.

    ``fixed`` is the scenario's length itself; ``uniform`` follows ``vllm bench serve``'s
    ``--random-range-ratio`` (integers drawn uniformly from ``[floor(L(1-r)), ceil(L(1+r))]``);
    ``normal`` and ``lognormal`` are parameterised by their mean and standard deviation in tokens
    (lognormal's mean and std are those of the lengths, not of their logarithms). Every draw is
    clipped to ``[min_tokens, max_tokens]``.
    """

    kind: Literal["fixed", "uniform", "normal", "lognormal"] = Field(
        default="fixed", description="Distribution family."
    )
    range_ratio: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="uniform: half-width as a fraction of the mean."
    )
    std_tokens: float | None = Field(
        default=None, gt=0, description="normal/lognormal: standard deviation in tokens."
    )
    min_tokens: int = Field(default=1, ge=1, description="Smallest length a draw may take.")
    max_tokens: int | None = Field(default=None, ge=1, description="Largest length a draw may take.")

    @model_validator(mode="after")
    def _needs_std(self) -> LengthDist:
        if self.kind in ("normal", "lognormal") and self.std_tokens is None:
            raise ValueError(f"{self.kind} lengths need `std_tokens`")
        if self.max_tokens is not None and self.max_tokens < self.min_tokens:
            raise ValueError("`max_tokens` is below `min_tokens`")
        return self


class PromptSource(_Spec):
    """Where prompt text comes from.

    * ``random``: token ids of the sampled length from the model's ordinary vocabulary (the
      calibration load of ``vllm bench serve --dataset-name random``; the default).
    * ``dataset``: a JSONL file of ShareGPT-shaped conversations (``conversations: [{from, value}]``)
      or ``{prompt, output_len?}`` rows, filtered as ``vllm bench serve``'s ShareGPT loader does.
    * ``tasks``: prompts rendered from bundled lm-eval tasks (real questions the model can answer).
    """

    kind: Literal["random", "dataset", "tasks"] = Field(default="random", description="Prompt source.")
    path: str | None = Field(
        default=None,
        description="dataset: JSONL file, relative to the suite file (or 'builtin:sharegpt-mini').",
        examples=["builtin:sharegpt-mini", "data/ShareGPT_V3_unfiltered_cleaned_split.jsonl"],
    )
    tasks: list[str] = Field(default_factory=list, description="tasks: bundled task names to render.")
    input_len: LengthDist = Field(default_factory=LengthDist, description="random: input length law.")
    output_len: LengthDist = Field(default_factory=LengthDist, description="random: output length law.")
    fixed_output_tokens: bool = Field(
        default=False,
        description="dataset/tasks: use the scenario's output_tokens for every request instead of "
        "each reference answer's length (vllm bench serve's --sharegpt-output-len).",
    )
    min_len: int = Field(default=4, ge=1, description="dataset: shortest prompt/answer kept (vLLM: 4).")
    max_prompt_len: int = Field(default=1024, ge=1, description="dataset: longest prompt kept (vLLM: 1024).")
    max_total_len: int = Field(
        default=2048, ge=2, description="dataset: longest prompt + answer kept (vLLM: 2048)."
    )

    @model_validator(mode="after")
    def _source_fields(self) -> PromptSource:
        if self.kind == "dataset" and not self.path:
            raise ValueError("a `dataset` prompt source needs `path`")
        if self.kind == "tasks" and not self.tasks:
            raise ValueError("a `tasks` prompt source needs `tasks`")
        return self


class PrefixSpec(_Spec):
    """Shared prefixes: each request starts with one of `groups` prefixes of `length` tokens,
    then its own suffix (vLLM's prefix_repetition dataset, inference-perf's shared_prefix)."""

    groups: int = Field(ge=1, description="Distinct shared prefixes.")
    length: int = Field(ge=1, description="Tokens in each shared prefix.")


class ConversationSpec(_Spec):
    """Multi-turn sessions: each turn sends the whole history so far plus a new user message.

    The scenario's concurrency counts sessions, ``num_requests`` counts sessions too; each
    session sends `turns` requests one after another, waiting `think_time_s` between a reply and
    the next message.
    """

    turns: int = Field(ge=1, description="User turns per session.")
    think_time_s: float = Field(default=0.0, ge=0, description="Pause between a reply and the next turn.")
    user_tokens: LengthDist = Field(
        default_factory=LengthDist, description="Length law of each new user message (mean: input_tokens)."
    )


class TraceSpec(_Spec):
    """Replay of a request trace: (timestamp, input length, output length) rows.

    Mooncake's JSONL layout (``timestamp`` in ms, ``input_length``, ``output_length``) and
    BurstGPT's CSV layout (``Timestamp`` in s, ``Request tokens``, ``Response tokens``) are read;
    send times are divided by `speedup`.
    """

    path: str = Field(description="Trace file relative to the suite file, or 'builtin:trace-mini'.")
    speedup: float = Field(default=1.0, gt=0, description="Time compression: 2.0 replays twice as fast.")
    max_requests: int | None = Field(default=None, ge=1, description="Replay only the first N rows.")


def describe_workload(scenario: object) -> str | None:
    """One line saying what a scenario sends beyond random exact-length prompts, for `harness plan`."""
    parts = []
    trace: TraceSpec | None = getattr(scenario, "trace", None)
    if trace is not None:
        cap = f", first {trace.max_requests} rows" if trace.max_requests else ""
        return (
            f"trace replay of {trace.path} at {trace.speedup}x{cap} (lengths and send times from the trace)"
        )
    prompts: PromptSource | None = getattr(scenario, "prompts", None)
    if prompts is not None:
        if prompts.kind == "dataset":
            out = "fixed output" if prompts.fixed_output_tokens else "output from each reply"
            parts.append(f"dataset {prompts.path} ({out})")
        elif prompts.kind == "tasks":
            parts.append(f"prompts of tasks {', '.join(prompts.tasks)}")
        else:
            laws = [
                f"{name} {d.kind}"
                for name, d in (("input", prompts.input_len), ("output", prompts.output_len))
                if d.kind != "fixed"
            ]
            parts.append("random token ids" + (f" ({', '.join(laws)} lengths)" if laws else ""))
    prefix: PrefixSpec | None = getattr(scenario, "prefix", None)
    if prefix is not None:
        parts.append(f"{prefix.groups} shared prefixes of {prefix.length} tokens")
    conv: ConversationSpec | None = getattr(scenario, "conversation", None)
    if conv is not None:
        parts.append(f"{conv.turns}-turn sessions, {conv.think_time_s} s think time (counts are sessions)")
    return "; ".join(parts) or None


# Bundled workload files (the workloads package's data), by the name a suite gives them.
DATA_DIR = Path(__file__).resolve().parents[1] / "workloads" / "data"
BUILTIN = {
    "builtin:sharegpt-mini": DATA_DIR / "sharegpt_mini.jsonl",
    "builtin:trace-mini": DATA_DIR / "trace_mini.jsonl",
}


class WorkloadError(ValueError):
    """A workload that cannot be built (missing file, bad rows); the message says which."""


def resolve_path(path: str, base_dir: Path | None) -> Path:
    """A builtin name, an absolute path, or a path relative to the suite file's folder."""
    if path in BUILTIN:
        return BUILTIN[path]
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if not p.exists():
        raise WorkloadError(f"workload file {path!r} not found (looked at {p})")
    return p
