"""Pooling of both tools' per-request rows (harness.loadgen.peer)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.loadgen.metrics import RequestTiming
from harness.loadgen.peer import (
    pooled,
    ratio_interval,
    ratios,
    run_from_harness,
    run_from_vllm,
    table,
    within,
)


def test_vllm_rows_and_harness_rows_pool_alike() -> None:
    vllm = {
        "duration": 2.0,
        "ttfts": [0.1, 0.2, 0.0],
        "latencies": [0.5, 0.8, 0.0],
        "output_lens": [5, 4, 0],
        "itls": [[0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2], []],
        "errors": ["", "", "boom"],
    }
    v = run_from_vllm(vllm)
    assert len(v.rows) == 2 and v.failed == 1
    reqs = []
    for i, (ttft, itl, out) in enumerate(((0.1, [0.1] * 4, 5), (0.2, [0.2] * 3, 4))):
        chunks = [ttft]
        for g in itl:
            chunks.append(chunks[-1] + g)
        reqs.append(
            RequestTiming(i, 0.0, 8, first_token_s=ttft, end_s=chunks[-1], chunk_s=chunks, output_tokens=out)
        )
    reqs.append(RequestTiming(2, 0.0, 8, end_s=0.1, error="HTTP 500"))
    h = run_from_harness(reqs, 2.0)
    ph, pv = pooled([h]), pooled([v])
    assert ph == pytest.approx(pv)
    assert pv["output_throughput"] == pytest.approx(9 / 2.0)
    assert pv["mean_ttft_ms"] == pytest.approx(150.0)
    assert pv["mean_tpot_ms"] == pytest.approx(((0.5 - 0.1) / 4 + (0.8 - 0.2) / 3) / 2 * 1000)
    assert pv["median_itl_ms"] == pytest.approx(100.0)  # 4 gaps of 100, 3 of 200, pooled
    assert all(r == pytest.approx(1.0) for r in ratios(ph, pv).values())
    # two runs pool their requests and their durations, not their summaries
    both = pooled([v, v])
    assert both["output_throughput"] == pytest.approx(18 / 4.0) and both["completed"] == 4
    assert "| w | output_throughput | 4.50 | 4.50 | 1.000 | – | ±3 % | yes |" in table([("w", ph, pv)])


def test_the_ratio_interval_is_welchs_on_log_figures() -> None:
    from scipy import stats as sps

    h, v = [50.0, 50.6, 51.6], [40.2, 44.0, 55.6]
    ratio = sum(h) / sum(v)
    low, high = ratio_interval(h, v, ratio) or (0.0, 0.0)
    lh, lv = np.log(h), np.log(v)
    se2 = lh.var(ddof=1) / 3 + lv.var(ddof=1) / 3
    df = se2**2 / ((lh.var(ddof=1) / 3) ** 2 / 2 + (lv.var(ddof=1) / 3) ** 2 / 2)
    half = sps.t.ppf(0.975, df) * np.sqrt(se2)
    assert (low, high) == pytest.approx((ratio * np.exp(-half), ratio * np.exp(half)))
    assert ratio_interval([1.0], v, 1.0) is None  # one repeat: no noise estimate


@pytest.mark.parametrize(
    ("interval", "verdict"),
    [
        ((0.98, 1.02), "yes"),
        ((0.90, 1.02), "inconclusive"),  # the repeats scatter past the tolerance
        ((0.80, 0.94), "NO"),
        ((1.06, 1.20), "NO"),
        (None, "yes"),  # one repeat: the point ratio decides
    ],
)
def test_a_verdict_needs_the_whole_interval_on_one_side(
    interval: tuple[float, float] | None, verdict: str
) -> None:
    assert within(1.0, interval, 0.05) == verdict


def test_a_noisy_peer_makes_the_table_inconclusive_not_no() -> None:
    h = {
        "output_throughput": 50.7,
        "mean_ttft_ms": 1.0,
        "mean_tpot_ms": 1.0,
        "median_itl_ms": 1.0,
        "median_e2el_ms": 1.0,
    }
    v = {**h, "output_throughput": 45.7}
    reps_h = [{**h, "output_throughput": x} for x in (50.0, 50.6, 51.6)]
    reps_v = [{**v, "output_throughput": x} for x in (40.2, 44.0, 55.6)]
    out = table([("c=8", h, v)], [(reps_h, reps_v)])
    row = next(line for line in out.splitlines() if "output_throughput" in line)
    assert row.endswith("| inconclusive |")
    assert table([("c=8", h, v)]).splitlines()[2].endswith("| NO |")  # the point alone: 1.109
