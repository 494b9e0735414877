"""``harness telemetry-check``: prove the NVML energy method on the GPU at hand, in about 2 minutes.

Runs on any NVIDIA machine with only PyTorch and nvidia-ml-py (no vLLM, no pydantic, no network):

    harness telemetry-check [--json FILE]      # or: python benchmarks/gpu_energy_check.py

Steps (planned durations in :data:`PLAN_S`; about 2 minutes in all, 2.5 at the settling cap):

1. **set-up**: driver, power limit, persistence, MIG mode, which fields the GPU offers; torch's
   device UUID equals NVML's for the same ordinal (``CUDA_DEVICE_ORDER=PCI_BUS_ID``), and NVML
   lists this process on that GPU (the per-run identity check, :mod:`harness.telemetry.identity`).
2. **read latency**: p50/p99 of each field NVML is read for, over 2,000 calls.
3. **update periods**: a tight loop over the counter, instant and average power under load.
4. **settling**: 10 s of matmul, then the power fall-off until flat (capped at 30 s); then 5 s of
   idle, counter against integrated power.
5. **load levels**: decode-like GEMV, a mid-sized GEMM and a square matmul, each scored by the
   counter, integrated instant power and integrated average power; idle < decode < mid < matmul
   ≤ 1.05 × the power limit.
6. **square waves** at 70, 100 and 400 ms: the counter against duty × load + (1 − duty) × idle,
   and how far integrated 20 Hz power drifts from it (the part-time sampling effect).
7. **window length**: the counter's error against window length on the steady matmul series.
8. **sampler disturbance**: a launch-bound decode loop with the sampler off and on (8 emulated
   GPUs at 20 Hz).
9. **whole run**: counter against integral, a counter that never goes backwards, no read errors.

Each figure is printed with its threshold. Exit status: 0 all passed, 1 a figure failed, 2 no GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.telemetry.check_loads import CheckError, Loads, cuda_uuids, import_torch
from harness.telemetry.check_score import (
    Measured,
    Score,
    disturbance_scores,
    exit_status,
    format_scores,
    latency_scores,
    level_scores,
    measure,
    period_scores,
    settle_scores,
    settle_time_s,
    square_wave_scores,
    whole_run_scores,
    window_errors,
    window_length_scores,
)
from harness.telemetry.identity import check_identity
from harness.telemetry.nvml import GpuDevice, NvmlError, NvmlNotSupported, open_gpus
from harness.telemetry.sampler import GpuSampler

PLAN_S = {
    "set-up (CUDA context, allocations)": 5.0,
    "read latency (2,000 calls x 5 fields)": 1.0,
    "update periods (tight loop under load)": 2.0,
    "settling (10 s load, fall-off <= 30 s, 5 s idle)": 25.0,
    "load levels (3 x 8 s)": 26.0,
    "square waves (3 x 8 s)": 24.0,
    "sampler disturbance (2 x (4 s off + 4 s on))": 16.0,
}
SETTLE_LOAD_S = 10.0
SETTLE_CAP_S = 30.0
IDLE_S = 5.0
POLL_S = 1.5
LEVEL_S = 8.0
LEVEL_RAMP_S = 1.5  # skipped at the start of each level: the ramp and the 1 s average
WAVE_S = 8.0
DISTURB_S = 4.0
EMULATED_GPUS = 8


@dataclass
class CheckReport:
    facts: dict[str, Any]
    scores: list[Score]
    durations_s: dict[str, float] = field(default_factory=dict)

    @property
    def exit_status(self) -> int:
        return exit_status(self.scores)

    def to_json(self) -> dict[str, Any]:
        return {
            "facts": self.facts,
            "scores": [s.to_json() for s in self.scores],
            "durations_s": self.durations_s,
            "planned_s": PLAN_S,
            "exit_status": self.exit_status,
        }

    def text(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.facts.items()]
        lines.append(format_scores(self.scores))
        lines.append(
            "step durations: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.durations_s.items())
            + f"; total {sum(self.durations_s.values()):.1f} s"
        )
        return "\n".join(lines)


class _AveragePoller:
    """Reads NVML's 1 s average power at 20 Hz beside the sampler (which reads the instant field)."""

    def __init__(self, gpu: GpuDevice, interval_s: float = 0.05) -> None:
        self.gpu, self.interval_s = gpu, interval_s
        self.series: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="harness-gpu-check-avg", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(NvmlError):
                self.series.append((time.perf_counter(), self.gpu.average_power_w()))

    def __enter__(self) -> _AveragePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _poll(reads: dict[str, Callable[[], float]], seconds: float) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {k: [] for k in reads}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for name, read in reads.items():
            with contextlib.suppress(NvmlError):
                series[name].append((time.perf_counter(), float(read())))
    return series


