"""`harness compare` as JSON, and the hint a reader needs when the runs are too small to compare."""

from __future__ import annotations

from typing import Any

from harness.analysis.compare import Comparison

# Below this many completed requests a p99 is one or two requests, and a run-to-run
# difference of tens of percent is ordinary (see benchmarks/noise_floor.py).
SMALL_RUN_REQUESTS = 100


def noise_hints(cmp: Comparison) -> list[str]:
    """One line per scenario whose runs are too small for their tail percentiles to mean much."""
    hints = []
    names = dict.fromkeys(s for r in cmp.records for s in r.performance)
    for name in names:
        counts = [r.performance[name].completed for r in cmp.records if name in r.performance]
        n = min(counts, default=0)
        if 0 < n < SMALL_RUN_REQUESTS:
            tail = max(1, round(n / 100))
            hints.append(
                f"noise: scenario {name!r} completed {n} request(s) in its smallest run, so its p99 rests on "
                f"{tail} request(s) and its median on a handful; differences of tens of percent between "
                f"identical runs this small are ordinary. For a change you can trust, run more requests "
                f"(num_requests >= {SMALL_RUN_REQUESTS}) or repeats and use `harness gate`, which tests "
                "against the noise."
            )
    return hints


def comparison_json(cmp: Comparison) -> dict[str, Any]:
    """Provenance per run and every figure with its deltas against the first run."""
    n = len(cmp.records)
    return {
        "runs": [r.run_id for r in cmp.records],
        "provenance": {key: list(values) for key, values in cmp.provenance},
        "differing_provenance": cmp.differing_provenance,
        "figures": [
            {
                "section": row.section,
                "name": row.name,
                "metric": row.metric,
                "label": row.label,
                "higher_is_better": row.higher_is_better,
                "values": list(row.values),
                "stderrs": list(row.stderrs) or None,
                "deltas": [row.delta(i) for i in range(1, n)],
                "relative_deltas": [row.rel_delta(i) for i in range(1, n)],
            }
            for row in cmp.rows
        ],
        "noise_hints": noise_hints(cmp),
    }
