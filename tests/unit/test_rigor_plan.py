"""Suite language for repeats, sweeps, SLOs and search; its pure expansion; the bisection."""

from __future__ import annotations

import pytest

from harness.rigor.search import CapacitySearch
from harness.spec.expand import base_name, expand_scenarios, point_name, sweep_rates
from harness.spec.rigor import SearchSpec, SloSpec, slo_presets
from harness.spec.suite import SuiteError, parse_suite

SUITE = """
name: t
models: [smollm2-135m]
performance:
  repeats: 3
  cooldown_s: 2
  slo: {ttft_ms: 500, tpot_ms: 50}
  scenarios:
    - name: chat
      input_tokens: 64
      output_tokens: 16
      num_requests: 8
      concurrency: [1, 4, 16]
    - name: poisson
      input_tokens: 64
      output_tokens: 16
      num_requests: 8
      request_rate: [0.5, 2]
      repeats: 1
      slo: mlperf-llama3.1-8b
    - name: sweep
      input_tokens: 64
      output_tokens: 16
      num_requests: 8
      sweep: {points: 5}
    - name: cap
      input_tokens: 64
      output_tokens: 16
      num_requests: 8
      search: {attainment: 0.9, low: 1, high: 16, max_probes: 6}
"""


def test_sweep_expansion_names_and_defaults() -> None:
    spec = parse_suite(SUITE)
    points = expand_scenarios(spec.performance)
    assert [p.name for p in points] == [
        "chat@c1",
        "chat@c4",
        "chat@c16",
        "poisson@r0.5",
        "poisson@r2",
        "sweep",
        "cap",
    ]
    assert [p.load.concurrency for p in points[:3]] == [1, 4, 16]
    assert points[3].load.request_rate == 0.5 and points[3].load.concurrency is None
    assert points[0].rigor.repeats == 3 and points[3].rigor.repeats == 1
    assert points[0].rigor.slo == SloSpec(ttft_ms=500, tpot_ms=50)
    assert points[3].rigor.slo is not None and points[3].rigor.slo.preset == "mlperf-llama3.1-8b"
    assert (points[3].rigor.slo.ttft_ms, points[3].rigor.slo.tpot_ms) == (2000, 100)
    assert base_name("chat@c16") == "chat" and point_name("x", request_rate=1.25) == "x@r1.25"


def test_harness_plan_prints_the_points() -> None:
    from harness.planning.plan import describe, plan_runs
    from harness.spec.suite import LoadedSuite

    plan = plan_runs(LoadedSuite(spec=parse_suite(SUITE), path=None, sha256=None))[0]
    text = "\n".join(describe(plan))
    assert "chat@c16: 8 requests" in text and "concurrency 16" in text
    assert "× 3 repeats, 2 s cool-down" in text
    assert "SLO ttft_ms ≤ 2000, tpot_ms ≤ 100 (mlperf-llama3.1-8b)" in text
    assert (
        "sweep (5 points): sweep@sync" in text and "3 constant-arrival rates" in text
    )  # GuideLLM's sweep default (was Poisson)
    # Concurrency is the default load of a search now (issue #21), and the plan warns when a
    # probe is too small to pass at the target.
    assert "capacity search over concurrency in [1, 16]" in text and "at most 6 probes" in text
    assert "cannot pass attainment 0.9 (needs ≥ 35)" in text


@pytest.mark.parametrize(
    "scenario,message",
    [
        ("concurrency: [1, 2]\n      request_rate: [1, 2]", "not both"),
        ("concurrency: [1, 1]", "distinct"),
        ("concurrency: []", "at least one"),
        ("concurrency: [0, 2]", "> 0"),
        ("concurrency: [1, 2]\n      sweep: {points: 4}", "drop the list"),
        ("sweep: {points: 2}", "greater than or equal to 3"),
        ("concurrency: 1\n      slo: {ttft_ms: 10, tpot: 3}", "unknown field"),
        ("concurrency: 1\n      slo: mlperf-nope", "unknown SLO preset"),
        ("concurrency: 1\n      slo: {}", "at least one of"),
        ("search: {low: 8, high: 2}", "high must be"),
    ],
)
def test_bad_rigor_fields_name_the_line(scenario: str, message: str) -> None:
    text = f"""name: t
performance:
  scenarios:
    - name: a
      input_tokens: 8
      output_tokens: 4
      num_requests: 2
      {scenario}
"""
    with pytest.raises(SuiteError, match=message) as exc:
        parse_suite(text, source="s.yaml")
    assert "s.yaml:" in str(exc.value)


