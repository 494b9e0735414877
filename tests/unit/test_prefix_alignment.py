"""vLLM 0.32's prefix-cache granularities (issue 21 item 8): read where the server says them,
vLLM's rule where it says None, and used, not block_size, for the implied hit rate."""

from __future__ import annotations

from pathlib import Path

from harness.engine.prefix_alignment import log_group_block_sizes, prefix_alignment
from harness.engine.vllm_metrics import cache_config_from_metrics, engine_memory
from harness.record.run_record import EngineMemory
from harness.run.scenario import _hit_alignment

SAVED = Path(__file__).resolve().parents[1] / "data" / "vllm032_metrics_ngram.txt"


def test_a_real_vllm_032_server_reports_none_so_the_single_group_rule_applies() -> None:
    config = cache_config_from_metrics(SAVED.read_text())
    assert config is not None and config.labels is not None
    assert (
        config.labels["hash_block_size"] == "None" and config.labels["cache_hit_alignment_tokens"] == "None"
    )
    a = prefix_alignment(config.labels, "INFO ... KV cache size: 23,296 tokens\n")
    assert (a.hash_block_size, a.cache_hit_alignment_tokens) == (128, 128)
    assert a.source is not None and "one KV-cache group" in a.source and "says None" in a.source
    memory = engine_memory(log_text="", metrics_text=SAVED.read_text())
    assert memory.prefix_cache_hash_block_size == memory.prefix_cache_hit_alignment_tokens == 128


def test_integer_labels_are_read_as_they_are() -> None:
    labels = {"block_size": "64", "hash_block_size": "16", "cache_hit_alignment_tokens": "16"}
    a = prefix_alignment(labels, None)
    assert (a.hash_block_size, a.cache_hit_alignment_tokens, a.source) == (
        16,
        16,
        "/metrics cache_config_info",
    )


def test_a_hybrid_model_hashes_on_the_gcd_and_hits_on_the_lcm() -> None:
    log = "(EngineCore pid=1) INFO kv cache group sizes (16, 64)\n(EngineCore pid=1) INFO kv lcm block sizes 64\n"
    assert log_group_block_sizes(log) == ([16, 64], 64)
    a = prefix_alignment({"block_size": "16", "hash_block_size": "None", "prefix_match_unit": "None"}, log)
    assert (a.hash_block_size, a.cache_hit_alignment_tokens) == (16, 64)
    assert a.source is not None and "(16, 64)" in a.source and "LCM" in a.source
    unit = prefix_alignment({"block_size": "16", "prefix_match_unit": "32"}, log)
    assert unit.hash_block_size == 32


def test_no_metric_is_null_with_the_reason() -> None:
    a = prefix_alignment(None, None)
    assert a.hash_block_size is None and a.reason == "no vllm:cache_config_info metric"
    memory = engine_memory(log_text="", metrics_text=None)
    assert memory.prefix_cache_hit_alignment_tokens is None
    assert memory.prefix_cache_alignment_source == "not known: no vllm:cache_config_info metric"


def test_the_implied_hit_rate_uses_the_hit_alignment_not_the_block_size() -> None:
    memory = EngineMemory(kv_cache_block_size=16, prefix_cache_hit_alignment_tokens=64)
    assert _hit_alignment(memory) == 64
    assert _hit_alignment(EngineMemory(kv_cache_block_size=16)) == 16
    assert _hit_alignment(None) is None
