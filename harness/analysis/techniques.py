"""What each technique buys and costs: every variant of a model set against its baseline variant.

Pure functions on run records (plus, for the paired accuracy test, the per-sample logs beside
them). For one suite and model, the latest ``ok`` record of each variant is compared with the
latest ``ok`` record of the baseline variant: accuracy per task, output throughput and median
TTFT/TPOT per scenario, J/token, KV-cache capacity (measured beside the capacity the
architecture predicts at the variant's KV dtype), weights, and speculative-decoding acceptance.
Every delta carries its uncertainty where the records allow one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.record.run_record import RunRecord, ScenarioResult, TaskResult, scenario_energy_value

PairedTest = Callable[[TaskResult, RunRecord, RunRecord], "PairedOutcome | None"]


@dataclass(frozen=True)
class PairedOutcome:
    """A paired per-document comparison of one task (exact McNemar or paired bootstrap)."""

    method: str
    p_value: float | None
    better: int  # documents the variant got right and the baseline wrong
    worse: int


@dataclass(frozen=True)
class TaskDelta:
    task: str
    metric: str
    base: float | None
    value: float | None
    delta: float | None
    delta_se: float | None  # sqrt(se_base^2 + se_variant^2): the unpaired fallback
    paired: PairedOutcome | None = None


@dataclass(frozen=True)
class ScenarioDelta:
    scenario: str
    output_tps_base: float | None
    output_tps: float | None
    output_tps_rel: float | None
    median_ttft_ms_base: float | None
    median_ttft_ms: float | None
    median_ttft_rel: float | None
    median_tpot_ms_base: float | None
    median_tpot_ms: float | None
    median_tpot_rel: float | None
    energy_per_token_j_base: float | None
    energy_per_token_j: float | None
    energy_per_token_rel: float | None
    spec_acceptance_rate: float | None
    spec_mean_accepted_length: float | None
    tps_ci95: tuple[float, float] | None = None  # of output_tps_rel, where both sides have repeats


@dataclass(frozen=True)
class KvCapacity:
    measured_tokens: int | None
    predicted_tokens: int | None
    kv_bytes_per_token: int | None
    note: str | None


@dataclass
class TechniqueRow:
    """One variant of one model against its baseline."""

    model: str
    suite: str
    variant: str
    baseline: str
    changes: list[str]
    run_id: str
    baseline_run_id: str
    tasks: list[TaskDelta] = field(default_factory=list)
    scenarios: list[ScenarioDelta] = field(default_factory=list)
    kv: KvCapacity | None = None
    kv_base: KvCapacity | None = None
    weights_bytes: int | None = None
    weights_bytes_base: int | None = None
    accuracy_mean: float | None = None
    headline_tps: float | None = None
    headline_j_per_token: float | None = None


def _rel(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return new / old - 1.0


def _energy_per_token(s: ScenarioResult) -> float | None:
    e = scenario_energy_value(s)  # the one accessor: the measured interval's J/token
    return None if e is None else e.energy_per_output_token_j


def _spread_ci(a: ScenarioResult, b: ScenarioResult) -> tuple[float, float] | None:
    """95 % interval of the relative change in output tok/s over the two points' repeats
    (Welch's interval of the difference over the baseline mean, :func:`relative_change_interval`)."""
    from harness.stats_bounds import relative_change_interval

    def reps(s: ScenarioResult) -> list[float]:
        return [r.output_throughput for r in s.rigor.repeats] if s.rigor is not None else []

    ra, rb = reps(a), reps(b)
    if len(ra) < 2 or len(rb) < 2 or not sum(ra):
        return None
    _, low, high = relative_change_interval(ra, rb)
    return (low, high)


def scenario_delta(name: str, base: ScenarioResult, var: ScenarioResult) -> ScenarioDelta:
    server = var.server
    return ScenarioDelta(
        scenario=name,
        output_tps_base=base.output_throughput,
        output_tps=var.output_throughput,
        output_tps_rel=_rel(var.output_throughput, base.output_throughput),
        median_ttft_ms_base=base.median_ttft_ms,
        median_ttft_ms=var.median_ttft_ms,
        median_ttft_rel=_rel(var.median_ttft_ms, base.median_ttft_ms),
        median_tpot_ms_base=base.median_tpot_ms,
        median_tpot_ms=var.median_tpot_ms,
        median_tpot_rel=_rel(var.median_tpot_ms, base.median_tpot_ms),
        energy_per_token_j_base=_energy_per_token(base),
        energy_per_token_j=_energy_per_token(var),
        energy_per_token_rel=_rel(_energy_per_token(var), _energy_per_token(base)),
        spec_acceptance_rate=server.spec_decode_acceptance_rate if server else None,
        spec_mean_accepted_length=server.spec_decode_mean_accepted_length if server else None,
        tps_ci95=_spread_ci(base, var),
    )


def task_delta(base: TaskResult, var: TaskResult, paired: PairedOutcome | None) -> TaskDelta:
    se = None
    if base.stderr is not None and var.stderr is not None:
        se = math.sqrt(base.stderr**2 + var.stderr**2)
    return TaskDelta(
        task=var.task,
        metric=var.metric,
        base=base.value,
        value=var.value,
        delta=None if base.value is None or var.value is None else var.value - base.value,
        delta_se=se,
        paired=paired,
    )


def kv_capacity(rec: RunRecord) -> KvCapacity | None:
    """Measured KV capacity (engine) beside the one the architecture predicts for the cache bytes.

    Predicted tokens = the engine's KV-cache bytes / the architecture's KV bytes per token at
    the run's KV dtype (an fp8 cache should hold about twice the tokens of a 16-bit one).
    """
    mem = rec.resources.memory if rec.resources is not None else None
    if mem is None:
        return None
    per_token = _kv_bytes_per_token(rec)
    predicted = None
    note = None
    if mem.kv_cache_memory_bytes and per_token:
        predicted = mem.kv_cache_memory_bytes // per_token
    elif not mem.kv_cache_memory_bytes:
        note = "the engine did not report its KV-cache bytes"
    else:
        note = "architecture unknown: no KV bytes per token"
    return KvCapacity(mem.kv_cache_capacity_tokens, predicted, per_token, note)


def _kv_bytes_per_token(rec: RunRecord) -> int | None:
    a = rec.analytics
    arch = a.get("architecture") if isinstance(a, dict) else getattr(a, "architecture", None)
    if arch is None:
        return None
    value = (
        arch.get("kv_bytes_per_token")
        if isinstance(arch, dict)
        else getattr(arch, "kv_bytes_per_token", None)
    )
    return int(value) if value else None


def _weights(rec: RunRecord) -> int | None:
    mem = rec.resources.memory if rec.resources is not None else None
    return mem.weights_bytes if mem is not None else None


def latest_by_variant(records: Sequence[RunRecord], suite: str, model: str) -> dict[str, RunRecord]:
    """The latest ok record of each variant of `model` in `suite`."""
    out: dict[str, RunRecord] = {}
    for r in sorted(records, key=lambda r: r.started_at):
        if r.status != "ok" or r.variant is None or r.suite.name != suite or r.model.preset != model:
            continue
        out[r.variant.name] = r
    return out


def technique_rows(
    records: Sequence[RunRecord], suite: str, model: str, paired: PairedTest | None = None
) -> list[TechniqueRow]:
    """Every variant of `model` in `suite` (the baseline too, as its own reference row)."""
    latest = latest_by_variant(records, suite, model)
    if not latest:
        return []
    base_name = next(iter(latest.values())).variant.baseline  # type: ignore[union-attr]
    base = latest.get(base_name)
    if base is None:
        return []
    rows = []
    for name, rec in latest.items():
        assert rec.variant is not None
        row = TechniqueRow(
            model=model,
            suite=suite,
            variant=name,
            baseline=base_name,
            changes=list(rec.variant.changes),
            run_id=rec.run_id,
            baseline_run_id=base.run_id,
            kv=kv_capacity(rec),
            kv_base=kv_capacity(base),
            weights_bytes=_weights(rec),
            weights_bytes_base=_weights(base),
        )
        for task, tr in rec.accuracy.items():
            b = base.accuracy.get(task)
            if b is not None:
                outcome = paired(tr, base, rec) if paired is not None and rec is not base else None
                row.tasks.append(task_delta(b, tr, outcome))
        for sname, sr in rec.performance.items():
            b2 = base.performance.get(sname)
            if b2 is not None:
                row.scenarios.append(scenario_delta(sname, b2, sr))
        values = [t.value for t in rec.accuracy.values() if t.value is not None]
        row.accuracy_mean = sum(values) / len(values) if values else None
        first = next(iter(rec.performance.values()), None)
        if first is not None:
            row.headline_tps = first.output_throughput
            row.headline_j_per_token = _energy_per_token(first)
        rows.append(row)
    rows.sort(key=lambda r: (r.variant != base_name, r.variant))
    return rows


def samples_path(run_dir: Path | None, task: TaskResult) -> Path | None:
    """The per-sample log of a task in its run folder, where one was written."""
    if run_dir is None or task.samples_path is None:
        return None
    p = run_dir / task.samples_path
    return p if p.is_file() else None


def paired_from_logs(results: Path) -> Any:
    """:func:`paired_in` for the run folders of a results store."""
    return paired_in(lambda rec: results / "runs" / rec.run_id)


def paired_in(run_dir_of: Any) -> Any:
    """The paired per-document test (exact McNemar for 0/1 metrics, else a paired bootstrap) on the
    two runs' lm-eval sample logs, found in ``run_dir_of(record)``; None for a task where either
    log is missing or unreadable."""
    from harness.rigor.compare import SampleLogError, paired_accuracy

    def test(task: Any, base: Any, rec: Any) -> PairedOutcome | None:
        base_task = base.accuracy.get(task.name)
        if base_task is None:
            return None
        b, c = samples_path(run_dir_of(base), base_task), samples_path(run_dir_of(rec), task)
        if b is None or c is None:
            return None
        try:
            r = paired_accuracy(task, b, c).result
        except (SampleLogError, ValueError, OSError):
            return None
        return PairedOutcome(method=r.method, p_value=r.p_value, better=r.gained, worse=r.lost)

    return test
