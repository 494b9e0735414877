"""Executes one RunPlan: engine up, accuracy, performance, engine down, record written.

A run is a sequence of phases, each returning a frozen part (:mod:`harness.run.record_builder`):
the model resolved, the engine's facts, its idle baseline, the accuracy part, one
:class:`ScenarioResult` per point, the meters' part at teardown. What a live phase started
(engine, GPU meter, watchdog, metrics poller) is stopped by one :class:`contextlib.ExitStack`,
in reverse order, whatever happened. Every failure (model unavailable, engine that never
becomes healthy or dies mid-run, an lm-eval error, Ctrl-C or SIGTERM) ends the run as a
``failed`` record built from the parts returned so far, by the same builder every executor uses.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.engine.base import Engine, EngineError
from harness.engine.poller import MetricsPoller
from harness.engine.watchdog import EngineWatchdog
from harness.loadgen.metrics import RequestTiming
from harness.model.weights import ResolvedModel, hub_reachable, resolve_model
from harness.planning.plan import RunPlan
from harness.record.run_record import EngineInfo, RunRecord, ScenarioResult, TaskResult
from harness.run.environment import collect_environment
from harness.run.record_builder import ENDPOINT_UNVERIFIED as ENDPOINT_UNVERIFIED
from harness.run.record_builder import (
    AccuracyPart,
    Baseline,
    EngineFacts,
    Measured,
    MeterPart,
    build_record,
    identify,
)
from harness.run.record_builder import new_run_id as new_run_id
from harness.run.record_builder import suite_info as suite_info
from harness.run.scenario import RunHooks, hit_alignment, run_scenario, write_server_series
from harness.run.signals import as_interrupt as signals_as_interrupt
from harness.run.signals import deferred as deferred_signals
from harness.spec.scenario import ScenarioPoint
from harness.storage.fallback import make_run_dir, save_traceback, write_record_or_fallback
from harness.storage.store import runs_dir
from harness.telemetry import TelemetrySession


def _endpoint_model(plan: RunPlan) -> ResolvedModel:
    """An external endpoint's model: only its tokenizer is needed here; its weights are not ours to check."""
    m = plan.model
    if m.source == "builtin":
        from harness.model.checkpoints import ensure_checkpoint

        path = str(ensure_checkpoint(m.name))
    else:
        path = m.local_path or m.hub_id or m.name
    return ResolvedModel(path, path, None, None, "external endpoint")


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
        return _execute(plan, results, hooks or RunHooks(), fingerprint)


def _execute(plan: RunPlan, results: Path, hooks: RunHooks, fingerprint: str | None) -> RunRecord:
    identity = identify(plan, fingerprint)
    # the fallback folder if results/ takes nothing
    run_dir = make_run_dir(runs_dir(results), identity.run_id)
    run = _Run(plan, run_dir, hooks)
    error, interrupted = run.run()
    measured = run.measured
    # the GPU provenance as the teardown read it: start() measured the counters' update periods
    # and attach() the GPU identity
    environment = collect_environment(dict(measured.meter.gpu_fields) if measured.meter else {})
    record = build_record(plan, identity, measured, error, environment)
    write_record_or_fallback(run_dir, record)
    if interrupted is not None:
        raise interrupted
    return record


