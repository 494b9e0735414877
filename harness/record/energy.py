"""The one energy value type of the record: joules over a named window, and what they buy.

Every energy figure a reader compares (the gate, the dashboard, notebooks) is an
:class:`EnergyValue`: the energy of one window, where it came from, how far to trust it, and the
per-token, per-request and per-sample figures derived from it once, here, so that no reader
re-derives J/token from a different window or token count.

This module imports nothing from :mod:`harness.record.run_record` (which re-exports it), so the two can
evolve apart; it keeps the same model config (frozen, unknown keys rejected on writing).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EnergySource = Literal["counter", "power_integration", "mixed"]

EnergyWindow = Literal["measured", "scenario_window", "steady_state", "accuracy", "idle"]

WINDOW_NOTES: dict[str, str] = {
    "measured": (
        "first measured send to last measured completion; prefill energy is charged to the output "
        "tokens, as ML.ENERGY does"
    ),
    "scenario_window": "the whole scenario window: includes warm-up requests and prompt building (gross)",
    "steady_state": (
        "ML.ENERGY's steady state: from the moment the target number of requests have all received "
        "their first token to the first completion after which the batch can no longer be refilled"
    ),
    "accuracy": "the whole accuracy phase (every task); lm-eval's requests of all tasks share it",
    "idle": "engine loaded, no requests, after power settled",
}


class EnergyValue(BaseModel):
    """Energy of one window and the figures derived from it; null figures carry ``reason``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: EnergyWindow = Field(description="Which window the joules cover (see window_note).")
    window_note: str | None = Field(default=None, description="What the window includes, in words.")
    start_s: float | None = Field(
        default=None, description="Window start, seconds after the scenario's first measured send."
    )
    end_s: float | None = Field(
        default=None, description="Window end, seconds after the scenario's first measured send."
    )
    duration_s: float | None = Field(default=None, description="Window length in seconds.")
    energy_j: float | None = Field(description="Gross GPU energy over the window, joules (all GPUs).")
    reason: str | None = Field(default=None, description="Why energy_j is null, where it is.")
    source: EnergySource | None = Field(
        default=None, description="'counter' (NVML energy counter), 'power_integration' or 'mixed'."
    )
    confidence: Literal["high", "low"] | None = Field(
        default=None, description="'low' where low_confidence_reason applies; null with energy_j."
    )
    low_confidence_reason: str | None = None
    avg_power_w: float | None = Field(default=None, description="energy_j / duration_s.")
    idle_power_w: float | None = Field(default=None, description="Idle baseline subtracted below.")
    energy_above_idle_j: float | None = Field(
        default=None, description="energy_j - idle_power_w x duration_s."
    )
    output_tokens: float | None = Field(default=None, description="Output tokens the window's energy buys.")
    requests: int | None = Field(default=None, description="Completed requests the window's energy buys.")
    samples: int | None = Field(default=None, description="Evaluated samples (accuracy windows).")
    correct_samples: float | None = Field(
        default=None, description="Sum over tasks of n_samples x score, for scores that are proportions."
    )
    energy_per_output_token_j: float | None = None
    output_tokens_per_j: float | None = None
    energy_per_output_token_above_idle_j: float | None = None
    energy_per_request_j: float | None = None
    energy_per_sample_j: float | None = None
    energy_per_correct_sample_j: float | None = None

    @classmethod
    def derive(
        cls,
        window: EnergyWindow,
        energy_j: float | None,
        duration_s: float | None,
        *,
        reason: str | None = None,
        source: EnergySource | None = None,
        low_confidence_reason: str | None = None,
        idle_power_w: float | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        output_tokens: float | None = None,
        requests: int | None = None,
        samples: int | None = None,
        correct_samples: float | None = None,
    ) -> EnergyValue:
        """The value with every derived figure computed once; nulls where undefined."""
        ok = energy_j is not None and math.isfinite(energy_j)
        e = energy_j if ok else None
        if e is None and reason is None:
            reason = "no energy figure for this window"
        above = (
            e - idle_power_w * duration_s
            if e is not None and idle_power_w is not None and duration_s
            else None
        )
        return cls(
            window=window,
            window_note=WINDOW_NOTES.get(window),
            start_s=start_s,
            end_s=end_s,
            duration_s=duration_s,
            energy_j=e,
            reason=None if e is not None else reason,
            source=source if e is not None else None,
            confidence=None if e is None else ("low" if low_confidence_reason else "high"),
            low_confidence_reason=low_confidence_reason if e is not None else None,
            avg_power_w=_div(e, duration_s),
            idle_power_w=idle_power_w,
            energy_above_idle_j=above,
            output_tokens=output_tokens,
            requests=requests,
            samples=samples,
            correct_samples=correct_samples,
            energy_per_output_token_j=_div(e, output_tokens),
            output_tokens_per_j=_div(output_tokens, e),
            energy_per_output_token_above_idle_j=_div(above, output_tokens),
            energy_per_request_j=_div(e, requests),
            energy_per_sample_j=_div(e, samples),
            energy_per_correct_sample_j=_div(e, correct_samples),
        )

    @property
    def measured(self) -> bool:
        return self.energy_j is not None

    def per_output_token_change(self, other: EnergyValue) -> float | None:
        """Relative change of J/token from ``other`` to this value (0.1 = 10 % more per token)."""
        a, b = self.energy_per_output_token_j, other.energy_per_output_token_j
        return a / b - 1.0 if a is not None and b else None


