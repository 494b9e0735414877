"""The fake engine of the integration tests (tests/fakeserver.py), in process: its answers are
what the harness and lm-eval parse, and its faults apply where they are asked to."""

from __future__ import annotations

import pytest

from harness.engine.vllm_metrics import cache_config_from_metrics, kv_cache_usage_frac, parse_engine_log
from tests.fakeserver import BLOCK_SIZE, FakeServer, parse_args


def _server(*extra: str) -> FakeServer:
    return FakeServer(
        parse_args(["--model", "/m", "--served-model-name", "tiny", "--max-model-len", "64", *extra])
    )


def test_vllm_engine_args_are_accepted_and_faults_scoped(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse_args(
        ["--model", "/m", "--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.3"]
    )
    assert args.served_model_name == "/m" and args.max_model_len == 2048
    monkeypatch.setenv(
        "HARNESS_FAKESERVER_ARGS", "--fake-only other --fake-never-healthy --fake-token-delay-ms 9"
    )
    args = parse_args(["--model", "/m", "--served-model-name", "tiny"])
    assert not args.fake_never_healthy and args.fake_token_delay_ms == 9  # faults for `other` only
    monkeypatch.setenv("HARNESS_FAKESERVER_ARGS", "--fake-only tiny --fake-die-after-streams 3")
    assert parse_args(["--model", "/m", "--served-model-name", "tiny"]).fake_die_after_streams == 3
    with pytest.raises(SystemExit):
        parse_args(["--model", "/m", "--host", "0.0.0.0"])


def test_generation_is_deterministic_and_honours_max_tokens_and_stop() -> None:
    s = _server()
    body = {"seed": 1}
    toks, text, reason = s.generate([5, 6, 7], body, 10)
    assert len(toks) == 10 and reason == "length" and text.startswith(" ")
    assert s.generate([5, 6, 7], body, 10) == (toks, text, reason)
    assert s.generate([5, 6, 8], body, 10)[0] != toks
    stop = text.split()[3]
    cut_toks, cut_text, cut_reason = s.generate([5, 6, 7], {"seed": 1, "stop": [stop]}, 10)
    assert cut_reason == "stop" and stop not in cut_text and len(cut_toks) < 10
    assert text.startswith(cut_text)


def test_requests_are_validated_like_vllm() -> None:
    s = _server()
    assert s.validate({"model": "nope", "prompt": [1]})[0] == 404
    status, err = s.validate({"model": "tiny", "prompt": list(range(60)), "max_tokens": 10})  # type: ignore[misc]
    assert status == 400 and "maximum context length is 64 tokens" in err["error"]["message"]
    assert s.validate({"model": "tiny", "prompt": []})[0] == 400
    prompts, max_tokens = s.validate({"model": "tiny", "prompt": ["a b c", [1, 2]], "max_tokens": 3})  # type: ignore[misc]
    assert [len(p) for p in prompts] == [3, 2] and max_tokens == 3


def test_echo_logprobs_parse_as_lm_eval_loglikelihood() -> None:
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    s = _server()
    prompt = [11, 12, 13, 14, 15]
    body = {
        "model": "tiny",
        "prompt": [prompt],
        "max_tokens": 1,
        "logprobs": 1,
        "echo": True,
        "temperature": 0,
    }
    choice = s.choice(0, prompt, body, 1)
    choice.pop("_completion_tokens")
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(prompt) + 1
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
    [(logprob, greedy)] = LocalCompletionsAPI.parse_logprobs({"choices": [choice]}, ctxlens=[3])
    assert logprob == pytest.approx(sum(lp["token_logprobs"][3:5])) and logprob < 0
    assert isinstance(greedy, bool)
    again = s.choice(0, prompt, body, 1)
    assert again["logprobs"] == lp  # the same score every run


def test_metrics_and_log_read_by_the_harness_parsers() -> None:
    s = _server("--fake-kv-capacity-tokens", "1024")
    cfg = cache_config_from_metrics(s.metrics_text())
    assert cfg is not None and (cfg.block_size, cfg.capacity_tokens) == (BLOCK_SIZE, 1024)
    assert kv_cache_usage_frac(s.metrics_text()) == 0.0
    s.stats.running["r"] = 100  # 7 blocks of 16 tokens out of 64
    assert kv_cache_usage_frac(s.metrics_text()) == pytest.approx(7 / 64)
    s.finish(["length", "stop"], 10, 4)
    text = s.metrics_text()
    assert 'vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"} 1.0' in text
    assert 'vllm:generation_tokens_total{engine="0",model_name="tiny"} 4.0' in text
    facts = parse_engine_log("\n".join(f"(EngineCore_DP0 pid=1) INFO {ln}" for ln in s.loading_log()))
    assert facts.kv_cache_tokens == 1024 and facts.max_concurrency == 16.0
