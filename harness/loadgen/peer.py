"""Side-by-side figures of the harness and ``vllm bench serve`` on one workload (pure).

Both tools' per-request rows are brought to one shape and pooled over repeats before any
statistic is taken (an average of medians is not a median): output tokens/s is the pooled
output tokens over the summed durations; TTFT, TPOT, ITL and E2EL follow vLLM's definitions
(:mod:`harness.loadgen.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.loadgen.metrics import RequestTiming
from harness.stats import CONFIDENCE, t_ppf, welch_difference

# (figure, tolerance as a fraction) checked by benchmarks/peer_fidelity.py (issue 9)
COMPARED: tuple[tuple[str, float], ...] = (
    ("output_throughput", 0.03),
    ("mean_ttft_ms", 0.05),
    ("mean_tpot_ms", 0.05),
    ("median_itl_ms", 0.05),
    ("median_e2el_ms", 0.05),
)


@dataclass(frozen=True)
class Row:
    """One successful request: seconds, and its output tokens."""

    ttft_s: float
    e2el_s: float
    output_tokens: int
    itl_s: tuple[float, ...]


@dataclass(frozen=True)
class Run:
    rows: tuple[Row, ...]
    duration_s: float
    failed: int


def run_from_vllm(result: dict[str, Any]) -> Run:
    """A ``vllm bench serve --save-result --save-detailed`` result JSON as a run."""
    rows = []
    failed = 0
    for ttft, lat, out, itl, err in zip(
        result["ttfts"],
        result["latencies"],
        result["output_lens"],
        result["itls"],
        result["errors"],
        strict=True,
    ):
        if err:
            failed += 1
            continue
        rows.append(Row(float(ttft), float(lat), int(out), tuple(float(g) for g in itl)))
    return Run(tuple(rows), float(result["duration"]), failed)


def run_from_harness(requests: Iterable[RequestTiming], duration_s: float) -> Run:
    rows = []
    failed = 0
    for r in requests:
        ttft, e2el = r.ttft_s, r.e2el_s
        if not r.ok or ttft is None or e2el is None:
            failed += 1
            continue
        rows.append(Row(ttft, e2el, r.output_tokens, tuple(r.itl_s)))
    return Run(tuple(rows), duration_s, failed)


def pooled(runs: Sequence[Run]) -> dict[str, float]:
    """The compared figures over all runs' requests pooled."""
    rows = [row for run in runs for row in run.rows]
    duration = sum(run.duration_s for run in runs)
    tpots = [(r.e2el_s - r.ttft_s) / (r.output_tokens - 1) for r in rows if r.output_tokens > 1]
    itls = [g for r in rows for g in r.itl_s]

    def mean_ms(x: Sequence[float]) -> float:
        return float(np.mean(x)) * 1000.0 if x else float("nan")

    def median_ms(x: Sequence[float]) -> float:
        return float(np.median(x)) * 1000.0 if x else float("nan")

    return {
        "output_throughput": sum(r.output_tokens for r in rows) / duration if duration > 0 else float("nan"),
        "mean_ttft_ms": mean_ms([r.ttft_s for r in rows]),
        "mean_tpot_ms": mean_ms(tpots),
        "median_itl_ms": median_ms(itls),
        "median_e2el_ms": median_ms([r.e2el_s for r in rows]),
        "completed": float(len(rows)),
        "failed": float(sum(run.failed for run in runs)),
    }


def ratios(harness: dict[str, float], vllm: dict[str, float]) -> dict[str, float]:
    """harness / vllm for each compared figure."""
    return {k: harness[k] / vllm[k] if vllm[k] else float("nan") for k, _ in COMPARED}


def ratio_interval(
    harness_reps: Sequence[float], vllm_reps: Sequence[float], ratio: float, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """An interval for harness/vllm from the repeats' own scatter, centred on the pooled ratio.

    Each tool's per-repeat figures are taken on a log scale and their means' standard errors
    combined as in Welch's test (Welch-Satterthwaite degrees of freedom); the interval is
    ``ratio * exp(±t * se)``. An approximation: the pooled ratio is not the ratio of the
    repeats' means, but the scatter of repeats is what says how far a ratio can be trusted.
    None when either tool has fewer than two positive figures (no noise estimate).
    """
    h = [float(np.log(x)) for x in harness_reps if x > 0]
    v = [float(np.log(x)) for x in vllm_reps if x > 0]
    if len(h) < 2 or len(v) < 2 or not ratio > 0:
        return None
    _, se, df = welch_difference(v, h)
    if se == 0.0:
        return (ratio, ratio)
    half = t_ppf(0.5 + confidence / 2.0, df) * se
    return (ratio * float(np.exp(-half)), ratio * float(np.exp(half)))


def within(ratio: float, interval: tuple[float, float] | None, tol: float) -> str:
    """``yes`` when the interval lies inside 1 ± tol, ``NO`` when it lies wholly outside,
    ``inconclusive`` when it straddles a bound (the repeats scatter more than the tolerance
    allows a verdict on). Without an interval the point ratio alone decides."""
    if not np.isfinite(ratio):
        return "inconclusive"
    if interval is None:
        return "yes" if abs(ratio - 1.0) <= tol else "NO"
    low, high = interval
    if low >= 1.0 - tol and high <= 1.0 + tol:
        return "yes"
    if high < 1.0 - tol or low > 1.0 + tol:
        return "NO"
    return "inconclusive"


def table(
    rows: Sequence[tuple[str, dict[str, float], dict[str, float]]],
    repeats: Sequence[tuple[Sequence[dict[str, float]], Sequence[dict[str, float]]]] | None = None,
) -> str:
    """A Markdown table: workload, figure, vllm bench serve, harness, ratio, its interval from
    the repeats (``repeats[i]``: harness's and vllm's per-repeat figures of ``rows[i]``), the
    tolerance and the verdict (:func:`within`)."""
    out = [
        "| workload | figure | vllm bench serve | harness | harness/vllm | 95 % interval | tolerance | within |",
        "|---|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for i, (workload, h, v) in enumerate(rows):
        for key, tol in COMPARED:
            ratio = h[key] / v[key] if v[key] else float("nan")
            interval = None
            if repeats is not None:
                h_reps, v_reps = repeats[i]
                interval = ratio_interval([r[key] for r in h_reps], [r[key] for r in v_reps], ratio)
            shown = "–" if interval is None else f"{interval[0]:.3f}–{interval[1]:.3f}"
            out.append(
                f"| {workload} | {key} | {v[key]:.2f} | {h[key]:.2f} | {ratio:.3f} | {shown} "
                f"| ±{tol * 100:.0f} % | {within(ratio, interval, tol)} |"
            )
    return "\n".join(out)