ScenarioWindow = Literal["measured", "scenario_window", "steady_state"]


def scenario_energy_value(scenario: Any, window: ScenarioWindow = "measured") -> EnergyValue | None:
    """The one accessor of a scenario's energy (a ``ScenarioResult``): every reader goes through it.

    Args:
        window: ``'measured'`` (the default: the headline every reader compares), ``'scenario_window'``
            (gross, warm-up included) or ``'steady_state'`` (ML.ENERGY's).

    Each window's value is stored once: ``energy.measured`` and ``energy.steady_state``, and the
    gross window as the scenario's own meter reading (``resources``), from which it is derived
    (:func:`window_value`; records before schema v4 may still carry a stored ``energy.gross``). For the headline, a record with no measured interval
    (a migrated v1 record, or one without a per-request timeline) gives its whole window,
    labelled ``window='scenario_window'``, so a reader never compares a gross figure with a
    measured-interval one unawares; a record without an energy section gives its resources'
    window energy, labelled the same way. None where the scenario has neither.
    """
    energy = getattr(scenario, "energy", None)
    if window == "steady_state":
        return getattr(energy, "steady_state", None)
    if window == "measured":
        measured = getattr(energy, "measured", None)
        if measured is not None:
            return measured  # type: ignore[no-any-return]
    gross = getattr(energy, "gross", None)
    if gross is not None:
        return gross  # type: ignore[no-any-return]
    resources = getattr(scenario, "resources", None)
    if resources is None:
        return None
    return window_value(
        resources, getattr(scenario, "total_output_tokens", None), getattr(scenario, "completed", None)
    )


def window_value(resources: Any, output_tokens: float | None, requests: int | None) -> EnergyValue:
    """The whole scenario window's energy (gross: warm-up and prompt building included), derived from
    the window's one meter reading (a ``PhaseResources``): stored once there, never copied."""
    gpu = getattr(resources, "gpu", None)
    energy_j = getattr(resources, "energy_j", None)
    unmeasured = getattr(resources, "energy", None) or getattr(gpu, "energy", None)
    reason = getattr(unmeasured, "reason", None)
    if energy_j is None and reason is None:
        reason = "no GPU telemetry for this phase"
    return EnergyValue.derive(
        "scenario_window",
        energy_j,
        getattr(gpu, "duration_s", None) or getattr(resources, "duration_s", None),
        reason=reason,
        source=getattr(gpu, "energy_source", None),
        low_confidence_reason=getattr(gpu, "low_confidence_reason", None),
        idle_power_w=getattr(gpu, "idle_power_w", None),
        output_tokens=output_tokens,
        requests=requests,
    )


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


V1_GROSS_NOTE = (
    "v1 record: only the whole scenario window (warm-up and prompt building included) was measured; "
    "it is kept as 'gross'"
)
V1_STEADY_NOTE = (
    "v1 steady state: from the target concurrency first sent to its first drop, not ML.ENERGY's definition"
)


_V1_DERIVED = (
    "avg_power_w",
    "energy_per_output_token_j",
    "output_tokens_per_j",
    "energy_above_idle_j",
    "energy_per_output_token_above_idle_j",
)


