"""One load scenario on a running engine: its workload sent, its window metered, its result kept.

:func:`run_scenario` is the runner's per-point phase (rigor's repeats, sweeps and capacity probes
call it too) and returns the point's frozen :class:`ScenarioResult`; :class:`RunHooks` are the
progress callbacks the CLI passes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.engine.base import Engine, EngineError
from harness.engine.poller import MetricsPoller
from harness.engine.watchdog import EngineWatchdog
from harness.loadgen.metrics import RequestTiming
from harness.record.run_record import ClientTiming, EngineMemory, ScenarioResult, ScenarioSettings
from harness.run.signals import polled as polled_signals
from harness.spec.scenario import ScenarioPoint
from harness.telemetry import TelemetrySession

if TYPE_CHECKING:
    from harness.loadgen.lag import ClientHealth


@dataclass
class RunHooks:
    """Progress callbacks; the CLI passes rich progress bars, tests pass nothing."""

    on_phase: Callable[[str], None] = lambda phase: None
    on_scenario_start: Callable[[str, int], None] = lambda name, total: None
    on_request_done: Callable[[], None] = lambda: None


def run_scenario(
    scenario: ScenarioPoint,
    seed: int,
    engine: Engine,
    tokenizer: tuple[list[int], Callable[[str], int], str],
    telemetry: TelemetrySession,
    run_dir: Path,
    hooks: RunHooks,
    watchdog: EngineWatchdog | None = None,
    base_dir: Path | None = None,
    lag_limit_ms: float | None = None,
    poller: MetricsPoller | None = None,
    kv_block_size: int | None = None,
) -> ScenarioResult:
    """Run one scenario; its result. A result with ``incomplete`` set was cut short (a hung
    engine, a signal) and holds what was measured before: the caller keeps it and fails the run.

    ``lag_limit_ms``: the suite's ``validity.max_loop_lag_ms`` (None: the load generator's own);
    `poller` is the engine's /metrics series (the scenario's server window is read from it),
    `kv_block_size` the tokens the engine's prefix-cache hits land on (:func:`hit_alignment`; the
    workload's implied prefix hits)."""
    from harness.loadgen.client import LoadSpec, run_load, write_requests_parquet
    from harness.loadgen.metrics import aggregate
    from harness.loadgen.peer_command import vllm_bench_command
    from harness.loadgen.prompts import scenario_seed
    from harness.loadgen.sessions import run_sessions
    from harness.run.workload import scenario_workload, workload_info

    token_ids, count_tokens, tokenizer_path = tokenizer
    # The record's settings hold the load generator's load itself; the scenario draws its own
    # prompts and arrivals, so it never hits another scenario's prefix cache.
    load = LoadSpec(load=scenario.load, seed=scenario_seed(seed, scenario.name))
    workload = scenario_workload(
        scenario,
        load.seed,
        token_ids,
        tokenizer_path,
        base_dir,
        kv_block_size,
    )
    command = (
        None
        if workload is not None
        else vllm_bench_command(load, engine.base_url, engine.served_name, tokenizer_path)
    )
    settings = ScenarioSettings(
        load=scenario.load, seed=seed, scenario_seed=load.seed, vllm_bench_command=command
    )
    window = f"scenario:{scenario.name}"
    t0 = poller.clock() if poller is not None else None
    telemetry.begin_window(window)
    try:
        # a Ctrl-C/SIGTERM now ends the scenario as a watchdog trip does: its completed requests are kept
        with (
            watchdog.suspended() if watchdog is not None else nullcontext(),
            polled_signals(watchdog) as abort,
        ):
            if workload is not None and workload.is_conversation:
                assert scenario.workload.conversation is not None
                result = run_sessions(
                    load,
                    engine.base_url,
                    engine.served_name,
                    workload.sessions,
                    think_time_s=scenario.workload.conversation.think_time_s,
                    on_done=hooks.on_request_done,
                    count_tokens=count_tokens,
                    abort=abort,
                )
            else:
                result = run_load(
                    load,
                    engine.base_url,
                    engine.served_name,
                    token_ids,
                    on_done=hooks.on_request_done,
                    count_tokens=count_tokens,
                    abort=abort,
                    items=workload.items if workload is not None else None,
                    on_dispatch=_poll_at_dispatch(poller),
                )
    finally:
        phase = telemetry.end_window(window)
    server = None
    if poller is not None and t0 is not None:
        poller.poll_once()  # the counters as the scenario ends
        server = poller.server_window(
            # From the measured dispatch (warm-up excluded) where the load generator says when it began.
            result.first_send_s if result.first_send_s is not None else t0,
            poller.clock(),
            workload.implied_prefix_hit_rate if workload is not None else None,
            dispatch_s=result.first_send_s,
        )
    agg = aggregate(result.requests, duration_s=result.duration_s)
    if agg["completed"] == 0 and not result.aborted:
        raise EngineError(f"scenario {scenario.name}: every request failed: {'; '.join(agg['errors'][:3])}")
    from harness.safety.names import child

    # the name may be anything the suite said (`../x`, `/abs`): one safe component, kept inside run_dir
    rel = child(run_dir / "requests", scenario.name, suffix=".parquet").relative_to(run_dir)
    (run_dir / rel.parent).mkdir(parents=True, exist_ok=True)
    write_requests_parquet(str(run_dir / rel), result.requests)
    out_tokens = agg["total_output_tokens"]
    energy = telemetry.scenario_energy(
        window,
        out_tokens,
        requests=timeline_rows(result.requests),
        target_concurrency=settings.load.concurrency if settings.load.request_rate is None else None,
        first_send_s=result.first_send_s,
    )
    health = result.health
    if health is not None and lag_limit_ms is not None:
        import dataclasses

        health = dataclasses.replace(health, lag_limit_ms=lag_limit_ms)
    client_bound = health.client_bound if health is not None else None
    return ScenarioResult(
        name=scenario.name,
        settings=settings,
        client_cpu_s=result.client_cpu_s,
        client_cpu_us_per_output_token=(result.client_cpu_s * 1e6 / out_tokens) if out_tokens else None,
        requests_path=str(rel),
        incomplete=result.aborted,
        resources=phase,
        energy=energy,
        server=server,
        workload=workload_info(scenario, workload, result.requests, base_dir),
        client=client_timing(health),
        valid=False if client_bound else None,
        validity_reasons=[client_bound] if client_bound else [],
        **agg,
    )


