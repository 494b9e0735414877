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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.engine.base import Engine, EngineError
from harness.environment import collect_environment
from harness.loadgen.metrics import RequestTiming
from harness.plan import RunPlan
from harness.records import (
    AccuracyEnergy,
    EngineInfo,
    EngineMemory,
    IdleBaseline,
    ModelInfo,
    PhaseResources,
    Resources,
    RunRecord,
    ScenarioResult,
    ScenarioSettings,
    SuiteInfo,
    TaskResult,
    Unmeasured,
)
from harness.store import runs_dir, write_record
from harness.suite import PerfScenario
from harness.telemetry import TelemetrySession


class ModelUnavailableError(RuntimeError):
    """The weights cannot be had on this machine (no network and no local copy)."""


@dataclass
class ResolvedModel:
    path: str  # what the engine loads: a directory or a Hub id
    tokenizer: str
    revision: str | None
    checksum: str | None
    source_note: str


@dataclass
class RunHooks:
    """Progress callbacks; the CLI passes rich progress bars, tests pass nothing."""

    on_phase: Callable[[str], None] = lambda phase: None
    on_scenario_start: Callable[[str, int], None] = lambda name, total: None
    on_request_done: Callable[[], None] = lambda: None


@dataclass
class _Partial:
    """What a run has measured so far; becomes the record whatever happens."""

    accuracy: dict[str, TaskResult] = field(default_factory=dict)
    performance: dict[str, ScenarioResult] = field(default_factory=dict)
    engine_info: EngineInfo | None = None
    idle: IdleBaseline | None = None
    accuracy_energy: AccuracyEnergy | None = None
    memory: EngineMemory | None = None
    gpu_samples_path: str | None = None


def new_run_id(model: str, suite: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}-{suite}").strip("-")[:80]
    return f"{now:%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(2)}"


def resolve_model(plan: RunPlan) -> ResolvedModel:
    """Where the engine gets the weights; fails at once, with a remedy, if it cannot."""
    from harness.checkpoints import checkpoint_checksum, ensure_checkpoint

    m = plan.model
    if m.source == "builtin":
        path = ensure_checkpoint(m.name)
        return ResolvedModel(str(path), str(path), None, checkpoint_checksum(path), "built on this machine")
    if m.source == "local":
        assert m.local_path is not None
        return ResolvedModel(
            m.local_path, m.local_path, None, checkpoint_checksum(Path(m.local_path)), "local"
        )
    assert m.hub_id is not None
    return _resolve_hub(m.hub_id, gated=m.gated)


def _hub_reachable(timeout_s: float = 5.0) -> bool:
    import socket
    import threading
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout_s).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    th = threading.Thread(target=probe, daemon=True)
    th.start()
    th.join(timeout_s + 1)  # DNS resolution has no timeout of its own
    return bool(ok and ok[0])


def _resolve_hub(hub_id: str, gated: bool) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    try:  # a complete local copy in the Hugging Face cache works offline
        path = snapshot_download(hub_id, local_files_only=True)
        return ResolvedModel(path, path, Path(path).name, None, "Hugging Face cache")
    except Exception:  # noqa: BLE001 - any cache miss means: not available locally
        pass
    if not _hub_reachable():
        token = " with HF_TOKEN set (gated model: accept its licence first)" if gated else ""
        raise ModelUnavailableError(
            f"the weights of {hub_id} cannot be fetched: the Hugging Face Hub is not reachable from this "
            f"machine and no local copy is in the Hugging Face cache. Download them where there is network"
            f"{token} (`huggingface-cli download {hub_id} --local-dir DIR`), copy DIR here and run "
            f"`harness run SUITE --model DIR`, or set HF_HOME to a cache that holds them."
        )
    revision: str | None = None
    try:
        from huggingface_hub import HfApi

        revision = HfApi().model_info(hub_id).sha
    except Exception:  # noqa: BLE001 - the engine gives the real error (auth, missing repo)
        pass
    return ResolvedModel(hub_id, hub_id, revision, None, "Hugging Face Hub")


def _endpoint_model(plan: RunPlan) -> ResolvedModel:
    """An external endpoint's model: only its tokenizer is needed here; its weights are not ours to check."""
    m = plan.model
    if m.source == "builtin":
        from harness.checkpoints import ensure_checkpoint

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
        return ExternalEndpoint(plan.endpoint, accepted_names=tuple(dict.fromkeys(names)))
    from harness.engine.vllm_server import VllmServer

    return VllmServer(
        model_path=model.path,
        served_name=plan.model.name,
        cli_args=plan.engine.as_cli(),
        log_path=run_dir / "engine.log",
        startup_timeout_s=plan.startup_timeout_s,
        seed=plan.seed,
        kv_cache_gib=int(os.environ.get("HARNESS_CPU_KVCACHE_GIB", "2")),
    )


