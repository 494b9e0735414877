"""Planning: a suite and its models become a list of runs, without touching any hardware."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from harness.models import EngineArgs, ModelPreset, get_preset
from harness.suite import LoadedSuite, PerfScenario, TaskSpec


class RunPlan(BaseModel):
    """Everything one run needs to know, resolved; printing it shows exactly what will happen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: LoadedSuite
    model: ModelPreset
    engine: EngineArgs
    startup_timeout_s: float
    tasks: tuple[TaskSpec, ...]
    scenarios: tuple[PerfScenario, ...]
    seed: int
    endpoint: str | None = None

    @property
    def label(self) -> str:
        return f"{self.model.name} × {self.suite.spec.name}"


def plan_runs(
    suite: LoadedSuite, models: list[str] | None = None, endpoint: str | None = None
) -> list[RunPlan]:
    """One RunPlan per model: `models` if given, else the suite's own list.

    Raises UnknownModelError (with the nearest preset names) before anything starts.
    """
    spec = suite.spec
    names = models or spec.models
    if not names:
        raise ValueError(f"suite {spec.name!r} lists no models: pass --model")
    plans = []
    for name in names:
        preset = get_preset(name)
        overrides = {
            k: v
            for k, v in {"max_model_len": spec.engine.max_model_len, "dtype": spec.engine.dtype}.items()
            if v is not None
        }
        engine = preset.engine.model_copy(
            update={**overrides, "extra_args": preset.engine.extra_args + tuple(spec.engine.extra_args)}
        )
        plans.append(
            RunPlan(
                suite=suite,
                model=preset,
                engine=engine,
                startup_timeout_s=spec.engine.startup_timeout_s,
                tasks=tuple(spec.accuracy.tasks),
                scenarios=tuple(spec.performance.scenarios),
                seed=spec.seed,
                endpoint=endpoint,
            )
        )
    return plans


def describe(plan: RunPlan) -> list[str]:
    """Human-readable lines for `harness plan`."""
    m = plan.model
    where = plan.endpoint or "vLLM server on 127.0.0.1 (started by harness)"
    source = m.hub_id or m.local_path or f"built on this machine ({m.source})"
    lines = [
        f"run: {plan.label}",
        f"  model:   {m.name} [{m.family}] from {source}" + (" (gated: needs HF_TOKEN)" if m.gated else ""),
        f"  engine:  {where}",
        f"  args:    {' '.join(plan.engine.as_cli()) if not plan.endpoint else '(external endpoint)'}",
        f"  seed:    {plan.seed}",
    ]
    for t in plan.tasks:
        limit = f", limit {t.limit}" if t.limit else ""
        lines.append(f"  accuracy: {t.name} ({t.num_fewshot}-shot{limit})")
    for s in plan.scenarios:
        process = "Poisson" if s.burstiness == 1.0 else f"gamma (burstiness {s.burstiness:g})"
        if s.ramp_up_strategy is not None:
            load = f"{s.ramp_up_strategy} ramp-up {s.ramp_up_start_rps}→{s.ramp_up_end_rps} req/s, {process}"
        elif s.request_rate is None:
            load = f"concurrency {s.concurrency}"
        else:
            load = f"{process} {s.request_rate} req/s"
        if s.concurrency is not None and (s.request_rate is not None or s.ramp_up_strategy is not None):
            load += f" (max {s.concurrency} in flight)"
        lines.append(
            f"  perf:    {s.name}: {s.num_requests} requests × {s.input_tokens} in / {s.output_tokens} out, "
            f"{load}, {s.warmup_requests} warm-up"
        )
    return lines
