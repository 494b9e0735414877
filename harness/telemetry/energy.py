"""The record's energy figures, built from the meter's windows; pure builders.

The pieces of GPU energy live apart (issue 15):

* :mod:`harness.telemetry.meter`: :class:`NvmlGpuMeter`, windows over NVML (the method);
* :mod:`harness.telemetry.nvml`: GPU provenance (:func:`describe_gpus`) beside the NVML calls;
* :mod:`harness.telemetry.steady`: which interval a figure covers (measured interval, steady
  state), from per-request timings;
* this module: :class:`~harness.record.run_record.ScenarioEnergy` (one
  :class:`~harness.record.run_record.EnergyValue` per window, each stored once) and
  :class:`~harness.record.run_record.AccuracyEnergy`, carrying the one energy value type readers
  use instead of re-deriving J/token.

A scenario's headline energy is that of its **measured interval**, from the first measured send
to the last measured completion, over the output tokens of the measured requests: the window the
tokens come from. The whole scenario window (warm-up and prompt building included) is the
scenario's own meter reading (its ``resources``); readers derive ``gross`` from it. Prefill energy is charged to the output tokens, as ML.ENERGY does.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.record.energy import window_value
from harness.record.run_record import (
    AccuracyEnergy,
    EnergyValue,
    EnergyWindow,
    PhaseResources,
    ScenarioEnergy,
    TaskResult,
    Unmeasured,
)
from harness.telemetry.meter import NvmlGpuMeter
from harness.telemetry.nvml import describe_gpus, gpu_environment
from harness.telemetry.steady import Span, SteadySpan, measured_interval, steady_state_window, tokens_between
from harness.telemetry.window import WindowEnergy

__all__ = [
    "GPU_SAMPLES_FILE",
    "NvmlGpuMeter",
    "Span",
    "SteadySpan",
    "WindowEnergy",
    "accuracy_energy",
    "correct_samples",
    "describe_gpus",
    "energy_value",
    "gpu_environment",
    "measured_interval",
    "scenario_energy",
    "steady_state_energy",
    "steady_state_window",
    "tokens_between",
]

GPU_SAMPLES_FILE = "telemetry/gpu_samples.parquet"


def _join(*reasons: str | None) -> str | None:
    return "; ".join(r for r in reasons if r) or None


def energy_value(
    window: EnergyWindow,
    result: WindowEnergy,
    span: Span | None = None,
    *,
    duration_s: float | None = None,
    output_tokens: float | None = None,
    requests: int | None = None,
    samples: int | None = None,
    correct: float | None = None,
    extra_low_confidence: str | None = None,
) -> EnergyValue:
    """The :class:`~harness.record.run_record.EnergyValue` of one meter window (span: its place in the scenario)."""
    tel = result.gpu
    if duration_s is None:
        duration_s = span.duration_s if span is not None else (tel.duration_s if tel is not None else None)
    return EnergyValue.derive(
        window,
        result.energy_j,
        duration_s,
        reason=result.why,
        source=tel.energy_source if tel is not None else None,
        low_confidence_reason=_join(result.low_confidence_reason, extra_low_confidence),
        idle_power_w=tel.idle_power_w if tel is not None else None,
        start_s=span.start_s if span is not None else None,
        end_s=span.end_s if span is not None else None,
        output_tokens=output_tokens if output_tokens is not None else (span.output_tokens if span else None),
        requests=requests if requests is not None else (span.requests if span else None),
        samples=samples,
        correct_samples=correct,
    )


def _phase_result(phase: PhaseResources) -> WindowEnergy:
    reason = phase.energy or (phase.gpu.energy if phase.gpu is not None else None)
    if phase.energy_j is None and reason is None:
        reason = Unmeasured(reason="no GPU telemetry for this phase")
    return WindowEnergy(phase.energy_j, reason, phase.gpu)


def scenario_energy(
    phase: PhaseResources,
    output_tokens: int,
    steady_state: EnergyValue | None = None,
    steady_state_reason: str | None = None,
    *,
    measured: tuple[Span, WindowEnergy] | None = None,
    measured_reason: str | None = None,
    completed: int | None = None,
) -> ScenarioEnergy:
    """A scenario's energy: headline over its measured interval, gross over its whole window.

    Args:
        phase: the scenario window (``TelemetrySession.end_window``): warm-up included.
        output_tokens: output tokens of the measured requests.
        measured: the measured interval and the meter's figures over it.
        measured_reason: why ``measured`` is missing, where it is.
        completed: measured requests completed (for J/request).
    """
    gross = window_value(phase, output_tokens, completed)  # not stored: derived from `phase` by readers
    if measured is not None:
        span, result = measured
        head = energy_value("measured", result, span, output_tokens=output_tokens, requests=completed)
    else:
        why = measured_reason or "no per-request timeline: only the whole window (with warm-up) was measured"
        head = EnergyValue.derive(
            "measured",
            None,
            None,
            reason=gross.reason or why,
            output_tokens=output_tokens,
            requests=completed,
        )
    return ScenarioEnergy(
        measured=head,
        steady_state=steady_state,
        steady_state_reason=steady_state_reason,
    )


def steady_state_energy(span: Span, result: WindowEnergy) -> EnergyValue:
    """The steady-state value from its span and the meter's :meth:`~NvmlGpuMeter.interval` result."""
    return energy_value("steady_state", result, span, extra_low_confidence=span.low_confidence_reason)


