"""GPU memory that means something: weights, KV-cache capacity and KV-cache usage of a vLLM engine.

vLLM pre-allocates most of the card for its KV cache (``--gpu-memory-utilization``), so NVML's
"memory used" says little about a model. These figures say more:

* **Weights**: the checkpoint's tensor bytes (:func:`checkpoint_weight_bytes`, exact from the
  safetensors headers), or the engine log's "Model loading took X GiB" (rounded to 0.01 GiB).
* **KV-cache capacity**: the engine log's "<device> KV cache size: N tokens" (vLLM ≥ 0.6;
  group-aware for hybrid models), else ``num_gpu_blocks × block_size`` from the
  ``vllm:cache_config_info`` metric or an older log's "# GPU blocks: N".
* **KV-cache usage**: the ``vllm:kv_cache_usage_perc`` gauge of ``/metrics`` (a fraction, 0..1;
  ``vllm:gpu_cache_usage_perc`` before vLLM 0.10), polled during each phase by
  :class:`harness.engine.poller.MetricsPoller`; the peak is reported per phase.

Everything here is a pure function on text or files; the polling thread is in
:mod:`harness.engine.poller`.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.engine.prefix_alignment import prefix_alignment
from harness.record.run_record import EngineMemory, KvCacheUsage

KV_USAGE_METRICS = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")  # newest first
CACHE_CONFIG_METRIC = "vllm:cache_config_info"
GIB = 1024**3

# ---------------------------------------------------------------------------------------------
# Prometheus text exposition format.


@dataclass(frozen=True)
class MetricSample:
    name: str
    labels: dict[str, str]
    value: float


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_prometheus(text: str) -> list[MetricSample]:
    """Samples of a Prometheus text page; comments and malformed lines are skipped."""
    out: list[MetricSample] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, label_text, raw = m.groups()
        labels: dict[str, str] = {}
        if label_text:
            inner = label_text[1:-1]
            pos = 0
            while pos < len(inner):
                lm = _LABEL.match(inner, pos)
                if not lm:
                    break
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        try:
            value = float(raw)
        except ValueError:
            continue
        out.append(MetricSample(name, labels, value))
    return out


def kv_cache_usage_frac(text: str) -> float | None:
    """KV-cache usage (0..1) on a /metrics page: the highest over engines; None if absent."""
    samples = parse_prometheus(text)
    for metric in KV_USAGE_METRICS:
        values = [s.value for s in samples if s.name == metric]
        if values:
            return max(values)
    return None


def _int_label(labels: dict[str, str], key: str) -> int | None:
    try:
        return int(float(labels[key]))
    except (KeyError, ValueError):
        return None  # absent, or "None" before the engine profiled memory


@dataclass(frozen=True)
class KvCacheConfig:
    num_blocks: int | None
    block_size: int | None
    capacity_tokens: int | None
    memory_bytes: int | None = None  # bytes the engine gave its KV cache (vLLM >= 0.11's label)
    labels: dict[str, str] | None = None  # every label, for harness.engine.prefix_alignment


def cache_config_from_metrics(text: str) -> KvCacheConfig | None:
    """Blocks, block size and their product from ``vllm:cache_config_info``; None if absent."""
    for s in parse_prometheus(text):
        if s.name == CACHE_CONFIG_METRIC:
            blocks = _int_label(s.labels, "num_gpu_blocks")
            size = _int_label(s.labels, "block_size")
            tokens = _int_label(s.labels, "kv_cache_size_tokens")
            if tokens is None and blocks is not None and size is not None:
                tokens = blocks * size
            return KvCacheConfig(
                blocks, size, tokens, _int_label(s.labels, "kv_cache_memory_bytes"), dict(s.labels)
            )
    return None


# ---------------------------------------------------------------------------------------------
# The engine log.


@dataclass(frozen=True)
class EngineLogFacts:
    """Memory facts from a vLLM server log (the last occurrence of each line wins)."""

    kv_cache_tokens: int | None = None
    kv_cache_device: str | None = None
    max_concurrency: float | None = None
    max_concurrency_tokens_per_request: int | None = None
    num_gpu_blocks: int | None = None
    weights_bytes: int | None = None


_KV_SIZE = re.compile(r"(\w+(?: \+ host)?) KV cache size: ([\d,]+) tokens")
_MAX_CONC = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")
_GPU_BLOCKS = re.compile(r"# GPU blocks: (\d+)")
_WEIGHTS = re.compile(r"(?:Model loading took|Loading model weights took) ([\d.]+) (GiB|GB)")
_TP_RANK = re.compile(r"TP(\d+)")


def parse_engine_log(text: str) -> EngineLogFacts:
    """KV-cache capacity and weight size from a vLLM log.

    Weight lines are logged once per tensor-parallel worker (each its shard): the last line of
    each ``TP<rank>`` prefix is summed; untagged lines count once (the last).
    """
    kv_tokens = kv_device = conc = conc_tokens = blocks = None
    weights_by_rank: dict[str, float] = {}
    for line in text.splitlines():
        if m := _KV_SIZE.search(line):
            kv_device, kv_tokens = m.group(1), int(m.group(2).replace(",", ""))
        if m := _MAX_CONC.search(line):
            conc_tokens, conc = int(m.group(1).replace(",", "")), float(m.group(2))
        if m := _GPU_BLOCKS.search(line):
            blocks = int(m.group(1))
        if m := _WEIGHTS.search(line):
            size = float(m.group(1)) * (GIB if m.group(2) == "GiB" else 1e9)
            rank = _TP_RANK.search(line[: m.start()])
            weights_by_rank[rank.group(1) if rank else ""] = size
    return EngineLogFacts(
        kv_cache_tokens=kv_tokens,
        kv_cache_device=kv_device,
        max_concurrency=conc,
        max_concurrency_tokens_per_request=conc_tokens,
        num_gpu_blocks=blocks,
        weights_bytes=int(sum(weights_by_rank.values())) if weights_by_rank else None,
    )


# ---------------------------------------------------------------------------------------------
# The checkpoint.


def _safetensors_tensor_bytes(path: Path) -> int:
    """Sum of tensor sizes from a safetensors file's header (8-byte length + JSON)."""
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return sum(
        int(v["data_offsets"][1]) - int(v["data_offsets"][0])
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict)
    )


