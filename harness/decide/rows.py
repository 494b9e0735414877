"""One decision row per (model, variant): the figures a deployment decision reads, from one record.

Pure: a :class:`DecisionRow` is built from a run record and the prices the user gave. Every
figure that cannot be had is ``None`` with its reason beside it (``*_reason``); nothing is
filled in. Figures at the SLO come from the record's capacity search (the highest load meeting
the SLO at the target attainment); a suite without one can name a fixed-load scenario instead
(``basis="scenario"``), and the row then says its figures are not at an SLO. Accuracy is read
at that operating point where the record measured it under load (:mod:`harness.decide.atload`),
else idle; ``accuracy_at`` and ``accuracy_source`` say which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.decide.prices import Price, price_for, usd_per_mtok
from harness.record.hardware import hardware_label
from harness.record.run_record import RunRecord, ScenarioResult, scenario_energy_value

Bound = Literal["resolved", "lower", "unknown"]
Z95 = 1.959963984540054


@dataclass(frozen=True)
class TaskFigure:
    """One task's headline figure in a row."""

    task: str
    metric: str
    value: float
    stderr: float | None
    n: int | None  # documents evaluated
    higher_is_better: bool
    source: str = "idle"  # "idle", or the load point the figure was measured at (`busy@c16`)
    samples_path: str | None = None  # its per-document log, relative to the run folder
    idle_value: float | None = None  # the idle figure, where `source` is a load point
    idle_n: int | None = None  # documents evaluated idle (the suite's documents)
    vs_idle: str | None = None  # at load against idle on the same documents, in words


@dataclass
class DecisionRow:
    """What one (model, variant) offers on one suite and hardware.

    Units: ``capacity`` in req/s (``capacity_over == "request_rate"``) or requests in flight;
    ``tok_s`` output tokens/s of the whole run at the capacity load, ``tok_s_per_gpu`` per GPU;
    ``j_per_token`` J per output token, ``j_per_correct`` J per correct answer; ``usd_per_mtok``
    dollars per million output tokens.
    """

    key: str  # model@variant (or the model alone)
    model: str
    variant: str | None
    run_id: str
    run_dir: str | None
    suite: str
    hardware: str
    random_weights: bool
    tasks: list[TaskFigure] = field(default_factory=list)
    accuracy: float | None = None
    accuracy_se: float | None = None
    n_samples: int | None = None
    accuracy_at: str = "idle"  # where `accuracy` was measured: "idle", a load point, or "POINT + idle"
    accuracy_source: str = ""  # the same in a sentence, with why (always set by decision_row)
    idle_accuracy: float | None = None  # the idle mean, where `accuracy` is (partly) at load
    basis: str = "capacity"  # "capacity" (at the SLO) or "scenario NAME" (a fixed load, not an SLO)
    capacity: float | None = None
    capacity_over: str | None = None
    capacity_reason: str | None = None
    bound: Bound = "unknown"
    bound_note: str | None = None  # where the bound was inferred rather than recorded
    stop_reason: str | None = None
    slo: dict[str, float | str | None] | None = None
    point: str | None = None  # the scenario point the figures at the SLO come from
    gpus: int = 0
    tok_s: float | None = None
    tok_s_per_gpu: float | None = None
    tok_s_reason: str | None = None
    out_tokens_per_request: float | None = None
    j_per_token: float | None = None
    j_per_token_reason: str | None = None
    j_per_correct: float | None = None
    j_per_correct_reason: str | None = None
    usd_per_mtok: float | None = None
    usd_reason: str | None = None
    price: str | None = None
    invalid: list[str] = field(default_factory=list)

    @property
    def accuracy_ci95(self) -> tuple[float, float] | None:
        """Normal 95 % interval of the mean accuracy (tasks taken as independent)."""
        if self.accuracy is None or self.accuracy_se is None:
            return None
        return (self.accuracy - Z95 * self.accuracy_se, self.accuracy + Z95 * self.accuracy_se)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(sorted(t.task for t in self.tasks))


def row_key(rec: RunRecord) -> str:
    name = rec.model.preset if rec.model.preset != "local" else Path(rec.model.source).name
    return f"{name}@{rec.variant.name}" if rec.variant is not None else name


def is_random_weights(rec: RunRecord) -> bool:
    """The record says so (``model.random_weights``), or, for records before that field, the
    preset it names is a random-weight miniature."""
    flag = getattr(rec.model, "random_weights", None)
    if flag is not None:
        return bool(flag)
    from harness.model.presets import PRESETS

    preset = PRESETS.get(rec.model.preset)
    return bool(preset is not None and preset.random_weights)


