"""Executes one RunPlan: engine up, accuracy, performance, engine down, record written.

Every failure (model unavailable, engine that never becomes healthy or dies mid-run, an
lm-eval error, Ctrl-C or SIGTERM) ends the run as a ``failed`` record that keeps whatever
was measured before it, and the engine's process tree is always stopped.
"""

from __future__ import annotations

import os
import re
import secrets
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.engine.base import Engine, EngineError
from harness.engine.watchdog import EngineWatchdog
from harness.loadgen.metrics import RequestTiming
from harness.model.weights import ResolvedModel, hub_reachable, resolve_model
from harness.planning.plan import RunPlan
from harness.record.analytics import RecordAnalytics
from harness.record.run_record import (
    EngineInfo,
    ModelInfo,
    PhaseResources,
    Resources,
    RunRecord,
    ScenarioResult,
    SuiteInfo,
    Unmeasured,
    VariantInfo,
)
from harness.run.environment import collect_environment
from harness.run.scenario import Partial as _Partial
from harness.run.scenario import RunHooks, run_scenario, write_server_series
from harness.run.signals import as_interrupt as signals_as_interrupt
from harness.run.signals import deferred as deferred_signals
from harness.spec.scenario import ScenarioPoint
from harness.storage.fallback import make_run_dir, save_traceback, write_record_or_fallback
from harness.storage.store import runs_dir
from harness.telemetry import TelemetrySession


def new_run_id(model: str, suite: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}-{suite}").strip("-")[:80]
    return f"{now:%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(2)}"


def _endpoint_model(plan: RunPlan) -> ResolvedModel:
    """An external endpoint's model: only its tokenizer is needed here; its weights are not ours to check."""
    m = plan.model
    if m.source == "builtin":
        from harness.model.checkpoints import ensure_checkpoint

        path = str(ensure_checkpoint(m.name))
    else:
        path = m.local_path or m.hub_id or m.name
    return ResolvedModel(path, path, None, None, "external endpoint")


ENDPOINT_UNVERIFIED = "external endpoint: the served weights cannot be checksummed from here (unverified)"


def _make_engine(plan: RunPlan, model: ResolvedModel, run_dir: Path) -> Engine:
    if plan.endpoint:
        from harness.engine.endpoint import ExternalEndpoint

        m = plan.model
        names = (m.name, m.hub_id or "", m.local_path or "", model.path)
        return ExternalEndpoint(
            plan.endpoint, served_name=plan.endpoint_served_name, accepted_names=tuple(dict.fromkeys(names))
        )
    from harness.engine.vllm_server import VllmServer

    return VllmServer(
        model_path=model.path,
        served_name=plan.model.name,
        cli_args=plan.engine.as_cli(),
        log_path=run_dir / "engine.log",
        startup_timeout_s=plan.startup_timeout_s,
        seed=plan.seed,
        kv_cache_gib=int(os.environ.get("HARNESS_CPU_KVCACHE_GIB", "2")),
        env=plan.engine_env,
    )


def execute(
    plan: RunPlan, results: Path, hooks: RunHooks | None = None, fingerprint: str | None = None
) -> RunRecord:
    """Run one plan to a record on disk. Never raises for run failures; KeyboardInterrupt is re-raised
    after the failed record is written. `fingerprint` names the cell (computed from the plan if None).

    Signals that come while the record is built and written wait until it is on disk
    (:mod:`harness.run.signals`); a record the results folder cannot take (full, read-only)
    goes to the fallback folder (:mod:`harness.storage.fallback`) and the campaign goes on."""
    with deferred_signals():
        return _execute(plan, results, hooks, fingerprint)


