"""Pure expansion of a suite's scenarios into measured points, before anything runs.

* a list in ``load.concurrency`` or ``load.request_rate`` becomes one point per value, named
  ``NAME@c16`` or ``NAME@r2`` (values in the order written);
* ``rigor.repeats`` and ``rigor.slo`` fall back to the performance section's defaults, so every
  point carries its resolved values and ``harness plan`` shows them;
* a ``sweep`` or ``search`` stays one entry: its loads depend on what it measures (the
  synchronous and throughput rates, the probes' attainment), so the runner expands it as it
  goes, with :func:`sweep_rates` and :mod:`harness.rigor.search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.spec.scenario import ScenarioPoint

if TYPE_CHECKING:
    from harness.spec.suite import PerformanceSpec


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


def expand_scenarios(perf: PerformanceSpec) -> list[ScenarioPoint]:
    """The suite's scenarios as frozen points: list loads expanded, defaults resolved (pure)."""
    out: list[ScenarioPoint] = []
    for s in perf.scenarios:
        rigor = s.rigor.model_copy(
            update={"repeats": s.rigor.repeats or perf.repeats, "slo": s.rigor.slo or perf.slo}
        )
        values: list[tuple[str, dict[str, float]]] = [(s.name, {})]
        if isinstance(s.load.concurrency, list):
            values = [(point_name(s.name, concurrency=c), {"concurrency": c}) for c in s.load.concurrency]
        elif isinstance(s.load.request_rate, list):
            values = [
                (point_name(s.name, request_rate=r), {"request_rate": float(r)}) for r in s.load.request_rate
            ]
        out.extend(
            ScenarioPoint(name=name, load=s.load.point(**loads), workload=s.workload, rigor=rigor)
            for name, loads in values
        )
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


def describe_point(p: ScenarioPoint, cooldown_s: float) -> list[str]:
    """Plan lines for one expanded entry: its repeats, SLO, sweep or search."""
    from harness.spec.rigor import repeat_bounds

    s, n = p.rigor, p.load.num_requests
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
        cap = s.sweep.throughput_concurrency or n
        lines.append(
            f"           sweep ({s.sweep.points} points): {p.name}@sync (concurrency 1), {p.name}@throughput "
            f"(all {n} requests, max {cap} in flight), then {s.sweep.points - 2} "
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
        if need is not None and n < need:
            lines.append(
                f"           warning: a probe of {n} requests cannot pass attainment "
                f"{q.attainment:g} (needs ≥ {need}); raise num_requests or lower the target"
            )
    return lines
