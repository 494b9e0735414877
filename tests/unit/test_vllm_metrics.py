"""Parsers for vLLM's /metrics page and log, checkpoint weight size, and the /metrics poller."""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import pytest

from harness.engine.poller import MetricsPoller
from harness.engine.vllm_metrics import (
    cache_config_from_metrics,
    checkpoint_weight_bytes,
    engine_memory,
    kv_cache_usage,
    kv_cache_usage_frac,
    parse_engine_log,
    parse_prometheus,
)

METRICS_032 = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="smollm2"} 4.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="smollm2"} 0.4375
vllm:kv_cache_usage_perc{engine="1",model_name="smollm2"} 0.5
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",gpu_memory_utilization="0.9",num_cpu_blocks="None",num_gpu_blocks="1456",prefix_caching_hash_algo="sha256"} 1.0
vllm:prompt_tokens_total{engine="0",model_name="smollm2"} 1.234e+03 1700000000000
"""

METRICS_OLD = """\
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
vllm:cache_config_info{block_size="32",num_gpu_blocks="None"} 1.0
"""

CPU_LOG = """\
INFO 11-26 16:41:31 [cpu_worker.py:99] Loading weights took 0.31 seconds
(EngineCore_DP0 pid=4242) INFO 11-26 16:41:33 [kv_cache_utils.py:2330] CPU KV cache size: 23,296 tokens, Maximum concurrency for 2,048 tokens per request: 11.38x
"""

GPU_LOG_TP2 = """\
(Worker_TP0 pid=11) INFO [gpu_model_runner.py:5150] Model loading took 7.12 GiB memory and 3.100000 seconds
(Worker_TP1 pid=12) INFO [gpu_model_runner.py:5150] Model loading took 7.13 GiB memory and 3.200000 seconds
(EngineCore_DP0 pid=10) INFO [kv_cache_utils.py:2330] GPU KV cache size: 1,234,567 tokens, Maximum concurrency for 32,768 tokens per request: 37.68x
"""

OLD_LOG = """\
INFO 05-01 10:00:00 model_runner.py:1067] Loading model weights took 2.4800 GB
INFO 05-01 10:00:05 gpu_executor.py:122] # GPU blocks: 27000, # CPU blocks: 2048
"""


def test_parse_prometheus_labels_values_and_timestamps() -> None:
    samples = parse_prometheus(METRICS_032 + 'x{a="q\\"uote",b="back\\\\slash"} NaN\nnot a metric line\n')
    by_name = {s.name: s for s in samples}
    assert by_name["vllm:num_requests_running"].labels == {"engine": "0", "model_name": "smollm2"}
    assert by_name["vllm:prompt_tokens_total"].value == 1234.0  # timestamp ignored
    assert by_name["x"].labels == {"a": 'q"uote', "b": "back\\slash"}
    assert len(samples) == 6


def test_kv_cache_usage_new_and_old_names() -> None:
    assert kv_cache_usage_frac(METRICS_032) == 0.5  # highest over engines
    assert kv_cache_usage_frac(METRICS_OLD) == 0.25
    assert kv_cache_usage_frac("vllm:num_requests_running 1\n") is None


def test_cache_config_from_metrics() -> None:
    cfg = cache_config_from_metrics(METRICS_032)
    assert cfg is not None and (cfg.num_blocks, cfg.block_size, cfg.capacity_tokens) == (1456, 16, 23296)
    cfg = cache_config_from_metrics(METRICS_OLD)  # before profiling: "None"
    assert cfg is not None and (cfg.num_blocks, cfg.block_size, cfg.capacity_tokens) == (None, 32, None)
    assert cache_config_from_metrics("") is None


def test_parse_engine_log_cpu_build() -> None:
    facts = parse_engine_log(CPU_LOG)
    assert facts.kv_cache_tokens == 23296 and facts.kv_cache_device == "CPU"
    assert facts.max_concurrency == 11.38 and facts.max_concurrency_tokens_per_request == 2048
    assert facts.weights_bytes is None  # "Loading weights took 0.31 seconds" is a time, not a size


def test_parse_engine_log_gpu_tensor_parallel_sums_shards() -> None:
    facts = parse_engine_log(GPU_LOG_TP2)
    assert facts.kv_cache_tokens == 1_234_567 and facts.kv_cache_device == "GPU"
    assert facts.weights_bytes == int((7.12 + 7.13) * 2**30)


def test_parse_engine_log_older_vllm() -> None:
    facts = parse_engine_log(OLD_LOG)
    assert facts.num_gpu_blocks == 27000 and facts.weights_bytes == int(2.48e9)
    assert facts.kv_cache_tokens is None


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> None:
    """A minimal valid safetensors file: {name: (dtype, shape, nbytes)}."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_checkpoint_weight_bytes_from_safetensors_headers(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"a": ("BF16", [4, 8], 64)})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"b": ("F32", [10], 40)})
    write_safetensors(
        tmp_path / "consolidated.safetensors", {"a": ("BF16", [4, 8], 64), "b": ("F32", [10], 40)}
    )
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps(
            {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
        )
    )
    assert checkpoint_weight_bytes(tmp_path) == (104, "safetensors headers")
    (tmp_path / "model.safetensors.index.json").unlink()
    assert checkpoint_weight_bytes(tmp_path) == (104, "safetensors headers")  # consolidated copy skipped