def correct_samples(tasks: Sequence[TaskResult]) -> tuple[float | None, str | None]:
    """Sum of ``n_samples x value`` over tasks whose headline score is a proportion of correct answers.

    Returns (count, note): the note names the tasks left out (a perplexity, a score where lower is
    better, a value outside 0..1), or why there is no count at all.
    """
    total, used, left = 0.0, 0, []
    for t in tasks:
        if t.n_samples is None:  # lm-eval did not say how many documents it evaluated
            left.append(f"{t.task} (no sample count)")
        elif t.higher_is_better and 0.0 <= t.value <= 1.0 and t.n_samples > 0:
            total += t.n_samples * t.value
            used += 1
        else:
            left.append(f"{t.name} ({t.metric} is not a proportion correct)")
    if not used:
        return None, "no task scores a proportion of correct answers" + (
            f": {', '.join(left)}" if left else ""
        )
    return total, (f"left out: {', '.join(left)}" if left else None)


def accuracy_energy(
    phase: PhaseResources, n_samples: int, tasks: Sequence[TaskResult] | None = None
) -> AccuracyEnergy:
    """The accuracy phase's energy per evaluated sample and per correct sample, from its window.

    lm-eval sends every task's requests in one pass, so the window is shared by the tasks: the
    per-correct figure is the window's energy over the correct answers of all of them.
    """
    correct, note = correct_samples(tasks) if tasks is not None else (None, "no task results")
    value = energy_value("accuracy", _phase_result(phase), samples=n_samples, correct=correct)
    tel = phase.gpu
    return AccuracyEnergy(
        energy_j=value.energy_j,
        energy_source=value.source,
        energy=Unmeasured(reason=value.reason) if value.reason else None,
        energy_low_confidence=value.confidence == "low",
        duration_s=value.duration_s if value.duration_s is not None else phase.duration_s,
        avg_power_w=value.avg_power_w,
        n_samples=n_samples,
        energy_per_sample_j=value.energy_per_sample_j,
        energy_above_idle_j=tel.energy_above_idle_j if tel is not None else None,
        energy_per_sample_above_idle_j=(
            tel.energy_above_idle_j / n_samples
            if tel is not None and tel.energy_above_idle_j is not None and n_samples > 0
            else None
        ),
        correct_samples=correct,
        energy_per_correct_sample_j=value.energy_per_correct_sample_j,
        correct_reason=note,
        value=value,
    )
