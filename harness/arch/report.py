"""A model's architecture facts set against GPUs: what fits, and the batch-1 roofline.

Simplifications, stated once:

* Decode at batch 1 is memory-bound: each generated token reads every active weight once
  and the whole KV cache of the sequence once. The roofline is
  ``bandwidth / (active weight bytes + KV bytes at the context length)`` per GPU, with
  weights (and KV heads, where there are at least as many as GPUs) split evenly under
  tensor parallelism; MLA's latent cache is replicated on every GPU, as vLLM does.
  Active weights include the whole embedding table, the usual convention (a lookup reads
  one row, so this errs low by about the embedding's share).
* Prefill is compute-bound: ``peak FLOP/s / (2 × active parameters)`` tokens/s, which
  leaves out the attention-score FLOPs (quadratic in context) and every overhead.
* KV capacity is ``GPU memory × utilization − weights``, all of it cache; activations,
  CUDA graphs and the allocator's slack are left out, so real engines hold somewhat less.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.arch.defaults import DEFAULT_CONTEXT_TOKENS, DEFAULT_GPU_MEMORY_UTILIZATION
from harness.arch.gpus import GpuSpec
from harness.model.facts import ArchError, ArchFacts, arch_facts
from harness.model.presets import ModelPreset
from harness.record.analytics import GpuEstimate

CACHE_CONTEXTS = (4096, 32768)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def shipped_config_path(preset_name: str) -> Path:
    """Where the package keeps a hub preset's transcribed ``config.json``."""
    return Path(str(resources.files("harness") / "presets" / preset_name / "config.json"))


def load_config(preset: ModelPreset) -> tuple[dict[str, Any], str]:
    """The preset's ``config.json`` as a dictionary, and where it came from. Needs no network.

    Hub presets read the copy shipped in ``harness/presets/<name>/``; builtin presets read
    their built checkpoint (tiny models fall back to their transformers config without
    building); local checkpoints read their own file.
    """
    if preset.source == "hub":
        path = shipped_config_path(preset.name)
        if not path.is_file() and preset.config_path:  # any Hub model: its config from the HF cache
            return json.loads(Path(preset.config_path).read_text()), preset.config_path
        if not path.is_file():
            raise ArchError(f"no shipped config for hub preset {preset.name!r} (expected {path})")
        return json.loads(path.read_text()), f"shipped copy of {preset.hub_id} config.json"
    if preset.source == "local":
        path = Path(preset.local_path or "") / "config.json"
        return json.loads(path.read_text()), str(path)
    from harness.model import checkpoints

    built = checkpoints.checkpoint_dir(preset.name)
    if (built / checkpoints.MARKER).is_file():
        return json.loads((built / "config.json").read_text()), str(built / "config.json")
    if preset.name in checkpoints.TINY_MODELS:
        cfg = checkpoints.tiny_config(preset.name).to_dict()
        # the build saves float32 weights, so its config.json says float32; say it here too, or the
        # figures of an unbuilt tiny model would follow the bfloat16 default
        for key in ("torch_dtype", "dtype"):
            if cfg.get(key) is None:
                cfg[key] = checkpoints.TINY_DTYPE
        return cfg, f"transformers config of {preset.name}"
    path = checkpoints.ensure_checkpoint(preset.name) / "config.json"
    return json.loads(path.read_text()), str(path)


def _engine_value(engine_args: dict[str, Any] | None, name: str, default: Any) -> Any:
    if not engine_args:
        return default
    for key in (name, name.replace("_", "-")):
        if engine_args.get(key) is not None:
            return engine_args[key]
    return default