def checkpoint_weight_bytes(path: Path) -> tuple[int | None, str | None]:
    """(bytes of model weights, how they were counted) for a checkpoint file or directory.

    safetensors: tensor bytes from the headers, over the files of ``*.safetensors.index.json``
    where there is one (repos that also ship ``consolidated.safetensors`` would count twice);
    GGUF and PyTorch ``.bin``: file sizes. (None, None) when no weight file is found.
    """
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        index = sorted(path.glob("*.safetensors.index.json"))
        if index:
            names = set(json.loads(index[0].read_text()).get("weight_map", {}).values())
            files = [path / n for n in sorted(names)]
        else:
            files = sorted(path.glob("*.safetensors"))
            if len(files) > 1:
                files = [f for f in files if not f.name.startswith("consolidated")] or files
        files = files or sorted(path.glob("*.gguf")) or sorted(path.glob("pytorch_model*.bin"))
    else:
        return None, None
    if not files:
        return None, None
    if all(f.suffix == ".safetensors" for f in files):
        return sum(_safetensors_tensor_bytes(f) for f in files), "safetensors headers"
    return sum(f.stat().st_size for f in files), f"{files[0].suffix.lstrip('.')} file size"


def engine_memory(
    log_text: str | None = None,
    metrics_text: str | None = None,
    checkpoint: Path | None = None,
    nvml_memory_used_bytes: int | None = None,
    nvml_memory_total_bytes: int | None = None,
    nvml_reason: str | None = None,
) -> EngineMemory:
    """The run's memory figures from whatever is at hand; every null field has its reason."""
    reasons: dict[str, str] = {}
    facts = parse_engine_log(log_text) if log_text else EngineLogFacts()
    config = cache_config_from_metrics(metrics_text) if metrics_text else None

    weights, weights_source = checkpoint_weight_bytes(checkpoint) if checkpoint is not None else (None, None)
    if weights is None and facts.weights_bytes is not None:
        weights, weights_source = facts.weights_bytes, "engine log"
    if weights is None:
        reasons["weights_bytes"] = "no local checkpoint and no 'Model loading took' line in the engine log"

    tokens = facts.kv_cache_tokens
    blocks = config.num_blocks if config else facts.num_gpu_blocks
    block_size = config.block_size if config else None
    kv_source: str | None = "engine log" if tokens is not None else None
    if tokens is None and config is not None and config.capacity_tokens is not None:
        tokens, kv_source = config.capacity_tokens, "/metrics cache_config_info"
    if tokens is None:
        reasons["kv_cache_capacity_tokens"] = "no 'KV cache size' log line and no cache_config_info metric"
    align = prefix_alignment(config.labels if config else None, log_text)
    if nvml_memory_used_bytes is None:
        reasons["nvml_memory_used_bytes"] = nvml_reason or "no NVIDIA GPU measured"
    if nvml_memory_total_bytes is None:
        reasons["nvml_memory_total_bytes"] = nvml_reason or "no NVIDIA GPU measured"
    return EngineMemory(
        weights_bytes=weights,
        weights_source=weights_source,
        kv_cache_capacity_tokens=tokens,
        kv_cache_num_blocks=blocks,
        kv_cache_block_size=block_size,
        kv_cache_memory_bytes=config.memory_bytes if config else None,
        weights_in_memory_bytes=facts.weights_bytes,
        kv_cache_source=kv_source,
        prefix_cache_hash_block_size=align.hash_block_size,
        prefix_cache_hit_alignment_tokens=align.cache_hit_alignment_tokens,
        prefix_cache_alignment_source=align.source or f"not known: {align.reason}",
        nvml_memory_used_bytes=nvml_memory_used_bytes,
        nvml_memory_total_bytes=nvml_memory_total_bytes,
        reasons=reasons,
    )


def kv_cache_usage(
    fracs: Iterable[float], capacity_tokens: int | None, reason: str | None = None
) -> KvCacheUsage:
    """A phase's KV-cache usage from its polled fractions."""
    values = list(fracs)
    if not values:
        return KvCacheUsage(
            peak_usage_frac=None, polls=0, reason=reason or "no /metrics poll inside the phase"
        )
    peak = max(values)
    return KvCacheUsage(
        peak_usage_frac=peak,
        peak_usage_tokens=round(peak * capacity_tokens) if capacity_tokens is not None else None,
        polls=len(values),
    )
