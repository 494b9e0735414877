"""The bundled `rigor` suite's capacity search can resolve (issue 21): each probe sends enough
requests for a pass to clear the Wilson bound, and its probe budget brackets the range."""

from __future__ import annotations

from harness.spec.expand import describe_point, expand_scenarios
from harness.spec.rigor import min_requests_to_pass
from harness.spec.suite import load_suite


def test_the_rigor_suites_probes_can_pass_and_the_search_can_bracket() -> None:
    perf = load_suite("rigor").spec.performance
    assert perf is not None
    [cap] = [s for s in perf.scenarios if s.rigor.search is not None]
    q = cap.rigor.search
    assert q is not None and q.over == "concurrency"
    need = min_requests_to_pass(q.attainment)
    assert need is not None and cap.load.num_requests >= need  # 20 >= 16 at attainment 0.8 (was 6 < 35)
    # doubling 1 -> 8 takes 4 probes, then bisecting the last factor-2 bracket to one step 2 more
    assert q.max_probes is not None and q.max_probes >= 6
    plan = [line for s in expand_scenarios(perf) for line in describe_point(s, perf.cooldown_s)]
    assert any("capacity search over concurrency" in line for line in plan)
    assert not [line for line in plan if "warning" in line]  # `harness plan rigor` warned before
