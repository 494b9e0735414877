"""The arrival schedule against vLLM 0.32's definition (benchmarks/serve.py get_request)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.loadgen.arrivals import arrival_offsets_s, request_rates


def gaps(offsets: list[float]) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], offsets]))


def test_rescaled_span_is_n_over_rate_and_first_request_waits() -> None:
    off = arrival_offsets_s(24, 3.0, seed=7)
    assert len(off) == 24
    assert off[-1] == pytest.approx(24 / 3.0, rel=1e-12)  # vLLM's rescaling of the schedule
    assert off[0] > 0  # vLLM's first delay: request 0 waits one gap too
    assert all(b >= a for a, b in zip(off, off[1:], strict=False))


def test_same_draws_as_vllm_seeded_legacy_generator() -> None:
    # vllm bench serve: np.random.seed(seed); np.random.gamma(shape=b, scale=1/(rate*b)) per request,
    # cumulative sum, then scaled so that the last offset is n / rate.
    n, rate, b, seed = 10, 2.5, 0.7, 42
    rs = np.random.RandomState(seed)
    raw = [rs.gamma(shape=b, scale=1.0 / (rate * b)) for _ in range(n)]
    cum = []
    for g in raw:
        cum.append(g + (cum[-1] if cum else 0.0))
    expected = [c * ((n / rate) / cum[-1]) for c in cum]
    assert arrival_offsets_s(n, rate, seed=seed, burstiness=b) == pytest.approx(expected, rel=1e-12)


def test_mean_rate_before_rescaling() -> None:
    # The rescale factor is the ratio of the target span to the drawn one: near 1 for a large n,
    # i.e. the drawn gaps have mean 1/rate (the factor is that mean times the rate).
    n, rate = 20000, 5.0
    rs = np.random.RandomState(3)
    drawn_span = float(np.sum([rs.gamma(1.0, 1.0 / rate) for _ in range(n)]))
    assert drawn_span / n == pytest.approx(1 / rate, rel=0.03)
    off = arrival_offsets_s(n, rate, seed=3)
    assert n / off[-1] == pytest.approx(rate, rel=1e-9)
    assert gaps(off).mean() == pytest.approx(1 / rate, rel=1e-9)


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_burstiness_sets_the_coefficient_of_variation(burstiness: float) -> None:
    g = gaps(arrival_offsets_s(40000, 10.0, seed=11, burstiness=burstiness))
    cv = g.std() / g.mean()
    assert cv == pytest.approx(1 / math.sqrt(burstiness), rel=0.04)


def test_infinite_burstiness_is_a_constant_gap_and_infinite_rate_sends_at_once() -> None:
    assert arrival_offsets_s(4, 2.0, seed=1, burstiness=math.inf) == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert arrival_offsets_s(5, math.inf, seed=1) == [0.0] * 5
    assert arrival_offsets_s(0, 1.0, seed=1) == []


def test_ramp_up_rates_and_no_rescaling() -> None:
    assert request_rates(5, 99.0, "linear", 1, 5) == pytest.approx([1, 2, 3, 4, 5])
    assert request_rates(3, 99.0, "exponential", 1, 16) == pytest.approx([1, 4, 16])
    assert request_rates(1, 99.0, "linear", 2, 8) == pytest.approx([2])  # progress i / max(n-1, 1)
    assert request_rates(3, 7.0) == [7.0, 7.0, 7.0]
    # Constant gaps show the per-request rate directly; the span is not rescaled to n / rate.
    off = arrival_offsets_s(5, math.inf, seed=0, burstiness=math.inf, ramp_up_strategy="linear",
                            ramp_up_start_rps=1, ramp_up_end_rps=5)  # fmt: skip
    assert gaps(off) == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])


def test_ramp_up_gaps_follow_the_rising_rate() -> None:
    n = 20000
    g = gaps(arrival_offsets_s(n, math.inf, seed=5, ramp_up_strategy="linear", ramp_up_start_rps=1,
                               ramp_up_end_rps=9))  # fmt: skip
    rates = np.asarray(request_rates(n, math.inf, "linear", 1, 9))
    # gap_i * rate_i is a unit-mean exponential draw whatever the rate
    assert float(np.mean(g * rates)) == pytest.approx(1.0, rel=0.03)
    assert g[: n // 10].mean() > 3 * g[-n // 10 :].mean()


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="burstiness"):
        arrival_offsets_s(3, 1.0, seed=0, burstiness=0.0)
    with pytest.raises(ValueError, match="rate"):
        arrival_offsets_s(3, 0.0, seed=0)