def _execute(plan: RunPlan, results: Path, hooks: RunHooks | None, fingerprint: str | None) -> RunRecord:
    hooks = hooks or RunHooks()
    if fingerprint is None:
        from harness.planning.cells import fingerprint as cell_fingerprint

        fingerprint = cell_fingerprint(plan)
    started = datetime.now(timezone.utc)
    tag = f"{plan.model.name}-{plan.variant.name}" if plan.variant is not None else plan.model.name
    run_id = new_run_id(tag, plan.suite.spec.name, started)
    run_dir = make_run_dir(runs_dir(results), run_id)  # the fallback folder if results/ takes nothing
    partial = _Partial()
    error: str | None = None
    interrupted: BaseException | None = None
    model: ResolvedModel | None = None
    engine: Engine | None = None
    telemetry: TelemetrySession | None = None
    poller = None
    watchdog: EngineWatchdog | None = None
    phases: dict[str, PhaseResources] = {}
    gpu_fields: dict[str, Any] = {}
    with signals_as_interrupt() as signals:
        try:
            # Before the engine, weights and datasets together: what is missing fails the run in
            # seconds, all of it in one message (not the weights only on the next attempt).
            from harness.accuracy.preflight import DatasetUnavailableError, missing_inputs

            datasets_error: Exception | None = None
            if plan.tasks:
                from harness.accuracy import preflight_datasets

                hooks.on_phase("checking task datasets")
                try:
                    preflight_datasets(
                        list(plan.tasks),
                        run_dir / "tasks",
                        plan.task_include_paths,
                        hub_reachable=hub_reachable,
                    )
                except DatasetUnavailableError as exc:
                    datasets_error = exc
            hooks.on_phase("resolving model")
            try:
                model = (
                    _endpoint_model(plan)
                    if plan.endpoint
                    else resolve_model(plan.model, plan.engine.revision)
                )
            except Exception as exc:
                if datasets_error is None:
                    raise
                raise missing_inputs(exc, datasets_error) from exc
            if datasets_error is not None:
                raise datasets_error
            engine = _make_engine(plan, model, run_dir)
            hooks.on_phase("starting engine")
            telemetry = _telemetry_session(plan)
            gpu_fields = telemetry.environment_fields()
            telemetry.start()
            telemetry.begin_window("engine_start")
            try:
                engine.start()
            finally:
                partial.engine_info = _engine_info(plan, engine, run_dir)
                telemetry.attach(engine.pid)
                telemetry.end_window("engine_start")
            watchdog = _start_watchdog(plan, engine)
            from harness.engine.poller import MetricsPoller, measure_engine_memory

            poller = partial.poller = MetricsPoller(engine.base_url)
            telemetry.kv_cache = poller
            poller.start()
            hooks.on_phase("idle baseline")
            partial.idle = telemetry.measure_idle(5.0)
            partial.memory = measure_engine_memory(
                run_dir / "engine.log",
                poller,
                Path(model.path),
                getattr(partial.idle, "memory_used_bytes", None),
                getattr(partial.idle, "memory_total_bytes", None),
                getattr(partial.idle, "reason", None),
            )
            telemetry.kv_capacity_tokens = partial.memory.kv_cache_capacity_tokens
            with watchdog.guard():  # a hung engine interrupts lm-eval; the load generator polls it
                _measure(plan, model, engine, telemetry, run_dir, partial, hooks, watchdog)
        except KeyboardInterrupt as exc:
            interrupted = exc
            error = f"interrupted ({exc or 'Ctrl-C'})"
        except Exception as exc:  # noqa: BLE001 - every failure becomes a failed record
            error = _describe_failure(exc, engine)
            if watchdog is not None and watchdog.cause:
                error = f"EngineError: {watchdog.cause} (the watchdog ended the run; then: {error[:500]})"
            error = save_traceback(run_dir, traceback.format_exc(), error)  # never masks `error`
        finally:
            signals.hold()  # cleanup runs to its end: later signals are noted, not raised
            try:
                if watchdog is not None:
                    watchdog.stop()
                if poller is not None:
                    poller.stop()
                    partial.server_metrics_path = write_server_series(run_dir, poller)
                if telemetry is not None:
                    telemetry.stop()
                    phases = dict(telemetry.phases)
                    # again: start() measured the counters' update periods and attach() the GPU identity
                    gpu_fields = telemetry.environment_fields()
                    try:
                        partial.gpu_samples_path = telemetry.write_gpu_samples(run_dir)
                    except OSError as exc:
                        error = error or f"could not write GPU samples: {exc}"
            finally:  # whatever happened above, the engine's process tree goes
                if engine is not None:
                    hooks.on_phase("stopping engine")
                    engine.stop()
        if signals and interrupted is None:
            interrupted = KeyboardInterrupt(f"signal {signals[0]}")
            error = f"interrupted (signal {signals[0]}); the run then failed with: {error}"
    finished = datetime.now(timezone.utc)
    environment = collect_environment(gpu_fields)
    performance = partial.performance
    analytics = _analytics(plan, partial, environment)
    record = RunRecord(
        run_id=run_id,
        status="failed" if error else "ok",
        error=error,
        suite=suite_info(plan),
        model=ModelInfo(
            preset=plan.model.name if plan.model.source != "local" else "local",
            family=plan.model.family,
            source=model.path if model else (plan.model.hub_id or plan.model.local_path or plan.model.name),
            revision=model.revision if model else None,
            checksum_sha256=model.checksum if model else None,
            served_name=engine.served_name if engine and engine.served_name else plan.model.name,
            checksum=Unmeasured(reason=ENDPOINT_UNVERIFIED) if plan.endpoint else None,
            random_weights=plan.model.random_weights,
        ),
        engine=partial.engine_info,
        variant=_variant_info(plan),
        environment=environment,
        started_at=started,
        finished_at=finished,
        tasks=list(partial.accuracy.values()),
        scenarios=list(performance.values()),
        resources=_resources(phases, partial),
        analytics=analytics,
        fingerprint=fingerprint,
    )
    write_record_or_fallback(run_dir, record)
    if interrupted is not None:
        raise interrupted
    return record


