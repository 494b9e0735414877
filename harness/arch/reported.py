"""Published scores a preset's lm-eval run should reproduce, and measured minus reported.

The scores live beside each preset's config in ``harness/presets/<name>/reported.json``,
each with its source and settings. Only figures that could be checked are shipped: the
Open LLM Leaderboard v1 numbers for Mistral-7B-v0.1 (all six tasks) and Llama-2-13b-hf
(the four original tasks). The other hub presets carry none rather than a guess; add a
file with the same fields to give them some.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from harness.model.presets import ModelPreset
from harness.record.analytics import ReportedComparison
from harness.record.run_record import TaskResult


class ReportedScore(BaseModel):
    """One published score, with what it takes to reproduce it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str = Field(description="lm-eval task name, as in suites/standard.yaml.")
    num_fewshot: int
    metric: str = Field(description="lm-eval metric name without the filter, e.g. 'acc_norm'.")
    value: float = Field(ge=0.0, le=1.0, description="Score as a fraction.")
    source: str
    url: str | None = None
    settings: str = Field(description="Evaluation settings of the published figure.")


def reported_scores(preset: ModelPreset | str) -> tuple[ReportedScore, ...]:
    """The published scores shipped for a preset (empty when none are)."""
    name = preset if isinstance(preset, str) else preset.name
    path = Path(str(resources.files("harness") / "presets" / name / "reported.json"))
    if not path.is_file():
        return ()
    data = json.loads(path.read_text())
    return tuple(ReportedScore.model_validate(s) for s in data.get("scores", []))


def _stderr_key(key: str) -> str:
    # lm-eval names a metric's standard error "<metric>_stderr,<filter>".
    name, sep, filt = key.partition(",")
    return f"{name}_stderr{sep}{filt}"


def measured_value(result: TaskResult, metric: str) -> tuple[float | None, float | None]:
    """The run's value of `metric` (without filter) for one task, and its standard error.

    lm-eval keys metrics as "<metric>,<filter>"; the leaderboard scored unfiltered answers and
    GSM8K's strict match, so those come first, then the run's headline, then any filter.
    """
    candidates = {k: v for k, v in result.metrics.items() if k.split(",")[0] == metric and v is not None}
    for key in (metric, f"{metric},none", f"{metric},strict-match"):
        if key in candidates:
            return candidates[key], result.metrics.get(_stderr_key(key))
    if result.metric.split(",")[0] == metric:
        return result.value, result.stderr
    for key, value in candidates.items():
        return value, result.metrics.get(_stderr_key(key))
    return None, None


def reported_vs_measured(
    preset: ModelPreset | str, accuracy: Mapping[str, TaskResult]
) -> dict[str, ReportedComparison]:
    """For every task both measured and published: the two values and measured − reported."""
    out: dict[str, ReportedComparison] = {}
    for score in reported_scores(preset):
        result = accuracy.get(score.task)
        if result is None:
            continue
        measured, stderr = measured_value(result, score.metric)
        notes = []
        if measured is None:
            notes.append(f"the run has no {score.metric} for {score.task}")
        if result.num_fewshot != score.num_fewshot:
            notes.append(f"shots differ: measured {result.num_fewshot}, published {score.num_fewshot}")
        out[score.task] = ReportedComparison(
            task=score.task,
            metric=score.metric,
            reported=score.value,
            measured=measured,
            measured_stderr=stderr,
            delta=None if measured is None else measured - score.value,
            num_fewshot_reported=score.num_fewshot,
            num_fewshot_measured=result.num_fewshot,
            comparable=measured is not None and result.num_fewshot == score.num_fewshot,
            note="; ".join(notes) or None,
            source=score.source,
            settings=score.settings,
        )
    return out
