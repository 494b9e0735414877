"""Repeats, sweeps and capacity search driven against a synthetic server (no engine)."""

from __future__ import annotations

import pytest

from harness.loadgen.metrics import RequestTiming, aggregate
from harness.record.load import LoadShape
from harness.record.run_record import EnergyValue, ScenarioEnergy, ScenarioResult, ScenarioSettings
from harness.rigor.execute import run_points
from harness.spec.expand import expand_scenarios
from harness.spec.scenario import ScenarioPoint
from harness.spec.suite import parse_suite

SLOTS = 4  # the synthetic server decodes 4 requests at once
TTFT_S, TPOT_S = 0.05, 0.01


class FakeServer:
    """Latency model: up to SLOTS requests run at full speed; beyond that requests queue
    (closed loop: latency grows with concurrency / SLOTS; open loop: TTFT grows with the backlog
    once the rate exceeds SLOTS / service time)."""

    def __init__(self, slowdown: float = 1.0) -> None:
        self.slowdown = slowdown
        self.rows: dict[str, list[RequestTiming]] = {}
        self.calls: list[tuple[str, int]] = []

    def service_s(self, out: int) -> float:
        return (TTFT_S + TPOT_S * (out - 1)) * self.slowdown

    def run_one(self, s: ScenarioPoint, repeat: int) -> ScenarioResult:
        self.calls.append((s.name, repeat))
        n, out = s.load.num_requests, s.load.output_tokens
        service = self.service_s(out) * (1.0 + 0.01 * repeat)  # repeats differ a little
        rows = []
        if s.load.request_rate is None:
            c = int(s.load.concurrency or 1)
            lat = service * max(1.0, c / SLOTS)
            for i in range(n):
                send = (i // c) * lat + (i % c) * 1e-4
                rows.append(self._row(i, send, lat - service + TTFT_S, send + lat, out))
        else:
            rate = float(s.load.request_rate)
            # Spread-out arrivals batch worse than a saturated closed loop: the open loop
            # sustains 60 % of what the throughput point measures.
            capacity = 0.6 * SLOTS / service
            backlog = max(0.0, 1.0 / capacity - 1.0 / rate)
            for i in range(n):
                send = i / rate
                ttft = TTFT_S + i * backlog * SLOTS
                rows.append(self._row(i, send, ttft, send + ttft + TPOT_S * (out - 1), out))
        self.rows[s.name] = rows
        agg = aggregate(rows)
        agg.pop("errors")
        settings = ScenarioSettings(load=s.load, seed=1)
        energy = ScenarioEnergy()  # an energy section with no window measured
        return ScenarioResult(
            name=s.name,
            settings=settings,
            client_cpu_s=0.01,
            client_cpu_us_per_output_token=1.0,
            requests_path=f"requests/{s.name}.parquet",
            energy=energy,
            **agg,
        )

    @staticmethod
    def _row(i: int, send: float, ttft: float, end: float, out: int) -> RequestTiming:
        first = send + ttft
        step = (end - first) / max(out - 1, 1)
        return RequestTiming(
            index=i,
            send_s=send,
            input_tokens=16,
            first_token_s=first,
            end_s=end,
            chunk_s=[first + k * step for k in range(out)],
            output_tokens=out,
        )

    def read_rows(self, result: ScenarioResult) -> list[RequestTiming]:
        assert result.requests_path is not None
        return self.rows[result.requests_path.removeprefix("requests/").removesuffix(".parquet")]


def _perf(body: str):  # type: ignore[no-untyped-def]
    return parse_suite(f"name: t\nperformance:\n{body}").performance


def _run(body: str, slowdown: float = 1.0) -> tuple[FakeServer, dict[str, ScenarioResult], list[float]]:
    perf = _perf(body)
    server, sleeps = FakeServer(slowdown), []
    results = run_points(expand_scenarios(perf), perf, server.run_one, server.read_rows, sleep=sleeps.append)
    return server, results, sleeps


def test_repeats_fold_into_one_point_with_spreads() -> None:
    server, res, sleeps = _run(
        """  repeats: 3
  cooldown_s: 1.5
  slo: {ttft_ms: 100, tpot_ms: 20}
  scenarios:
    - {name: chat, input_tokens: 16, output_tokens: 11, num_requests: 8, concurrency: [1, 8]}
"""
    )
    assert list(res) == ["chat@c1", "chat@c8"]
    assert server.calls[:3] == [("chat@c1", 1), ("chat@c1#2", 2), ("chat@c1#3", 3)]
    assert sleeps == [1.5] * 5  # between every two runs, not before the first
    p = res["chat@c1"]
    assert p.rigor is not None and [r.repeat for r in p.rigor.repeats] == [1, 2, 3]
    thr = p.rigor.spread["output_throughput"]
    assert thr.n == 3 and thr.method == "student_t" and thr.ci95_low < thr.mean < thr.ci95_high
    assert p.completed == 24 and p.duration == pytest.approx(sum(r.duration for r in p.rigor.repeats))
    assert p.slo_attainment == 1.0 and p.valid is True and p.rigor.point.role == "sweep_list"
    # At concurrency 8 on 4 slots every request takes twice as long: the TTFT bound fails.
    c8 = res["chat@c8"]
    assert c8.slo_attainment == 0.0 and c8.request_goodput == 0.0
    assert c8.rigor is not None and c8.rigor.goodput is not None and c8.rigor.goodput.slo.ttft_ms == 100


def test_sweep_runs_sync_throughput_then_rates_and_stops_at_oversaturation() -> None:
    _, res, _ = _run(
        """  scenarios:
    - {name: sw, input_tokens: 16, output_tokens: 11, num_requests: 40, sweep: {points: 8}}
"""
    )
    names = list(res)
    assert names[:2] == ["sw@sync", "sw@throughput"]
    assert (
        res["sw@sync"].settings.load.concurrency == 1 and res["sw@throughput"].settings.load.concurrency == 40
    )
    assert res["sw@throughput"].valid and res["sw@sync"].valid
    last = res[names[-1]]
    assert last.rigor is not None and last.rigor.sweep is not None
    assert last.rigor.sweep.points == names
    # The throughput point queues 40 requests on 4 slots, so the upper rates over-saturate.
    assert last.rigor.sweep.stopped_early and len(names) < 8
    assert last.valid is False and "over-saturated" in last.validity_reasons[-1]
    # Rate points arrive at constant gaps by default (GuideLLM's sweep), recorded as such.
    assert last.rigor.sweep.arrivals == "constant" and res[names[2]].settings.load.burstiness == 1e12


def test_capacity_search_brackets_the_synthetic_capacity() -> None:
    _, res, _ = _run(
        """  scenarios:
    - name: cap
      input_tokens: 16
      output_tokens: 11
      num_requests: 40
      slo: {ttft_ms: 80}
      search: {attainment: 0.9, over: request_rate, low: 2, high: 256, tolerance: 0.1, max_probes: 12}
"""
    )
    found = [r.rigor.capacity for r in res.values() if r.rigor and r.rigor.capacity]
    assert len(found) == 1
    cap = found[0]
    assert cap.stop_reason == "converged" and cap.capacity is not None
    # Open-loop capacity: 0.6 × 4 slots / 0.15 s = 16 req/s; TTFT stays at 50 ms below it,
    # and the 80 ms bound allows a little backlog above it.
    assert 14 <= cap.capacity <= 16 * 1.3
    assert [p.load for p in cap.probes][:4] == [2.0, 4.0, 8.0, 16.0]
    assert cap.output_throughput is not None and cap.energy_per_output_token_j is None
    assert cap.energy_reason == "no energy measured for this point"
    assert res[cap.capacity_point or ""].rigor.capacity == cap  # type: ignore[union-attr]


def test_a_concurrency_shortfall_marks_the_point_invalid() -> None:
    _, res, _ = _run(
        """  scenarios:
    - {name: few, input_tokens: 16, output_tokens: 11, num_requests: 2, concurrency: 1}
  validity: {min_requests: 5}
"""
    )
    p = res["few"]
    assert p.valid is False and p.validity_reasons == ["too few requests: 2 completed < minimum 5"]
    assert p.rigor is not None and p.rigor.point.role == "fixed"


def test_energy_of_repeats_is_pooled_per_token() -> None:
    from harness.record.run_record import PhaseResources
    from harness.rigor.execute import combine_energy

    server = FakeServer()
    s = ScenarioPoint(
        name="e", load=LoadShape(input_tokens=16, output_tokens=11, num_requests=4, concurrency=1)
    )
    parts = []
    for joules in (100.0, 300.0):
        r = server.run_one(s, 1)
        tokens = r.total_output_tokens
        parts.append(
            r.model_copy(
                update={
                    "energy": ScenarioEnergy(
                        measured=EnergyValue.derive(
                            "measured", joules, 2.0, source="counter", output_tokens=tokens
                        )
                    ),
                    "resources": PhaseResources(
                        duration_s=2.0, engine_cpu_s=1.0, engine_peak_rss_bytes=5, energy_j=joules
                    ),
                }
            )
        )
    out = combine_energy(parts)
    energy, resources = out["energy"], out["resources"]
    assert isinstance(energy, ScenarioEnergy) and isinstance(resources, PhaseResources)
    head = energy.measured
    assert head is not None and head.energy_j == 400.0 and head.output_tokens == 88
    assert head.energy_per_output_token_j == pytest.approx(400.0 / 88) and head.avg_power_w == 100.0
    assert energy.steady_state is None and "2 repeats" in (energy.steady_state_reason or "")
    assert resources.energy_j == 400.0 and resources.duration_s == 4.0 and resources.gpu is None
    assert combine_energy(parts[:1]) == {}


def test_a_list_sweep_stops_at_oversaturation() -> None:
    # Four slots: past concurrency 4 throughput is flat while TTFT doubles with each step.
    server, res, _ = _run(
        """  scenarios:
    - {name: ls, input_tokens: 16, output_tokens: 11, num_requests: 32, concurrency: [2, 4, 8, 16, 32]}
"""
    )
    assert list(res) == ["ls@c2", "ls@c4", "ls@c8"]
    assert [c[0] for c in server.calls] == ["ls@c2", "ls@c4", "ls@c8"]
    last = res["ls@c8"]
    assert last.valid is False and "over-saturated" in last.validity_reasons[-1]
    assert last.rigor is not None and last.rigor.sweep is not None and last.rigor.sweep.stopped_early
    assert (
        last.rigor.sweep.stop_reason is not None and "not run: ls@c16, ls@c32" in last.rigor.sweep.stop_reason
    )


def test_the_generator_schedule_reaches_the_validity_rules() -> None:
    perf = _perf(
        """  scenarios:
    - {name: p, input_tokens: 16, output_tokens: 11, num_requests: 10, request_rate: 2}
"""
    )
    server = FakeServer()
    on_time = run_points(
        expand_scenarios(perf),
        perf,
        server.run_one,
        server.read_rows,
        sleep=lambda s: None,
        schedule=lambda result: [i / 2.0 for i in range(10)],
    )
    figures = on_time["p"].rigor.validity  # type: ignore[union-attr]
    assert figures is not None and figures.send_lag_p99_ms == pytest.approx(0.0, abs=1e-6)
    assert on_time["p"].valid is True
    # A schedule twice as dense as what was sent: the client fell behind it.
    late = run_points(
        expand_scenarios(perf),
        perf,
        server.run_one,
        server.read_rows,
        sleep=lambda s: None,
        schedule=lambda result: [i / 4.0 for i in range(10)],
    )
    assert late["p"].valid is False
    assert any("p99 send lag" in r for r in late["p"].validity_reasons)
    assert any("delivered 2 req/s < offered 4 req/s" in r for r in late["p"].validity_reasons)


def test_steady_state_energy_survives_repeats() -> None:
    """ML.ENERGY's steady-state J/token is kept through repeats (it used to be dropped)."""
    from harness.rigor.execute import combine_energy

    server = FakeServer()
    s = ScenarioPoint(
        name="e", load=LoadShape(input_tokens=16, output_tokens=11, num_requests=4, concurrency=1)
    )
    parts = []
    for joules, steady_j, steady_tokens in ((100.0, 60.0, 30.0), (300.0, 90.0, 30.0)):
        r = server.run_one(s, 1)
        steady = EnergyValue.derive(
            "steady_state", steady_j, 1.0, start_s=0.1, end_s=1.1, output_tokens=steady_tokens
        )
        parts.append(
            r.model_copy(
                update={
                    "energy": ScenarioEnergy(
                        measured=EnergyValue.derive(
                            "measured", joules, 2.0, source="counter", output_tokens=r.total_output_tokens
                        ),
                        steady_state=steady,
                    )
                }
            )
        )
    energy = combine_energy(parts)["energy"]
    assert isinstance(energy, ScenarioEnergy) and energy.steady_state is not None
    assert energy.steady_state.energy_per_output_token_j == pytest.approx(150.0 / 60.0)
    assert energy.steady_state.duration_s == 2.0 and energy.steady_state_reason is None
    value = energy.steady_state
    assert (
        value is not None
        and value.window == "steady_state"
        and "pooled over 2 repeats" in (value.window_note or "")
    )
    assert energy.measured is not None and energy.measured.energy_per_output_token_j == pytest.approx(
        400.0 / (energy.measured.output_tokens or 0)
    )  # the headline, beside it


def test_adaptive_repeats_stop_on_interval_width_or_the_cap() -> None:
    wide = """  repeats: {min: 2, max: 5, ci_halfwidth: 0.5}
  scenarios:
    - {name: chat, input_tokens: 16, output_tokens: 11, num_requests: 8, concurrency: 1}
"""
    server, res, _ = _run(wide)
    p = res["chat"]
    assert p.rigor is not None and len(p.rigor.repeats) == 2
    assert (p.rigor.repeats_stop or "").startswith("ci_halfwidth: ±") and "after 2 repeats" in (
        p.rigor.repeats_stop or ""
    )
    narrow = wide.replace("max: 5, ci_halfwidth: 0.5", "max: 3, ci_halfwidth: 0.000001")
    _, res, _ = _run(narrow)
    p = res["chat"]
    assert p.rigor is not None and len(p.rigor.repeats) == 3
    assert (p.rigor.repeats_stop or "").startswith("max: 3 repeats, output_throughput still ±")


def test_adaptive_repeats_are_validated_and_planned() -> None:
    from harness.spec.expand import describe_point

    with pytest.raises(ValueError, match="repeats.max must be"):
        _perf("""  repeats: {min: 4, max: 2}
  scenarios:
    - {name: chat, input_tokens: 16, output_tokens: 11, num_requests: 8, concurrency: 1}
""")
    perf = _perf("""  repeats: {min: 2, max: 8, ci_halfwidth: 0.03}
  scenarios:
    - {name: chat, input_tokens: 16, output_tokens: 11, num_requests: 8, concurrency: 1}
""")
    [s] = expand_scenarios(perf)
    assert (
        "× 2–8 repeats, until the 95 % interval of output_throughput is within ±3%" in describe_point(s, 0)[0]
    )
