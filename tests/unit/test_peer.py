"""Pooling of both tools' per-request rows (harness.loadgen.peer)."""

from __future__ import annotations

import pytest

from harness.loadgen.metrics import RequestTiming
from harness.loadgen.peer import pooled, ratios, run_from_harness, run_from_vllm, table


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
    assert "| w | output_throughput | 4.50 | 4.50 | 1.000 | ±3 % | yes |" in table([("w", ph, pv)])
