"""Architecture facts from a model's ``config.json``: parameters, weight bytes, KV-cache bytes.

Pure arithmetic on the parsed config dictionary, no torch. Parameter counts follow the
module layout of the transformers implementation of each family, so they equal
``sum(p.numel() for p in model.parameters())`` of the instantiated model (the unit tests
check that on the tiny models). Bytes are plain bytes; "GB" in printed output is 10^9.
"""

from __future__ import annotations

from typing import Any

from harness.record.analytics import ArchFacts, AttentionKind, MoeFacts, ParamBreakdown

DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float": 4,
    "fp32": 4,
    "bfloat16": 2,
    "bf16": 2,
    "float16": 2,
    "half": 2,
    "fp16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}

# Bits per weight of the linear layers under vLLM quantization methods. Embeddings, norms and
# the output head stay at the activation dtype; group scales and zero points are left out
# (a few percent for group size 128).
QUANT_BITS: dict[str, int] = {
    "awq": 4,
    "awq_marlin": 4,
    "gptq": 4,
    "gptq_marlin": 4,
    "marlin": 4,
    "bitsandbytes": 4,
    "fp8": 8,
    "fbgemm_fp8": 8,
    "experts_int8": 8,
}


class ArchError(ValueError):
    """A config this module cannot analyse (unknown family or missing fields)."""