class _Run:
    """One run's phases in order, and the frozen parts they returned so far (:attr:`measured`).

    Phases get what they need as arguments and return their part; only :meth:`_keep` adds a
    part, so a failure at any point leaves exactly the parts of the phases before it (and the
    scenario it cut short)."""

    def __init__(self, plan: RunPlan, run_dir: Path, hooks: RunHooks) -> None:
        self.plan, self.run_dir, self.hooks = plan, run_dir, hooks
        self.measured = Measured()
        self.engine: Engine | None = None  # live handles, for the failure's description
        self.watchdog: EngineWatchdog | None = None
        self.teardown_error: str | None = None

    def _keep(self, **parts: Any) -> None:
        self.measured = dataclasses.replace(self.measured, **parts)

    def _keep_scenario(self, result: ScenarioResult) -> None:
        self.measured = self.measured.with_scenario(result)

    def run(self) -> tuple[str | None, BaseException | None]:
        """Every phase, then the teardown; the run's error (None: ok) and the interrupt to re-raise."""
        error: str | None = None
        interrupted: BaseException | None = None
        with signals_as_interrupt() as signals:
            try:
                with ExitStack() as teardown:
                    try:
                        self._phases(teardown)
                    except KeyboardInterrupt as exc:
                        interrupted = exc
                        error = f"interrupted ({exc or 'Ctrl-C'})"
                    except Exception as exc:  # noqa: BLE001 - every failure becomes a failed record
                        # described before the teardown: whether the engine is still alive is part of it
                        error = _describe_failure(exc, self.engine)
                        if self.watchdog is not None and self.watchdog.cause:
                            error = (
                                f"EngineError: {self.watchdog.cause} "
                                f"(the watchdog ended the run; then: {error[:500]})"
                            )
                        # never masks `error`, even when error.txt cannot be written
                        error = save_traceback(self.run_dir, traceback.format_exc(), error)
                    finally:
                        signals.hold()  # the teardown runs to its end: later signals are noted, not raised
            except Exception as exc:  # noqa: BLE001 - the teardown's own failure never masks the run's
                note = f"the teardown failed: {type(exc).__name__}: {exc}"
                error = f"{error}; then {note}" if error else note
            error = error or self.teardown_error
            if signals and interrupted is None:
                interrupted = KeyboardInterrupt(f"signal {signals[0]}")
                error = f"interrupted (signal {signals[0]}); the run then failed with: {error}"
        return error, interrupted

    def _phases(self, teardown: ExitStack) -> None:
        plan, hooks, run_dir = self.plan, self.hooks, self.run_dir
        model = _resolve_inputs(plan, run_dir, hooks)
        self._keep(model=model)
        engine = self.engine = _make_engine(plan, model, run_dir)
        teardown.callback(_stop_engine, engine, hooks)
        hooks.on_phase("starting engine")
        telemetry = _telemetry_session(plan)
        self._keep(meter=MeterPart(gpu_fields=telemetry.environment_fields()))
        teardown.callback(self._close_meter, telemetry)
        try:
            _start_engine(engine, telemetry)
        finally:  # also when it never became healthy: its command, log and start time
            self._keep(engine=EngineFacts(_engine_info(plan, engine, run_dir), engine.served_name))
        watchdog = self.watchdog = _start_watchdog(plan, engine)
        teardown.callback(watchdog.stop)
        poller = MetricsPoller(engine.base_url)
        telemetry.kv_cache = poller
        teardown.callback(self._close_poller, poller)
        poller.start()
        baseline = _idle_baseline(telemetry, poller, model, run_dir, hooks)
        self._keep(baseline=baseline)
        telemetry.kv_capacity_tokens = baseline.memory.kv_cache_capacity_tokens if baseline.memory else None
        with watchdog.guard():  # a hung engine interrupts lm-eval; the load generator polls it
            if plan.tasks:
                self._keep(accuracy=_accuracy(plan, model, engine, telemetry, run_dir, hooks))
                engine.check_alive()
            if plan.scenarios:
                self._performance(model, engine, telemetry, poller, baseline)

    def _performance(
        self,
        model: ResolvedModel,
        engine: Engine,
        telemetry: TelemetrySession,
        poller: MetricsPoller,
        baseline: Baseline,
    ) -> None:
        """Every point of the suite's scenarios (rigor's repeats, sweeps, probes), each kept as folded."""
        from harness.loadgen.client import requests_from_parquet, token_counter, usable_token_ids
        from harness.rigor.execute import run_points

        plan, hooks, run_dir = self.plan, self.hooks, self.run_dir
        token_ids = usable_token_ids(model.tokenizer)
        count_tokens = token_counter(model.tokenizer)
        accuracy = self.measured.accuracy
        under_load = _under_load_context(
            plan, model, engine, run_dir, dict(accuracy.tasks) if accuracy else {}, token_ids
        )
        kv_block_size = hit_alignment(baseline.memory)

        def load(point: ScenarioPoint, on_done: Any = None) -> ScenarioResult:
            result = run_scenario(
                point,
                plan.seed,
                engine,
                (token_ids, count_tokens, model.tokenizer),
                telemetry,
                run_dir,
                hooks if on_done is None else _chained(hooks, on_done),
                self.watchdog,
                base_dir=plan.suite.path.parent if plan.suite.path else None,
                lag_limit_ms=plan.suite.spec.performance.validity.max_loop_lag_ms,
                poller=poller,
                kv_block_size=kv_block_size,
            )
            if result.incomplete:  # cut short: what it measured stays in the record
                self._keep_scenario(result)
                raise EngineError(f"scenario {point.name}: {result.incomplete}")
            return result

        def run_one(point: ScenarioPoint, repeat: int) -> ScenarioResult:
            # Each repeat is its own point name (`chat@c4#2`), so it draws its own prompts and
            # never hits another repeat's prefix cache.
            hooks.on_scenario_start(point.name, point.load.num_requests)
            if under_load is not None and _measures_point(under_load, point.name):
                from harness.accuracy.underload import measure_under_load

                hooks.on_phase(f"accuracy under load: {point.name}")
                loaded: list[ScenarioResult] = []

                def measured_load(on_done: Callable[[], None]) -> None:
                    loaded.append(load(point, on_done))

                acc, probe = measure_under_load(under_load, point.name, point.load.concurrency, measured_load)
                result = loaded[0].model_copy(update={"accuracy_under_load": acc, "invariance": probe})
            else:
                result = load(point)
            try:
                engine.check_alive()
            except EngineError:  # the repeat itself stays in the record
                self._keep_scenario(result)
                raise
            # The folded point replaces its repeats in the record (each repeat's rows stay on disk).
            return result

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
            plan.suite.spec.performance,
            run_one,
            read_rows,
            on_point=lambda name, result: self._keep_scenario(result),
            schedule=schedule,
        )

    # ------------------------------------------------------------ teardown steps (ExitStack)

    def _close_poller(self, poller: MetricsPoller) -> None:
        poller.stop()
        self._keep(server_metrics_path=write_server_series(self.run_dir, poller))

    def _close_meter(self, telemetry: TelemetrySession) -> None:
        telemetry.stop()
        # again: start() measured the counters' update periods and attach() the GPU identity
        phases, gpu_fields = dict(telemetry.phases), telemetry.environment_fields()
        samples = None
        try:
            samples = telemetry.write_gpu_samples(self.run_dir)
        except OSError as exc:
            self.teardown_error = f"could not write GPU samples: {exc}"
        self._keep(meter=MeterPart(phases=phases, gpu_fields=gpu_fields, gpu_samples_path=samples))


