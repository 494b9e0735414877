"""Scenario fields of the load generator: ramp-ups, burstiness, sampling, timeouts."""

from __future__ import annotations

import pytest

from harness.spec.suite import SuiteError, parse_suite


def suite(scenario: str) -> str:
    return f"name: s\nperformance:\n  scenarios:\n    - {{name: a, input_tokens: 8, output_tokens: 8, num_requests: 4{scenario}}}\n"


def test_ramp_up_replaces_the_rate() -> None:
    spec = parse_suite(suite(", ramp_up_strategy: exponential, ramp_up_start_rps: 1, ramp_up_end_rps: 8"))
    s = spec.performance.scenarios[0].load
    assert s.ramp_up_strategy == "exponential" and s.request_rate is None and s.concurrency is None
    assert s.burstiness == 1.0 and s.temperature == 0.0 and s.top_p is None
    assert s.request_timeout_s == 6 * 3600 and spec.engine.watchdog_timeout_s == 60


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ", request_rate: 2, ramp_up_strategy: linear, ramp_up_start_rps: 1, ramp_up_end_rps: 2",
            "remove `request_rate`",
        ),
        (
            ", ramp_up_strategy: linear, ramp_up_start_rps: 1",
            "needs `ramp_up_start_rps` and `ramp_up_end_rps`",
        ),
        (", ramp_up_strategy: linear, ramp_up_start_rps: 5, ramp_up_end_rps: 2", "must not exceed"),
        (", concurrency: 1, ramp_up_end_rps: 2", "need `ramp_up_strategy`"),
        (", ramp_up_strategy: steep, ramp_up_start_rps: 1, ramp_up_end_rps: 2", "ramp_up_strategy"),
        (", concurrency: 1, burstiness: 0", "burstiness"),
        (", concurrency: 1, top_p: 1.5", "top_p"),
        (", concurrency: 1, request_timeout_s: 0", "request_timeout_s"),
    ],
)
def test_bad_load_fields_name_the_problem(extra: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        parse_suite(suite(extra))