def _poll_at_dispatch(poller: MetricsPoller | None) -> Callable[[], None] | None:
    """A poll of /metrics as the measured dispatch starts, so the server window's counters start
    after the warm-up, not at the last background poll before it (up to a poll interval earlier)."""
    if poller is None:
        return None

    def poll() -> None:
        poller.poll_once()

    return poll


def hit_alignment(memory: EngineMemory | None) -> int | None:
    """Tokens prefix-cache hits land on (vLLM's cache_hit_alignment_tokens), else the KV block size."""
    if memory is None:
        return None
    return memory.prefix_cache_hit_alignment_tokens or memory.kv_cache_block_size


def client_timing(health: ClientHealth | None) -> ClientTiming | None:
    """The record's view of the client's lag figures."""
    if health is None:
        return None
    return ClientTiming(
        workers=health.workers,
        workers_reason=health.workers_reason,
        event_loop=health.event_loop,
        http_client=health.http_client,
        lag_samples=health.lag_samples,
        lag_p50_ms=health.lag_p50_ms,
        lag_p99_ms=health.lag_p99_ms,
        lag_max_ms=health.lag_max_ms,
        busy_share_max=health.busy_share_max,
        timing_error_bound_ms=health.timing_error_bound_ms,
        lag_limit_ms=health.lag_limit_ms,
        busy_limit=health.busy_limit,
    )


def write_server_series(run_dir: Path, poller: MetricsPoller) -> str | None:
    """The engine's /metrics polls as ``telemetry/server_metrics.parquet`` (t_s from the poller's origin)."""
    from harness.engine.server_metrics import write_series

    if not poller.series:
        return None
    rel = Path("telemetry") / "server_metrics.parquet"
    try:
        write_series(run_dir / rel, poller.series, t0_s=poller.origin_s)
    except OSError:
        return None
    return str(rel)


def timeline_rows(requests: list[RequestTiming]) -> list[dict[str, Any]]:
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