def _telemetry_session(plan: RunPlan) -> TelemetrySession:
    """The GPU meter starts before the engine so that loading is measured too. A managed engine's
    GPUs are those it will see (its CUDA_VISIBLE_DEVICES), tp x pp x dp of them; an external
    endpoint's are metered only when --endpoint-gpus names them."""
    if plan.endpoint and not plan.endpoint_gpus:
        from harness.telemetry.session import NullGpuMeter

        return TelemetrySession(None, gpu=NullGpuMeter("external endpoint"))
    if plan.endpoint:
        env = {"CUDA_VISIBLE_DEVICES": ",".join(plan.endpoint_gpus)}
        return TelemetrySession(None, gpu_env=env, gpu_count=len(plan.endpoint_gpus))
    return TelemetrySession(None, gpu_env={**os.environ, **plan.engine_env}, gpu_count=plan.engine.gpu_count)


def _start_watchdog(plan: RunPlan, engine: Engine) -> EngineWatchdog:
    """Polls the engine during every phase (see harness.engine.watchdog)."""
    pid = engine.pid

    def gone() -> str | None:
        try:
            engine.check_alive()
        except EngineError as exc:
            return str(exc)
        return None

    def state() -> str | None:
        import psutil

        try:
            return str(psutil.Process(pid).status()) if pid is not None else None
        except psutil.Error:
            return None

    watchdog = EngineWatchdog(
        engine.base_url,
        timeout_s=plan.suite.spec.engine.watchdog_timeout_s,
        process_check=gone if pid is not None else None,
        process_state=state,
    )
    watchdog.start()
    return watchdog


def suite_info(plan: RunPlan) -> SuiteInfo:
    """The record's suite section: the suite as run, kept as data."""
    return SuiteInfo(
        name=plan.suite.spec.name,
        path=str(plan.suite.path) if plan.suite.path else None,
        sha256=plan.suite.sha256,
        spec=plan.suite.spec.model_dump(mode="json"),
    )


def _variant_info(plan: RunPlan) -> VariantInfo | None:
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