def _get(cfg: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if cfg.get(name) is not None:
            return cfg[name]
    return default


def _req(cfg: dict[str, Any], *names: str) -> Any:
    value = _get(cfg, *names)
    if value is None:
        raise ArchError(f"config.json lacks {' / '.join(names)}")
    return value


def _window(cfg: dict[str, Any], layers: int) -> tuple[int | None, int]:
    """(window tokens, number of windowed layers) as the config describes them."""
    window = cfg.get("sliding_window")
    if isinstance(window, list):  # Mistral's params.json style: per-layer list
        window = max((w for w in window if w), default=None)
    if not window:
        return None, 0
    layer_types = cfg.get("layer_types")
    if layer_types:
        return int(window), sum(t == "sliding_attention" for t in layer_types)
    if "use_sliding_window" in cfg:  # Qwen2: window only when enabled, from layer max_window_layers on
        if not cfg["use_sliding_window"]:
            return None, 0
        return int(window), max(0, layers - int(cfg.get("max_window_layers", 0)))
    return int(window), layers


def _linear(n_in: int, n_out: int, bias: bool = False) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _count_params(
    cfg: dict[str, Any],
) -> tuple[ParamBreakdown, MoeFacts | None, AttentionKind, dict[str, int]]:
    model_type = str(_req(cfg, "model_type"))
    h = int(_req(cfg, "hidden_size"))
    n_layers = int(_req(cfg, "num_hidden_layers"))
    n_heads = int(_req(cfg, "num_attention_heads"))
    n_kv = int(_get(cfg, "num_key_value_heads", default=n_heads))
    vocab = int(_req(cfg, "vocab_size"))
    tied = bool(cfg.get("tie_word_embeddings", False))
    inter = int(_get(cfg, "intermediate_size", default=0))

    embedding = vocab * h
    lm_head = 0 if tied else vocab * h
    attention = mlp = routed = shared = router = norms = 0
    moe: MoeFacts | None = None
    extra: dict[str, int] = {}

    if model_type in ("llama", "mistral", "mixtral", "qwen2", "phi3"):
        hd = int(_get(cfg, "head_dim", default=h // n_heads))
        extra["head_dim"] = hd
        attn_bias = bool(cfg.get("attention_bias", False))
        qkv_bias = model_type == "qwen2" or attn_bias
        mlp_bias = bool(cfg.get("mlp_bias", False))
        per_attn = (
            _linear(h, n_heads * hd, qkv_bias)
            + 2 * _linear(h, n_kv * hd, qkv_bias)
            + _linear(n_heads * hd, h, attn_bias and model_type != "qwen2")
        )
        attention = n_layers * per_attn
        norms = n_layers * 2 * h + h  # RMSNorm weights: two per block and the final one
        per_mlp = 2 * _linear(h, inter, mlp_bias) + _linear(inter, h, mlp_bias)
        if model_type == "mixtral":
            n_exp = int(_req(cfg, "num_local_experts"))
            top_k = int(_req(cfg, "num_experts_per_tok"))
            routed = n_layers * n_exp * per_mlp
            router = n_layers * n_exp * h
            moe = MoeFacts(
                num_experts=n_exp, experts_per_token=top_k, moe_layers=n_layers, params_per_expert=per_mlp
            )
        else:
            mlp = n_layers * per_mlp
    elif model_type == "phi":  # Phi-1/1.5/2: biased projections, parallel block, one LayerNorm per layer
        hd = int(_get(cfg, "head_dim", default=h // n_heads))
        extra["head_dim"] = hd
        per_attn = (
            _linear(h, n_heads * hd, True) + 2 * _linear(h, n_kv * hd, True) + _linear(n_heads * hd, h, True)
        )
        if cfg.get("qk_layernorm"):
            per_attn += 2 * 2 * hd
        attention = n_layers * per_attn
        mlp = n_layers * (_linear(h, inter, True) + _linear(inter, h, True))
        norms = n_layers * 2 * h + 2 * h  # LayerNorm weight and bias
        if not tied:
            lm_head += vocab  # the output head has a bias
    elif model_type == "deepseek_v2":
        q_lora = cfg.get("q_lora_rank")
        kv_lora = int(_req(cfg, "kv_lora_rank"))
        nope = int(_req(cfg, "qk_nope_head_dim"))
        rope = int(_req(cfg, "qk_rope_head_dim"))
        v_hd = int(_req(cfg, "v_head_dim"))
        bias = bool(cfg.get("attention_bias", False))
        qk_hd = nope + rope
        extra.update(head_dim=v_hd, kv_lora_rank=kv_lora, qk_rope_head_dim=rope, qk_head_dim=qk_hd)
        if q_lora:
            q = _linear(h, int(q_lora), bias) + int(q_lora) + _linear(int(q_lora), n_heads * qk_hd)
        else:
            q = _linear(h, n_heads * qk_hd)
        per_attn = (
            q
            + _linear(h, kv_lora + rope, bias)  # kv_a_proj_with_mqa: latent plus the shared rotary key
            + kv_lora  # kv_a_layernorm
            + _linear(kv_lora, n_heads * (nope + v_hd))  # kv_b_proj
            + _linear(n_heads * v_hd, h, bias)  # o_proj
        )
        attention = n_layers * per_attn
        norms = n_layers * 2 * h + h
        n_routed = int(_get(cfg, "n_routed_experts", default=0))
        moe_inter = int(_get(cfg, "moe_intermediate_size", default=0))
        first_dense = int(_get(cfg, "first_k_dense_replace", default=0))
        freq = int(_get(cfg, "moe_layer_freq", default=1))
        n_shared = int(_get(cfg, "n_shared_experts", default=0))
        moe_layers = sum(1 for i in range(n_layers) if i >= first_dense and i % freq == 0) if n_routed else 0
        dense_layers = n_layers - moe_layers
        mlp = dense_layers * 3 * h * inter
        if moe_layers:
            per_expert = 3 * h * moe_inter
            routed = moe_layers * n_routed * per_expert
            shared = moe_layers * 3 * h * moe_inter * n_shared
            router = moe_layers * n_routed * h
            if cfg.get("topk_method") == "noaux_tc":  # V3-style correction bias per expert
                router += moe_layers * n_routed
            moe = MoeFacts(
                num_experts=n_routed,
                experts_per_token=int(_req(cfg, "num_experts_per_tok")),
                shared_experts=n_shared,
                moe_layers=moe_layers,
                params_per_expert=per_expert,
            )
    else:
        raise ArchError(
            f"no parameter arithmetic for model_type {model_type!r} "
            "(known: llama, mistral, mixtral, qwen2, phi, phi3, deepseek_v2)"
        )

    if model_type == "deepseek_v2":
        kind: AttentionKind = "MLA"
    elif n_kv == n_heads:
        kind = "MHA"
    elif n_kv == 1:
        kind = "MQA"
    else:
        kind = "GQA"
    breakdown = ParamBreakdown(
        embedding=embedding,
        lm_head=lm_head,
        attention=attention,
        mlp_dense=mlp,
        experts_routed=routed,
        experts_shared=shared,
        router=router,
        norms=norms,
    )
    return breakdown, moe, kind, extra


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of a torch/vLLM dtype name."""
    key = dtype.lower().replace("torch.", "")
    if key not in DTYPE_BYTES:
        raise ArchError(f"unknown dtype {dtype!r}")
    return DTYPE_BYTES[key]


def resolve_dtype(engine_dtype: str, cfg: dict[str, Any]) -> str:
    """The dtype the engine loads: the preset's, or the config's own for 'auto'."""
    if engine_dtype and engine_dtype != "auto":
        return engine_dtype
    return str(_get(cfg, "torch_dtype", "dtype", default="bfloat16")).replace("torch.", "")


def arch_facts(
    cfg: dict[str, Any],
    *,
    dtype: str = "auto",
    quantization: str | None = None,
    kv_cache_dtype: str | None = None,
) -> ArchFacts:
    """Architecture facts of a parsed ``config.json``.

    Args:
        cfg: the config dictionary (Hub ``config.json`` fields).
        dtype: the engine's weight dtype; "auto" takes the config's ``torch_dtype``.
        quantization: vLLM quantization method, if any (linear layers only; see ``QUANT_BITS``).
        kv_cache_dtype: vLLM ``--kv-cache-dtype``; None or "auto" caches at the weight dtype.
    """
    params, moe, kind, extra = _count_params(cfg)
    n_layers = int(cfg["num_hidden_layers"])
    n_heads = int(cfg["num_attention_heads"])
    n_kv = int(_get(cfg, "num_key_value_heads", default=n_heads))
    resolved = resolve_dtype(dtype, cfg)
    w_bytes = dtype_bytes(resolved)
    kv_bytes = w_bytes if kv_cache_dtype in (None, "auto") else dtype_bytes(str(kv_cache_dtype))

    total = params.total
    active = total
    if moe is not None:
        active = total - moe.moe_layers * (moe.num_experts - moe.experts_per_token) * moe.params_per_expert

    def weight_bytes(n_params: int, linear: int) -> int:
        if quantization is None:
            return round(n_params * w_bytes)
        bits = QUANT_BITS.get(quantization)
        if bits is None:
            raise ArchError(f"unknown quantization {quantization!r} (known: {', '.join(sorted(QUANT_BITS))})")
        return round(linear * bits / 8 + (n_params - linear) * w_bytes)

    inactive_linear = total - active  # inactive parameters are all routed-expert (linear) weights
    hd = extra["head_dim"]
    if kind == "MLA":
        per_layer = (extra["kv_lora_rank"] + extra["qk_rope_head_dim"]) * kv_bytes
        # Without the latent compression every head caches its full key (nope + rope) and value.
        per_layer_mha = n_heads * (extra["qk_head_dim"] + hd) * kv_bytes
    else:
        per_layer = 2 * n_kv * hd * kv_bytes
        per_layer_mha = 2 * n_heads * hd * kv_bytes
    window, windowed = _window(cfg, n_layers)
    return ArchFacts(
        model_type=str(cfg["model_type"]),
        architecture=(cfg.get("architectures") or [None])[0],
        hidden_size=int(cfg["hidden_size"]),
        num_layers=n_layers,
        num_attention_heads=n_heads,
        num_kv_heads=n_kv,
        head_dim=hd,
        vocab_size=int(cfg["vocab_size"]),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_context_tokens=int(_get(cfg, "max_position_embeddings", default=0)),
        attention=kind,
        kv_lora_rank=extra.get("kv_lora_rank"),
        qk_rope_head_dim=extra.get("qk_rope_head_dim"),
        sliding_window=window,
        windowed_layers=windowed,
        moe=moe,
        params=params,
        total_params=total,
        active_params=active,
        dtype=resolved,
        quantization=quantization,
        weight_bytes=weight_bytes(total, params.linear),
        active_weight_bytes=weight_bytes(active, params.linear - inactive_linear),
        kv_dtype_bytes=kv_bytes,
        kv_bytes_per_token=round(per_layer * n_layers),
        kv_bytes_per_token_mha=round(per_layer_mha * n_layers),
        kv_bytes_per_token_per_layer=per_layer,
    )
