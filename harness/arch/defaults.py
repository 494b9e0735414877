"""The report's defaults, apart from the report so that `harness arch --help` can show them
without importing the report's pydantic models."""

from __future__ import annotations

DEFAULT_GPU_MEMORY_UTILIZATION = 0.92  # vLLM 0.32's default --gpu-memory-utilization (0.9 before)
DEFAULT_CONTEXT_TOKENS = 4096