def _facts(gpus: Any, gpu: GpuDevice, torch: Any, device: int) -> tuple[dict[str, Any], list[Score]]:
    def safe(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except NvmlNotSupported as exc:
            return f"not supported ({exc})"
        except NvmlError as exc:
            return f"error ({exc})"

    instant = safe(gpu.instant_power_w)
    facts = {
        "gpu": f"{gpu.name} ({gpu.uuid}), PCI {gpu.pci_bus_id}",
        "driver": gpus.driver_version(),
        "cuda_driver": gpus.cuda_driver_version(),
        "power_limit_w": safe(gpu.power_limit_w),
        "persistence_mode": safe(gpu.persistence_mode),
        "mig_mode": gpu.mig,
        "energy_counter_mj": safe(gpu.energy_mj),
        "instant_power_w": instant,
        "instant_power_scope": gpu.power_scope,
        "average_power_w": safe(gpu.average_power_w),
        "torch": torch.__version__,
    }
    torch_uuid = cuda_uuids(torch)[device] if device < torch.cuda.device_count() else None
    counter_ok = isinstance(facts["energy_counter_mj"], int)
    scores = [
        Score(
            "set-up",
            "torch device UUID == NVML UUID",
            torch_uuid,
            "",
            gpu.uuid.lower(),
            torch_uuid == gpu.uuid.lower(),
        ),
        _identity_score(gpus, gpu),
        Score("set-up", "MIG mode off", not gpu.mig, "", "MIG: no per-instance energy", not gpu.mig),
        Score("set-up", "energy counter readable", counter_ok, "", "required", counter_ok),
        Score(
            "set-up",
            "instant power field",
            isinstance(instant, float),
            "",
            "reported (else the 1 s average)",
            None,
        ),
        Score("set-up", "persistence mode", facts["persistence_mode"], "", "reported", None),
    ]
    return facts, scores


def _identity_score(gpus: Any, gpu: GpuDevice) -> Score:
    """What each run checks, here with this process as the engine: NVML lists it on its GPU."""
    check = check_identity([gpu.uuid], gpus.compute_pids(), [os.getpid()])
    return Score(
        "set-up",
        "per-run identity: NVML lists this process on the GPU by UUID",
        check.status if check.reason is None else f"{check.status}: {check.reason}",
        "",
        "verified (unverified in a container without the host's PID namespace)",
        {"verified": True, "mismatch": False}.get(check.status),
    )


def run_check(device: int = 0, log: Callable[[str], None] = lambda _: None) -> CheckReport:
    """Run every step on CUDA device ``device``; raises :class:`CheckError` where it cannot run."""
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA ordinals = NVML's PCI order
    gpus = open_gpus()
    if not gpus:
        raise CheckError(f"no NVIDIA GPU to check: {gpus.reason}")
    durations: dict[str, float] = {}
    scores: list[Score] = []
    try:
        if device >= len(gpus):
            raise CheckError(f"device {device} not visible ({len(gpus)} GPU(s) visible)")
        gpu = gpus[device]
        t = time.perf_counter()
        torch = import_torch()
        loads = Loads(torch, device)
        facts, setup = _facts(gpus, gpu, torch, device)
        scores += setup
        durations["set-up"] = time.perf_counter() - t
        log(f"{facts['gpu']}: set-up done")

        t = time.perf_counter()
        fields: dict[str, Callable[[], Any]] = {
            "energy counter": gpu.energy_mj,
            "instant power": gpu.instant_power_w,
            "average power": gpu.average_power_w,
            "memory": gpu.memory_used_bytes,
            "utilization": gpu.utilization_pct,
        }
        latencies = {}
        for name, fn in fields.items():
            try:
                latencies[name] = _timed(fn, 2000)
            except NvmlError:
                continue
        scores += latency_scores(latencies)
        durations["read latency"] = time.perf_counter() - t

        t = time.perf_counter()
        loads.enqueue_matmuls(POLL_S + 0.5)
        polled = _poll(
            {
                "energy counter": gpu.energy_mj,
                "instant power": gpu.instant_power_w,
                "average power": gpu.average_power_w,
            },
            POLL_S,
        )
        loads.sync()
        scores += period_scores(polled)
        durations["update periods"] = time.perf_counter() - t
        log("update periods measured")

        sampler = GpuSampler([gpu], flush_rows=0)  # the whole series in memory: no pyarrow needed
        sampler.start()
        with _AveragePoller(gpu) as avg:
            t = time.perf_counter()
            loads.matmul(SETTLE_LOAD_S)
            t_cool = sampler.sample_now()[0].t_s
            settle: float | None = None
            while time.perf_counter() - t_cool < SETTLE_CAP_S:
                time.sleep(0.5)
                settle = settle_time_s(_power(sampler), t_cool)
                if settle is not None:
                    break
            i0 = sampler.sample_now()[0].t_s
            time.sleep(IDLE_S)
            i1 = sampler.sample_now()[0].t_s
            idle = _measure(sampler, avg, i0, i1)
            scores += settle_scores(settle, idle)
            durations["settling"] = time.perf_counter() - t
            log(f"settled after {settle} s; idle {idle.counter_w} W")

            t = time.perf_counter()
            levels: dict[str, Measured] = {}
            steady: tuple[float, float] = (0.0, 0.0)
            for name, run in (("decode", loads.decode), ("mid", loads.mid), ("matmul", loads.matmul)):
                s0 = sampler.sample_now()[0].t_s
                run(LEVEL_S)
                s1 = sampler.sample_now()[0].t_s
                levels[name] = _measure(sampler, avg, s0 + LEVEL_RAMP_S, s1)
                steady = (s0 + LEVEL_RAMP_S, s1)
            limit = facts["power_limit_w"] if isinstance(facts["power_limit_w"], float) else None
            scores += level_scores(levels, idle.counter_w, limit)
            durations["load levels"] = time.perf_counter() - t
            log("load levels done")

            scores += window_length_scores(
                window_errors(_counter(sampler), steady[0], steady[1], [0.1, 0.25, 0.5, 1.0, 2.0, 4.0])
            )

            t = time.perf_counter()
            waves_from = sampler.sample_now()[0].t_s
            for period in (0.07, 0.1, 0.4):
                w0 = sampler.sample_now()[0].t_s
                loads.square_wave(period, 0.5, WAVE_S)
                w1 = sampler.sample_now()[0].t_s
                scores += square_wave_scores(
                    period, 0.5, _measure(sampler, avg, w0, w1), levels["matmul"].counter_w, idle.counter_w
                )
            waves_to = sampler.sample_now()[0].t_s
            durations["square waves"] = time.perf_counter() - t
            log("square waves done")
        sampler.stop()
        scores += whole_run_scores(
            _counter(sampler), _power(sampler), sampler.read_errors, exclude=(waves_from, waves_to)
        )

        t = time.perf_counter()
        emulated = [
            GpuDevice(i, gpu.nvml_index, gpu.handle, gpu.uuid, gpu.name) for i in range(EMULATED_GPUS)
        ]
        off, on, busy, rate = [], [], [], []
        for _ in range(2):
            off.append(loads.decode_steps(DISTURB_S))
            with GpuSampler(emulated, flush_rows=0) as s8:
                on.append(loads.decode_steps(DISTURB_S))
            busy.append(s8.busy_fraction() or 0.0)
            rate.append(s8.achieved_rate_hz() or 0.0)
        scores += disturbance_scores(sum(off) / 2, sum(on) / 2, sum(busy) / 2, min(rate))
        durations["sampler disturbance"] = time.perf_counter() - t
        return CheckReport(facts, scores, durations)
    finally:
        gpus.close()


def _counter(sampler: GpuSampler) -> list[tuple[float, float]]:
    return [
        (r.t_s, float(r.energy_mj))
        for r in sampler.readings(sampler.gpus[0].index)
        if r.energy_mj is not None
    ]


def _power(sampler: GpuSampler) -> list[tuple[float, float]]:
    return [(r.t_s, r.power_w) for r in sampler.readings(sampler.gpus[0].index) if r.power_w is not None]


def _measure(sampler: GpuSampler, avg: _AveragePoller, t0: float, t1: float) -> Measured:
    return measure(_counter(sampler), _power(sampler), list(avg.series), t0, t1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=int, default=0, help="CUDA device ordinal in PCI bus order (default 0)")
    p.add_argument("--json", metavar="FILE", type=Path, help="also write the report as JSON to FILE")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the check for parsed arguments; returns the exit status (2: cannot run here)."""
    try:
        report = run_check(device=args.device, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except CheckError as exc:
        print(f"telemetry check: {exc}", file=sys.stderr)
        if args.json:
            _write_json(args.json, {"exit_status": 2, "reason": str(exc), "planned_s": PLAN_S})
        return 2
    print(report.text())
    if args.json:
        _write_json(args.json, report.to_json())
    return report.exit_status


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def register_cli(subparsers: Any) -> None:
    """``harness telemetry-check``."""
    p = subparsers.add_parser(
        "telemetry-check",
        help="prove NVML energy on this GPU: latency, update periods, settling, loads, square waves (~2 min)",
    )
    add_arguments(p)
    p.set_defaults(func=run_from_args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
