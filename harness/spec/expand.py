"""Pure expansion of a suite's scenarios into measured points, before anything runs.

* a list in ``concurrency`` or ``request_rate`` becomes one point per value, named
  ``NAME@c16`` or ``NAME@r2`` (values in the order written);
* ``repeats`` and ``slo`` fall back to the performance section's defaults, so every point
  carries its resolved values and ``harness plan`` shows them;
* a ``sweep`` or ``search`` stays one entry: its loads depend on what it measures (the
  synchronous and throughput rates, the probes' attainment), so the runner expands it as it
  goes, with :func:`sweep_rates` and :mod:`harness.rigor.search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from harness.spec.suite import PerformanceSpec, PerfScenario

# Suite fields that say how a scenario is repeated, swept or searched, not what one request
# looks like; the load generator and the record's settings take the others.
RIGOR_FIELDS: frozenset[str] = frozenset({"repeats", "sweep", "slo", "search"})


def point_name(base: str, *, concurrency: int | None = None, request_rate: float | None = None) -> str:
    """`chat@c16` for a concurrency, `chat@r2.5` for a request rate."""
    if request_rate is not None:
        return f"{base}@r{request_rate:.4g}"
    if concurrency is not None:
        return f"{base}@c{concurrency}"
    raise ValueError("a point needs a concurrency or a request rate")


def base_name(point: str) -> str:
    """The scenario a point belongs to (`chat@c16` -> `chat`)."""
    return point.split("@", 1)[0]


def expand_scenarios(perf: PerformanceSpec) -> list[PerfScenario]:
    """The suite's scenarios with list loads expanded and defaults resolved (pure)."""
    out: list[PerfScenario] = []
    for s in perf.scenarios:
        resolved = {"repeats": s.repeats or perf.repeats, "slo": s.slo or perf.slo}
        if isinstance(s.concurrency, list):
            for c in s.concurrency:
                name = point_name(s.name, concurrency=c)
                out.append(s.model_copy(update={**resolved, "name": name, "concurrency": c}))
        elif isinstance(s.request_rate, list):
            for r in s.request_rate:
                name = point_name(s.name, request_rate=r)
                out.append(s.model_copy(update={**resolved, "name": name, "request_rate": float(r)}))
        else:
            out.append(s.model_copy(update=resolved))
    return out


def sweep_rates(synchronous_rate: float, throughput_rate: float, points: int) -> list[float]:
    """GuideLLM's sweep: `points - 2` rates evenly spaced from the synchronous to the throughput
    request rate, the synchronous one left out (it was just measured) and the last equal to the
    throughput rate."""
    if points < 3:
        raise ValueError("a sweep needs at least 3 points")
    if synchronous_rate <= 0 or throughput_rate <= 0:
        raise ValueError("sweep rates need positive synchronous and throughput rates")
    return [float(r) for r in np.linspace(synchronous_rate, throughput_rate, points - 1)[1:]]


def describe_point(s: PerfScenario, cooldown_s: float) -> list[str]:
    """Plan lines for one expanded entry: its load shape, repeats, SLO, sweep or search."""
    from harness.spec.rigor import repeat_bounds

    parts: list[str] = []
    low, high, rule = repeat_bounds(s.repeats)
    cool = f", {cooldown_s:g} s cool-down" if cooldown_s else ""
    if rule is not None:
        parts.append(
            f"× {low}–{high} repeats, until the 95 % interval of {rule.metric} is within ±{rule.ci_halfwidth:.0%}"
            + cool
        )
    elif high > 1:
        parts.append(f"× {high} repeats" + cool)
    if s.slo is not None:
        parts.append(f"SLO {s.slo.describe()}")
    lines = [f"           {'; '.join(parts)}"] if parts else []
    if s.sweep is not None:
        cap = s.sweep.throughput_concurrency or s.num_requests
        lines.append(
            f"           sweep ({s.sweep.points} points): {s.name}@sync (concurrency 1), {s.name}@throughput "
            f"(all {s.num_requests} requests, max {cap} in flight), then {s.sweep.points - 2} "
            f"{'constant-arrival' if s.sweep.arrivals == 'constant' else 'Poisson'} rates "
            f"evenly spaced up to the throughput rate (measured at run time)"
            + ("; stops at over-saturation" if s.sweep.stop_on_oversaturation else "")
        )
    if s.search is not None:
        q = s.search
        slo = q.slo or s.slo
        from harness.spec.rigor import min_requests_to_pass

        need = min_requests_to_pass(q.attainment)
        budget = q.max_probes if q.max_probes is not None else q.probes_needed()
        lines.append(
            f"           capacity search over {q.over} in [{q.low:g}, {q.high:g}]: attainment ≥ {q.attainment:g} "
            f"of {slo.describe() if slo else '(no SLO: refused at run time)'} (Wilson 95 % lower bound), "
            f"doubling (halving below {q.low:g} if it fails) then bisecting to within {q.tolerance:g}×, "
            f"at most {budget} probes"
        )
        if need is not None and s.num_requests < need:
            lines.append(
                f"           warning: a probe of {s.num_requests} requests cannot pass attainment "
                f"{q.attainment:g} (needs ≥ {need}); raise num_requests or lower the target"
            )
    return lines
