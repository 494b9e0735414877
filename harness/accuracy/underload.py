"""Accuracy at a load point: lm-eval run beside the load generator, paired against the idle run.

For each point chosen by ``accuracy.under_load`` the runner hands :func:`measure_under_load` a
callable that runs the point's load. Then:

1. (probe) the reference greedy outputs are taken once per run, alone, before the first point;
2. the chosen tasks start in a thread of their own, evaluated exactly as idle (the same
   :func:`~harness.accuracy.lmeval.evaluate_tasks` call, settings and documents) but through a
   :class:`~harness.accuracy.relay.CountingRelay`, so their traffic is counted apart;
3. once lm-eval's first request is out, the load runs; the probe's prompts go one at a time beside it;
4. afterwards each task's sample log is paired with the idle one (:mod:`harness.accuracy.paired`).

lm-eval's sample logs at load go to ``under_load/<point>/samples/``. The load point's latency
figures come from the load generator's own rows, so they never include the evaluation's requests;
the engine's /metrics window of the point (``server``) does, and the record notes it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.accuracy.paired import PairingError, compare_logs
from harness.accuracy.relay import CountingRelay
from harness.loadgen.invariance import (
    ProbeBesideLoad,
    ProbeOutput,
    compare_outputs,
    greedy_output,
    probe_prompts,
)
from harness.record.run_record import TaskResult
from harness.record.underload import (
    AccuracyUnderLoad,
    EvalTraffic,
    InvarianceProbe,
    TaskUnderLoad,
)
from harness.rigor.compare import headline_filter, metric_name
from harness.spec.suite import AccuracySpec, TaskSpec, UnderLoadSpec
from harness.spec.underload import tasks_at_load

NOTES = (
    "lm-eval ran concurrently with the load generator, through a counting relay on 127.0.0.1 "
    "(its base_url in lm_eval_command); the point's latency figures are the load generator's requests only",
    "the point's `server` window (engine /metrics) counts the evaluation's requests too",
)
RunLoad = Callable[[Callable[[], None]], None]  # run the point's load; call the argument per finished request


@dataclass
class UnderLoadContext:
    """What a run knows when its load points start: the idle results and how to reach the engine."""

    spec: UnderLoadSpec
    accuracy: AccuracySpec
    tasks: list[TaskSpec]
    idle: dict[str, TaskResult]
    engine_url: str
    served_name: str
    tokenizer: str
    token_ids: list[int]
    run_dir: Path
    max_length: int | None
    include_paths: tuple[str, ...] = ()
    seed: int = 1234
    reference: list[ProbeOutput] | None = field(default=None)


def _folder(point: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", point)


def measure_under_load(
    ctx: UnderLoadContext, point: str, load_concurrency: int | None, run_load: RunLoad
) -> tuple[AccuracyUnderLoad | None, InvarianceProbe | None]:
    """Run the point's load with the evaluation (and probe) beside it; their records.

    Exceptions of ``run_load`` propagate after the evaluation has finished; a failing evaluation
    does not fail the point: its record carries the error.
    """
    tasks = [t for t in tasks_at_load(ctx.spec, ctx.tasks) if t.name in ctx.idle]
    probe_spec = ctx.spec.probe
    prompts: list[list[int]] = []
    if probe_spec is not None:
        prompts = probe_prompts(ctx.token_ids, probe_spec.prompts, probe_spec.input_tokens, ctx.seed)
        if ctx.reference is None:  # alone on the engine: concurrency 1, nothing else in flight
            ctx.reference = [
                greedy_output(ctx.engine_url, ctx.served_name, p, probe_spec.output_tokens) for p in prompts
            ]
    sub = ctx.run_dir / "under_load" / _folder(point)
    outcome: dict[str, object] = {}

    with CountingRelay(ctx.engine_url) as relay:

        def evaluate() -> None:
            from harness.accuracy.lmeval import evaluate_tasks

            try:
                outcome["results"] = evaluate_tasks(
                    tasks,
                    ctx.accuracy,
                    base_url=relay.base_url,
                    served_name=ctx.served_name,
                    tokenizer=ctx.tokenizer,
                    run_dir=sub,
                    max_length=ctx.max_length or 2048,
                    include_paths=ctx.include_paths,
                )
            except Exception as exc:  # noqa: BLE001 - the evaluation's failure is its record's `error`
                outcome["error"] = f"{type(exc).__name__}: {exc}"

        worker = threading.Thread(target=evaluate, name=f"eval-under-load-{point}", daemon=True)
        eval_t0 = time.monotonic()
        if tasks:
            worker.start()
            while not relay.first_request.wait(0.5) and worker.is_alive():
                pass  # lm-eval loads its tasks first: start the load when its requests flow
        probe = (
            ProbeBesideLoad(relay.base_url, ctx.served_name, prompts, probe_spec.output_tokens)
            if prompts and probe_spec is not None
            else None
        )
        if probe is not None:
            probe.start()
        load_t0 = time.monotonic()
        try:
            run_load(probe.load_running.set if probe is not None else lambda: None)
        finally:
            load_t1 = time.monotonic()
            if probe is not None:
                probe.load_running.set()
                probe.join()
            if tasks:
                worker.join()
            eval_t1 = time.monotonic()
    accuracy = None
    if tasks:
        accuracy = _accuracy_record(
            ctx, point, tasks, outcome, relay, (load_t0, load_t1), eval_t1 - eval_t0, sub
        )
    invariance = None
    if probe is not None and probe_spec is not None and ctx.reference is not None:
        if probe.error is not None or len(probe.outputs) != len(ctx.reference):
            invariance = InvarianceProbe(
                prompts=len(prompts),
                output_tokens=probe_spec.output_tokens,
                identical=0,
                identical_share=0.0,
                first_divergence=[],
                min_first_divergence=None,
                tokens_compared="token_strings",
                load_concurrency=load_concurrency,
                error=probe.error or "the probe did not finish",
            )
        else:
            invariance = compare_outputs(
                ctx.reference, probe.outputs, probe_spec.output_tokens, load_concurrency
            )
    return accuracy, invariance


def _accuracy_record(
    ctx: UnderLoadContext,
    point: str,
    tasks: list[TaskSpec],
    outcome: dict[str, object],
    relay: CountingRelay,
    load_window: tuple[float, float],
    eval_duration_s: float,
    sub: Path,
) -> AccuracyUnderLoad:
    c = relay.counts
    # in flight at some moment while the load ran: sent before it ended, answered after it began
    during = sum(sent <= load_window[1] and end >= load_window[0] for sent, end in c.spans)
    traffic = EvalTraffic(
        requests=len(c.send_s),
        prompts=c.prompts,
        prompt_tokens=c.prompt_tokens if not c.usage_missing else None,
        completion_tokens=c.completion_tokens if not c.usage_missing else None,
        failed=c.failed,
        during_load_share=during / len(c.spans) if c.spans else None,
        duration_s=eval_duration_s,
    )
    results = outcome.get("results")
    rows: list[TaskUnderLoad] = []
    if isinstance(results, dict):
        prefix = sub.relative_to(ctx.run_dir)
        for name, res in results.items():
            rows.append(_task_row(ctx, name, res, prefix))
    notes = list(NOTES)
    if c.usage_missing:
        notes.append(f"{c.usage_missing} evaluation responses carried no token usage: tokens unmeasured")
    if traffic.during_load_share is not None and traffic.during_load_share < 1:
        notes.append(
            f"only {traffic.during_load_share:.0%} of the evaluation's requests were sent while the load "
            "ran: raise the point's num_requests (or lower under_load.limit) to cover all of it"
        )
    error = outcome.get("error")
    return AccuracyUnderLoad(
        point=point, tasks=rows, traffic=traffic, notes=notes, error=str(error) if error else None
    )


def _task_row(ctx: UnderLoadContext, name: str, res: TaskResult, prefix: Path) -> TaskUnderLoad:
    low = high = None
    if res.stderr is not None:
        low, high = res.value - 1.96 * res.stderr, res.value + 1.96 * res.stderr
        if 0.0 <= res.value <= 1.0:
            low, high = max(0.0, low), min(1.0, high)
    samples = str(prefix / res.samples_path) if res.samples_path else None
    paired = None
    reason = None
    idle = ctx.idle.get(name)
    if idle is None or idle.samples_path is None:
        reason = "no idle sample log to pair with"
    elif samples is None:
        reason = "lm-eval logged no samples at load"
    else:
        try:
            paired = compare_logs(
                ctx.run_dir / idle.samples_path,
                ctx.run_dir / samples,
                metric_name(idle),
                headline_filter(idle),
                idle.higher_is_better is not False,
            )
        except (PairingError, OSError, ValueError) as exc:
            reason = str(exc)
    return TaskUnderLoad(
        task=name,
        metric=res.metric,
        value=res.value,
        stderr=res.stderr,
        ci95_low=low,
        ci95_high=high,
        n_samples=res.n_samples,
        samples_path=samples,
        lm_eval_command=res.lm_eval_command,
        paired=paired,
        reason=reason,
    )
