"""The one place a run's record is made: by the runner (ok or failed) and by every executor's driver.

A run is a sequence of phases (:mod:`harness.run.runner`), each returning a frozen part; what
the phases returned before a failure is a :class:`Measured`, and :func:`build_record` turns it,
the run's :class:`RunIdentity`, its error and its environment into the record. A driver that
must write the record of a cell whose worker died (:mod:`harness.executors`) calls the same
function with nothing measured, so that a failed cell's record names its suite, model and
variant, and carries the same run-id tag, exactly as the runner would have written it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from harness.model.weights import ResolvedModel
from harness.planning.plan import RunPlan
from harness.record.run_record import (
    AccuracyEnergy,
    EngineInfo,
    EngineMemory,
    Environment,
    IdleBaseline,
    ModelInfo,
    PhaseResources,
    Resources,
    RunRecord,
    ScenarioResult,
    SuiteInfo,
    TaskResult,
    Unmeasured,
    VariantInfo,
)

ENDPOINT_UNVERIFIED = "external endpoint: the served weights cannot be checksummed from here (unverified)"


def new_run_id(model: str, suite: str, now: datetime | None = None) -> str:
    """``<UTC time>-<model>-<suite>-<4 hex>``: sorts by time, safe as one path component."""
    now = now or datetime.now(timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}-{suite}").strip("-")[:80]
    return f"{now:%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(2)}"


def run_tag(plan: RunPlan) -> str:
    """The model part of a run id: the model's name, and its variant's where the suite has variants."""
    return f"{plan.model.name}-{plan.variant.name}" if plan.variant is not None else plan.model.name


@dataclass(frozen=True)
class RunIdentity:
    """What names a run before anything is measured."""

    run_id: str
    fingerprint: str
    started: datetime


def identify(plan: RunPlan, fingerprint: str | None = None, started: datetime | None = None) -> RunIdentity:
    """The run id (variant-tagged), the cell fingerprint (from the plan if None) and the start time."""
    if fingerprint is None:
        from harness.planning.cells import fingerprint as cell_fingerprint

        fingerprint = cell_fingerprint(plan)
    started = started or datetime.now(timezone.utc)
    return RunIdentity(new_run_id(run_tag(plan), plan.suite.spec.name, started), fingerprint, started)


# ---------------------------------------------------------------- the phases' parts


@dataclass(frozen=True)
class EngineFacts:
    """The engine phase: how it was started (also when it never became healthy), and its served name."""

    info: EngineInfo
    served_name: str | None


@dataclass(frozen=True)
class Baseline:
    """The idle phase: the engine's idle draw and its memory (weights, KV cache)."""

    idle: IdleBaseline | None
    memory: EngineMemory | None


@dataclass(frozen=True)
class AccuracyPart:
    """The accuracy phase: the tasks' results and their energy."""

    tasks: Mapping[str, TaskResult]  # by task name, in the suite's order
    energy: AccuracyEnergy | None = None


@dataclass(frozen=True)
class MeterPart:
    """The GPU meter's part, read at teardown: each metered window, the GPU provenance, the samples file."""

    phases: Mapping[str, PhaseResources] = field(default_factory=dict)
    gpu_fields: Mapping[str, Any] = field(default_factory=dict)
    gpu_samples_path: str | None = None


@dataclass(frozen=True)
class Measured:
    """The parts a run's phases returned, in phase order; whatever happened, the record's content."""

    model: ResolvedModel | None = None
    engine: EngineFacts | None = None
    baseline: Baseline | None = None
    accuracy: AccuracyPart | None = None
    scenarios: tuple[ScenarioResult, ...] = ()  # measured points, and the one a failure cut short
    meter: MeterPart | None = None
    server_metrics_path: str | None = None  # the engine's /metrics series, written at teardown

    def with_scenario(self, result: ScenarioResult) -> Measured:
        """These parts with `result` added, or in the place of the point of the same name."""
        if any(s.name == result.name for s in self.scenarios):
            return replace(
                self, scenarios=tuple(result if s.name == result.name else s for s in self.scenarios)
            )
        return replace(self, scenarios=(*self.scenarios, result))

    @property
    def performance(self) -> dict[str, ScenarioResult]:
        return {s.name: s for s in self.scenarios}