@contextmanager
def _signals_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM and SIGINT unwind as KeyboardInterrupt, so `finally` blocks stop the engine and
    write the record. The signals received are also noted in the yielded list, because library
    code (lm-eval's async HTTP client) may swallow the KeyboardInterrupt and raise something else.
    """
    import signal
    import threading

    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def execute(plan: RunPlan, results: Path, hooks: RunHooks | None = None) -> RunRecord:
    """Run one plan to a record on disk. Never raises for run failures; KeyboardInterrupt is re-raised
    after the failed record is written."""
    hooks = hooks or RunHooks()
    started = datetime.now(timezone.utc)
    run_id = new_run_id(plan.model.name, plan.suite.spec.name, started)
    run_dir = runs_dir(results) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = _Partial()
    error: str | None = None
    interrupted: BaseException | None = None
    model: ResolvedModel | None = None
    engine: Engine | None = None
    telemetry: TelemetrySession | None = None
    poller = None
    phases: dict[str, PhaseResources] = {}
    gpu_fields: dict[str, Any] = {}
    with _signals_as_interrupt() as signals:
        try:
            if plan.tasks:  # before the engine: a missing dataset fails the run in seconds
                from harness.accuracy import preflight_datasets

                hooks.on_phase("checking task datasets")
                preflight_datasets(
                    list(plan.tasks), run_dir / "tasks", plan.task_include_paths, hub_reachable=_hub_reachable
                )
            hooks.on_phase("resolving model")
            model = _endpoint_model(plan) if plan.endpoint else resolve_model(plan)
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
            from harness.engine.vllm_metrics import MetricsPoller

            poller = MetricsPoller(engine.base_url)
            telemetry.kv_cache = poller
            poller.start()
            hooks.on_phase("idle baseline")
            partial.idle = telemetry.measure_idle(5.0)
            partial.memory = _engine_memory(engine, model, run_dir, poller, partial.idle)
            telemetry.kv_capacity_tokens = partial.memory.kv_cache_capacity_tokens
            _measure(plan, model, engine, telemetry, run_dir, partial, hooks)
        except KeyboardInterrupt as exc:
            interrupted = exc
            error = f"interrupted ({exc or 'Ctrl-C'})"
        except Exception as exc:  # noqa: BLE001 - every failure becomes a failed record
            error = _describe_failure(exc, engine)
            (run_dir / "error.txt").write_text(traceback.format_exc())
        finally:
            try:
                if poller is not None:
                    poller.stop()
                if telemetry is not None:
                    telemetry.stop()
                    phases = dict(telemetry.phases)
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
        suite=SuiteInfo(
            name=plan.suite.spec.name,
            path=str(plan.suite.path) if plan.suite.path else None,
            sha256=plan.suite.sha256,
            spec=plan.suite.spec.model_dump(mode="json"),
        ),
        model=ModelInfo(
            preset=plan.model.name if plan.model.source != "local" else "local",
            family=plan.model.family,
            source=model.path if model else (plan.model.hub_id or plan.model.local_path or plan.model.name),
            revision=model.revision if model else None,
            checksum_sha256=model.checksum if model else None,
            served_name=engine.served_name if engine and engine.served_name else plan.model.name,
            checksum=Unmeasured(reason=ENDPOINT_UNVERIFIED) if plan.endpoint else None,
        ),
        engine=partial.engine_info,
        environment=environment,
        started_at=started,
        finished_at=finished,
        accuracy=partial.accuracy,
        performance=performance,
        resources=_resources(phases, partial),
        analytics=analytics,
    )
    write_record(run_dir, record)
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
    return TelemetrySession(None, gpu_env=dict(os.environ), gpu_count=plan.engine.gpu_count)


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
            "accuracy", sum(t.n_samples or 0 for t in partial.accuracy.values())
        )
        engine.check_alive()
    if plan.scenarios:
        from harness.loadgen.client import usable_token_ids

        token_ids = usable_token_ids(model.tokenizer)
        for scenario in plan.scenarios:
            hooks.on_scenario_start(scenario.name, scenario.num_requests)
            partial.performance[scenario.name] = _run_scenario(
                scenario, plan.seed, engine, token_ids, telemetry, run_dir, hooks
            )
            engine.check_alive()


def _run_scenario(
    scenario: PerfScenario,
    seed: int,
    engine: Engine,
    token_ids: list[int],
    telemetry: TelemetrySession,
    run_dir: Path,
    hooks: RunHooks,
) -> ScenarioResult:
    from harness.loadgen.client import LoadSpec, run_load, write_requests_parquet
    from harness.loadgen.metrics import aggregate

    # The record's settings and the load generator's spec are the same figures.
    settings = ScenarioSettings(**scenario.model_dump(exclude={"name"}), seed=seed)
    load = LoadSpec(**settings.model_dump())
    window = f"scenario:{scenario.name}"
    telemetry.begin_window(window)
    try:
        result = run_load(load, engine.base_url, engine.served_name, token_ids, on_done=hooks.on_request_done)
    finally:
        phase = telemetry.end_window(window)
    agg = aggregate(result.requests)
    if agg["completed"] == 0:
        raise EngineError(f"scenario {scenario.name}: every request failed: {'; '.join(agg['errors'][:3])}")
    rel = Path("requests") / f"{scenario.name}.parquet"
    (run_dir / rel.parent).mkdir(parents=True, exist_ok=True)
    write_requests_parquet(str(run_dir / rel), result.requests)
    out_tokens = agg["total_output_tokens"]
    energy = telemetry.scenario_energy(
        window,
        out_tokens,
        requests=_timeline_rows(result.requests),
        target_concurrency=scenario.concurrency if scenario.request_rate is None else None,
        first_send_s=result.first_send_s,
    )
    return ScenarioResult(
        settings=settings,
        client_cpu_s=result.client_cpu_s,
        client_cpu_us_per_output_token=(result.client_cpu_s * 1e6 / out_tokens) if out_tokens else None,
        requests_path=str(rel),
        resources=phase,
        energy=energy,
        **agg,
    )


def _timeline_rows(requests: list[RequestTiming]) -> list[dict[str, Any]]:
    """Per-request rows in the shape the energy steady-state window reads (seconds, ms)."""
    return [
        {
            "send_s": r.send_s,
            "end_s": r.end_s,
            "first_token_s": r.first_token_s,
            "output_tokens": r.output_tokens,
            "itl_ms": [g * 1000.0 for g in r.itl_s],
        }
        for r in requests
    ]


def _analytics(plan: RunPlan, partial: _Partial, environment: Any) -> dict[str, Any] | None:
    from harness.arch import record_analytics

    return record_analytics(
        plan.model,
        performance=partial.performance,
        accuracy=partial.accuracy,
        environment=environment,
        engine_args=partial.engine_info.args if partial.engine_info else None,
    )


def _engine_memory(
    engine: Engine, model: ResolvedModel, run_dir: Path, poller: Any, idle: IdleBaseline | None
) -> EngineMemory:
    """Weights, KV-cache capacity and NVML's figure side by side (NVML's alone says little,
    since vLLM pre-allocates most of the card for its KV cache)."""
    from harness.engine.vllm_metrics import engine_memory

    log = run_dir / "engine.log"
    poller.poll_once()
    local = Path(model.path)
    return engine_memory(
        log_text=log.read_text(errors="replace") if log.exists() else None,
        metrics_text=poller.last_text,
        checkpoint=local if local.is_dir() else None,
        nvml_memory_used_bytes=getattr(idle, "memory_used_bytes", None),
    )


def _resources(phases: dict[str, PhaseResources], partial: _Partial) -> Resources:
    peaks = [p.engine_peak_rss_bytes for p in phases.values() if p.engine_peak_rss_bytes is not None]
    energies = [p.energy_j for p in phases.values()]
    measured = bool(energies) and all(e is not None for e in energies)
    reasons = [p.energy.reason for p in phases.values() if p.energy is not None]
    return Resources(
        engine_peak_rss_bytes=max(peaks) if peaks else None,
        phases=phases,
        energy_j=sum(e for e in energies if e is not None) if measured else None,
        energy=None if measured else Unmeasured(reason=reasons[0] if reasons else "no phase was measured"),
        idle=partial.idle,
        accuracy_energy=partial.accuracy_energy,
        memory=partial.memory,
        gpu_samples_path=partial.gpu_samples_path,
    )


def requests_from_parquet(path: Path) -> list[RequestTiming]:
    """The per-request table back as timings (for re-aggregation and tests)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    out = []
    for r in rows:
        first = r["first_token_s"]
        chunks = [first] if first is not None else []
        for gap in r["itl_ms"] or []:
            chunks.append(chunks[-1] + gap / 1000.0)
        out.append(
            RequestTiming(
                index=r["index"],
                send_s=r["send_s"],
                input_tokens=r["input_tokens"],
                first_token_s=first,
                end_s=r["end_s"],
                chunk_s=chunks,
                output_tokens=r["output_tokens"],
                error=r["error"],
            )
        )
    return out
