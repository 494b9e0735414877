"""When each request of an open-loop scenario is sent: ``vllm bench serve``'s arrival process.

Pure functions, no I/O. The definitions are those of vLLM 0.32's ``benchmarks/serve.py``
(``get_request`` and ``_get_current_request_rate``), so a scenario with the same seed sends at
the same offsets as ``vllm bench serve --seed SEED`` would:

* Each request ``i`` has a rate ``r_i``: the scenario's ``request_rate``, or with a ramp-up
  ``start + (end - start) * p`` (``linear``) or ``start * (end / start) ** p``
  (``exponential``), where ``p = i / max(n - 1, 1)``.
* The gap *before* request ``i`` (the first one included: vLLM's first delay) is drawn from a
  gamma distribution with shape ``burstiness`` and scale ``1 / (r_i * burstiness)``: mean
  ``1 / r_i``, coefficient of variation ``1 / sqrt(burstiness)``; ``burstiness = 1`` is a
  Poisson process, ``inf`` a constant gap. An infinite rate gives a zero gap.
* Offsets are the cumulative sums of the gaps. Without a ramp-up, they are rescaled so that the
  last request is sent exactly at ``n / request_rate`` seconds (vLLM does this to remove the
  1-2 % scatter of the summed gaps between seeds).

Gaps are drawn from numpy's legacy ``RandomState(seed)``, the generator ``vllm bench serve``
seeds with ``np.random.seed(args.seed)``.
"""

from __future__ import annotations

import math

import numpy as np

from harness.record.load import RampUp


def request_rates(
    n: int,
    request_rate: float,
    ramp_up_strategy: RampUp | None = None,
    ramp_up_start_rps: float | None = None,
    ramp_up_end_rps: float | None = None,
) -> list[float]:
    """The target rate (requests/s) in force when each of ``n`` requests is sent."""
    if ramp_up_strategy is None or ramp_up_start_rps is None or ramp_up_end_rps is None:
        return [request_rate] * n
    out: list[float] = []
    for i in range(n):
        progress = i / max(n - 1, 1)
        if ramp_up_strategy == "linear":
            out.append(ramp_up_start_rps + (ramp_up_end_rps - ramp_up_start_rps) * progress)
        elif ramp_up_strategy == "exponential":
            out.append(ramp_up_start_rps * (ramp_up_end_rps / ramp_up_start_rps) ** progress)
        else:
            raise ValueError(f"unknown ramp-up strategy {ramp_up_strategy!r}")
    return out


def arrival_offsets_s(
    n: int,
    request_rate: float,
    seed: int,
    burstiness: float = 1.0,
    ramp_up_strategy: RampUp | None = None,
    ramp_up_start_rps: float | None = None,
    ramp_up_end_rps: float | None = None,
) -> list[float]:
    """Seconds after the start of dispatch at which each of ``n`` requests is sent.

    Args:
        n: number of requests (the measured ones; warm-up is not scheduled).
        request_rate: requests/s; ``math.inf`` sends everything at once (a closed loop).
        seed: seed of the gap draws (``vllm bench serve --seed``).
        burstiness: gamma shape; 1.0 is Poisson, larger is more regular, ``inf`` constant gaps.
        ramp_up_strategy: ``linear`` or ``exponential`` from ``ramp_up_start_rps`` to
            ``ramp_up_end_rps``; ``request_rate`` is then unused and nothing is rescaled.
    """
    if n <= 0:
        return []
    if not burstiness > 0:
        raise ValueError(f"burstiness must be positive, got {burstiness}")
    rng = np.random.RandomState(seed)
    rates = request_rates(n, request_rate, ramp_up_strategy, ramp_up_start_rps, ramp_up_end_rps)
    gaps: list[float] = []
    for rate in rates:
        if not rate > 0:
            raise ValueError(f"request rate must be positive, got {rate}")
        if math.isinf(rate):
            gaps.append(0.0)
        elif math.isinf(burstiness):
            gaps.append(1.0 / rate)
        else:
            gaps.append(float(rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness))))
    offsets = np.cumsum(gaps).tolist()
    if ramp_up_strategy is None and offsets[-1] != 0:
        factor = (n / request_rate) / offsets[-1]
        offsets = [t * factor for t in offsets]
    return [float(t) for t in offsets]
