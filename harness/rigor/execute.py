"""Running one expanded scenario as points: repeats, a GuideLLM sweep, or a capacity search.

The runner passes two callables, so this module never touches an engine and is tested with
synthetic ones: ``run_one(point, repeat)`` measures one repeat of one point (a load-generator
run in its own telemetry window, its rows written beside the record) and ``read_rows(result)``
gives that repeat's request rows back. Each finished point is handed to ``on_point`` at once,
so a run that fails later still keeps it.

A point's top-level aggregates are those of its pooled requests (see
:func:`harness.rigor.summary.pooled_aggregate`); its ``energy`` and ``resources`` sum the
repeats' windows (cool-downs excluded) over the pooled tokens (:func:`combine_energy`); each
repeat's J/token is in ``rigor.repeats``, their mean and interval in ``rigor.spread``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from harness.loadgen.metrics import RequestTiming
from harness.record.energy import scenario_energy_value
from harness.record.rigor import (
    CapacityProbe,
    CapacityResult,
    PointInfo,
    PointRigor,
    SweepOutcome,
    ValidityFigures,
)
from harness.rigor.search import CapacitySearch, min_requests_to_pass
from harness.rigor.summary import (
    goodput,
    pooled_aggregate,
    repeat_aggregates,
    request_spreads,
    slo_record,
    spreads,
)
from harness.rigor.validity import PointTimeline, check_point, oversaturation
from harness.spec.expand import point_name, sweep_rates
from harness.spec.rigor import CONSTANT_BURSTINESS, RepeatsSpec, SloSpec, repeat_bounds

if TYPE_CHECKING:
    from harness.record.energy import EnergyValue
    from harness.record.run_record import ScenarioResult
    from harness.spec.scenario import ScenarioPoint
    from harness.spec.suite import PerformanceSpec

RunOne = Callable[["ScenarioPoint", int], "ScenarioResult"]
ReadRows = Callable[["ScenarioResult"], list[RequestTiming]]
Schedule = Callable[["ScenarioResult"], "list[float] | None"]
Role = Literal["fixed", "sweep_list", "synchronous", "throughput", "sweep_rate", "probe"]


@dataclass
class PointRunner:
    perf: PerformanceSpec
    run_one: RunOne
    read_rows: ReadRows
    on_point: Callable[[str, ScenarioResult], None] = lambda name, result: None
    sleep: Callable[[float], None] = time.sleep
    # The open-loop send schedule of a measured repeat (offsets by request index), if known:
    # the validity rules then judge the delivered rate and the send lag against it.
    schedule: Schedule = lambda result: None
    results: dict[str, ScenarioResult] = field(default_factory=dict)
    _ran_any: bool = False
    # List sweeps (`concurrency: [...]`) arrive one point at a time: their curves so far.
    _curves: dict[str, list[tuple[float, float, float | None]]] = field(default_factory=dict)
    _list_names: dict[str, list[str]] = field(default_factory=dict)
    _stopped: dict[str, str] = field(default_factory=dict)
    _skipped: dict[str, list[str]] = field(default_factory=dict)

    def _cooldown(self) -> None:
        if self._ran_any and self.perf.cooldown_s > 0:
            self.sleep(self.perf.cooldown_s)
        self._ran_any = True

    def run(self, scenario: ScenarioPoint) -> dict[str, ScenarioResult]:
        """Every point of one expanded scenario, in order; returns them by point name."""
        if scenario.rigor.sweep is not None:
            self._sweep(scenario)
        elif scenario.rigor.search is not None:
            self._search(scenario)
        elif "@" in scenario.name:
            self._list_point(scenario)
        else:
            self.point(scenario, "fixed")
        return self.results

    def _list_point(self, s: ScenarioPoint) -> None:
        """One point of a list sweep; once a sweep over-saturates, its further points are skipped."""
        base = s.name.split("@", 1)[0]
        if base in self._stopped:
            self._skipped.setdefault(base, []).append(s.name)
            last = self._list_names[base][-1]
            res = self.results[last]
            assert res.rigor is not None and res.rigor.sweep is not None
            sweep = res.rigor.sweep.model_copy(
                update={"stop_reason": f"{self._stopped[base]}; not run: {', '.join(self._skipped[base])}"}
            )
            self._attach(last, sweep=sweep)
            return
        res = self.point(s, "sweep_list")
        load = float(s.load.request_rate if s.load.request_rate is not None else s.load.concurrency or 0)
        curve = self._curves.setdefault(base, [])
        curve.append((load, res.output_throughput, res.median_ttft_ms))
        self._list_names.setdefault(base, []).append(s.name)
        stop = oversaturation(curve, self.perf.validity)
        if stop is not None:
            self._stopped[base] = stop
            self.results[s.name] = res.model_copy(
                update={"valid": False, "validity_reasons": [*res.validity_reasons, stop]}
            )
            self._attach(
                s.name,
                sweep=SweepOutcome(
                    scenario=base, points=list(self._list_names[base]), stopped_early=True, stop_reason=stop
                ),
            )

    def point(self, s: ScenarioPoint, role: Role, extra_reasons: list[str] | None = None) -> ScenarioResult:
        """Run one point `repeats` times and fold the repeats into one result."""
        low, high, rule = repeat_bounds(s.rigor.repeats)
        per_repeat: list[tuple[ScenarioResult, list[RequestTiming]]] = []
        stop: str | None = None
        for i in range(1, high + 1):
            self._cooldown()
            name = s.name if i == 1 else f"{s.name}#{i}"
            res = self.run_one(s.with_load(name), i)
            per_repeat.append((res, self.read_rows(res)))
            if rule is not None and i >= low:
                stop = adaptive_stop(rule, [r for r, _ in per_repeat], final=i == high)
                if stop is not None:
                    break
        result = self.fold(s, role, per_repeat, extra_reasons or [])
        if stop is not None:
            assert result.rigor is not None
            result = result.model_copy(
                update={"rigor": result.rigor.model_copy(update={"repeats_stop": stop})}
            )
        self.results[s.name] = result
        self.on_point(s.name, result)
        return result

    def fold(
        self,
        s: ScenarioPoint,
        role: Role,
        per_repeat: list[tuple[ScenarioResult, list[RequestTiming]]],
        extra_reasons: list[str],
    ) -> ScenarioResult:
        slo = s.rigor.slo
        reps = []
        reasons: list[str] = []
        figures: dict[str, float | None] = {}
        closed = s.load.request_rate is None
        for i, (res, rows) in enumerate(per_repeat, start=1):
            good = goodput(rows, slo, res.duration) if slo is not None else None
            energy = _j_per_token(res)
            reps.append(
                repeat_aggregates(
                    i,
                    res.model_dump(),
                    energy_per_output_token_j=energy,
                    good=good,
                    client_cpu_s=res.client_cpu_s,
                    requests_path=res.requests_path,
                    energy=_repeat_energy(res),
                )
            )
            v = check_point(
                PointTimeline(
                    rows,
                    duration_s=res.duration,
                    client_cpu_s=res.client_cpu_s,
                    target_concurrency=s.load.concurrency if closed else None,
                    offered_rate=None if closed else s.load.request_rate,
                    scheduled_s=None if closed else _by_index(self.schedule(res), rows),
                ),
                self.perf.validity,
            )
            prefix = f"repeat {i}: " if len(per_repeat) > 1 else ""
            reasons.extend(prefix + r for r in v.reasons)
            reasons.extend(prefix + r for r in res.validity_reasons if r.startswith("client-bound"))
            if i == 1:
                figures = v.figures
        reasons.extend(extra_reasons)
        all_rows = [rows for _, rows in per_repeat]
        pooled = pooled_aggregate(all_rows, [res.duration for res, _ in per_repeat])
        flat = [r for rows in all_rows for r in rows]
        good_all = goodput(flat, slo, pooled["duration"]) if slo is not None else None
        first = per_repeat[0][0]
        rigor = PointRigor(
            point=PointInfo(
                scenario=s.name.split("@", 1)[0],
                role=role,
                concurrency=s.load.concurrency,
                request_rate=s.load.request_rate,
            ),
            repeats=reps,
            spread=spreads(reps),
            request_spread=request_spreads(flat),
            cooldown_s=self.perf.cooldown_s,
            goodput=good_all,
            validity=ValidityFigures(
                **{k: v for k, v in figures.items() if k in ValidityFigures.model_fields}
            ),
        )
        pooled.pop("errors", None)
        keep = {k: v for k, v in pooled.items() if k in type(first).model_fields}
        combined = combine_energy([res for res, _ in per_repeat])
        return first.model_copy(
            update={
                **keep,
                **combined,
                "errors": sorted({e for res, _ in per_repeat for e in res.errors})[:20],
                "client_cpu_s": _sum([res.client_cpu_s for res, _ in per_repeat]),
                "request_goodput": good_all.request_goodput if good_all else None,
                "slo_attainment": good_all.slo_attainment if good_all else None,
                "valid": not reasons,
                "validity_reasons": reasons,
                "rigor": rigor,
            }
        )

    def _attach(self, name: str, **update: object) -> None:
        res = self.results[name]
        assert res.rigor is not None
        self.results[name] = res.model_copy(update={"rigor": res.rigor.model_copy(update=update)})
        self.on_point(name, self.results[name])

    def _sweep(self, s: ScenarioPoint) -> None:
        sweep = s.rigor.sweep
        assert sweep is not None
        cap = sweep.throughput_concurrency or s.load.num_requests
        sync = self.point(s.with_load(f"{s.name}@sync", concurrency=1, request_rate=None), "synchronous")
        thr = self.point(
            s.with_load(f"{s.name}@throughput", concurrency=cap, request_rate=None), "throughput"
        )
        names = [f"{s.name}@sync", f"{s.name}@throughput"]
        curve = [(sync.request_throughput, sync.output_throughput, sync.median_ttft_ms)]
        stop: str | None = None
        for rate in sweep_rates(sync.request_throughput, thr.request_throughput, sweep.points):
            name = point_name(s.name, request_rate=rate)
            arrivals = {"burstiness": CONSTANT_BURSTINESS} if sweep.arrivals == "constant" else {}
            res = self.point(s.with_load(name, concurrency=cap, request_rate=rate, **arrivals), "sweep_rate")
            names.append(name)
            curve.append((rate, res.output_throughput, res.median_ttft_ms))
            stop = oversaturation(curve, self.perf.validity) if sweep.stop_on_oversaturation else None
            if stop is not None:
                self.results[name] = res.model_copy(
                    update={"valid": False, "validity_reasons": [*res.validity_reasons, stop]}
                )
                break
        self._attach(
            names[-1],
            sweep=SweepOutcome(
                scenario=s.name,
                points=names,
                stopped_early=stop is not None,
                stop_reason=stop,
                arrivals=sweep.arrivals,
            ),
        )

    def _search(self, s: ScenarioPoint) -> None:
        q = s.rigor.search
        assert q is not None
        slo: SloSpec | None = q.slo or s.rigor.slo
        if slo is None:
            raise ValueError(f"scenario {s.name!r}: a capacity search needs an SLO")
        search = CapacitySearch(q)
        by_load: dict[float, str] = {}
        while (load := search.next_load()) is not None:
            if q.over == "concurrency":
                name = point_name(s.name, concurrency=int(load))
                point = s.with_load(name, concurrency=int(load), request_rate=None)
            else:
                name = point_name(s.name, request_rate=load)
                point = s.with_load(name, request_rate=load)
            res = self.point(point.with_rigor(slo=slo), "probe")
            g = res.rigor.goodput if res.rigor else None
            search.record(
                load,
                g.good_requests if g else 0,
                g.measured_requests if g else 0,
                valid=bool(res.valid),
                point=name,
            )
            by_load[load] = name
        best = search.best_pass
        at = by_load[best] if best is not None else by_load[search.probes[-1].load]
        res_at = self.results[at]
        energy = _j_per_token(res_at) if best is not None else None
        capacity = CapacityResult(
            scenario=s.name,
            over=q.over,
            slo=slo_record(slo),
            attainment_target=q.attainment,
            capacity=best,
            capacity_point=by_load[best] if best is not None else None,
            probes=[
                CapacityProbe(
                    load=p.load,
                    point=p.point,
                    slo_attainment=p.attainment,
                    measured_requests=p.total,
                    passed=p.passed,
                    resolved=p.resolved,
                    valid=p.valid,
                )
                for p in search.probes
            ],
            stop_reason=search.stop_reason or "converged",
            bound=search.bound,
            min_requests_to_pass=min_requests_to_pass(q.attainment),
            tolerance=q.tolerance,
            output_throughput=res_at.output_throughput if best is not None else None,
            energy_per_output_token_j=energy,
            energy_reason=(
                None
                if energy is not None
                else ("no load met the SLO" if best is None else _energy_reason(res_at))
            ),
            unresolved_loads=search.unresolved,
        )
        self._attach(at, capacity=capacity)


def adaptive_stop(rule: RepeatsSpec, results: Sequence[ScenarioResult], final: bool) -> str | None:
    """Why adaptive repeats stop now (None: run another): the 95 % interval of `rule.metric` over
    the repeats is within ± `ci_halfwidth` of its mean, or the cap is reached, or the figure is
    missing."""
    from harness.stats import t_interval

    values = [float(v) for r in results if isinstance(v := getattr(r, rule.metric, None), int | float)]
    n = len(results)
    if len(values) < n:
        return f"{rule.metric} missing in a repeat: stopped after {n}"
    if n >= 2:
        iv = t_interval(values)
        if iv.ci95_low is not None and iv.ci95_high is not None and iv.mean:
            half = (iv.ci95_high - iv.ci95_low) / 2.0 / abs(iv.mean)
            if half <= rule.ci_halfwidth:
                return (
                    f"ci_halfwidth: ±{half:.1%} ≤ ±{rule.ci_halfwidth:.1%} of {rule.metric} after {n} repeats"
                )
            if final:
                return f"max: {n} repeats, {rule.metric} still ±{half:.1%} (target ±{rule.ci_halfwidth:.1%})"
            return None
    return f"max: {n} repeat(s)" if final else None


def _by_index(offsets: list[float] | None, rows: list[RequestTiming]) -> list[float] | None:
    """Each row's scheduled send offset (rows carry their request index)."""
    if offsets is None or not all(0 <= r.index < len(offsets) for r in rows):
        return None
    return [offsets[r.index] for r in rows]


