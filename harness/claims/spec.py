"""The claims registry's schema: each claim, its source, the runs that test it and its decision rule.

The registry is data (``harness/claims/registry.yaml``); this module only says what a valid
entry looks like, so a typo in the file fails at load with the claim and field named.
A claim has *parts* (e.g. KV memory and quality); each part lists *checks* in order of
preference: the real models first (``scope: real``, usually on a GPU), then the tiny family
models that share the real model's KV layout (``scope: mechanism``, on a CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunRef(_Spec):
    """Which runs a side of a comparison reads: the latest ok record of this model (and variant)."""

    model: str = Field(description="Model preset name as the record stores it (model.preset).")
    variant: str | None = Field(
        default=None, description="Suite variant name; unset: a run without variants or the baseline variant."
    )

    def label(self) -> str:
        return self.model + (f"@{self.variant}" if self.variant else "")


class AccuracyNotWorse(_Spec):
    """Per task, candidate − reference accuracy on the same documents (paired where both sample
    logs exist): holds when every task's 95 % lower bound is at least ``-margin``, does not hold
    when any task's upper bound is below ``-margin``, else inconclusive."""

    kind: Literal["accuracy_not_worse"]
    candidate: RunRef
    reference: RunRef
    tasks: list[str] | None = Field(default=None, description="Tasks to compare; unset: every common task.")
    margin: float = Field(
        default=0.01, ge=0, le=1, description="Accuracy loss (absolute, 0..1) still counted as matching."
    )


class AnswersUnchanged(_Spec):
    """Per task, the share of documents whose correctness changed between reference and candidate
    (needs both sample logs): holds when it is at most ``max_changed_frac`` on every task, does not
    hold when an exact McNemar test finds a change (p < ``alpha``) or the share exceeds twice the
    allowance, else inconclusive."""

    kind: Literal["answers_unchanged"]
    candidate: RunRef
    reference: RunRef
    max_changed_frac: float = Field(
        default=0.02, ge=0, le=1, description="Documents whose correctness may flip (numerics), 0..1."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of the McNemar test.")


class SpeedRatio(_Spec):
    """candidate / reference of one figure of one scenario, against a bound.

    ``tpot_ms``: per-request decode time, Welch's test of candidate against ``bound × reference``
    (holds when significantly on the claimed side at ``alpha``, does not hold when significantly
    on the other, else inconclusive). A point figure (``output_throughput``,
    ``energy_per_token_j``) has no spread: the verdict needs the ratio to clear the bound by
    ``tolerance``, else inconclusive.
    """

    kind: Literal["speed_ratio"]
    candidate: RunRef
    reference: RunRef
    scenario: str = Field(description="Scenario name present in both runs.")
    figure: Literal["tpot_ms", "output_throughput", "energy_per_token_j"] = Field(
        description="Figure compared: per-request TPOT (ms), output tok/s, or J per output token."
    )
    at_most: float | None = Field(default=None, gt=0, description="The claim: ratio ≤ this.")
    at_least: float | None = Field(default=None, gt=0, description="The claim: ratio ≥ this.")
    tolerance: float = Field(
        default=0.05, ge=0, lt=1, description="Relative margin a point figure must clear the bound by."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="Significance level of Welch's test.")

    @model_validator(mode="after")
    def _one_bound(self) -> SpeedRatio:
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError("set exactly one of at_most or at_least")
        return self


class KvWindowBounded(_Spec):
    """KV cache per sequence against context length: the windowed model's measured cache stays at
    or under ``window + slack_blocks × block_size`` tokens at every sweep point past that bound,
    while the full-attention control's grows past it (showing the gauge sees growth). Needs at
    least ``min_points_past`` such points measured on both models, else inconclusive."""

    kind: Literal["kv_window_bounded"]
    windowed: RunRef
    control: RunRef
    scenario_prefix: str = Field(
        default="ctx-", description="The sweep's scenarios: names starting with this."
    )
    slack_blocks: int = Field(
        default=2, ge=0, description="Blocks over the window still counted as bounded (block rounding)."
    )
    min_points_past: int = Field(
        default=2, ge=1, description="Sweep points past the bound needed for a verdict."
    )


class KvBytesRatio(_Spec):
    """Measured KV bytes per token (engine KV bytes ÷ KV capacity in tokens) of the candidate over
    the reference's, or over the candidate's own multi-head-attention equivalent from its
    architecture when no reference is given: holds when at most ``at_most``. Allocations are
    exact, so only missing figures make it inconclusive."""

    kind: Literal["kv_bytes_ratio"]
    candidate: RunRef
    reference: RunRef | None = Field(
        default=None, description="Unset: the candidate's MHA of the same shape (architecture arithmetic)."
    )
    at_most: float = Field(gt=0, description="The claim: measured ratio ≤ this.")
    context_tokens: int = Field(
        default=2048, ge=1, description="Context length for the max-concurrent-sequences figure."
    )


Rule = Annotated[
    AccuracyNotWorse | AnswersUnchanged | SpeedRatio | KvWindowBounded | KvBytesRatio,
    Field(discriminator="kind"),
]

Need = Literal["gpu", "hub-weights"]


class Check(_Spec):
    scope: Literal["real", "mechanism"] = Field(
        description="real: the claim's own models; mechanism: tiny models with the same KV layout."
    )
    suite: str = Field(description="Suite whose records the check reads (record suite.name).")
    needs: list[Need] = Field(
        default_factory=list, description="What the runs need, said when they are missing."
    )
    rule: Rule
    note: str | None = Field(default=None, description="What this check does and does not show.")


class Part(_Spec):
    name: str = Field(description="Short name of what this part of the claim is about, e.g. 'kv memory'.")
    checks: list[Check] = Field(min_length=1, description="In order of preference: real before mechanism.")


class Source(_Spec):
    title: str = Field(description="Paper or model card.")
    url: str = Field(pattern=r"^https?://", description="Link to it.")


class Claim(_Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Stable identifier (CLI, page anchors).")
    statement: str = Field(description="The claim in the source's words, or close to them.")
    source: Source
    measures: str = Field(description="What measures it, in words (the figures compared).")
    parts: list[Part] = Field(min_length=1)


class Registry(_Spec):
    claims: list[Claim] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Registry:
        ids = [c.id for c in self.claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate claim ids: {', '.join(dupes)}")
        return self


class RegistryError(ValueError):
    """A registry file that cannot be read or does not match the schema (the message names where)."""


def load_registry(path: Path | None = None) -> Registry:
    """The claims registry at `path` (default: the shipped one)."""
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: {exc}") from exc
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = ".".join(str(p) for p in loc)
            if len(loc) >= 2 and loc[0] == "claims" and isinstance(loc[1], int):
                claims = (data or {}).get("claims") or []
                if loc[1] < len(claims) and isinstance(claims[loc[1]], dict):
                    where = f"claim {claims[loc[1]].get('id', loc[1])!r}: " + ".".join(
                        str(p) for p in loc[2:]
                    )
            lines.append(f"{where}: {err['msg']}")
        raise RegistryError(f"{path}: " + "; ".join(lines)) from exc