def _engine_info(plan: RunPlan, engine: Engine, run_dir: Path) -> EngineInfo:
    command = getattr(engine, "command", None)
    log = run_dir / "engine.log"
    return EngineInfo(
        kind="endpoint" if plan.endpoint else "vllm-server",
        endpoint=engine.base_url,
        args=plan.engine.model_dump(mode="json") if not plan.endpoint else {},
        command=list(command) if command else None,
        startup_s=engine.startup_s,
        log_path=log.name if log.exists() else None,
    )


def _describe_failure(exc: BaseException, engine: Engine | None) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    if engine is not None and not isinstance(exc, EngineError):
        try:
            engine.check_alive()
        except EngineError as dead:
            msg = f"EngineError: {dead} (while: {msg[:500]})"
    return msg[:4000]


def _measure(
    plan: RunPlan,
    model: ResolvedModel,
    engine: Engine,
    telemetry: TelemetrySession,
    run_dir: Path,
    partial: _Partial,
    hooks: RunHooks,
    watchdog: EngineWatchdog | None = None,
) -> None:
    spec = plan.suite.spec
    if plan.tasks:
        from harness.accuracy import AccuracyError, evaluate_tasks
        from harness.engine.endpoint import served_max_model_len

        max_length = spec.accuracy.max_length or served_max_model_len(engine.base_url, engine.served_name)
        if max_length is None:
            raise AccuracyError(
                f"the server at {engine.base_url} does not report max_model_len for {engine.served_name!r} "
                "in /v1/models: set accuracy.max_length in the suite to its context length"
            )
        hooks.on_phase("accuracy")
        telemetry.begin_window("accuracy")
        try:
            partial.accuracy.update(
                evaluate_tasks(
                    list(plan.tasks),
                    spec.accuracy,
                    base_url=engine.base_url,
                    served_name=engine.served_name,
                    tokenizer=model.tokenizer,
                    run_dir=run_dir,
                    max_length=max_length,
                    include_paths=plan.task_include_paths,
                    on_task=lambda t: hooks.on_phase(f"accuracy: {t}"),
                )
            )
        finally:
            telemetry.end_window("accuracy")
        partial.accuracy_energy = telemetry.accuracy_energy(
            "accuracy",
            sum(t.n_samples or 0 for t in partial.accuracy.values()),
            list(partial.accuracy.values()),
        )
        engine.check_alive()
    if plan.scenarios:
        from harness.loadgen.client import requests_from_parquet, token_counter, usable_token_ids
        from harness.rigor.execute import run_points

        token_ids = usable_token_ids(model.tokenizer)
        count_tokens = token_counter(model.tokenizer)
        under_load = _under_load_context(plan, model, engine, run_dir, partial, token_ids)

        def run_one(point: ScenarioPoint, repeat: int) -> ScenarioResult:
            # Each repeat is its own point name (`chat@c4#2`), so it draws its own prompts and
            # never hits another repeat's prefix cache.
            hooks.on_scenario_start(point.name, point.load.num_requests)

            def load(on_done: Any = None) -> None:
                run_scenario(
                    point,
                    plan.seed,
                    engine,
                    (token_ids, count_tokens, model.tokenizer),
                    telemetry,
                    run_dir,
                    hooks if on_done is None else _chained(hooks, on_done),
                    partial,
                    watchdog,
                    base_dir=plan.suite.path.parent if plan.suite.path else None,
                    lag_limit_ms=spec.performance.validity.max_loop_lag_ms,
                )

            if under_load is not None and _measures_point(under_load, point.name):
                from harness.accuracy.underload import measure_under_load

                hooks.on_phase(f"accuracy under load: {point.name}")
                acc, probe = measure_under_load(under_load, point.name, point.load.concurrency, load)
                res = partial.performance[point.name]
                partial.performance[point.name] = res.model_copy(
                    update={"accuracy_under_load": acc, "invariance": probe}
                )
            else:
                load()
            engine.check_alive()
            # The folded point replaces its repeats in the record (each repeat's rows stay on disk);
            # a failure before this line leaves the repeat itself in the record.
            return partial.performance.pop(point.name)

        def read_rows(result: ScenarioResult) -> list[RequestTiming]:
            assert result.requests_path is not None
            return requests_from_parquet(run_dir / result.requests_path)

        def schedule(result: ScenarioResult) -> list[float] | None:
            from harness.loadgen.client import LoadSpec

            st = result.settings
            if st.load.request_rate is None and st.load.ramp_up_strategy is None or st.scenario_seed is None:
                return None
            return LoadSpec(load=st.load, seed=st.scenario_seed).offsets_s()

        run_points(
            plan.scenarios,
            spec.performance,
            run_one,
            read_rows,
            on_point=lambda name, result: partial.performance.__setitem__(name, result),
            schedule=schedule,
        )