def _stop_engine(engine: Engine, hooks: RunHooks) -> None:
    hooks.on_phase("stopping engine")
    engine.stop()


# ---------------------------------------------------------------- the phases


def _resolve_inputs(plan: RunPlan, run_dir: Path, hooks: RunHooks) -> ResolvedModel:
    """Weights and datasets, before the engine: what is missing fails the run in seconds, all of
    it in one message (not the weights only on the next attempt)."""
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
        model = _endpoint_model(plan) if plan.endpoint else resolve_model(plan.model, plan.engine.revision)
    except Exception as exc:
        if datasets_error is None:
            raise
        raise missing_inputs(exc, datasets_error) from exc
    if datasets_error is not None:
        raise datasets_error
    return model


def _start_engine(engine: Engine, telemetry: TelemetrySession) -> None:
    """The GPU meter, then the engine, inside the ``engine_start`` window (loading is metered too)."""
    telemetry.start()
    telemetry.begin_window("engine_start")
    try:
        engine.start()
    finally:
        telemetry.attach(engine.pid)
        telemetry.end_window("engine_start")


def _idle_baseline(
    telemetry: TelemetrySession, poller: MetricsPoller, model: ResolvedModel, run_dir: Path, hooks: RunHooks
) -> Baseline:
    """The idle engine: its draw for 5 s, and its memory (weights, KV cache) from log and /metrics."""
    from harness.engine.poller import measure_engine_memory

    hooks.on_phase("idle baseline")
    idle = telemetry.measure_idle(5.0)
    memory = measure_engine_memory(
        run_dir / "engine.log",
        poller,
        Path(model.path),
        getattr(idle, "memory_used_bytes", None),
        getattr(idle, "memory_total_bytes", None),
        getattr(idle, "reason", None),
    )
    return Baseline(idle=idle, memory=memory)


def _accuracy(
    plan: RunPlan,
    model: ResolvedModel,
    engine: Engine,
    telemetry: TelemetrySession,
    run_dir: Path,
    hooks: RunHooks,
) -> AccuracyPart:
    """lm-eval's tasks against the engine, inside the ``accuracy`` window; their results and energy."""
    from harness.accuracy import AccuracyError, evaluate_tasks
    from harness.engine.endpoint import served_max_model_len

    spec = plan.suite.spec
    max_length = spec.accuracy.max_length or served_max_model_len(engine.base_url, engine.served_name)
    if max_length is None:
        raise AccuracyError(
            f"the server at {engine.base_url} does not report max_model_len for {engine.served_name!r} "
            "in /v1/models: set accuracy.max_length in the suite to its context length"
        )
    hooks.on_phase("accuracy")
    telemetry.begin_window("accuracy")
    try:
        tasks = evaluate_tasks(
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
    finally:
        telemetry.end_window("accuracy")
    energy = telemetry.accuracy_energy(
        "accuracy", sum(t.n_samples or 0 for t in tasks.values()), list(tasks.values())
    )
    return AccuracyPart(tasks=dict(tasks), energy=energy)


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


def _under_load_context(
    plan: RunPlan,
    model: ResolvedModel,
    engine: Engine,
    run_dir: Path,
    idle: dict[str, TaskResult],
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
        idle=idle,
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
