"""The ``analytics`` section of a run record, typed: architecture facts, roofline, published scores.

These are stored shapes, part of the record contract (``harness.record.run_record``); the code that
computes them lives in :mod:`harness.arch`. Like every record part they are strict when
built and read tolerantly (unknown fields ignored) through :func:`harness.record.migrate.parse_record`.
Byte counts are plain bytes; speeds are tokens per second.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ANALYTICS_VERSION = 1

AttentionKind = Literal["MHA", "GQA", "MQA", "MLA"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParamBreakdown(_Frozen):
    """Parameter counts by component (whole model, all layers)."""

    embedding: int = Field(description="Input token embedding.")
    lm_head: int = Field(
        description="Output projection (0 when tied to the embedding), with its bias if any."
    )
    attention: int = Field(
        description="Attention projections (q, k, v, o or the MLA projections) and their norms."
    )
    mlp_dense: int = Field(description="Dense feed-forward blocks.")
    experts_routed: int = Field(description="All routed experts of the MoE layers.")
    experts_shared: int = Field(description="Shared (always active) experts of the MoE layers.")
    router: int = Field(description="Expert router weights.")
    norms: int = Field(description="Layer norms around the blocks and the final norm.")

    @property
    def total(self) -> int:
        return (
            self.embedding
            + self.lm_head
            + self.attention
            + self.mlp_dense
            + self.experts_routed
            + self.experts_shared
            + self.router
            + self.norms
        )

    @property
    def linear(self) -> int:
        """Parameters in the transformer blocks' linear layers (what weight quantization compresses)."""
        return self.attention + self.mlp_dense + self.experts_routed + self.experts_shared


class MoeFacts(_Frozen):
    num_experts: int = Field(description="Routed experts per MoE layer.")
    experts_per_token: int = Field(description="Routed experts each token goes through (top-k).")
    shared_experts: int = Field(default=0, description="Always-active shared experts per MoE layer.")
    moe_layers: int = Field(description="Layers whose feed-forward block is a mixture of experts.")
    params_per_expert: int = Field(description="Parameters of one routed expert.")


class ArchFacts(_Frozen):
    """What a model's architecture implies, independent of hardware."""

    model_type: str
    architecture: str | None = Field(description="transformers class named in the config.")
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int = Field(description="Per-head dimension of keys/values (MLA: v_head_dim).")
    vocab_size: int
    tie_word_embeddings: bool
    max_context_tokens: int = Field(description="max_position_embeddings of the config.")
    attention: AttentionKind
    kv_lora_rank: int | None = Field(default=None, description="MLA latent dimension.")
    qk_rope_head_dim: int | None = Field(default=None, description="MLA decoupled rotary key dimension.")
    sliding_window: int | None = Field(
        default=None, description="Attention window in tokens, where the config sets one."
    )
    windowed_layers: int = Field(
        default=0, description="Layers that attend within the window (the rest attend fully)."
    )
    moe: MoeFacts | None = None
    params: ParamBreakdown
    total_params: int
    active_params: int = Field(
        description="Parameters used per token: all dense parts plus shared and top-k experts."
    )
    dtype: str = Field(
        description="Weight dtype the engine loads (the preset's, or the config's for 'auto')."
    )
    quantization: str | None = None
    weight_bytes: int = Field(description="Bytes of all weights at dtype/quantization.")
    active_weight_bytes: int = Field(description="Bytes of the weights read per token at batch 1.")
    kv_dtype_bytes: float = Field(description="Bytes per cached element.")
    kv_bytes_per_token: int = Field(description="KV-cache bytes per token over all layers.")
    kv_bytes_per_token_mha: int = Field(
        description="What a full multi-head cache of the same model would take (all heads, K and V at full size)."
    )
    kv_bytes_per_token_per_layer: float

    @property
    def kv_saving_factor(self) -> float:
        """How many times smaller the cache is than full multi-head attention (1.0 for MHA)."""
        return self.kv_bytes_per_token_mha / self.kv_bytes_per_token

    def kv_bytes_per_sequence(self, context_tokens: int) -> int:
        """KV-cache bytes one sequence holds at `context_tokens` tokens.

        Windowed layers keep at most `sliding_window` tokens (the rolling buffer); the other
        layers keep every token.
        """
        full_layers = self.num_layers - self.windowed_layers
        windowed_tokens = min(context_tokens, self.sliding_window) if self.sliding_window else context_tokens
        return round(
            self.kv_bytes_per_token_per_layer
            * (full_layers * context_tokens + self.windowed_layers * windowed_tokens)
        )


