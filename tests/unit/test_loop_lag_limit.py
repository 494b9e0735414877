"""`performance.validity.max_loop_lag_ms`: a suite may raise the client-bound lag limit, and the
point's record states the limit it was judged by."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from harness.loadgen.lag import CLIENT_LAG_LIMIT_MS, ClientHealth
from harness.run.scenario import client_timing
from harness.spec.rigor import ValiditySpec
from harness.spec.suite import load_suite


def test_a_raised_lag_limit_clears_client_bound_and_is_recorded() -> None:
    assert ValiditySpec().max_loop_lag_ms is None  # the load generator's own limit stays the default
    with pytest.raises(ValidationError, match="max_loop_lag_ms"):
        ValiditySpec(max_loop_lag_ms=0)
    lagging = ClientHealth(1, "x", "asyncio", 10, 1.0, 68.3, 90.0, 0.2)
    assert lagging.lag_limit_ms == CLIENT_LAG_LIMIT_MS and lagging.client_bound is not None
    raised = dataclasses.replace(lagging, lag_limit_ms=250.0)
    assert raised.client_bound is None
    rec = client_timing(raised)
    assert rec is not None and rec.lag_limit_ms == 250.0 and rec.lag_p99_ms == 68.3
    assert dataclasses.replace(lagging, lag_limit_ms=50.0).client_bound == (
        "client-bound: event-loop lag p99 68.30 ms > 50 ms"
    )
    assert load_suite("decide-cpu").spec.performance.validity.max_loop_lag_ms == 250
