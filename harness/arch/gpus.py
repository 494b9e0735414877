"""Peak figures of the GPUs the roofline knows, and lookup by NVML device name.

Figures are vendor datasheet peaks (NVIDIA product datasheets for H100, H200, A100, L40S,
L4, and the Ada architecture whitepaper for the RTX 4090): memory bandwidth, dense BF16
tensor-core throughput (the datasheets' headline numbers with 2:4 sparsity halved) and the
maximum board power. The A10G is an AWS-only part without an NVIDIA datasheet: its 24 GB
and 600 GB/s equal the A10's; its tensor throughput (about 70 TFLOPS dense) and 300 W
limit are as AWS and third-party comparisons report them, so treat those two as approximate.

Memory is the nominal capacity in GiB; NVML reports slightly less (driver reservation), and
callers with a measured total (``GpuInfo.memory_total_bytes``) should pass that instead.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

GIB = 1 << 30


class GpuSpec(BaseModel):
    """Peak figures of one GPU model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="Short name for --gpu, e.g. 'H100-SXM'.")
    name: str = Field(description="Marketing name.")
    patterns: tuple[str, ...] = Field(
        description="Case-insensitive regexes matched against the NVML device name."
    )
    memory_bytes: int
    bandwidth_bytes_per_s: float
    bf16_dense_flops_per_s: float = Field(description="Dense BF16 tensor-core peak, FLOP/s.")
    board_power_w: float = Field(description="Maximum board power (TDP/TGP), W.")
    source: str = ""

    @property
    def bf16_dense_tflops(self) -> float:
        return self.bf16_dense_flops_per_s / 1e12


def _gpu(
    key: str,
    name: str,
    patterns: tuple[str, ...],
    memory_gib: float,
    bandwidth_gb_s: float,
    tflops: float,
    power_w: float,
    source: str,
) -> GpuSpec:
    return GpuSpec(
        key=key,
        name=name,
        patterns=patterns,
        memory_bytes=int(memory_gib * GIB),
        bandwidth_bytes_per_s=bandwidth_gb_s * 1e9,
        bf16_dense_flops_per_s=tflops * 1e12,
        board_power_w=power_w,
        source=source,
    )


_DS = "NVIDIA datasheet"
# Order matters only for readability: the patterns are written to be mutually exclusive
# (the unit tests check each NVML name against the whole table).
GPUS: tuple[GpuSpec, ...] = (
    _gpu("H100-SXM", "H100 SXM5 80GB", (r"H100 80GB HBM3", r"H100.*SXM"), 80, 3350, 989.5, 700, _DS),
    _gpu("H100-PCIe", "H100 PCIe 80GB", (r"H100 PCIe",), 80, 2000, 756.5, 350, _DS),
    _gpu("H200", "H200 SXM 141GB", (r"\bH200\b(?!.*NVL)",), 141, 4800, 989.5, 700, _DS),
    _gpu("A100-SXM-80GB", "A100 SXM4 80GB", (r"A100-SXM4-80GB", r"A100.*SXM.*80GB"), 80, 2039, 312, 400, _DS),
    _gpu("A100-PCIe-80GB", "A100 PCIe 80GB", (r"A100 80GB PCIe", r"A100-PCIE-80GB"), 80, 1935, 312, 300, _DS),
    _gpu("A100-SXM-40GB", "A100 SXM4 40GB", (r"A100-SXM4-40GB", r"A100.*SXM.*40GB"), 40, 1555, 312, 400, _DS),
    _gpu("A100-PCIe-40GB", "A100 PCIe 40GB", (r"A100-PCIE-40GB", r"A100 40GB PCIe"), 40, 1555, 312, 250, _DS),
    _gpu("L40S", "L40S 48GB", (r"\bL40S\b",), 48, 864, 362.05, 350, _DS),
    _gpu("L4", "L4 24GB", (r"\bL4\b",), 24, 300, 121, 72, _DS),
    _gpu(
        "A10G",
        "A10G 24GB (AWS)",
        (r"\bA10G\b",),
        24,
        600,
        70,
        300,
        "memory and bandwidth as the A10 datasheet; compute and power as AWS/third parties report (approximate)",
    ),
    _gpu(
        "RTX-4090",
        "GeForce RTX 4090 24GB",
        (r"RTX 4090$",),
        24,
        1008,
        165.2,
        450,
        "NVIDIA Ada Lovelace architecture whitepaper (BF16 with FP32 accumulate)",
    ),
)


class UnknownGpuError(ValueError):
    """A --gpu name that is neither a table key nor an NVML name the table matches."""


def match_nvml_name(device_name: str) -> GpuSpec | None:
    """The table entry for an NVML device name (e.g. 'NVIDIA H100 80GB HBM3'), or None."""
    name = device_name.strip()
    for spec in GPUS:
        if any(re.search(p, name, re.IGNORECASE) for p in spec.patterns):
            return spec
    return None


def get_gpu(name: str) -> GpuSpec:
    """A table entry by key ('H100-SXM', case-insensitive) or by NVML device name."""
    for spec in GPUS:
        if spec.key.lower() == name.strip().lower():
            return spec
    found = match_nvml_name(name)
    if found is None:
        keys = ", ".join(g.key for g in GPUS)
        raise UnknownGpuError(f"no roofline entry for GPU {name!r}; known: {keys}")
    return found
