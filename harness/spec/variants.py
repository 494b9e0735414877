"""Variants: one model served with a serving-time technique switched on or off.

A suite's ``variants:`` list names overlays on the engine: speculative decoding, prefix caching,
chunked prefill, the KV-cache dtype, quantization (with the alternative checkpoint it needs),
``max_num_seqs``, plus free ``extra_args`` and ``env``. Each (model, variant) is one run on its
own engine load; the variant named ``base`` (else the first) is the baseline the others are
compared with. The typed fields become vLLM CLI flags here and nowhere else, and the same flag
given again in ``extra_args`` is refused, naming the field that owns it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpeculativeSpec(_Spec):
    """vLLM's ``--speculative-config``: a drafter proposes ``num_speculative_tokens``, the target verifies."""

    method: Literal["ngram", "draft_model", "eagle", "eagle3", "mtp"] = Field(
        description="ngram: prompt lookup (no extra model); draft_model/eagle/eagle3: a small drafter; "
        "mtp: the model's own multi-token-prediction heads (DeepSeek)."
    )
    num_speculative_tokens: int = Field(ge=1, le=16, description="Tokens proposed per step (k).")
    prompt_lookup_min: int | None = Field(default=None, ge=1, description="ngram: shortest n-gram matched.")
    prompt_lookup_max: int | None = Field(default=None, ge=1, description="ngram: longest n-gram matched.")
    model: str | None = Field(
        default=None, description="draft_model/eagle/eagle3: the drafter's Hub id or directory."
    )

    @model_validator(mode="after")
    def _method_fields(self) -> SpeculativeSpec:
        if self.method == "ngram":
            if self.prompt_lookup_max is None:
                raise ValueError("ngram speculation needs `prompt_lookup_max`")
            if self.model is not None:
                raise ValueError("ngram speculation takes no `model`")
            if self.prompt_lookup_min is not None and self.prompt_lookup_min > self.prompt_lookup_max:
                raise ValueError("`prompt_lookup_min` exceeds `prompt_lookup_max`")
        elif self.method in ("draft_model", "eagle", "eagle3") and self.model is None:
            raise ValueError(f"{self.method} speculation needs the drafter's `model`")
        return self

    def config(self) -> dict[str, Any]:
        """The JSON object vLLM's ``--speculative-config`` takes."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


# Flags a typed field owns: the same flag in extra_args would silently fight it.
OWNED_FLAGS = {
    "speculative": ("--speculative-config", "--speculative_config"),
    "enable_prefix_caching": ("--enable-prefix-caching", "--no-enable-prefix-caching"),
    "enable_chunked_prefill": ("--enable-chunked-prefill", "--no-enable-chunked-prefill"),
    "kv_cache_dtype": ("--kv-cache-dtype",),
    "quantization": ("--quantization", "-q"),
    "max_num_seqs": ("--max-num-seqs",),
    "model": ("--model",),
}


class VariantSpec(_Spec):
    """One technique overlay on the engine (unset fields keep the engine's own default)."""

    name: str = Field(
        description="Variant name, unique in the suite; `base` is the baseline.",
        examples=["base", "ngram-k4"],
    )
    description: str = Field(default="", description="What the variant changes, for pages and tables.")
    speculative: SpeculativeSpec | None = Field(default=None, description="Speculative decoding.")
    enable_prefix_caching: bool | None = Field(default=None, description="Automatic prefix caching on/off.")
    enable_chunked_prefill: bool | None = Field(default=None, description="Chunked prefill on/off.")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16", "float16"] | None = Field(
        default=None, description="KV-cache element type (fp8 holds about twice the tokens of bf16)."
    )
    quantization: str | None = Field(
        default=None, description="vLLM quantization method (awq, gptq, fp8, ...).", examples=["awq", "fp8"]
    )
    model: str | None = Field(
        default=None,
        description="Checkpoint to load instead of the preset's (Hub id or directory), e.g. the AWQ or FP8 "
        "build that a quantization variant needs. The model keeps its preset name and architecture.",
        examples=["TheBloke/Mistral-7B-v0.1-AWQ"],
    )
    max_num_seqs: int | None = Field(default=None, ge=1, description="Most sequences the engine batches.")
    extra_args: list[str] = Field(default_factory=list, description="Further vLLM server CLI arguments.")
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables for the engine process."
    )

    @field_validator("extra_args")
    @classmethod
    def _no_owned_flags(cls, value: list[str]) -> list[str]:
        for arg in value:
            flag = arg.split("=", 1)[0]
            for owner, flags in OWNED_FLAGS.items():
                if flag in flags:
                    raise ValueError(f"{flag} is set by the typed field `{owner}`; use that field instead")
        return value

    def cli_args(self) -> list[str]:
        """The vLLM server flags of this overlay, typed fields first (quantization and model excepted:
        they change the engine's own arguments, see :func:`apply_variant`)."""
        args: list[str] = []
        if self.speculative is not None:
            args += [
                "--speculative-config",
                json.dumps(self.speculative.config(), sort_keys=True, separators=(",", ":")),
            ]
        if self.enable_prefix_caching is not None:
            args.append(
                "--enable-prefix-caching" if self.enable_prefix_caching else "--no-enable-prefix-caching"
            )
        if self.enable_chunked_prefill is not None:
            args.append(
                "--enable-chunked-prefill" if self.enable_chunked_prefill else "--no-enable-chunked-prefill"
            )
        if self.kv_cache_dtype is not None:
            args += ["--kv-cache-dtype", self.kv_cache_dtype]
        if self.max_num_seqs is not None:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        return args + list(self.extra_args)

    def changes(self) -> list[str]:
        """Short human-readable list of what the overlay changes (for `harness plan` and pages)."""
        out = []
        if self.speculative is not None:
            s = self.speculative
            how = (
                f"lookup {s.prompt_lookup_min or 1}-{s.prompt_lookup_max}" if s.method == "ngram" else s.model
            )
            out.append(f"speculative {s.method} k={s.num_speculative_tokens} ({how})")
        for field, on, off in (
            ("enable_prefix_caching", "prefix caching on", "prefix caching off"),
            ("enable_chunked_prefill", "chunked prefill on", "chunked prefill off"),
        ):
            v = getattr(self, field)
            if v is not None:
                out.append(on if v else off)
        if self.kv_cache_dtype is not None:
            out.append(f"KV cache {self.kv_cache_dtype}")
        if self.quantization is not None:
            out.append(f"quantization {self.quantization}")
        if self.model is not None:
            out.append(f"checkpoint {self.model}")
        if self.max_num_seqs is not None:
            out.append(f"max {self.max_num_seqs} sequences")
        if self.extra_args:
            out.append(" ".join(self.extra_args))
        if self.env:
            out.append(" ".join(f"{k}={v}" for k, v in sorted(self.env.items())))
        return out or ["engine defaults"]


def check_variants(variants: list[VariantSpec]) -> list[VariantSpec]:
    """Unique names; the suite validator calls this."""
    names = [v.name for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate variant names: {', '.join(dupes)}")
    return variants


def baseline_name(variants: list[VariantSpec]) -> str | None:
    """The variant the others are compared with: `base` if present, else the first."""
    if not variants:
        return None
    return "base" if any(v.name == "base" for v in variants) else variants[0].name