def _sum(values: list[float | None]) -> float | None:
    return (
        None
        if not values or any(v is None for v in values)
        else float(sum(v for v in values if v is not None))
    )


def combine_energy(results: list[ScenarioResult]) -> dict[str, object]:
    """`energy` and `resources` of a point over all its repeats, so that per-token figures divide
    pooled energy by pooled tokens: each window (measured, gross, ML.ENERGY's steady state) is
    pooled on its own (:func:`pooled_value`). The GPU telemetry is per repeat and left out here."""
    if len(results) == 1:
        return {}
    from harness.record.run_record import PhaseResources, ScenarioEnergy

    update: dict[str, object] = {}
    if all(r.energy is not None for r in results):
        n = len(results)
        steady = pooled_value([scenario_energy_value(r, "steady_state") for r in results], STEADY_NOTE)
        update["energy"] = ScenarioEnergy(
            measured=pooled_value([scenario_energy_value(r) for r in results], None),
            gross=pooled_value([scenario_energy_value(r, "scenario_window") for r in results], None),
            steady_state=steady,
            steady_state_reason=(
                None
                if steady is not None and steady.energy_j is not None
                else f"not every one of the {n} repeats has a steady-state energy"
                + "".join(
                    f"; repeat {i}: {r.energy.steady_state_reason}"
                    for i, r in enumerate(results, 1)
                    if r.energy is not None and r.energy.steady_state is None and r.energy.steady_state_reason
                )
            ),
        )
        if steady is not None and steady.energy_j is None:
            update["energy"] = update["energy"].model_copy(update={"steady_state": None})  # type: ignore[attr-defined]
    phases = [r.resources for r in results]
    if all(p is not None for p in phases):
        ps = [p for p in phases if p is not None]
        rss = [p.engine_peak_rss_bytes for p in ps if p.engine_peak_rss_bytes is not None]
        joules = _sum([p.energy_j for p in ps])
        update["resources"] = PhaseResources(
            duration_s=float(sum(p.duration_s for p in ps)),
            engine_cpu_s=_sum([p.engine_cpu_s for p in ps]),
            engine_peak_rss_bytes=max(rss) if rss else None,
            energy_j=joules,
            energy=None if joules is not None else next((p.energy for p in ps if p.energy), None),
            gpu=None,
            kv_cache=None,
        )
    return update


