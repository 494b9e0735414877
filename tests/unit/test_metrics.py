"""Metric math against hand-computed timelines (vLLM bench serve definitions)."""

from __future__ import annotations

import pytest

from harness.loadgen.client import make_prompts
from harness.loadgen.metrics import RequestTiming, aggregate, max_in_flight


def req(
    i: int, send: float, chunks: list[float], out: int, inp: int = 10, error: str | None = None
) -> RequestTiming:
    return RequestTiming(
        index=i,
        send_s=send,
        input_tokens=inp,
        first_token_s=chunks[0] if chunks else None,
        end_s=chunks[-1] if chunks else send + 0.5,
        chunk_s=chunks,
        output_tokens=out,
        error=error,
    )


def test_two_requests_by_hand() -> None:
    # A: sent 0.0, chunks at 0.2, 0.3, 0.5 (3 tokens) -> ttft 200, e2e 500, tpot (500-200)/2 = 150, itl 100, 200
    # B: sent 0.1, chunks at 0.4, 0.6, 0.7, 1.0 (4 tokens) -> ttft 300, e2e 900, tpot 600/3 = 200, itl 200,100,300
    a = req(0, 0.0, [0.2, 0.3, 0.5], out=3)
    b = req(1, 0.1, [0.4, 0.6, 0.7, 1.0], out=4)
    m = aggregate([a, b])
    assert m["completed"] == 2 and m["failed"] == 0
    assert m["duration"] == pytest.approx(1.0)
    assert m["total_input_tokens"] == 20 and m["total_output_tokens"] == 7
    assert m["request_throughput"] == pytest.approx(2.0)
    assert m["output_throughput"] == pytest.approx(7.0)
    assert m["total_token_throughput"] == pytest.approx(27.0)
    assert m["mean_ttft_ms"] == pytest.approx(250.0)
    assert m["median_ttft_ms"] == pytest.approx(250.0)
    assert m["std_ttft_ms"] == pytest.approx(50.0)
    assert m["p99_ttft_ms"] == pytest.approx(200 + 0.99 * 100)
    assert m["mean_tpot_ms"] == pytest.approx(175.0)
    assert m["mean_e2el_ms"] == pytest.approx(700.0)
    assert m["median_e2el_ms"] == pytest.approx(700.0)
    # ITL pools every gap: 100, 200, 200, 100, 300
    assert m["mean_itl_ms"] == pytest.approx(180.0)
    assert m["median_itl_ms"] == pytest.approx(200.0)
    assert m["p90_itl_ms"] == pytest.approx(260.0)
    assert m["max_concurrency_reached"] == 2


def test_single_token_outputs_have_no_tpot() -> None:
    m = aggregate([req(0, 0.0, [0.25], out=1)])
    assert m["mean_tpot_ms"] is None and m["p99_tpot_ms"] is None
    assert m["mean_ttft_ms"] == pytest.approx(250.0)
    assert m["mean_itl_ms"] is None


def test_failed_requests_count_but_do_not_enter_latency() -> None:
    ok = req(0, 0.0, [0.1, 0.2], out=2)
    bad = req(1, 0.0, [], out=0, error="HTTP 500: boom")
    m = aggregate([ok, bad])
    assert m["completed"] == 1 and m["failed"] == 1
    assert m["errors"] == ["HTTP 500: boom"]
    assert m["mean_e2el_ms"] == pytest.approx(200.0)
    assert m["total_output_tokens"] == 2


def test_no_requests_is_all_none_not_zero() -> None:
    m = aggregate([])
    assert m["completed"] == 0 and m["duration"] == 0.0
    assert m["mean_ttft_ms"] is None and m["output_throughput"] == 0.0


def test_max_in_flight_sequential_is_one() -> None:
    rs = [req(i, float(i), [i + 0.5, i + 1.0], out=2) for i in range(5)]
    assert max_in_flight(rs) == 1


def test_prompts_have_exact_length_and_are_seeded() -> None:
    p1 = make_prompts(3, 17, list(range(100, 200)), seed=7)
    p2 = make_prompts(3, 17, list(range(100, 200)), seed=7)
    assert p1 == p2 and all(len(p) == 17 for p in p1)
    assert all(100 <= t < 200 for p in p1 for t in p)
    assert make_prompts(3, 17, list(range(100, 200)), seed=8) != p1


def test_duration_is_the_load_generators_when_given() -> None:
    # vllm bench serve: duration = start of dispatch to end of gather, not first send to last end
    a = req(0, 0.1, [0.2, 0.3], out=2)
    m = aggregate([a], duration_s=0.5)
    assert m["duration"] == 0.5 and m["output_throughput"] == pytest.approx(4.0)
    assert aggregate([a])["duration"] == pytest.approx(0.2)


def test_each_scenario_has_its_own_seed() -> None:
    from harness.loadgen.prompts import scenario_seed

    assert scenario_seed(1234, "a") == scenario_seed(1234, "a")
    assert len({scenario_seed(1234, "a"), scenario_seed(1234, "b"), scenario_seed(1235, "a")}) == 3
    assert 0 <= scenario_seed(1234, "a") < 2**32
    ids = list(range(1000))
    assert make_prompts(2, 8, ids, scenario_seed(1, "a")) != make_prompts(2, 8, ids, scenario_seed(1, "b"))


def test_equivalent_vllm_bench_command() -> None:
    from harness.loadgen.client import LoadShape, LoadSpec
    from harness.loadgen.peer_command import vllm_bench_command

    closed = LoadSpec(
        load=LoadShape(
            input_tokens=128,
            output_tokens=64,
            num_requests=32,
            concurrency=4,
            request_rate=None,
            warmup_requests=1,
            client_workers=1,
        ),
        seed=99,
    )
    cmd = vllm_bench_command(closed, "http://127.0.0.1:8000/", "smol", "/models/smol")
    assert cmd.startswith("vllm bench serve --backend openai --base-url http://127.0.0.1:8000 ")
    for part in (
        "--model /models/smol --served-model-name smol --tokenizer /models/smol",
        "--dataset-name random --random-input-len 128 --random-output-len 64 --random-range-ratio 0",
        "--num-prompts 32 --ignore-eos --temperature 0 --seed 99 --request-rate inf --burstiness 1",
        "--max-concurrency 4",
        "--num-warmups 1",
    ):
        assert part in cmd
    ramp = LoadSpec(
        load=LoadShape(
            input_tokens=8,
            output_tokens=8,
            num_requests=10,
            concurrency=None,
            request_rate=None,
            warmup_requests=0,
            ramp_up_strategy="linear",
            ramp_up_start_rps=1,
            ramp_up_end_rps=5,
            temperature=0.7,
            top_p=0.9,
            burstiness=0.5,
            client_workers=1,
        ),
        seed=1,
    )
    cmd = vllm_bench_command(ramp, "http://h:1", "smol", None)
    assert "--ramp-up-strategy linear --ramp-up-start-rps 1 --ramp-up-end-rps 5" in cmd
    assert "--request-rate" not in cmd and "--max-concurrency" not in cmd and "--num-warmups" not in cmd
    assert "--temperature 0.7 --top-p 0.9" in cmd and "--burstiness 0.5" in cmd and "--tokenizer" not in cmd