def gpus_used(rec: RunRecord) -> int:
    """GPUs the engine used: tp x pp x dp from its arguments, else the GPUs the record saw (0 on a CPU)."""
    if not rec.environment.gpus:
        return 0
    args = rec.engine.args if rec.engine is not None else {}
    try:
        n = (
            int(args.get("tensor_parallel_size", 1))
            * int(args.get("pipeline_parallel_size", 1))
            * int(args.get("data_parallel_size", 1))
        )
    except (TypeError, ValueError):
        n = 0
    return n if args and n > 0 else len(rec.environment.gpus)


def _accuracy(row: DecisionRow) -> None:
    vals = [t for t in row.tasks if math.isfinite(t.value)]
    if not vals:
        return
    row.accuracy = sum(t.value for t in vals) / len(vals)
    ses = [t.stderr for t in vals]
    if all(se is not None and math.isfinite(se) for se in ses):
        row.accuracy_se = math.sqrt(sum(se * se for se in ses if se is not None)) / len(vals)
    ns = [t.n for t in vals]
    row.n_samples = sum(n for n in ns if n is not None) if all(n is not None for n in ns) else None


def _accuracy_at_load(row: DecisionRow, rec: RunRecord) -> None:
    """Swap in each task's figure at the operating point where the record has one; say which."""
    from harness.decide.atload import load_point_for

    idle = [t.value for t in row.tasks if math.isfinite(t.value)]
    point, why_idle = load_point_for(rec, row.point)
    if point is None:
        row.accuracy_source = f"idle: {why_idle}"
        return
    swapped, kept = [], []
    for i, t in enumerate(row.tasks):
        u = point.tasks.get(t.task)
        if u is None:
            kept.append(t.task)
            continue
        p = u.paired
        vs = (
            f"{p.idle_value:.3f} idle → {p.load_value:.3f} at load on the same {p.n} documents, "
            f"−{p.flips_worse}/+{p.flips_better} flipped ({p.method} p = {p.p_value:.2g})"
            if p is not None
            else f"not paired with idle ({u.reason or 'no reason recorded'})"
        )
        row.tasks[i] = TaskFigure(
            t.task,
            t.metric,
            u.value,
            u.stderr,
            u.n_samples,
            t.higher_is_better,
            source=point.name,
            samples_path=u.samples_path,
            idle_value=t.value,
            idle_n=t.n,
            vs_idle=vs,
        )
        swapped.append(t.task)
    if not swapped:
        row.accuracy_source = (
            f"idle: {point.describe()} evaluated none of this row's tasks ({', '.join(kept)})"
        )
        return
    row.idle_accuracy = sum(idle) / len(idle) if idle else None
    row.accuracy_at = point.name if not kept else f"{point.name} + idle"
    text = f"at {point.describe()}: {', '.join(swapped)}"
    if kept:
        text += f"; idle (not evaluated under load): {', '.join(kept)}"
    row.accuracy_source = text


def _per_request_tokens(sr: ScenarioResult | None) -> float | None:
    if sr is None or sr.completed <= 0:
        return None
    return sr.total_output_tokens / sr.completed


def _at_capacity(row: DecisionRow, rec: RunRecord) -> ScenarioResult | None:
    caps = [sr.rigor.capacity for sr in rec.performance.values() if sr.rigor and sr.rigor.capacity]
    if not caps:
        row.capacity_reason = (
            "the suite has no capacity search (add a `search:` scenario, or pass --scenario)"
        )
        return None
    c = caps[0]
    row.capacity_over = c.over
    row.capacity = c.capacity
    row.stop_reason = c.stop_reason
    bound = getattr(c, "bound", None)
    row.bound = bound if bound in ("lower", "resolved") else "unknown"
    # Records without `bound`: where no probe above the capacity failed, the search never
    # bracketed it, so the capacity is at least this (inferred from the probes, said so).
    cap = c.capacity
    if (
        row.bound == "unknown"
        and cap is not None
        and c.probes
        and not any(not p.passed and p.load > cap for p in c.probes)
    ):
        row.bound = "lower"
        row.bound_note = "inferred: no probe above it failed"
    row.slo = {k: v for k, v in c.slo.model_dump().items() if v is not None}
    if c.capacity is None:
        row.capacity_reason = f"no load met the SLO ({c.stop_reason})"
        return None
    row.point = c.capacity_point
    sr = rec.performance.get(c.capacity_point) if c.capacity_point else None
    row.tok_s = (
        c.output_throughput if c.output_throughput is not None else (sr.output_throughput if sr else None)
    )
    row.j_per_token = c.energy_per_output_token_j
    row.j_per_token_reason = (
        None if c.energy_per_output_token_j is not None else (c.energy_reason or "not measured")
    )
    if sr is not None and sr.valid is False:
        row.invalid.append(f"{sr.name}: {'; '.join(sr.validity_reasons) or 'invalid'}")
    return sr


