"""Planning: a suite and its models become a list of runs, without touching any hardware."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from harness.model.presets import EngineArgs, ModelPreset, check_extra_args, get_preset
from harness.spec.expand import describe_point, expand_scenarios
from harness.spec.scenario import ScenarioPoint
from harness.spec.suite import LoadedSuite, SuiteError, TaskSpec
from harness.spec.variants import VariantSpec, baseline_name
from harness.spec.workload import describe_workload


class RunPlan(BaseModel):
    """Everything one run needs to know, resolved; printing it shows exactly what will happen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: LoadedSuite
    model: ModelPreset
    engine: EngineArgs
    startup_timeout_s: float
    tasks: tuple[TaskSpec, ...]
    scenarios: tuple[ScenarioPoint, ...]
    seed: int
    endpoint: str | None = None
    variant: VariantSpec | None = None
    baseline_variant: str | None = None
    engine_env: dict[str, str] = {}
    endpoint_gpus: tuple[str, ...] = Field(
        default=(), description="GPU UUIDs of an external endpoint on this machine (metered if given)."
    )
    task_include_paths: tuple[str, ...] = Field(
        default=(), description="Absolute folders of user task YAML (accuracy.include_path)."
    )
    endpoint_served_name: str | None = Field(
        default=None,
        description="The model name an --endpoint server answers to (vllm serve --served-model-name); "
        "None: the preset name, Hub id or path, whichever it serves.",
    )

    @property
    def label(self) -> str:
        tag = f"@{self.variant.name}" if self.variant is not None else ""
        return f"{self.model.name}{tag} × {self.suite.spec.name}"


def task_include_paths(suite: LoadedSuite) -> tuple[str, ...]:
    """accuracy.include_path made absolute (relative to the suite file); each must be a folder."""
    base = suite.path.resolve().parent if suite.path is not None else Path.cwd()
    out = []
    for i, entry in enumerate(suite.spec.accuracy.include_path):
        folder = (base / Path(entry).expanduser()).resolve()
        if not folder.is_dir():
            where = f"{suite.path}: " if suite.path is not None else ""
            raise SuiteError(f"{where}accuracy.include_path.{i}: {folder} is not a folder of task YAML files")
        out.append(str(folder))
    return tuple(out)


def plan_runs(
    suite: LoadedSuite,
    models: list[str] | None = None,
    endpoint: str | None = None,
    endpoint_gpus: tuple[str, ...] = (),
    served_model_name: str | None = None,
) -> list[RunPlan]:
    """One RunPlan per model: `models` if given, else the suite's own list.

    Raises UnknownModelError (with the nearest preset names), or SuiteError for a parallelism
    flag in `extra_args` or a missing include_path folder, before anything starts.
    """
    spec = suite.spec
    names = models or spec.models
    if not names:
        raise ValueError(f"suite {spec.name!r} lists no models: pass --model")
    if endpoint_gpus and not endpoint:
        raise ValueError("--endpoint-gpus names the GPUs of an --endpoint; pass --endpoint too")
    if served_model_name and not endpoint:
        raise ValueError("--served-model-name names the model of an --endpoint; pass --endpoint too")
    includes = task_include_paths(suite)
    plans = []
    for name in names:
        preset = get_preset(name)
        typed = {
            "max_model_len": spec.engine.max_model_len,
            "dtype": spec.engine.dtype,
            "tensor_parallel_size": spec.engine.tensor_parallel_size,
            "pipeline_parallel_size": spec.engine.pipeline_parallel_size,
            "data_parallel_size": spec.engine.data_parallel_size,
            "revision": spec.engine.revision,
        }
        overrides = {k: v for k, v in typed.items() if v is not None}
        extra = preset.engine.extra_args + tuple(spec.engine.extra_args)
        try:
            check_extra_args(extra)
        except ValueError as exc:
            raise SuiteError(f"{suite.path or spec.name}: engine.extra_args: {exc}") from None
        engine = preset.engine.model_copy(update={**overrides, "extra_args": extra})
        base = baseline_name(spec.variants)
        variants: list[VariantSpec | None] = [*spec.variants] or [None]
        for variant in variants:
            if variant is not None and endpoint:
                raise ValueError("variants change the engine: they cannot run against an external --endpoint")
            planned = apply_variant(engine, variant)
            try:  # a variant's flags too
                check_extra_args(planned.extra_args)
            except ValueError as exc:
                raise SuiteError(
                    f"{suite.path or spec.name}: variant {variant.name if variant else ''}: {exc}"
                ) from None
            plans.append(
                RunPlan(
                    suite=suite,
                    model=with_checkpoint(preset, variant.model) if variant and variant.model else preset,
                    engine=planned,
                    startup_timeout_s=spec.engine.startup_timeout_s,
                    tasks=tuple(spec.accuracy.tasks),
                    scenarios=tuple(expand_scenarios(spec.performance)),
                    seed=spec.seed,
                    endpoint=endpoint,
                    endpoint_gpus=tuple(endpoint_gpus),
                    endpoint_served_name=served_model_name or None,
                    task_include_paths=includes,
                    variant=variant,
                    baseline_variant=base,
                    engine_env=dict(variant.env) if variant else {},
                )
            )
    return plans


