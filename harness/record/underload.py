"""What a record keeps about accuracy at load and the batch-invariance probe.

Referenced from :class:`harness.record.run_record.ScenarioResult` through two optional fields
(``accuracy_under_load``, ``invariance``), so a record without them reads as before.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EvalTraffic(_Frozen):
    """The evaluation's requests that ran beside the load generator's (counted by a relay in front
    of the engine, so they are told apart from the load generator's: its latency figures never
    include them)."""

    requests: int = Field(description="HTTP requests lm-eval (and the probe) sent.")
    prompts: int = Field(description="Prompts in them (a batched request carries several).")
    prompt_tokens: int | None = Field(description="Prompt tokens, as the engine's usage reported.")
    completion_tokens: int | None = Field(description="Generated tokens, as the engine's usage reported.")
    failed: int = Field(default=0, description="Requests answered with an error status.")
    during_load_share: float | None = Field(
        description="Share of the answered requests in flight at some moment while the load generator "
        "ran (warm-up included); below 1, part of the evaluation ran on a quieter engine."
    )
    duration_s: float = Field(description="Seconds from the evaluation's start to its end.")


class PairedFigures(_Frozen):
    """One task at one point against the same documents evaluated idle."""

    n: int = Field(description="Documents paired (evaluated both idle and at load).")
    metric: str = Field(description="Per-document metric compared (the headline's, e.g. `acc`).")
    idle_value: float = Field(description="Mean of the metric over the paired documents, idle.")
    load_value: float = Field(description="The same mean at load.")
    flips_better: int = Field(description="Documents that got better at load (0 -> 1 for accuracy).")
    flips_worse: int = Field(description="Documents that got worse at load.")
    p_value: float = Field(description="Two-sided p of no change (see `method`).")
    method: Literal["mcnemar_exact", "sign_flip_permutation"] = Field(
        description="Exact McNemar on 0/1 metrics; a paired sign-flip permutation test otherwise."
    )
    answers_changed_share: float = Field(
        description="Share of documents whose answer changed at all (the chosen choice of a "
        "multiple-choice task, the filtered answer of a generative one), whatever the metric did."
    )
    generated_text_changed_share: float | None = Field(
        default=None, description="Generative tasks: share whose raw generated text changed at all."
    )
    max_abs_delta_loglik: float | None = Field(
        default=None,
        description="Log-likelihood tasks: largest |load - idle| log-likelihood over every continuation, nats.",
    )
    output_type: str = Field(description="`loglikelihood` (choices scored) or `generate_until`.")


class TaskUnderLoad(_Frozen):
    """One task evaluated at one load point."""

    task: str
    metric: str = Field(description="Headline metric with its filter, as the idle TaskResult's.")
    value: float = Field(description="The headline metric at load, lm-eval's own figure.")
    stderr: float | None = Field(description="lm-eval's standard error of `value`.")
    ci95_low: float | None = Field(default=None, description="value - 1.96 stderr, clipped to [0, 1].")
    ci95_high: float | None = Field(default=None, description="value + 1.96 stderr, clipped to [0, 1].")
    n_samples: int | None = Field(description="Documents evaluated at load.")
    samples_path: str | None = Field(description="Per-sample log at load, relative to the run folder.")
    lm_eval_command: str | None = Field(
        default=None, description="The `lm_eval` command (its base_url is the counting relay's)."
    )
    paired: PairedFigures | None = Field(
        default=None, description="Against the idle run's same documents; null: see `reason`."
    )
    reason: str | None = Field(default=None, description="Why `paired` is null, where it is.")


class AccuracyUnderLoad(_Frozen):
    """Accuracy at one load point: the chosen tasks run by lm-eval concurrently with the load."""

    point: str = Field(description="Load point name (`chat@c8`).")
    tasks: list[TaskUnderLoad] = Field(default_factory=list)
    traffic: EvalTraffic | None = Field(default=None, description="The evaluation's own traffic.")
    notes: list[str] = Field(default_factory=list, description="Caveats on these figures.")
    error: str | None = Field(default=None, description="Why the evaluation at load failed, where it did.")


class InvarianceProbe(_Frozen):
    """The same greedy prompts at concurrency 1 (alone) and beside a point's load."""

    prompts: int = Field(description="Prompts compared.")
    output_tokens: int = Field(description="Greedy tokens asked per prompt (max_tokens, ignore_eos).")
    identical: int = Field(description="Prompts whose outputs were identical token for token.")
    identical_share: float = Field(description="identical / prompts.")
    first_divergence: list[int | None] = Field(
        description="Per prompt: the first token position that differed (0-based); null: identical."
    )
    min_first_divergence: int | None = Field(description="Earliest divergence over the prompts.")
    tokens_compared: str = Field(
        description="What was compared: `token_ids` (the engine returned ids) or `token_strings`."
    )
    reference_concurrency: int = Field(default=1, description="Concurrency of the reference outputs.")
    load_concurrency: int | None = Field(description="Load generator's concurrency beside the probe.")
    error: str | None = Field(default=None, description="Why the probe failed, where it did.")
