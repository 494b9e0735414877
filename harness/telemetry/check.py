"""GPU energy check: a known load measured by the energy counter and by integrated power at once.

Runs on any NVIDIA machine with only PyTorch and nvidia-ml-py (no vLLM, no pydantic):

    python benchmarks/gpu_energy_check.py          # or: harness telemetry-check

What it does, on one GPU (``--device``, a CUDA ordinal): warm up bf16 matrix products, let the
GPU settle, measure idle power for ``--idle-s`` seconds, then run back-to-back ``--size`` ×
``--size`` bf16 matrix products for ``--duration-s`` seconds, with the harness's own sampler
running at its production rate. Both windows are measured twice: NVML's energy counter at the
edges, and the trapezoidal integral of the sampled power. It prints both energies, their ratio,
the sampler's achieved rate, and idle versus loaded power. Exit status: 0 when the two agree
within ``--tolerance`` (5 %), 1 when they do not, 2 when there is no GPU to check.

The defaults (5 s idle, 30 s load) take well under two minutes including start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.telemetry.nvml import GpuDevice, NvmlError, open_gpus
from harness.telemetry.sampler import (
    DEFAULT_INTERVAL_S,
    GpuSampler,
    Reading,
    counter_delta_mj,
    integrate_power_j,
)

MAX_TOTAL_S = 100.0  # idle + load; the rest of the two minutes is start-up and warm-up


class CheckError(RuntimeError):
    """The check cannot run here (no GPU, no CUDA PyTorch); the message says why."""


@dataclass
class WindowFigures:
    """One window (idle or load) measured both ways."""

    duration_s: float
    counter_j: float | None
    counter_reason: str | None
    integral_j: float | None
    mean_sampled_power_w: float | None
    peak_power_w: float | None
    samples: int

    @property
    def counter_power_w(self) -> float | None:
        return (
            self.counter_j / self.duration_s if self.counter_j is not None and self.duration_s > 0 else None
        )

    @property
    def integral_power_w(self) -> float | None:
        return (
            self.integral_j / self.duration_s if self.integral_j is not None and self.duration_s > 0 else None
        )

    @property
    def ratio(self) -> float | None:
        """Integral / counter."""
        if self.counter_j is None or self.integral_j is None or self.counter_j <= 0:
            return None
        return self.integral_j / self.counter_j


@dataclass
class CheckResult:
    gpu_name: str
    gpu_uuid: str
    gpu_index: int
    driver_version: str | None
    power_limit_w: float | None
    power_reading: str | None
    interval_s: float
    sample_rate_hz: float | None
    sampler_busy_frac: float | None
    idle: WindowFigures
    load: WindowFigures
    matmuls: int
    size: int
    tflops: float | None
    tolerance: float

    @property
    def ratio(self) -> float | None:
        return self.load.ratio

    @property
    def agrees(self) -> bool:
        return self.ratio is not None and abs(self.ratio - 1.0) <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["agrees"] = self.agrees
        for name in ("idle", "load"):
            w: WindowFigures = getattr(self, name)
            out[name].update(
                counter_power_w=w.counter_power_w, integral_power_w=w.integral_power_w, ratio=w.ratio
            )
        return out


def _window(sampler: GpuSampler, gpu: GpuDevice, t0: float, t1: float) -> WindowFigures:
    rows: list[Reading] = sampler.readings(gpu.index)
    counter = [(r.t_s, float(r.energy_mj)) for r in rows if r.energy_mj is not None]
    power = [(r.t_s, r.power_w) for r in rows if r.power_w is not None]
    if sampler.unsupported_reason(gpu.index, "energy_mj"):
        delta, why = None, sampler.unsupported_reason(gpu.index, "energy_mj")
    else:
        delta, why = counter_delta_mj(counter, t0, t1)
    inside = [p for t, p in power if t0 <= t <= t1]
    return WindowFigures(
        duration_s=t1 - t0,
        counter_j=delta / 1000.0 if delta is not None else None,
        counter_reason=why,
        integral_j=integrate_power_j(power, t0, t1),
        mean_sampled_power_w=sum(inside) / len(inside) if inside else None,
        peak_power_w=max(inside) if inside else None,
        samples=len(inside),
    )


def run_check(
    duration_s: float = 30.0,
    idle_s: float = 5.0,
    size: int = 8192,
    device: int = 0,
    interval_s: float = DEFAULT_INTERVAL_S,
    tolerance: float = 0.05,
    log: Callable[[str], None] = lambda _: None,
) -> CheckResult:
    """Run the check on CUDA device ``device``; raises :class:`CheckError` where it cannot run."""
    if idle_s + duration_s > MAX_TOTAL_S:
        raise CheckError(f"idle + load must stay within {MAX_TOTAL_S:g} s so the check fits in two minutes")
    gpus = open_gpus()
    if not gpus:
        raise CheckError(f"no NVIDIA GPU to check: {gpus.reason}")
    try:
        if device >= len(gpus):
            raise CheckError(f"device {device} not visible ({len(gpus)} GPU(s) visible)")
        gpu = gpus[device]
        # NVML numbers GPUs in PCI bus order; make CUDA agree so that `device` is the same GPU.
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        try:
            import torch
        except ImportError as exc:
            raise CheckError(f"PyTorch is needed for the GPU load: {exc}") from exc
        if not torch.cuda.is_available():
            raise CheckError(f"PyTorch {torch.__version__} sees no CUDA device (a CPU-only build?)")

        log(f"GPU {device}: {gpu.name} ({gpu.uuid}); warming up {size}x{size} bf16 matmuls")
        torch.cuda.set_device(device)
        a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        c = torch.empty(size, size, device="cuda", dtype=torch.bfloat16)
        torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        per_matmul_s = max((time.perf_counter() - t) / 10, 1e-6)
        batch = max(1, int(0.1 / per_matmul_s))  # synchronise about every 100 ms
        time.sleep(2.0)  # let power fall back to idle after the warm-up

        sampler = GpuSampler([gpu], interval_s=interval_s)
        sampler.start()
        try:
            log(f"measuring idle power for {idle_s:g} s")
            i0 = sampler.sample_now()[0].t_s
            time.sleep(idle_s)
            i1 = sampler.sample_now()[0].t_s
            log(f"running the load for {duration_s:g} s")
            l0 = sampler.sample_now()[0].t_s
            deadline = l0 + duration_s
            matmuls = 0
            while time.perf_counter() < deadline:
                for _ in range(batch):
                    torch.matmul(a, b, out=c)
                torch.cuda.synchronize()
                matmuls += batch
            l1 = sampler.sample_now()[0].t_s
        finally:
            sampler.stop()
        idle = _window(sampler, gpu, i0, i1)
        load = _window(sampler, gpu, l0, l1)
        try:
            limit: float | None = gpu.power_limit_w()
        except NvmlError:
            limit = None
        return CheckResult(
            gpu_name=gpu.name,
            gpu_uuid=gpu.uuid,
            gpu_index=device,
            driver_version=gpus.driver_version(),
            power_limit_w=limit,
            power_reading=gpu.power_reading,
            interval_s=interval_s,
            sample_rate_hz=sampler.achieved_rate_hz(),
            sampler_busy_frac=sampler.busy_fraction(),
            idle=idle,
            load=load,
            matmuls=matmuls,
            size=size,
            tflops=2.0 * size**3 * matmuls / load.duration_s / 1e12 if load.duration_s > 0 else None,
            tolerance=tolerance,
        )
    finally:
        gpus.close()


def _j(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.1f} J"


def _w(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.1f} W"


def format_result(r: CheckResult) -> str:
    """The human-readable report."""
    lines = [
        f"GPU {r.gpu_index}: {r.gpu_name} ({r.gpu_uuid}), driver {r.driver_version or 'n/a'}, "
        f"power limit {_w(r.power_limit_w)}, power reading: {r.power_reading or 'n/a'}",
    ]
    for label, w in (("idle", r.idle), ("load", r.load)):
        lines.append(
            f"{label:<4} {w.duration_s:6.2f} s: counter {_j(w.counter_j)} ({_w(w.counter_power_w)}), "
            f"integral {_j(w.integral_j)} ({_w(w.integral_power_w)}), "
            f"ratio {'n/a' if w.ratio is None else f'{w.ratio:.4f}'}, peak {_w(w.peak_power_w)}, {w.samples} samples"
            + (f" [counter: {w.counter_reason}]" if w.counter_reason else "")
        )
    lines.append(
        f"idle vs loaded power (counter): {_w(r.idle.counter_power_w)} -> {_w(r.load.counter_power_w)}; "
        f"load: {r.matmuls} matmuls of {r.size}x{r.size} bf16"
        + (f", {r.tflops:.0f} TFLOP/s" if r.tflops is not None else "")
    )
    rate = "n/a" if r.sample_rate_hz is None else f"{r.sample_rate_hz:.1f} Hz"
    busy = (
        "" if r.sampler_busy_frac is None else f", reading NVML {r.sampler_busy_frac * 100:.2f} % of the time"
    )
    lines.append(f"sampler: {rate} achieved (target {1 / r.interval_s:.0f} Hz){busy}")
    if r.ratio is None:
        lines.append("RESULT: no counter-vs-integral comparison (see the counter reason above)")
    else:
        verdict = "PASS" if r.agrees else "FAIL"
        lines.append(
            f"RESULT: integral/counter = {r.ratio:.4f} ({(r.ratio - 1) * 100:+.2f} %) on the load window: "
            f"{verdict} (tolerance {r.tolerance * 100:g} %)"
        )
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration-s", type=float, default=30.0, help="seconds of matmul load (default 30)")
    p.add_argument("--idle-s", type=float, default=5.0, help="seconds of idle measurement (default 5)")
    p.add_argument("--size", type=int, default=8192, help="matrix side (default 8192)")
    p.add_argument("--device", type=int, default=0, help="CUDA device ordinal (default 0)")
    p.add_argument(
        "--interval-s", type=float, default=DEFAULT_INTERVAL_S, help="sampler period (default 0.05)"
    )
    p.add_argument(
        "--tolerance", type=float, default=0.05, help="allowed |integral/counter - 1| (default 0.05)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the check for parsed arguments; returns the exit status."""
    try:
        result = run_check(
            duration_s=args.duration_s,
            idle_s=args.idle_s,
            size=args.size,
            device=args.device,
            interval_s=args.interval_s,
            tolerance=args.tolerance,
            log=lambda msg: print(msg, file=sys.stderr, flush=True),
        )
    except CheckError as exc:
        print(f"gpu energy check: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_json(), indent=2) if args.json else format_result(result))
    return 0 if result.agrees else 1


def register_cli(subparsers: Any) -> None:
    """``harness telemetry-check``."""
    p = subparsers.add_parser(
        "telemetry-check", help="check GPU energy: counter vs integrated power on a known bf16 load"
    )
    add_arguments(p)
    p.set_defaults(func=run_from_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