def test_at_sign_reserved() -> None:
    with pytest.raises(SuiteError, match="reserved"):
        parse_suite(
            "name: t\nperformance:\n  scenarios:\n    - {name: a@b, input_tokens: 8, output_tokens: 4, "
            "num_requests: 2, concurrency: 1}\n"
        )


def test_presets_quote_their_source() -> None:
    presets = slo_presets()
    assert presets["mlperf-llama2-70b"] == {
        "ttft_ms": 2000,
        "tpot_ms": 200,
        "source": "mlperf.conf llama2-70b.Server.ttft_latency = 2000, tpot_latency = 200",
    }
    assert all("mlperf.conf" in p["source"] for p in presets.values())


def test_sweep_rates_follow_guidellm() -> None:
    # 5 points: sync, throughput, then 3 rates: linspace(1, 4, 4)[1:] = 2, 3, 4.
    assert sweep_rates(1.0, 4.0, 5) == pytest.approx([2.0, 3.0, 4.0])
    with pytest.raises(ValueError):
        sweep_rates(0.0, 4.0, 5)


def _run_search(spec: SearchSpec, capacity: float, n: int = 200) -> CapacitySearch:
    """Synthetic server: every request meets the SLO below `capacity`, beyond it a share that
    falls with load (latency grows as the queue builds)."""
    search = CapacitySearch(spec)
    while (load := search.next_load()) is not None:
        attainment = 1.0 if load <= capacity else max(0.0, 1.0 - (load - capacity) / capacity)
        search.record(load, round(attainment * n), n)
    return search


def test_bisection_finds_capacity_within_tolerance() -> None:
    spec = SearchSpec(attainment=0.99, over="request_rate", low=0.5, high=64, tolerance=0.05, max_probes=20)
    s = _run_search(spec, capacity=7.3, n=400)  # 200 requests cannot show 0.99 (Wilson needs 381)
    assert s.stop_reason == "converged"
    assert s.best_pass is not None and s.lowest_fail is not None
    assert s.best_pass <= 7.3 * 1.0101 and s.lowest_fail - s.best_pass <= 0.05 * s.best_pass
    assert s.best_pass >= 7.3 * 0.95
    loads = [p.load for p in s.probes]
    assert loads[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]  # doubling until the first failure


def test_bisection_stops_on_budget_and_edges() -> None:
    rate = {"over": "request_rate"}
    s = _run_search(SearchSpec(low=0.5, high=64, max_probes=4, **rate), capacity=7.3, n=400)
    assert s.stop_reason == "max_probes" and len(s.probes) == 4 and s.bound == "lower"
    s = _run_search(SearchSpec(low=1, high=8, **rate), capacity=100, n=400)
    assert s.stop_reason == "passes at the highest load" and s.best_pass == 8 and s.bound == "lower"
    # A failing start halves toward the floor (the old search stopped with no capacity here).
    s = _run_search(SearchSpec(low=4, high=8, **rate), capacity=1, n=400)
    assert [p.load for p in s.probes][:3] == [4, 2, 1] and s.best_pass == 1
    s = _run_search(SearchSpec(low=4, high=8, floor=2, **rate), capacity=1, n=400)
    assert s.stop_reason == "fails at the lowest load" and s.best_pass is None and s.bound is None
    s = _run_search(SearchSpec(low=4, high=8, **rate), capacity=100, n=200)
    assert s.stop_reason.startswith("probes of 200 requests cannot show attainment ≥ 0.99")


def test_concurrency_search_stays_on_integers() -> None:
    s = _run_search(SearchSpec(over="concurrency", low=1, high=64, max_probes=20), capacity=11, n=400)
    assert all(p.load == int(p.load) for p in s.probes)
    assert s.best_pass == 11 and s.lowest_fail == 12 and s.stop_reason == "converged"
    assert s.bound == "resolved"


def test_probe_resolution_by_wilson_interval() -> None:
    s = CapacitySearch(SearchSpec(attainment=0.9))
    assert s.record(1, 10, 10).resolved is False  # 10/10: Wilson low 0.72 < 0.9
    assert s.record(1, 300, 300).resolved is True
    assert s.record(2, 5, 10).resolved is True and s.probes[-1].passed is False
    # A point estimate at the target does not pass: the Wilson lower bound must reach it.
    assert s.record(3, 95, 100).passed is False and s.probes[-1].resolved is False