STEADY_NOTE = (
    "steady state pooled over the repeats: each repeat's window from its target batch being full to "
    "the first completion it can no longer refill (ML.ENERGY's), joules and tokens summed"
)


def pooled_value(values: Sequence[EnergyValue | None], note: str | None) -> EnergyValue | None:
    """One window's value over repeats: the repeats' joules over their tokens and requests (each
    repeat's own window; start and end are repeat 1's, the duration the sum). Null energy with the
    first repeat's reason unless every repeat measured it; None when a repeat has no value at all."""
    from harness.record.energy import EnergyValue

    if not values or any(v is None for v in values):
        return None
    vs = [v for v in values if v is not None]
    first = vs[0]
    joules = _sum([v.energy_j for v in vs])
    sources = {v.source for v in vs}
    low = [v.low_confidence_reason for v in vs if v.confidence == "low"]
    tokens = _sum([v.output_tokens for v in vs])
    requests = [v.requests for v in vs]
    value = EnergyValue.derive(
        first.window,
        joules,
        _sum([v.duration_s for v in vs]),
        reason=next((v.reason for v in vs if v.reason), None),
        source=first.source if len(sources) == 1 else "mixed",
        low_confidence_reason="; ".join(r for r in low if r) or ("low confidence" if low else None),
        start_s=first.start_s,
        end_s=first.end_s,
        output_tokens=tokens,
        requests=sum(r for r in requests if r is not None) if all(r is not None for r in requests) else None,
    )
    above = _sum([v.energy_above_idle_j for v in vs])
    return value.model_copy(
        update={
            "window_note": f"{note or value.window_note} (pooled over {len(vs)} repeats)",
            "idle_power_w": first.idle_power_w,
            "energy_above_idle_j": above,
            "energy_per_output_token_above_idle_j": above / tokens if above is not None and tokens else None,
        }
    )


