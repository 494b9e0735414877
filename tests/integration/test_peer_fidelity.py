"""The load generator against its peer, ``vllm bench serve``, on the shared SmolLM2 server.

The full comparison (two concurrencies and a Poisson rate, issue 9's ±3 %/±5 % tolerances) is
``benchmarks/peer_fidelity.py``; here a closed loop is run by both tools, alternating, and the
ratios must agree within a tolerance wide enough for a busy 2-core machine.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from harness.engine.vllm_bench import run_bench_serve
from harness.engine.vllm_server import VllmServer
from harness.loadgen.arrivals import arrival_offsets_s
from harness.loadgen.client import LoadShape, LoadSpec, run_load, token_counter, usable_token_ids
from harness.loadgen.metrics import aggregate
from harness.loadgen.peer import Run, pooled, ratios, run_from_harness, run_from_vllm, table
from harness.loadgen.peer_command import vllm_bench_args
from harness.loadgen.workers import deal, merged_offsets

# Issue 9 asks ±3 % (throughput) and ±5 % (latencies) of the benchmark script; one short closed loop
# on a machine shared with other work scatters more than that between two runs of vLLM's own tool
# (benchmarks/peer_fidelity.py saw 58 and 46 output tok/s from two of them, minutes apart).
TOLERANCE = {
    "output_throughput": 0.25,
    "mean_ttft_ms": 0.35,
    "mean_tpot_ms": 0.25,
    "median_itl_ms": 0.25,
    "median_e2el_ms": 0.25,
}


async def _vllm_offsets(n: int, rate: float, burstiness: float, seed: int, **ramp: Any) -> list[float]:
    """The send times vLLM's own get_request produces, on a fake clock (no real sleeping)."""
    from vllm.benchmarks import serve

    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    fake_time = types.SimpleNamespace(time=lambda: clock[0], perf_counter=lambda: clock[0])
    fake_asyncio = types.SimpleNamespace(sleep=sleep)
    real_time, real_asyncio = serve.time, serve.asyncio
    serve.time, serve.asyncio = fake_time, fake_asyncio  # type: ignore[assignment]
    try:
        np.random.seed(seed)  # what vllm bench serve does with --seed
        out = []
        gen: AsyncIterator[Any] = serve.get_request(list(range(n)), rate, burstiness, **ramp)
        async for _request, _rate in gen:
            out.append(clock[0])
        return out
    finally:
        serve.time, serve.asyncio = real_time, real_asyncio


@pytest.mark.parametrize(
    ("rate", "burstiness", "ramp"),
    [
        (2.0, 1.0, {}),
        (5.0, 0.3, {}),
        (
            float("inf"),
            1.0,
            {"ramp_up_strategy": "exponential", "ramp_up_start_rps": 1, "ramp_up_end_rps": 9},
        ),
    ],
)
def test_arrival_schedule_is_vllms_to_the_microsecond(
    rate: float, burstiness: float, ramp: dict[str, Any]
) -> None:
    import asyncio

    theirs = asyncio.run(_vllm_offsets(40, rate, burstiness, 1234, **ramp))
    ours = arrival_offsets_s(40, rate, seed=1234, burstiness=burstiness, **ramp)
    assert ours == pytest.approx(theirs, abs=1e-6)


@pytest.mark.parametrize("workers", [2, 3])
def test_merged_worker_schedules_are_vllms_to_the_microsecond(workers: int) -> None:
    import asyncio

    theirs = asyncio.run(_vllm_offsets(40, 3.0, 0.7, 4321))
    ours = arrival_offsets_s(40, 3.0, seed=4321, burstiness=0.7)
    parts = [[(i, ours[i]) for i in idx] for idx in deal(40, workers)]
    assert merged_offsets(parts) == pytest.approx(theirs, abs=1e-6)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_closed_loop_agrees_with_vllm_bench_serve(smollm2_server: VllmServer) -> None:
    server = smollm2_server
    tokenizer = server.model_path
    ids = usable_token_ids(tokenizer)
    count = token_counter(tokenizer)
    url, served = server.base_url, server.served_name
    run_load(
        LoadSpec(
            load=LoadShape(
                input_tokens=128,
                output_tokens=32,
                num_requests=4,
                concurrency=4,
                request_rate=None,
                warmup_requests=0,
                client_workers=1,
            ),
            seed=1,
        ),
        url,
        served,
        ids,
        count_tokens=count,
    )  # warm the server
    runs: dict[str, list[Run]] = {"harness": [], "vllm": []}
    # Two repeats, alternating the tools; if a ratio is out (a burst of load from elsewhere on a
    # shared machine moves one side's mean TTFT by tens of percent), two more repeats are pooled in
    # before judging: more requests, not a wider tolerance.
    for rep in range(4):
        # fresh prompts each repeat; the harness on two worker processes (harness.loadgen.workers)
        spec = LoadSpec(
            load=LoadShape(
                input_tokens=128,
                output_tokens=32,
                num_requests=16,
                concurrency=4,
                request_rate=None,
                warmup_requests=0,
                client_workers=2,
            ),
            seed=700 + rep,
        )
        for tool in ("vllm", "harness") if rep % 2 == 0 else ("harness", "vllm"):
            if tool == "vllm":
                args = [*vllm_bench_args(spec, url, served, tokenizer), "--ready-check-timeout-sec", "0"]
                runs[tool].append(run_from_vllm(run_bench_serve([*args, "--save-detailed"], timeout_s=600)))
            else:
                res = run_load(spec, url, served, ids, count_tokens=count)
                agg = aggregate(res.requests, duration_s=res.duration_s)
                runs[tool].append(run_from_harness(res.requests, agg["duration"]))
        h, v = pooled(runs["harness"]), pooled(runs["vllm"])
        bad = {k: r for k, r in ratios(h, v).items() if not abs(r - 1) <= TOLERANCE[k]}
        if rep == 1 and not bad:
            break
    print("\n" + table([("closed c=4", h, v)]))
    n = 16 * len(runs["harness"])
    assert h["completed"] == v["completed"] == n and h["failed"] == v["failed"] == 0
    assert not bad, f"harness/vllm ratios out of tolerance after {len(runs['harness'])} repeats: {bad}"
