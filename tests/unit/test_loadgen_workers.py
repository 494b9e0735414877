"""The multi-process load generator: one schedule dealt to workers, their rows merged, their lag known.

Runs against the ground-truth server (``tests/truthserver.py``) in a subprocess on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.loadgen.arrivals import arrival_offsets_s
from harness.loadgen.client import LoadShape, LoadSpec, run_load
from harness.loadgen.lag import ClientHealth, WorkerHealth, summarize, workers_needed
from harness.loadgen.workers import deal, merged_offsets, split_concurrency
from harness.run.scenario import client_timing
from tests.truthserver import read_truth

ROOT = Path(__file__).resolve().parents[2]


def vllm_offsets(n: int, rate: float, burstiness: float, seed: int) -> list[float]:
    """vllm bench serve's get_request send times (np.random.seed; gamma gaps; rescaled to n/rate)."""
    np.random.seed(seed)
    gaps = [np.random.gamma(shape=burstiness, scale=1.0 / (rate * burstiness)) for _ in range(n)]
    cum = np.cumsum(gaps)
    return list(cum * ((n / rate) / cum[-1]))


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_merged_worker_schedules_are_vllms_send_times(workers: int) -> None:
    n, rate, b, seed = 50, 4.0, 0.5, 99
    ours = arrival_offsets_s(n, rate, seed=seed, burstiness=b)
    parts = [[(i, ours[i]) for i in idx] for idx in deal(n, workers)]
    assert sorted(i for part in parts for i, _ in part) == list(range(n))  # each request once
    assert all(len(p) in (n // workers, n // workers + 1) for p in parts)  # dealt evenly
    assert merged_offsets(parts) == pytest.approx(vllm_offsets(n, rate, b, seed), rel=1e-12)


def test_concurrency_is_split_without_loss() -> None:
    assert split_concurrency(10, 3) == [4, 3, 3]
    assert sum(split_concurrency(7, 7)) == 7
    assert split_concurrency(None, 2) == [None, None]


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    d = tmp_path_factory.mktemp("truth")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "tests.truthserver", "--port", str(port), "--truth-dir", str(d)]
    cmd += ["--ttft-ms", "10", "--itl-ms", "5", "--itl-jitter-ms", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "truth server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", d
    proc.terminate()
    proc.wait(timeout=10)


def test_workers_send_on_the_one_schedule_and_merge_one_table(truth: tuple[str, Path]) -> None:
    url, truth_dir = truth
    spec = LoadSpec(
        load=LoadShape(
            input_tokens=8,
            output_tokens=6,
            num_requests=24,
            concurrency=None,
            request_rate=40.0,
            warmup_requests=0,
            client_workers=3,
        ),
        seed=5,
    )
    res = run_load(spec, url, "truth", list(range(100, 200)))
    assert res.health is not None and res.health.workers == 3 and res.health.workers_reason == "set: 3"
    assert [r.index for r in res.requests] == list(range(24))
    assert all(r.ok and r.output_tokens == 6 and len(r.chunk_s) == 6 for r in res.requests)
    planned = np.array(spec.offsets_s())
    sent = np.array([r.send_s for r in res.requests])
    lateness = sent - planned
    assert lateness.min() >= 0.0  # never early: every worker waits for the same origin
    assert np.median(lateness) < 0.01  # on time, on a busy machine, within 10 ms
    # The server saw each request after the client sent it, on the same host clock.
    rows = [r for r in read_truth(truth_dir) if r["recv_s"] >= res.first_send_s]  # type: ignore[operator]
    assert len(rows) >= 24
    assert res.health.lag_samples > 0 and res.health.busy_share_max is not None


def test_a_starved_client_is_flagged_client_bound(truth: tuple[str, Path]) -> None:
    url, _ = truth

    def hog() -> None:  # runs on the client's event loop after each request: it stalls the loop
        t = time.perf_counter()
        while time.perf_counter() - t < 0.05:
            pass

    spec = LoadSpec(
        load=LoadShape(
            input_tokens=8,
            output_tokens=20,
            num_requests=16,
            concurrency=4,
            request_rate=None,
            warmup_requests=0,
            client_workers=1,
        ),
        seed=6,
    )
    res = run_load(spec, url, "truth", list(range(100, 200)), on_done=hog)
    h = res.health
    assert h is not None and h.lag_max_ms is not None and h.lag_max_ms > 20
    assert h.client_bound is not None and h.client_bound.startswith("client-bound")
    rec = client_timing(h)
    assert rec is not None and rec.workers == 1 and rec.timing_error_bound_ms == h.lag_p99_ms


def test_client_bound_rules_and_the_automatic_worker_count() -> None:
    calm = summarize([WorkerHealth([0.0001] * 100, 0.1, 1.0)], "set: 1", "asyncio")
    assert calm.client_bound is None and calm.timing_error_bound_ms == pytest.approx(0.1)
    busy = summarize([WorkerHealth([0.0001] * 100, 0.1, 1.0), WorkerHealth([0.0], 0.95, 1.0)], "x", "asyncio")
    assert busy.workers == 2 and busy.client_bound is not None and "95%" in busy.client_bound
    lagging = ClientHealth(1, "x", "asyncio", 10, 1.0, 7.5, 9.0, 0.2)
    assert lagging.client_bound == "client-bound: event-loop lag p99 7.50 ms > 5 ms"
    assert workers_needed(0.2, 8) == 1 and workers_needed(1.2, 8) == 3 and workers_needed(9.0, 2) == 2


def test_the_event_loop_is_uvloop_when_importable_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.loadgen.client import event_loop_for, loop_factory

    assert event_loop_for(False) == "asyncio" and loop_factory("asyncio") is None
    pytest.importorskip("uvloop")
    assert event_loop_for(None) == "uvloop" and event_loop_for(True) == "uvloop"
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    assert event_loop_for(None) == "asyncio"
    with pytest.raises(RuntimeError, match="uvloop is not installed"):
        event_loop_for(True)
    with pytest.raises(ValueError, match="event_loop"):
        loop_factory("trio")


def test_one_loop_runs_on_uvloop_and_says_so(truth: tuple[str, Path]) -> None:
    pytest.importorskip("uvloop")
    url, _ = truth
    for want, loop in ((True, "uvloop"), (False, "asyncio")):
        shape = LoadShape(
            input_tokens=8,
            output_tokens=6,
            num_requests=8,
            concurrency=4,
            request_rate=None,
            warmup_requests=2,
            client_workers=1,
        )
        spec = LoadSpec(load=shape, seed=7, client_uvloop=want)
        res = run_load(spec, url, "truth", list(range(100, 200)))
        assert res.health is not None and res.health.event_loop == loop and res.health.workers == 1
        assert all(r.ok and len(r.chunk_s) == 6 for r in res.requests)


def test_the_lag_probe_knows_its_own_cpu() -> None:
    from harness.loadgen.lag import LagProbe

    async def go() -> tuple[float, float]:
        probe = LagProbe(interval_s=0.001)
        probe.start(asyncio.get_running_loop())
        await asyncio.sleep(0.2)
        during = probe.thread_cpu_s()
        probe.stop()
        return during, probe.thread_cpu_s()

    during, after = asyncio.run(go())
    assert 0.0 < during <= after < 0.2  # it costs something, and less than the wall time


@pytest.mark.parametrize("workers", [1, 2])
def test_on_dispatch_runs_once_between_the_warm_up_and_the_measured_requests(
    truth: tuple[str, Path], workers: int
) -> None:
    url, truth_dir = truth
    calls: list[float] = []
    start = time.monotonic()
    shape = LoadShape(
        input_tokens=8,
        output_tokens=4,
        num_requests=6,
        concurrency=2,
        request_rate=None,
        warmup_requests=3,
        client_workers=workers,
    )
    res = run_load(
        LoadSpec(load=shape, seed=11),
        url,
        "truth",
        list(range(100, 200)),
        on_dispatch=lambda: calls.append(time.monotonic()),
    )
    assert all(r.ok for r in res.requests) and len(res.requests) == 6
    assert len(calls) == 1
    rows = [r for r in read_truth(truth_dir) if r["recv_s"] >= start]
    assert len(rows) == 9
    warm, measured = rows[:3], rows[3:]
    assert all(r["recv_s"] < calls[0] for r in warm), (calls, warm)  # the warm-up was already sent...
    assert all(r["recv_s"] > calls[0] for r in measured), (calls, measured)  # ...and nothing measured yet