class GpuEstimate(_Frozen):
    """One model on one GPU kind with `tensor_parallel_size` GPUs: capacity and roofline."""

    gpu: str = Field(description="Table key, e.g. 'H100-SXM'.")
    gpu_name: str
    tensor_parallel_size: int
    memory_bytes: int = Field(description="Memory per GPU used for the estimate.")
    gpu_memory_utilization: float
    bandwidth_bytes_per_s: float
    bf16_dense_flops_per_s: float
    board_power_w: float
    weight_bytes_per_gpu: int
    fits: bool = Field(description="Whether the weights leave any room for KV cache.")
    reason: str | None = Field(default=None, description="Why it does not fit, where it does not.")
    kv_budget_bytes_per_gpu: int
    kv_tokens: int | None = Field(description="Tokens of KV cache that fit after the weights.")
    context_tokens: int
    max_batch: int | None = Field(description="Largest batch of sequences at context_tokens.")
    decode_bytes_per_token_per_gpu: int = Field(
        description="Bytes each GPU reads per generated token at batch 1."
    )
    decode_tokens_per_s: float = Field(description="Batch-1 decode roofline at context_tokens.")
    decode_tokens_per_s_weights_only: float = Field(
        description="The roofline with an empty cache (weights only)."
    )
    prefill_tokens_per_s: float = Field(
        description="Compute ceiling for prefill (2 FLOP per active parameter)."
    )
    decode_j_per_token_at_board_power: float = Field(
        description="Energy per token at the roofline speed and full board power of all GPUs."
    )


class ReportedComparison(_Frozen):
    """A measured task score next to its published value."""

    task: str
    metric: str
    reported: float
    measured: float | None = Field(description="The run's value of the same metric, where it has one.")
    measured_stderr: float | None = Field(
        default=None, description="lm-eval's standard error of `measured`, where it reported one."
    )
    delta: float | None = Field(description="measured - reported, as a fraction.")
    num_fewshot_reported: int
    num_fewshot_measured: int | None
    comparable: bool = Field(description="Same metric found and same shot count.")
    note: str | None = None
    source: str
    settings: str


class DecodeVsRoofline(_Frozen):
    """The concurrency-1 scenario's decode speed against the batch-1 roofline."""

    scenario: str
    context_tokens: int = Field(
        description="Input tokens plus half the output: the mean context while decoding."
    )
    measured_tokens_per_s: float | None = Field(description="1000 / median TPOT (ms).")
    roofline_tokens_per_s: float | None
    fraction_of_roofline: float | None
    reason: str | None = Field(default=None, description="Why a figure is null, where one is.")


class RecordAnalytics(_Frozen):
    """The ``analytics`` section of a run record."""

    version: int = ANALYTICS_VERSION
    architecture: ArchFacts | None = None
    architecture_reason: str | None = Field(
        default=None, description="Why architecture is null, where it is."
    )
    gpu: str | None = Field(default=None, description="Roofline table key of the GPU the run used.")
    roofline: GpuEstimate | None = Field(
        default=None, description="Capacity and roofline on the run's hardware."
    )
    roofline_reason: str | None = None
    decode: DecodeVsRoofline | None = None
    reported_vs_measured: dict[str, ReportedComparison] = Field(
        default_factory=dict, description="Task name -> measured against published."
    )