def _repeat_energy(res: ScenarioResult) -> dict[str, float | None]:
    """A repeat's energy figures beyond J/token: joules, tokens per joule, steady state."""
    if res.energy is None:
        return {}
    e = scenario_energy_value(res)
    steady = scenario_energy_value(res, "steady_state")
    return {
        "energy_j": e.energy_j if e is not None else None,
        "output_tokens_per_j": e.output_tokens_per_j if e is not None else None,
        "steady_state_energy_per_output_token_j": steady.energy_per_output_token_j if steady else None,
    }


def _j_per_token(res: ScenarioResult) -> float | None:
    e = scenario_energy_value(res) if res.energy is not None else None
    return e.energy_per_output_token_j if e is not None else None


def _energy_reason(res: ScenarioResult) -> str:
    e = scenario_energy_value(res) if res.energy is not None else None
    return (e.reason if e is not None else None) or "no energy measured for this point"


def run_points(
    scenarios: Sequence[ScenarioPoint],
    perf: PerformanceSpec,
    run_one: RunOne,
    read_rows: ReadRows,
    on_point: Callable[[str, ScenarioResult], None] = lambda name, result: None,
    sleep: Callable[[float], None] = time.sleep,
    schedule: Schedule = lambda result: None,
) -> dict[str, ScenarioResult]:
    """Measure every point of the expanded scenarios in order, with the cool-down between any
    two measurements (see the module docstring); returns the points by name."""
    runner = PointRunner(perf, run_one, read_rows, on_point=on_point, sleep=sleep, schedule=schedule)
    for scenario in scenarios:
        runner.run(scenario)
    return runner.results