def _at_scenario(row: DecisionRow, rec: RunRecord, name: str) -> ScenarioResult | None:
    row.basis = f"scenario {name}"
    sr = rec.performance.get(name)
    if sr is None:
        row.capacity_reason = f"the run has no scenario {name!r}"
        return None
    row.point = name
    row.capacity_reason = f"fixed load ({name}), not a capacity at an SLO"
    row.tok_s = sr.output_throughput
    e = scenario_energy_value(sr)
    row.j_per_token = e.energy_per_output_token_j if e is not None else None
    row.j_per_token_reason = None if row.j_per_token is not None else "no GPU energy meter for this scenario"
    if sr.valid is False:
        row.invalid.append(f"{sr.name}: {'; '.join(sr.validity_reasons) or 'invalid'}")
    return sr


def decision_row(
    rec: RunRecord, prices: Sequence[Price] = (), run_dir: Path | None = None, scenario: str | None = None
) -> DecisionRow:
    """The row of one ok record. ``scenario``: take throughput and energy at that fixed-load
    scenario where the record has no capacity search."""
    row = DecisionRow(
        key=row_key(rec),
        model=rec.model.preset,
        variant=rec.variant.name if rec.variant else None,
        run_id=rec.run_id,
        run_dir=str(run_dir) if run_dir is not None else None,
        suite=rec.suite.name,
        hardware=hardware_label(rec.environment),
        random_weights=is_random_weights(rec),
        gpus=gpus_used(rec),
    )
    row.tasks = [
        TaskFigure(
            t.name,
            t.metric,
            t.value,
            t.stderr,
            t.n_samples,
            t.higher_is_better is not False,
            samples_path=t.samples_path,
            idle_n=t.n_samples,
        )
        for t in rec.tasks
    ]
    has_search = any(sr.rigor and sr.rigor.capacity for sr in rec.performance.values())
    sr = _at_capacity(row, rec) if has_search or scenario is None else _at_scenario(row, rec, scenario)
    _accuracy_at_load(row, rec)
    _accuracy(row)
    row.out_tokens_per_request = _per_request_tokens(sr)
    if row.tok_s is None:
        row.tok_s_reason = row.capacity_reason or "no throughput at the capacity load"
    elif row.gpus:
        row.tok_s_per_gpu = row.tok_s / row.gpus
    else:
        row.tok_s_reason = "CPU run: no GPU to divide by"
    if row.j_per_token is None and not row.gpus and row.tok_s is not None:
        row.j_per_token_reason = "CPU run: no GPU energy meter"
    _energy_per_correct(row)
    _cost(row, list(prices))
    return row


def _energy_per_correct(row: DecisionRow) -> None:
    """J per correct answer ≈ J per request of the SLO workload ÷ the share answered correctly.

    An approximation, said so: the accuracy tasks' answers are not the SLO workload's requests;
    this prices one SLO-workload request and divides by accuracy.
    """
    if row.j_per_token is None:
        row.j_per_correct_reason = row.j_per_token_reason or "no J per token"
    elif row.out_tokens_per_request is None:
        row.j_per_correct_reason = "no output tokens per request at the capacity point"
    elif not row.accuracy:
        row.j_per_correct_reason = "no accuracy (or none correct)"
    else:
        row.j_per_correct = row.j_per_token * row.out_tokens_per_request / row.accuracy


def _cost(row: DecisionRow, prices: list[Price]) -> None:
    if not prices:
        row.usd_reason = "no price given (--price LABEL=USD/h or --prices FILE)"
        return
    price, why = price_for(row.hardware, prices)
    if price is None:
        row.usd_reason = why
        return
    row.price = price.describe()
    if row.tok_s is None:
        row.usd_reason = row.tok_s_reason
        return
    if price.unit == "gpu":
        if not row.gpus or row.tok_s_per_gpu is None:
            row.usd_reason = f"price is per GPU-hour but {row.hardware} ran on no GPU (give /node-h)"
            return
        per_unit = row.tok_s_per_gpu
    else:
        per_unit = row.tok_s  # one node per run
    if per_unit <= 0:
        row.usd_reason = "zero throughput at the capacity load"
        return
    row.usd_per_mtok = usd_per_mtok(price.usd_per_hour, per_unit)