# ---------------------------------------------------------------- the record


def suite_info(plan: RunPlan) -> SuiteInfo:
    """The record's suite section: the suite as run, kept as data."""
    return SuiteInfo(
        name=plan.suite.spec.name,
        path=str(plan.suite.path) if plan.suite.path else None,
        sha256=plan.suite.sha256,
        spec=plan.suite.spec.model_dump(mode="json"),
    )


def variant_info(plan: RunPlan) -> VariantInfo | None:
    """The record's variant section (None for a suite without variants)."""
    v = plan.variant
    if v is None:
        return None
    base = plan.baseline_variant or v.name
    return VariantInfo(
        name=v.name,
        baseline=base,
        is_baseline=v.name == base,
        changes=v.changes(),
        spec=v.model_dump(mode="json"),
    )


def model_info(plan: RunPlan, model: ResolvedModel | None, served_name: str | None) -> ModelInfo:
    """The record's model section: the preset, and the weights as resolved (where they were)."""
    m = plan.model
    return ModelInfo(
        preset=m.name if m.source != "local" else "local",
        family=m.family,
        source=model.path if model else (m.hub_id or m.local_path or m.name),
        revision=model.revision if model else None,
        checksum_sha256=model.checksum if model else None,
        served_name=served_name or m.name,
        checksum=Unmeasured(reason=ENDPOINT_UNVERIFIED) if plan.endpoint else None,
        random_weights=m.random_weights,
    )


def _kept_on_scenario(window: str, phase: PhaseResources, measured: Measured) -> bool:
    s = measured.performance.get(window[len("scenario:") :]) if window.startswith("scenario:") else None
    return s is not None and s.resources == phase


def resources(measured: Measured) -> Resources:
    """The record's resources: the metered windows summed (energy only when every one was
    measured, else the first reason), the idle baseline, memory and the series files."""
    meter = measured.meter or MeterPart()
    phases = dict(meter.phases)
    peaks = [p.engine_peak_rss_bytes for p in phases.values() if p.engine_peak_rss_bytes is not None]
    energies = [p.energy_j for p in phases.values()]
    complete = bool(energies) and all(e is not None for e in energies)
    reasons = [p.energy.reason for p in phases.values() if p.energy is not None]
    base = measured.baseline
    return Resources(
        engine_peak_rss_bytes=max(peaks) if peaks else None,
        # a scenario's window is stored once, on the scenario (schema v3); the sums above include it.
        # A point folded over repeats keeps pooled resources, so its repeats' windows stay here.
        phases={k: p for k, p in phases.items() if not _kept_on_scenario(k, p, measured)},
        energy_j=sum(e for e in energies if e is not None) if complete else None,
        energy=None if complete else Unmeasured(reason=reasons[0] if reasons else "no phase was measured"),
        idle=base.idle if base else None,
        accuracy_energy=measured.accuracy.energy if measured.accuracy else None,
        memory=base.memory if base else None,
        gpu_samples_path=meter.gpu_samples_path,
        server_metrics_path=measured.server_metrics_path,
    )


def build_record(
    plan: RunPlan,
    identity: RunIdentity,
    measured: Measured,
    error: str | None,
    environment: Environment,
    finished: datetime | None = None,
) -> RunRecord:
    """The run's record: ``ok`` without `error`, else ``failed`` keeping what was measured."""
    from harness.arch import record_analytics

    engine = measured.engine
    tasks = dict(measured.accuracy.tasks) if measured.accuracy else {}
    return RunRecord(
        run_id=identity.run_id,
        status="failed" if error else "ok",
        error=error,
        suite=suite_info(plan),
        model=model_info(plan, measured.model, engine.served_name if engine else None),
        engine=engine.info if engine else None,
        variant=variant_info(plan),
        environment=environment,
        started_at=identity.started,
        finished_at=finished or datetime.now(timezone.utc),
        tasks=list(tasks.values()),
        scenarios=list(measured.scenarios),
        resources=resources(measured),
        analytics=record_analytics(
            plan.model,
            performance=measured.performance,
            accuracy=tasks,
            environment=environment,
            engine_args=engine.info.args if engine else None,
        ),
        fingerprint=identity.fingerprint,
    )
