"""Analytics that go into every run record, and tables the dashboard charts.

:func:`record_analytics` is what the runner calls once a run has measured what it could;
it never raises (a model this module cannot analyse gets its reason recorded instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.arch.gpus import GpuSpec, match_nvml_name
from harness.arch.report import estimate, preset_facts
from harness.arch.reported import reported_vs_measured
from harness.model.facts import ArchFacts
from harness.model.presets import PRESETS, ModelPreset
from harness.record.analytics import DecodeVsRoofline, RecordAnalytics
from harness.record.run_record import Environment, RunRecord, ScenarioResult, TaskResult


def _hardware(environment: Environment | None) -> tuple[GpuSpec | None, int | None, str | None]:
    """(table entry, NVML memory total, reason when there is no entry)."""
    if environment is None:
        return None, None, "no roofline entry for this hardware (environment unknown)"
    if not environment.gpus:
        cpu = environment.cpu_model or "unknown model"
        return None, None, f"no roofline entry for this hardware (CPU: {cpu})"
    first = environment.gpus[0]
    spec = match_nvml_name(first.name)
    if spec is None:
        return None, None, f"no roofline entry for this hardware (GPU: {first.name})"
    return spec, first.memory_total_bytes, None


def _concurrency_one(performance: Mapping[str, ScenarioResult]) -> tuple[str, ScenarioResult] | None:
    for name, result in performance.items():
        if result.settings.load.concurrency == 1 and result.settings.load.request_rate is None:
            return name, result
    return None


def record_analytics(
    preset: ModelPreset,
    *,
    performance: Mapping[str, ScenarioResult] | None = None,
    accuracy: Mapping[str, TaskResult] | None = None,
    environment: Environment | None = None,
    engine_args: dict[str, Any] | None = None,
) -> RecordAnalytics:
    """The typed ``RunRecord.analytics`` section.

    Args:
        preset: the model measured (``get_preset(name)``; local directories work too).
        performance: the record's scenarios; the first with concurrency 1 and no request
            rate is set against the roofline.
        accuracy: the record's task results, for measured minus reported.
        environment: the record's environment; its first GPU's NVML name picks the roofline
            entry and its memory total replaces the table's.
        engine_args: the engine arguments the run used (``EngineInfo.args``), which override
            the preset's dtype, quantization and tensor-parallel size.
    """
    performance = performance or {}
    facts: ArchFacts | None = None
    arch_reason: str | None = None
    try:
        facts, _ = preset_facts(preset, engine_args)
    except Exception as exc:  # analytics must never fail a run: record why instead
        arch_reason = f"{type(exc).__name__}: {exc}"
    spec, memory, hw_reason = _hardware(environment)
    tp = int((engine_args or {}).get("tensor_parallel_size") or preset.engine.tensor_parallel_size)

    picked = _concurrency_one(performance)
    context = None
    if picked is not None:
        s = picked[1].settings.load
        context = s.input_tokens + s.output_tokens // 2

    roofline = None
    roofline_reason = hw_reason
    if facts is None:
        roofline_reason = roofline_reason or "architecture unknown"
    elif spec is not None:
        roofline = estimate(
            facts, spec, context_tokens=context or 0, tensor_parallel_size=tp, memory_bytes=memory
        )

    decode = None
    if picked is not None and context is not None:
        name, result = picked
        tpot = result.median_tpot_ms
        measured = 1000.0 / tpot if tpot else None
        reasons = []
        if measured is None:
            reasons.append("no median TPOT (fewer than two output tokens per request, or all failed)")
        if roofline is None:
            reasons.append(roofline_reason or "no roofline")
        ceiling = roofline.decode_tokens_per_s if roofline else None
        decode = DecodeVsRoofline(
            scenario=name,
            context_tokens=context,
            measured_tokens_per_s=measured,
            roofline_tokens_per_s=ceiling,
            fraction_of_roofline=measured / ceiling if measured and ceiling else None,
            reason="; ".join(reasons) or None,
        )

    out = RecordAnalytics(
        architecture=facts,
        architecture_reason=arch_reason,
        gpu=spec.key if spec else None,
        roofline=roofline,
        roofline_reason=roofline_reason if roofline is None else None,
        decode=decode,
        reported_vs_measured=reported_vs_measured(preset, accuracy or {}),
    )
    return out


def arch_row(name: str, family: str, f: ArchFacts) -> dict[str, Any]:
    """One row of :func:`arch_table` from a model's facts (a preset's, or a record's ``architecture``).

    Byte counts are at the dtype the engine loads; ``kv_bytes_max_context`` is one sequence at
    ``max_context_tokens`` with the sliding window applied, ``..._no_window`` without it.
    """
    no_window = f.model_copy(update={"sliding_window": None, "windowed_layers": 0})
    return {
        "preset": name,
        "family": family,
        "attention": f.attention,
        "total_params": f.total_params,
        "active_params": f.active_params,
        "num_experts": f.moe.num_experts if f.moe else None,
        "experts_per_token": f.moe.experts_per_token if f.moe else None,
        "weight_bytes": f.weight_bytes,
        "dtype": f.dtype,
        "quantization": f.quantization,
        "num_layers": f.num_layers,
        "kv_bytes_per_token": f.kv_bytes_per_token,
        "kv_bytes_per_token_mha": f.kv_bytes_per_token_mha,
        "kv_saving_factor": f.kv_saving_factor,
        "sliding_window": f.sliding_window,
        "windowed_layers": f.windowed_layers,
        "max_context_tokens": f.max_context_tokens,
        "kv_bytes_max_context": f.kv_bytes_per_sequence(f.max_context_tokens),
        "kv_bytes_max_context_no_window": no_window.kv_bytes_per_sequence(f.max_context_tokens),
        "error": None,
    }


def arch_table(presets: Iterable[ModelPreset] | None = None) -> list[dict[str, Any]]:
    """One row per preset for the dashboard: KV bytes per token and active vs total parameters.

    Presets whose config cannot be read here are listed with ``error`` set and no figures.
    """
    rows: list[dict[str, Any]] = []
    for preset in presets if presets is not None else PRESETS.values():
        try:
            f, _ = preset_facts(preset)
        except Exception as exc:  # one unreadable checkpoint must not hide the others
            rows.append(
                {"preset": preset.name, "family": preset.family, "error": f"{type(exc).__name__}: {exc}"}
            )
            continue
        rows.append({**arch_row(preset.name, preset.family, f), "source": preset.source})
    return rows


def roofline_points(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Measured batch-1 decode speed against the roofline, one row per record that has both parts.

    Rows with no roofline (CPU runs, unknown GPUs) keep the measured speed and the reason,
    so a chart can show them apart rather than drop them.
    """
    rows = []
    for rec in records:
        decode = rec.analytics.decode if rec.analytics else None
        if decode is None:
            continue
        rows.append(
            {
                "run_id": rec.run_id,
                "preset": rec.model.preset,
                "gpu": rec.analytics.gpu if rec.analytics else None,
                **decode.model_dump(mode="json"),
            }
        )
    return rows


def reported_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Measured minus reported per (record, task), for the dashboard's accuracy table."""
    rows = []
    for rec in records:
        stored = rec.analytics.reported_vs_measured if rec.analytics else {}
        for task, cmp in stored.items():
            rows.append({"run_id": rec.run_id, "preset": rec.model.preset, **cmp.model_dump(), "task": task})
    return rows