def _extra_arg(extra_args: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(extra_args):
        if arg == flag and i + 1 < len(extra_args):
            return extra_args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def preset_facts(preset: ModelPreset, engine_args: dict[str, Any] | None = None) -> tuple[ArchFacts, str]:
    """Architecture facts of a preset at the dtype/quantization its engine loads.

    `engine_args` (vLLM CLI names, as in ``EngineInfo.args``) override the preset's own.
    """
    cfg, origin = load_config(preset)
    eng = preset.engine
    # A variant's --kv-cache-dtype lives in the run's own extra_args, which override the preset's.
    extra = (engine_args or {}).get("extra_args") or eng.extra_args
    kv_dtype = _engine_value(engine_args, "kv_cache_dtype", _extra_arg(tuple(extra), "--kv-cache-dtype"))
    facts = arch_facts(
        cfg,
        dtype=str(_engine_value(engine_args, "dtype", eng.dtype)),
        quantization=_engine_value(engine_args, "quantization", eng.quantization),
        kv_cache_dtype=kv_dtype,
    )
    return facts, origin


class CacheAtContext(_Frozen):
    context_tokens: int
    kv_bytes: int = Field(description="KV cache of one sequence at this length.")
    kv_bytes_without_window: int = Field(
        description="The same without the sliding window (every token kept)."
    )


class ArchReport(_Frozen):
    """`harness arch` output: architecture facts, cache sizes, and per-GPU estimates."""

    preset: str
    family: str
    source: str = Field(description="Hub id or checkpoint directory.")
    config_origin: str
    facts: ArchFacts
    kv_per_sequence: list[CacheAtContext]
    gpus: list[GpuEstimate]
    notes: list[str] = Field(default_factory=list)


def _kv_gpu_fraction(facts: ArchFacts, tp: int) -> float:
    """Share of each token's KV cache one GPU holds under tensor parallelism."""
    if facts.attention == "MLA" or tp <= 1:
        return 1.0
    # vLLM splits KV heads across GPUs and replicates them when there are fewer heads than GPUs.
    return math.ceil(facts.num_kv_heads / tp) / facts.num_kv_heads


def estimate(
    facts: ArchFacts,
    gpu: GpuSpec,
    *,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    memory_bytes: int | None = None,
) -> GpuEstimate:
    """Capacity and batch-1 roofline of `facts` on `tensor_parallel_size` GPUs of kind `gpu`.

    `memory_bytes` overrides the table's capacity (e.g. NVML's measured total).
    """
    tp = max(1, tensor_parallel_size)
    mem = memory_bytes or gpu.memory_bytes
    weights_per_gpu = math.ceil(facts.weight_bytes / tp)
    budget = int(mem * gpu_memory_utilization) - weights_per_gpu
    frac = _kv_gpu_fraction(facts, tp)
    kv_token_gpu = facts.kv_bytes_per_token * frac
    seq_gpu = facts.kv_bytes_per_sequence(context_tokens) * frac
    fits = budget > 0
    reason = None
    if not fits:
        reason = (
            f"does not fit: {weights_per_gpu / 1e9:.1f} GB of weights per GPU exceed "
            f"{gpu_memory_utilization:g} x {mem / 1e9:.1f} GB"
        )
    read_gpu = facts.active_weight_bytes / tp + seq_gpu
    decode = gpu.bandwidth_bytes_per_s / read_gpu
    prefill = tp * gpu.bf16_dense_flops_per_s / (2 * facts.active_params)
    return GpuEstimate(
        gpu=gpu.key,
        gpu_name=gpu.name,
        tensor_parallel_size=tp,
        memory_bytes=mem,
        gpu_memory_utilization=gpu_memory_utilization,
        bandwidth_bytes_per_s=gpu.bandwidth_bytes_per_s,
        bf16_dense_flops_per_s=gpu.bf16_dense_flops_per_s,
        board_power_w=gpu.board_power_w,
        weight_bytes_per_gpu=weights_per_gpu,
        fits=fits,
        reason=reason,
        kv_budget_bytes_per_gpu=budget,
        kv_tokens=int(budget // kv_token_gpu) if fits else None,
        context_tokens=context_tokens,
        max_batch=int(budget // seq_gpu) if fits and seq_gpu > 0 else None,
        decode_bytes_per_token_per_gpu=round(read_gpu),
        decode_tokens_per_s=decode,
        decode_tokens_per_s_weights_only=gpu.bandwidth_bytes_per_s * tp / facts.active_weight_bytes,
        prefill_tokens_per_s=prefill,
        decode_j_per_token_at_board_power=gpu.board_power_w * tp / decode,
    )


def _notes(facts: ArchFacts) -> list[str]:
    notes = []
    if facts.sliding_window:
        notes.append(
            f"sliding window {facts.sliding_window} tokens on {facts.windowed_layers}/{facts.num_layers} layers "
            "(from the config): the cache per sequence stops growing at the window on those layers. vLLM "
            "applies the config's window to every layer when the config has no layer_types, and to the "
            "sliding_attention layers when it lists them"
        )
    if facts.moe is not None:
        notes.append(
            "active parameters: every dense part (embeddings included) plus shared experts and the top-"
            f"{facts.moe.experts_per_token} of {facts.moe.num_experts} routed experts per MoE layer"
        )
    return notes


def build_report(
    preset: ModelPreset,
    gpus: Sequence[GpuSpec],
    *,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    tensor_parallel_sizes: Sequence[int] | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    memory_bytes: int | None = None,
    engine_args: dict[str, Any] | None = None,
) -> ArchReport:
    """Everything `harness arch` prints, as data.

    `tensor_parallel_sizes` defaults to 1 and the preset's own size, so a model that needs
    several GPUs shows both that it does not fit on one and what it does on its set.
    """
    facts, origin = preset_facts(preset, engine_args)
    tps = sorted(set(tensor_parallel_sizes or (1, preset.engine.tensor_parallel_size)))
    contexts = sorted({*CACHE_CONTEXTS, facts.max_context_tokens} - {0})
    no_window = facts.model_copy(update={"sliding_window": None, "windowed_layers": 0})
    cache = [
        CacheAtContext(
            context_tokens=c,
            kv_bytes=facts.kv_bytes_per_sequence(c),
            kv_bytes_without_window=no_window.kv_bytes_per_sequence(c),
        )
        for c in contexts
    ]
    rows = [
        estimate(
            facts,
            gpu,
            context_tokens=context_tokens,
            tensor_parallel_size=tp,
            gpu_memory_utilization=gpu_memory_utilization,
            memory_bytes=memory_bytes,
        )
        for gpu in gpus
        for tp in tps
    ]
    return ArchReport(
        preset=preset.name,
        family=preset.family,
        source=preset.hub_id or preset.local_path or preset.name,
        config_origin=origin,
        facts=facts,
        kv_per_sequence=cache,
        gpus=rows,
        notes=_notes(facts),
    )