def migrate_v1_scenario_energy(energy: dict[str, Any]) -> dict[str, Any]:
    """A v1 ``ScenarioEnergy`` (as JSON data) in today's shape; pure, for the record migration.

    In v1 the flat figures covered the whole scenario window, warm-up included; today they are
    the measured interval's. So the v1 figures move to ``gross`` (window ``'scenario_window'``),
    the flat figures and ``measured`` become null with the reason, and a v1 steady state keeps
    its figures but is marked low-confidence with the definition it used.
    """
    out = dict(energy)
    reason = (energy.get("energy") or {}).get("reason")
    out["gross"] = EnergyValue.derive(
        "scenario_window",
        energy.get("energy_j"),
        energy.get("duration_s"),
        reason=reason,
        source=energy.get("energy_source"),
        low_confidence_reason="v1 record flagged it low-confidence"
        if energy.get("energy_low_confidence")
        else None,
        output_tokens=energy.get("output_tokens"),
    ).model_dump(mode="json")
    for key in _V1_DERIVED:  # figures v1 stored are kept as stored, not recomputed
        if energy.get(key) is not None:
            out["gross"][key] = energy[key]
    for key in (
        "energy_j",
        "energy_source",
        "duration_s",
        "avg_power_w",
        "energy_per_output_token_j",
        "output_tokens_per_j",
        "energy_above_idle_j",
        "energy_per_output_token_above_idle_j",
    ):
        out[key] = None
    out["energy_low_confidence"] = False
    out["energy"] = {"reason": reason or V1_GROSS_NOTE}
    out["measured"] = None
    steady = energy.get("steady_state")
    if steady is not None:
        why = "; ".join(r for r in (steady.get("low_confidence_reason"), V1_STEADY_NOTE) if r)
        out["steady_state"] = {**steady, "energy_low_confidence": True, "low_confidence_reason": why}
    return out


_V2_FLAT = (
    "energy_j",
    "energy_source",
    "energy",
    "energy_low_confidence",
    "duration_s",
    "avg_power_w",
    "output_tokens",
    "energy_per_output_token_j",
    "output_tokens_per_j",
    "energy_above_idle_j",
    "energy_per_output_token_above_idle_j",
)


def migrate_v2_scenario_energy(energy: dict[str, Any]) -> dict[str, Any]:
    """A v2 ``ScenarioEnergy`` (JSON data) in the v3 shape, where each window is stored once; pure.

    v2 repeated the headline in flat fields beside ``measured`` and the steady state in flat
    fields beside ``steady_state.value``. The values are kept; the copies go. Where a v2 record
    has flat figures but no ``measured`` (a point pooled over repeats before v3), the flat figures
    were the pooled measured interval's, and become ``measured``. A v2 steady state without
    ``value`` (migrated from v1) becomes the value its stored figures give.
    """
    out = {k: v for k, v in energy.items() if k not in _V2_FLAT}
    if out.get("measured") is None and energy.get("energy_j") is not None:
        low = bool(energy.get("energy_low_confidence"))
        value = EnergyValue.derive(
            "measured",
            energy.get("energy_j"),
            energy.get("duration_s"),
            source=energy.get("energy_source"),
            low_confidence_reason="low confidence (v2 record: no reason kept)" if low else None,
            output_tokens=energy.get("output_tokens"),
        ).model_dump(mode="json")
        for key in _V1_DERIVED:  # figures v2 stored are kept as stored, not recomputed
            if energy.get(key) is not None:
                value[key] = energy[key]
        out["measured"] = value
    steady = energy.get("steady_state")
    if isinstance(steady, dict):
        out["steady_state"] = _v2_steady_value(steady)
    return out


def _v2_steady_value(steady: dict[str, Any]) -> dict[str, Any]:
    value = steady.get("value")
    if isinstance(value, dict):
        return value
    low = steady.get("low_confidence_reason") or (
        "low confidence (v2 record: no reason kept)" if steady.get("energy_low_confidence") else None
    )
    out = EnergyValue.derive(
        "steady_state",
        steady.get("energy_j"),
        steady.get("duration_s"),
        reason=(steady.get("energy") or {}).get("reason"),
        source=steady.get("energy_source"),
        low_confidence_reason=low,
        start_s=steady.get("start_s"),
        end_s=steady.get("end_s"),
        output_tokens=steady.get("output_tokens"),
    ).model_dump(mode="json")
    for key in _V1_DERIVED:
        if steady.get(key) is not None:
            out[key] = steady[key]
    return out