def apply_variant(engine: EngineArgs, variant: VariantSpec | None) -> EngineArgs:
    """The engine arguments with a variant's overlay: its quantization, then its flags."""
    if variant is None:
        return engine
    update: dict[str, object] = {"extra_args": engine.extra_args + tuple(variant.cli_args())}
    if variant.quantization is not None:
        update["quantization"] = variant.quantization
    return engine.model_copy(update=update)


def with_checkpoint(preset: ModelPreset, checkpoint: str) -> ModelPreset:
    """The preset loading another checkpoint (a local directory or a Hub id), name and family kept."""
    from pathlib import Path

    if Path(checkpoint).is_dir():
        return preset.model_copy(update={"source": "local", "local_path": checkpoint, "hub_id": None})
    return preset.model_copy(update={"source": "hub", "hub_id": checkpoint, "local_path": None})


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
    if plan.variant is not None:
        role = "baseline" if plan.variant.name == plan.baseline_variant else f"vs {plan.baseline_variant}"
        lines.append(f"  variant: {plan.variant.name} ({role}): {'; '.join(plan.variant.changes())}")
    if plan.endpoint:
        gpus = (
            ", ".join(plan.endpoint_gpus) if plan.endpoint_gpus else "none named: GPU energy and memory null"
        )
        lines.append(f"  gpus:    {gpus}")
    else:
        e = plan.engine
        lines.append(
            f"  gpus:    {e.gpu_count} (tp {e.tensor_parallel_size} x pp {e.pipeline_parallel_size} "
            f"x dp {e.data_parallel_size})"
        )
    for folder in plan.task_include_paths:
        lines.append(f"  tasks from: {folder}")
    if plan.tasks:
        from harness.accuracy.settings import resolve_invocation

        inv = resolve_invocation(plan.suite.spec.accuracy, plan.tasks[0], {}, None)
        max_len = plan.suite.spec.accuracy.max_length or "the engine's max_model_len"
        lines.append(
            f"  lm-eval: batch_size {inv.batch_size}, seeds {','.join(map(str, inv.seeds))}, "
            f"bootstrap_iters {inv.bootstrap_iters}, max_length {max_len}"
        )
    for t in plan.tasks:
        shots = "task's default shots" if t.num_fewshot is None else f"{t.num_fewshot}-shot"
        limit = f", limit {t.limit:g}" if t.limit else ""
        lines.append(f"  accuracy: {t.name} ({shots}{limit})")
    if plan.suite.spec.accuracy.under_load is not None:
        from harness.spec.underload import describe_under_load

        lines += [
            f"  {line}"
            for line in describe_under_load(plan.suite.spec.accuracy.under_load, list(plan.scenarios))
        ]
    for p in plan.scenarios:
        s = p.load
        process = "Poisson" if s.burstiness == 1.0 else f"gamma (burstiness {s.burstiness:g})"
        if s.ramp_up_strategy is None and s.request_rate is None and s.concurrency is None:
            load = "loads chosen at run time"
        elif s.ramp_up_strategy is not None:
            load = f"{s.ramp_up_strategy} ramp-up {s.ramp_up_start_rps}→{s.ramp_up_end_rps} req/s, {process}"
        elif s.request_rate is None:
            load = f"concurrency {s.concurrency}"
        else:
            load = f"{process} {s.request_rate} req/s"
        if s.concurrency is not None and (s.request_rate is not None or s.ramp_up_strategy is not None):
            load += f" (max {s.concurrency} in flight)"
        lines.append(
            f"  perf:    {p.name}: {s.num_requests} requests × {s.input_tokens} in / {s.output_tokens} out, "
            f"{load}, {s.warmup_requests} warm-up"
        )
        if (shape := describe_workload(p.workload)) is not None:
            lines.append(f"           workload: {shape}")
        lines.extend(describe_point(p, plan.suite.spec.performance.cooldown_s))
    return lines
