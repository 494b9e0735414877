"""Charts and leaderboard cells for repeats, sweeps, goodput and capacity, on synthetic runs."""

from __future__ import annotations

import pytest

from harness.dashboard.figures import validate
from harness.dashboard.rigorfigures import capacity_cells, goodput_vs_load, latency_vs_load, load_points
from tests.factories import make_record
from tests.unit.test_rigor_execute import _run


def _record():  # type: ignore[no-untyped-def]
    _, results, _ = _run(
        """  repeats: 2
  slo: {ttft_ms: 80}
  scenarios:
    - {name: chat, input_tokens: 16, output_tokens: 11, num_requests: 8, concurrency: [1, 4, 8]}
    - name: cap
      input_tokens: 16
      output_tokens: 11
      num_requests: 40
      repeats: 1
      search: {attainment: 0.9, over: request_rate, low: 2, high: 64, tolerance: 0.2, max_probes: 6}
  validity: {min_requests: 10}
"""
    )
    return make_record(scenarios=results, analytics=None)


def test_points_bands_and_hollow_invalid_points() -> None:
    record = _record()
    points = load_points(record)
    chat = [p for p in points if p.scenario == "chat"]
    assert [p.load for p in chat] == [1.0, 4.0, 8.0]
    value, low, high = chat[0].figures["median_ttft_ms"]
    assert value is not None and low is not None and high is not None and low <= value <= high
    spec = latency_vs_load(points)
    assert spec is not None
    validate(spec)
    line = next(d for d in spec["data"] if d.get("name", "").startswith("chat"))
    # min_requests 10 > 8 per repeat: every chat point is invalid, drawn hollow with its reason.
    assert line["marker"]["color"] == ["#ffffff"] * 3
    assert "too few requests" in line["text"][0]


def test_goodput_chart_draws_the_target_and_the_slo() -> None:
    spec = goodput_vs_load(load_points(_record()))
    assert spec is not None
    validate(spec)
    assert spec["layout"]["title"]["text"] == "SLO: TTFT ms ≤ 80"
    assert [s["y0"] for s in spec["layout"]["shapes"]] == [0.9]


def test_capacity_cells() -> None:
    cells = capacity_cells(_record())
    assert cells["capacity at SLO"].endswith("req/s") and cells["capacity at SLO"] != "none passed"
    assert cells["J/token at SLO"] == "– (no energy measured for this point)"
    assert capacity_cells(make_record(analytics=None)) == {"capacity at SLO": "–", "J/token at SLO": "–"}


def test_leaderboard_and_run_page_show_capacity_and_curves(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness.dashboard.build import build_dashboard
    from tests.factories import write_run

    results = tmp_path / "results"
    write_run(results, _record())
    out = tmp_path / "site"
    build_dashboard(results, out)
    index = (out / "index.html").read_text()
    assert "Capacity at SLO" in index and "J/token at SLO" in index
    run_pages = list((out / "runs").glob("*.html"))
    page = run_pages[0].read_text()
    assert "chart-latency-load" in page and "chart-goodput-load" in page


def test_capacity_cells_say_whether_the_capacity_is_only_a_lower_bound() -> None:
    rec = _record()
    [sr] = [s for s in rec.performance.values() if s.rigor and s.rigor.capacity]
    assert sr.rigor is not None and sr.rigor.capacity is not None
    lower = sr.rigor.capacity.model_copy(update={"bound": "lower", "stop_reason": "max_probes"})
    cells = capacity_cells(
        rec.model_copy(
            update={
                "scenarios": [
                    sr.model_copy(update={"rigor": sr.rigor.model_copy(update={"capacity": lower})}),
                ]
            }
        )
    )
    assert cells["capacity at SLO"].startswith("≥ ")
    assert cells["capacity bound"] == "lower bound: max_probes"


def test_the_band_is_drawn_on_the_pooled_headline_not_the_mean_of_repeats() -> None:
    """Issue 21 item 6: the line is the headline (pooled over repeats); the band is centred on it."""
    record = _record()
    points = {p.name: p for p in load_points(record)}
    for name in ("chat@c1", "chat@c4", "chat@c8"):
        sr = record.performance[name]
        assert sr.rigor is not None
        spread = sr.rigor.spread["median_ttft_ms"]
        assert spread.n == 2 and spread.ci95_low is not None and spread.ci95_high is not None
        value, low, high = points[name].figures["median_ttft_ms"]
        assert value == sr.median_ttft_ms  # the headline, not spread.mean
        assert low is not None and high is not None
        assert high - value == pytest.approx(value - low)
        assert high - low == pytest.approx(spread.ci95_high - spread.ci95_low)
    # a spread whose mean is off the pooled headline: the line and band follow the headline
    sr = record.performance["chat@c4"]
    assert sr.rigor is not None and sr.median_ttft_ms is not None
    spread = sr.rigor.spread["median_ttft_ms"].model_copy(
        update={
            "mean": 0.9 * sr.median_ttft_ms,
            "ci95_low": 0.8 * sr.median_ttft_ms,
            "ci95_high": sr.median_ttft_ms,
        }
    )
    shifted = sr.model_copy(
        update={
            "rigor": sr.rigor.model_copy(update={"spread": {**sr.rigor.spread, "median_ttft_ms": spread}})
        }
    )
    [p] = load_points(make_record(scenarios={"chat@c4": shifted}, analytics=None))
    value, low, high = p.figures["median_ttft_ms"]
    assert value == sr.median_ttft_ms
    assert (low, high) == (pytest.approx(0.9 * value), pytest.approx(1.1 * value))
    spec = latency_vs_load(load_points(record))
    assert spec is not None and "pooled headline" in spec["layout"]["annotations"][0]["text"]