def test_checkpoint_weight_bytes_gguf_and_missing(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 996)
    assert checkpoint_weight_bytes(tmp_path) == (1000, "gguf file size")
    assert checkpoint_weight_bytes(gguf) == (1000, "gguf file size")
    assert checkpoint_weight_bytes(tmp_path / "nothing") == (None, None)
    assert checkpoint_weight_bytes(tmp_path / "m.gguf.d") == (None, None)


def test_engine_memory_prefers_exact_figures_and_says_why_others_are_null(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "model.safetensors", {"w": ("BF16", [8], 16)})
    mem = engine_memory(log_text=GPU_LOG_TP2, metrics_text=METRICS_032, checkpoint=tmp_path)
    assert mem.weights_bytes == 16 and mem.weights_source == "safetensors headers"
    assert mem.kv_cache_capacity_tokens == 1_234_567 and mem.kv_cache_source == "engine log"
    assert (mem.kv_cache_num_blocks, mem.kv_cache_block_size) == (1456, 16)
    assert mem.reasons == dict.fromkeys(
        ["nvml_memory_used_bytes", "nvml_memory_total_bytes"], "no NVIDIA GPU measured"
    )

    mem = engine_memory(metrics_text=METRICS_032)
    assert mem.kv_cache_capacity_tokens == 23296 and mem.kv_cache_source == "/metrics cache_config_info"
    assert "weights_bytes" in mem.reasons

    mem = engine_memory(
        log_text=GPU_LOG_TP2, nvml_memory_used_bytes=70 * 2**30, nvml_memory_total_bytes=80 * 2**30
    )
    assert mem.weights_source == "engine log" and mem.nvml_memory_used_bytes == 70 * 2**30
    assert engine_memory().reasons.keys() == {
        "weights_bytes",
        "kv_cache_capacity_tokens",
        "nvml_memory_used_bytes",
        "nvml_memory_total_bytes",
    }


def test_kv_cache_usage_peak() -> None:
    usage = kv_cache_usage([0.1, 0.5, 0.25], capacity_tokens=23296)
    assert usage.peak_usage_frac == 0.5 and usage.peak_usage_tokens == 11648 and usage.polls == 3
    assert kv_cache_usage([], 100).reason == "no /metrics poll inside the phase"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_metrics_poller_windows() -> None:
    clock = Clock()
    pages = iter(
        ["vllm:kv_cache_usage_perc 0.2\n", "vllm:kv_cache_usage_perc 0.7\n", "vllm:kv_cache_usage_perc 0.9\n"]
    )
    urls: list[str] = []

    def fetch(url: str) -> str:
        urls.append(url)
        return next(pages)

    poller = MetricsPoller("http://127.0.0.1:8000/v1", fetch=fetch, clock=clock)
    poller.begin_window("scenario:a")
    for _ in range(2):
        clock.t += 1.0
        poller.poll_once()
    usage = poller.end_window("scenario:a", capacity_tokens=1000)
    clock.t += 1.0
    poller.poll_once()  # after the window: not counted
    assert urls[0] == "http://127.0.0.1:8000/metrics"
    assert usage.peak_usage_frac == 0.7 and usage.peak_usage_tokens == 700 and usage.polls == 2


def test_metrics_poller_errors_and_missing_gauge_are_reasons() -> None:
    def broken(url: str) -> str:
        raise ConnectionRefusedError("refused")

    poller = MetricsPoller("http://x", fetch=broken, clock=Clock())
    poller.begin_window("a")
    poller.poll_once()
    usage = poller.end_window("a")
    assert usage.peak_usage_frac is None and "1 failed polls" in (usage.reason or "")

    poller = MetricsPoller("http://x", fetch=lambda url: "other_metric 1\n", clock=Clock())
    poller.begin_window("a")
    poller.poll_once()
    assert poller.end_window("a").reason == "the engine's /metrics has no KV-cache usage gauge"


@pytest.mark.usefixtures("no_leaked_threads")
def test_metrics_poller_thread_stops() -> None:
    polled = threading.Event()

    def fetch(url: str) -> str:
        polled.set()
        return "vllm:kv_cache_usage_perc 0.1\n"

    poller = MetricsPoller("http://x", interval_s=0.01, fetch=fetch)
    poller.start()
    assert polled.wait(5.0)
    poller.stop()
    poller.stop()
    assert poller.polls
