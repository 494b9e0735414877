"""What the record says about a workload: per-turn statistics and the workload summary."""

from __future__ import annotations

import pytest

from harness.loadgen.metrics import RequestTiming
from harness.run.workload import turn_stats, workload_info
from harness.spec.expand import expand_scenarios
from harness.spec.scenario import ScenarioPoint
from harness.spec.suite import PerformanceSpec, PerfScenario
from harness.workloads.build import Session, WorkItem, Workload


def turn(session: int, k: int, ttft_s: float, prompt: int, cached: int | None) -> RequestTiming:
    r = RequestTiming(
        index=0, send_s=0.0, input_tokens=prompt, first_token_s=ttft_s, end_s=ttft_s + 1, output_tokens=4
    )
    r.chunk_s = [ttft_s, ttft_s + 1]
    r.session, r.turn, r.cached_tokens = session, k, cached
    return r


def test_turn_stats_group_by_turn_position() -> None:
    rows = [
        turn(0, 1, 0.10, 50, 0),
        turn(1, 1, 0.30, 50, 0),
        turn(0, 2, 0.05, 120, 96),
        turn(1, 2, 0.07, 130, 104),
        turn(0, 3, 0.06, 200, None),  # the server did not say: left out of the cached share
    ]
    stats = turn_stats(rows)
    assert [t.turn for t in stats] == [1, 2, 3]
    assert stats[0].median_ttft_ms == pytest.approx(200.0) and stats[0].cached_tokens_frac == 0.0
    assert stats[1].requests == 2 and stats[1].mean_input_tokens == 125.0
    assert stats[1].cached_tokens_frac == pytest.approx(200 / 250)
    assert stats[2].cached_tokens_frac is None and stats[2].median_ttft_ms == pytest.approx(60.0)


def scenario(**kw: object) -> ScenarioPoint:
    base: dict[str, object] = {
        "name": "s",
        "input_tokens": 8,
        "output_tokens": 4,
        "num_requests": 2,
        "concurrency": 1,
    }
    (point,) = expand_scenarios(PerformanceSpec(scenarios=[PerfScenario.model_validate({**base, **kw})]))
    return point


def test_default_random_load_has_no_workload_section() -> None:
    assert scenario().workload.is_default
    assert workload_info(scenario(), None, [], None) is None


def test_workload_info_of_a_prefix_and_a_conversation_scenario() -> None:
    s = scenario(prefix={"groups": 2, "length": 16}, warmup_requests=0)
    items = [
        WorkItem(prompt=[1] * 24, input_tokens=24, output_tokens=4, prefix_group=0, shared_prefix_tokens=16)
    ]
    rows = [RequestTiming(0, 0.0, 24, 0.1, 0.2, [0.1, 0.2], 4)]
    info = workload_info(s, Workload(items=items, implied_prefix_hit_rate=0.5), rows, None)
    assert info is not None
    assert (info.prompt_source, info.prefix_groups, info.prefix_tokens, info.mean_input_tokens) == (
        "random",
        2,
        16,
        24.0,
    )
    c = scenario(conversation={"turns": 2}, warmup_requests=1)
    sessions = [Session(i, ("a", "b"), (4, 4)) for i in range(3)]
    info = workload_info(
        c, Workload(sessions=sessions), [turn(1, 1, 0.1, 10, 0), turn(1, 2, 0.1, 30, 16)], None
    )
    assert info is not None and (info.turns, info.sessions, len(info.per_turn)) == (2, 2, 2)


def test_dataset_workload_records_the_files_checksum() -> None:
    s = scenario(prompts={"kind": "dataset", "path": "builtin:sharegpt-mini"})
    info = workload_info(s, Workload(items=[]), [], None)
    assert info is not None and info.dataset_path == "builtin:sharegpt-mini"
    assert info.dataset_sha256 is not None and len(info.dataset_sha256) == 64


def test_trace_scenarios_need_no_load_shape_but_refuse_a_rate() -> None:
    assert scenario(concurrency=None, trace={"path": "builtin:trace-mini"}).workload.trace is not None
    with pytest.raises(ValueError, match="send times from the trace"):
        scenario(trace={"path": "builtin:trace-mini"}, request_rate=2.0)
    with pytest.raises(ValueError, match="do not combine"):
        scenario(prefix={"groups": 1, "length": 8}, conversation={"turns": 2})
