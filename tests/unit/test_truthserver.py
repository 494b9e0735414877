"""The ground-truth server keeps its schedule: recorded send times against the planned ones."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from harness.loadgen.client import LoadShape, LoadSpec, run_load
from tests.truthserver import Timing, read_truth
from tests.unit.test_loadgen_workers import truth  # noqa: F401 - the shared server fixture


def test_schedule_is_seeded_per_request_and_never_below_its_minimum() -> None:
    t = Timing(ttft_ms=10, itl_ms=5, itl_jitter_ms=1, seed=3)
    a, b = t.schedule_s(7, 50, None, None), t.schedule_s(7, 50, None, None)
    assert a == b and t.schedule_s(8, 50, None, None) != a
    gaps = np.diff(a) * 1000
    assert a[0] == 0.010 and gaps.min() >= t.min_itl_ms() == 4 and gaps.max() <= 6
    e = Timing(itl_ms=5, itl_jitter_ms=2, dist="exp").draw(random.Random(1), 5, 2)
    assert e >= 3


def test_recorded_send_times_match_the_schedule(truth: tuple[str, Path]) -> None:  # noqa: F811
    url, truth_dir = truth
    res = run_load(
        LoadSpec(
            load=LoadShape(
                input_tokens=8,
                output_tokens=30,
                num_requests=8,
                concurrency=4,
                request_rate=None,
                warmup_requests=0,
                client_workers=1,
            ),
            seed=9,
        ),
        url,
        "truth",
        list(range(50)),
    )
    assert all(r.ok and r.output_tokens == 30 for r in res.requests)
    assert res.first_send_s is not None
    rows = [r for r in read_truth(truth_dir) if r["recv_s"] >= res.first_send_s]
    assert len(rows) == 8
    late_ms = np.array([s - p for r in rows for s, p in zip(r["sent_s"], r["sched_s"], strict=True)]) * 1000
    assert all(len(r["sent_s"]) == 30 and r["buffered"] == 0 for r in rows)
    assert late_ms.min() >= 0.0  # a chunk never leaves before its time
    assert np.median(late_ms) < 3.0 and np.percentile(late_ms, 90) < 10.0  # busy 2-core machine
    sched = Timing(ttft_ms=10, itl_ms=5, itl_jitter_ms=1)
    for r in rows:  # what was planned is the seeded draw for that request's key
        planned = [r["recv_s"] + x for x in sched.schedule_s(r["key"], 30, None, None)]
        assert np.allclose(r["sched_s"], planned, atol=1e-9)