def _under_load_context(
    plan: RunPlan,
    model: ResolvedModel,
    engine: Engine,
    run_dir: Path,
    partial: _Partial,
    token_ids: list[int],
) -> Any:
    """What `accuracy.under_load` needs at each point (None: the suite asks for none)."""
    spec = plan.suite.spec.accuracy
    if spec.under_load is None:
        return None
    from harness.accuracy.underload import UnderLoadContext
    from harness.engine.endpoint import served_max_model_len

    return UnderLoadContext(
        spec=spec.under_load,
        accuracy=spec,
        tasks=list(plan.tasks),
        idle=dict(partial.accuracy),
        engine_url=engine.base_url,
        served_name=engine.served_name,
        tokenizer=model.tokenizer,
        token_ids=list(token_ids),
        run_dir=run_dir,
        max_length=spec.max_length or served_max_model_len(engine.base_url, engine.served_name),
        include_paths=plan.task_include_paths,
        seed=plan.seed,
    )


def _measures_point(ctx: Any, name: str) -> bool:
    from harness.spec.underload import measures_point

    return measures_point(ctx.spec, name)


def _chained(hooks: RunHooks, also: Any) -> RunHooks:
    """The hooks, with `also` called after each finished request (the probe waits for the load)."""
    import dataclasses

    def done() -> None:
        hooks.on_request_done()
        also()

    return dataclasses.replace(hooks, on_request_done=done)


def _analytics(plan: RunPlan, partial: _Partial, environment: Any) -> RecordAnalytics | None:
    from harness.arch import record_analytics

    return record_analytics(
        plan.model,
        performance=partial.performance,
        accuracy=partial.accuracy,
        environment=environment,
        engine_args=partial.engine_info.args if partial.engine_info else None,
    )


def _kept_on_scenario(window: str, phase: PhaseResources, partial: _Partial) -> bool:
    s = partial.performance.get(window[len("scenario:") :]) if window.startswith("scenario:") else None
    return s is not None and s.resources == phase


def _resources(phases: dict[str, PhaseResources], partial: _Partial) -> Resources:
    peaks = [p.engine_peak_rss_bytes for p in phases.values() if p.engine_peak_rss_bytes is not None]
    energies = [p.energy_j for p in phases.values()]
    measured = bool(energies) and all(e is not None for e in energies)
    reasons = [p.energy.reason for p in phases.values() if p.energy is not None]
    return Resources(
        engine_peak_rss_bytes=max(peaks) if peaks else None,
        # a scenario's window is stored once, on the scenario (schema v3); the sums above include it.
        # A point folded over repeats keeps pooled resources, so its repeats' windows stay here.
        phases={k: p for k, p in phases.items() if not _kept_on_scenario(k, p, partial)},
        energy_j=sum(e for e in energies if e is not None) if measured else None,
        energy=None if measured else Unmeasured(reason=reasons[0] if reasons else "no phase was measured"),
        idle=partial.idle,
        accuracy_energy=partial.accuracy_energy,
        memory=partial.memory,
        gpu_samples_path=partial.gpu_samples_path,
        server_metrics_path=partial.server_metrics_path,
    )
