"""Synthetic records for `harness decide`: one task, a capacity search, a variant (tests only)."""

from __future__ import annotations

from typing import Any

from harness.record.rigor import CapacityResult, PointInfo, PointRigor, SloRecord
from harness.record.run_record import RunRecord, VariantInfo
from tests.factories import make_record, make_scenario, task_result

SLO = SloRecord(ttft_ms=2000, tpot_ms=100, preset="mlperf-llama3.1-8b")


def cap_record(
    model: str,
    acc: float,
    tok_s: float,
    *,
    variant: str | None = None,
    suite: str = "decide",
    hardware: str = "h100",
    n: int = 500,
    se: float = 0.01,
    capacity: float | None = 4.0,
    j_per_token: float | None = 0.3,
    **kw: Any,
) -> RunRecord:
    """A record with one task and a capacity search whose capacity point runs at ``tok_s``."""
    point = make_scenario(
        "cap@r4", concurrency=None, request_rate=capacity or 1.0, output_throughput=tok_s, num_requests=100
    )
    result = CapacityResult(
        scenario="cap",
        over="request_rate",
        slo=SLO,
        attainment_target=0.99,
        capacity=capacity,
        capacity_point="cap@r4" if capacity is not None else None,
        stop_reason="bracketed within tolerance",
        tolerance=1.0,
        output_throughput=tok_s if capacity is not None else None,
        energy_per_output_token_j=j_per_token if hardware != "cpu" else None,
        energy_reason=None if hardware != "cpu" else "no NVIDIA GPU visible",
    )
    point = point.model_copy(
        update={
            "rigor": PointRigor(
                point=PointInfo(scenario="cap", role="probe", request_rate=4.0), capacity=result
            )
        }
    )
    rec = make_record(
        model,
        suite,
        accuracy={"arc_challenge": task_result("arc_challenge", (acc, se), n_samples=n, samples_path=None)},
        scenarios={"cap@r4": point},
        hardware=hardware,
        **kw,
    )
    if variant is not None:
        rec = rec.model_copy(
            update={"variant": VariantInfo(name=variant, baseline="base", is_baseline=variant == "base")}
        )
    return rec


def with_accuracy_at_load(rec: RunRecord, point: str, value: float, se: float = 0.01) -> RunRecord:
    """``rec`` with its first task evaluated again beside ``point``'s load (no sample log)."""
    from harness.record.underload import AccuracyUnderLoad, TaskUnderLoad

    t = rec.tasks[0]
    acc = AccuracyUnderLoad(
        point=point,
        tasks=[
            TaskUnderLoad(
                task=t.name, metric=t.metric, value=value, stderr=se, n_samples=t.n_samples, samples_path=None
            )
        ],
    )
    scenarios = [
        s.model_copy(update={"accuracy_under_load": acc}) if s.name == point else s for s in rec.scenarios
    ]
    return rec.model_copy(update={"scenarios": scenarios})
