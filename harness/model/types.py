"""What a model is, as the rest of the harness sees it: engine arguments and the preset type.

Kept apart from the preset table (:mod:`harness.model.presets`) and the sources that build
presets (:mod:`harness.model.hub`, local folders) so those import this and not each other.
"""

from __future__ import annotations

from typing import Literal

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
    "--revision": "revision",
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
    revision: str | None = Field(
        default=None,
        description="Hub commit, tag or branch to load (vLLM's --revision); unpinned: the latest.",
    )
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
        if self.revision:
            args += ["--revision", self.revision]
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
    random_weights: bool = Field(
        default=False,
        description="Weights are random (a miniature built to exercise a code path): its accuracy means "
        "nothing, so leaderboards and decisions label it and never rank it.",
    )


# The efficiency features a preset can declare (shown by `harness models`, used by the pages).
GQA, SWA, MOE, MLA, MHA = (
    "grouped-query attention",
    "sliding-window attention",
    "mixture of experts",
    "multi-head latent attention",
    "multi-head attention",
)


class UnknownModelError(ValueError):
    """A model name that is neither a preset nor a checkpoint directory."""
