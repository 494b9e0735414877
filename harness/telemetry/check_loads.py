"""GPU loads for ``harness telemetry-check``: the only module of the check that imports torch.

Each load runs for a wall-clock duration and synchronises often enough (every ~50 ms or every
step) that the GPU's work really ends when the function returns.
"""

from __future__ import annotations

import time
from typing import Any


class CheckError(RuntimeError):
    """The check cannot run here (no GPU, no CUDA PyTorch); the message says why."""


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise CheckError(f"PyTorch is needed for the GPU loads: {exc}") from exc
    if not torch.cuda.is_available():
        raise CheckError(f"PyTorch {torch.__version__} sees no CUDA device (a CPU-only build?)")
    return torch


def cuda_uuids(torch: Any) -> list[str]:
    """Every CUDA device's UUID as NVML writes it ('GPU-' + lower-case hex with dashes)."""
    out = []
    for i in range(torch.cuda.device_count()):
        raw = str(getattr(torch.cuda.get_device_properties(i), "uuid", "")).lower()
        out.append(raw if raw.startswith("gpu-") else f"gpu-{raw}")
    return out


class Loads:
    """Matrices on one CUDA device, and loads of known shape over them."""

    def __init__(self, torch: Any, device: int, size: int = 8192, gemv_rows: int = 16384) -> None:
        self.torch = torch
        torch.cuda.set_device(device)
        bf16 = torch.bfloat16
        self.a = torch.randn(size, size, device="cuda", dtype=bf16)
        self.b = torch.randn(size, size, device="cuda", dtype=bf16)
        self.c = torch.empty(size, size, device="cuda", dtype=bf16)
        # Decode-like: one token's activations against a weight matrix (memory-bound GEMV).
        self.w = torch.randn(gemv_rows, gemv_rows, device="cuda", dtype=bf16)
        self.x = torch.randn(gemv_rows, 1, device="cuda", dtype=bf16)
        self.y = torch.empty(gemv_rows, 1, device="cuda", dtype=bf16)
        # Mid: a batch of 256 tokens through the same weights (between the two).
        self.xm = torch.randn(gemv_rows, 256, device="cuda", dtype=bf16)
        self.ym = torch.empty(gemv_rows, 256, device="cuda", dtype=bf16)
        self.size = size
        self.matmul_s = self._time(lambda: torch.matmul(self.a, self.b, out=self.c))
        self.gemv_s = self._time(lambda: torch.matmul(self.w, self.x, out=self.y))
        self.mid_s = self._time(lambda: torch.matmul(self.w, self.xm, out=self.ym))

    def _time(self, op: Any, n: int = 10) -> float:
        op()
        self.torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            op()
        self.torch.cuda.synchronize()
        return max((time.perf_counter() - t) / n, 1e-6)

    def _run(self, op: Any, per_op_s: float, seconds: float, sync_s: float = 0.05) -> int:
        batch = max(1, int(sync_s / per_op_s))
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            for _ in range(batch):
                op()
            self.torch.cuda.synchronize()
            n += batch
        return n

    def matmul(self, seconds: float) -> int:
        """Compute-bound: back-to-back bf16 matrix products."""
        return self._run(lambda: self.torch.matmul(self.a, self.b, out=self.c), self.matmul_s, seconds)

    def decode(self, seconds: float) -> int:
        """Memory-bound: GEMV over a 512 MB weight matrix, as one decode step per layer reads it."""
        return self._run(lambda: self.torch.matmul(self.w, self.x, out=self.y), self.gemv_s, seconds)

    def mid(self, seconds: float) -> int:
        """Between the two: 256 tokens at once through the same weights."""
        return self._run(lambda: self.torch.matmul(self.w, self.xm, out=self.ym), self.mid_s, seconds)

    def enqueue_matmuls(self, seconds: float) -> None:
        """Queue about ``seconds`` of matmuls without waiting (the GPU stays busy while we poll NVML)."""
        for _ in range(max(1, int(seconds / self.matmul_s))):
            self.torch.matmul(self.a, self.b, out=self.c)

    def square_wave(self, period_s: float, duty: float, seconds: float) -> None:
        """Matmuls for ``duty`` of each period, idle for the rest, for ``seconds``."""
        end = time.perf_counter() + seconds
        while True:
            start = time.perf_counter()
            if start >= end:
                return
            busy_until = start + duty * period_s
            while time.perf_counter() < busy_until:
                self.torch.matmul(self.a, self.b, out=self.c)
                self.torch.cuda.synchronize()
            rest = start + period_s - time.perf_counter()
            if rest > 0:
                time.sleep(rest)

    def decode_steps(self, seconds: float) -> float:
        """Launch-bound decode loop (a GEMV and a sync per step): steps per second, CPU-sensitive."""
        deadline = time.perf_counter() + seconds
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() < deadline:
            self.torch.matmul(self.w, self.x, out=self.y)
            self.torch.cuda.synchronize()
            n += 1
        return n / (time.perf_counter() - t0)

    def sync(self) -> None:
        self.torch.cuda.synchronize()
