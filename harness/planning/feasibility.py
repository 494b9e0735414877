"""Whether a planned run can work here: memory fit, download size and a time estimate.

Pure arithmetic on the architecture facts (`harness arch`) and the suite's work; reads no
weight bytes. What it cannot know it leaves None with the reason beside it.

Fit: vLLM starts only when the KV cache left after the weights holds one sequence of the
engine's context (``max_model_len``); the load scenarios run without preemption when it
holds every in-flight request's tokens. Both are checked against ``GPU memory x 0.9``.

Time (an estimate, said so wherever it is printed): engine start (a fixed allowance plus the
weights read at an assumed disk speed), then each load scenario at the batch-1 decode roofline
of `harness arch` for its in-flight requests, so real runs are slower; accuracy time is not
estimated (it depends on document counts lm-eval knows only once it loads the tasks) unless a
previous run of the same model and suite on this hardware gives the measured duration.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from harness.arch.gpus import GpuSpec
    from harness.model.facts import ArchFacts
    from harness.planning.cells import Cell
    from harness.record.run_record import RunRecord

# Assumptions of the time estimate, printed with it.
ENGINE_START_S = 60.0  # process start, CUDA graphs, warm-up: typical vLLM on one GPU
DISK_BYTES_PER_S = 1e9  # weights read from a local SSD
GPU_MEMORY_UTILIZATION = 0.9
TP_SIZES = (1, 2, 4, 8)


class Feasibility(BaseModel):
    """One cell: does it fit, what must be downloaded, how long it may take."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(description="What fit is checked against, e.g. '2 x H100-SXM (detected)'.")
    gpu: str | None = Field(description="GPU table key; None on a machine without a GPU.")
    gpus_needed: int = Field(description="GPUs the engine arguments ask for (tp x pp x dp).")
    gpus_available: int | None = Field(description="GPUs detected on this machine; None when not probed.")
    context_tokens: int = Field(description="The engine's context (max_model_len) the fit is checked at.")
    max_in_flight: int = Field(description="Most requests in flight in any load scenario.")
    weight_bytes: int | None = Field(description="Weights at the engine's dtype/quantization.")
    kv_bytes_per_sequence: int | None = Field(description="KV cache of one sequence at context_tokens.")
    kv_bytes_in_flight: int | None = Field(description="KV cache of max_in_flight requests' tokens.")
    memory_bytes: int | None = Field(description="Memory per GPU the fit is checked against.")
    fits: bool | None = Field(description="None: not known (no facts, or no GPU to check against).")
    reason: str = Field(description="Why it fits, does not, or cannot be told.")
    smallest_fit: str | None = Field(description="The smallest configuration that fits, where this does not.")
    download_bytes: int | None = Field(description="Weights to download (not in the Hugging Face cache).")
    download_note: str
    estimate_s: float | None = Field(description="Estimated wall time of the run (an estimate).")
    estimate_note: str


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def detect_gpus() -> list[str]:
    """NVML names of this machine's GPUs (empty without a driver or GPU)."""
    from harness.arch.cli import detected_gpu_names

    return detected_gpu_names()


def _pick_gpu(gpu: str | None, detected: list[str]) -> tuple[GpuSpec | None, str]:
    from harness.arch.gpus import get_gpu, match_nvml_name

    if gpu:
        return get_gpu(gpu), "as asked with --gpu"
    if detected:
        spec = match_nvml_name(detected[0])
        return spec, "detected" if spec else f"detected {detected[0]}, not in the GPU table"
    return None, "no GPU detected"


def _download(cell: Cell, weight_bytes: int | None) -> tuple[int | None, str]:
    m = cell.plan.model
    if cell.plan.endpoint:
        return None, "none: an external endpoint holds the weights"
    if m.source != "hub" or not m.hub_id:
        return None, "none: " + ("a local checkpoint" if m.source == "local" else "built on this machine")
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(m.hub_id, local_files_only=True)
        return None, "none: in the Hugging Face cache"
    except Exception:  # noqa: BLE001 - any miss means: to be downloaded
        pass
    gated = " (gated: set HF_TOKEN and accept the licence on the Hub first)" if m.gated else ""
    if weight_bytes is None:
        return None, f"{m.hub_id} is not in the Hugging Face cache; size unknown{gated}"
    return weight_bytes, f"about {_gib(weight_bytes)} of {m.hub_id} (weights at the engine dtype){gated}"


def _in_flight(cell: Cell) -> tuple[int, int]:
    """(most requests in flight, most tokens per request) over the load scenarios."""
    scen = cell.plan.scenarios
    flight = max((s.load.concurrency or 1 for s in scen), default=1)
    tokens = max((s.load.input_tokens + s.load.output_tokens for s in scen), default=0)
    return flight, tokens


def _perf_seconds(cell: Cell, facts: ArchFacts, gpu: GpuSpec, tp: int) -> float:
    """Load scenarios at the batch roofline: every step reads the weights and the batch's KV cache."""
    total = 0.0
    for p in cell.plan.scenarios:
        s = p.load
        c = max(1, s.concurrency or 1)
        rate = s.request_rate
        n = s.num_requests + s.warmup_requests
        kv = facts.kv_bytes_per_sequence(s.input_tokens + s.output_tokens)
        step_s = (facts.active_weight_bytes / tp + c * kv / tp) / gpu.bandwidth_bytes_per_s
        prefill_s = s.input_tokens * c / (tp * gpu.bf16_dense_flops_per_s / (2 * facts.active_params))
        closed = math.ceil(n / c) * (prefill_s + s.output_tokens * step_s)
        total += max(closed, n / rate) if rate else closed
    return total


def assess(cell: Cell, gpu: str | None = None, detected: list[str] | None = None) -> Feasibility:
    """Fit, download and time of one planned cell."""
    from harness.arch.report import preset_facts
    from harness.model.facts import ArchError

    plan = cell.plan
    detected = detect_gpus() if detected is None else detected
    spec, how = _pick_gpu(gpu, detected)
    need = plan.engine.gpu_count
    flight, tokens = _in_flight(cell)
    facts = None
    try:
        facts, _ = preset_facts(plan.model, plan.engine.model_dump(mode="json"))
    except (ArchError, OSError, ValueError, KeyError) as exc:
        why = f"architecture facts unavailable ({exc})"
    context = plan.engine.max_model_len or (facts.max_context_tokens if facts else 0) or tokens
    weights = facts.weight_bytes if facts else None
    per_seq = facts.kv_bytes_per_sequence(context) if facts else None
    in_flight = flight * facts.kv_bytes_per_sequence(tokens) if facts else None
    download, download_note = _download(cell, weights)
    available = len(detected) if not gpu else None
    common: dict[str, Any] = dict(
        gpus_needed=need,
        gpus_available=available,
        context_tokens=context,
        max_in_flight=flight,
        weight_bytes=weights,
        kv_bytes_per_sequence=per_seq,
        kv_bytes_in_flight=in_flight,
        download_bytes=download,
        download_note=download_note,
    )
    if plan.endpoint:
        return Feasibility(
            target="an external endpoint", gpu=None, memory_bytes=None, fits=None,
            reason="an external endpoint: its server decides what fits", smallest_fit=None,
            estimate_s=None, estimate_note="not estimated for an external endpoint", **common,
        )  # fmt: skip
    if spec is None:
        return Feasibility(
            target=f"this machine ({how})", gpu=None, memory_bytes=None, fits=None,
            reason=f"{how}: vLLM's CPU backend holds weights and KV cache in host memory; "
            + (f"weights {_gib(weights)}, KV cache {_gib(per_seq or 0)} per sequence" if weights else why),
            smallest_fit=None, estimate_s=None,
            estimate_note="no roofline for CPUs: the smoke suite takes minutes on a laptop",
            **common,
        )  # fmt: skip
    if facts is None:
        return Feasibility(
            target=f"{spec.key} ({how})", gpu=spec.key, memory_bytes=spec.memory_bytes, fits=None,
            reason=why, smallest_fit=None, estimate_s=None, estimate_note=why, **common,
        )  # fmt: skip
    tp = plan.engine.tensor_parallel_size * plan.engine.pipeline_parallel_size
    fits, reason = _fits(facts, spec, tp, context, per_seq or 0, in_flight or 0)
    smallest = (
        None
        if fits
        else _smallest(facts, spec, context, per_seq or 0, in_flight or 0, plan.engine.quantization)
    )
    if fits and available is not None and available < need:
        fits = False
        reason = f"the engine asks for {need} GPU(s) and this machine has {available}"
        smallest = _smallest(
            facts, spec, context, per_seq or 0, in_flight or 0, plan.engine.quantization, available
        )
    start = ENGINE_START_S + (weights or 0) / DISK_BYTES_PER_S
    perf = _perf_seconds(cell, facts, spec, tp)
    note = (
        f"estimate: engine start {_duration(start)} (60 s + weights at 1 GB/s) + load scenarios "
        f"{_duration(perf)} at the batch roofline (real runs are slower); accuracy "
        f"({len(plan.tasks)} task(s)) not included: it depends on their document counts"
    )
    target = f"{need} x {spec.key} ({how})"
    return Feasibility(
        target=target, gpu=spec.key, memory_bytes=spec.memory_bytes, fits=fits, reason=reason,
        smallest_fit=smallest, estimate_s=start + perf, estimate_note=note, **common,
    )  # fmt: skip


def _fits(
    facts: ArchFacts, gpu: GpuSpec, tp: int, context: int, per_seq: int, in_flight: int
) -> tuple[bool, str]:
    budget = gpu.memory_bytes * GPU_MEMORY_UTILIZATION
    weights = facts.weight_bytes / tp
    kv_one = per_seq / tp
    kv_all = in_flight / tp
    head = (
        f"per GPU (tp {tp}): weights {_gib(weights)} + KV {_gib(kv_one)} for one {context:,}-token sequence"
    )
    limit = f"{GPU_MEMORY_UTILIZATION:g} x {_gib(gpu.memory_bytes)} of {gpu.key}"
    if weights + kv_one > budget:
        return False, f"{head} exceed {limit}"
    if weights + kv_all > budget:
        return True, (
            f"{head} fit {limit}; the load scenarios' {_gib(kv_all)} of in-flight KV cache does not, so "
            "vLLM will queue or preempt requests at the highest load"
        )
    return True, f"{head} fit {limit}, with room for the load scenarios' in-flight KV ({_gib(kv_all)})"


def _smallest(
    facts: ArchFacts, gpu: GpuSpec, context: int, per_seq: int, in_flight: int,
    quantization: str | None, max_gpus: int | None = None,
) -> str | None:  # fmt: skip
    for tp in TP_SIZES:
        if max_gpus is not None and tp > max_gpus:
            break
        if _fits(facts, gpu, tp, context, per_seq, in_flight)[0]:
            return f"tensor_parallel_size {tp} on {tp} x {gpu.key} (engine: {{tensor_parallel_size: {tp}}})"
    for shorter in sorted({context // 2, context // 4, 4096, 2048}, reverse=True):
        one = per_seq * shorter // max(context, 1)
        if 0 < shorter < context and _fits(facts, gpu, 1, shorter, one, 0)[0]:
            return f"max_model_len {shorter} on 1 x {gpu.key} (engine: {{max_model_len: {shorter}}})"
    if quantization is None:
        limit = f"{max_gpus}" if max_gpus is not None else "8"
        return (
            f"none at this dtype on up to {limit} x {gpu.key}: a quantized variant (e.g. fp8 halves the "
            "weights) or a GPU with more memory"
        )
    return None


def assess_cells(cells: list[Cell], gpu: str | None = None) -> list[Feasibility]:
    """`assess` for every cell, probing the GPUs once."""
    detected = [] if gpu else detect_gpus()
    return [assess(c, gpu, detected) for c in cells]


def refusal(f: Feasibility) -> str | None:
    """The reason a run cannot work here (with the smallest fit), or None."""
    if f.fits is not False:
        return None
    return f"{f.reason}" + (f"; smallest that fits: {f.smallest_fit}" if f.smallest_fit else "")


def describe_assessment(f: Feasibility, previous: RunRecord | None = None) -> list[str]:
    """Lines for `harness plan` under a cell's description."""
    state = {True: "fits", False: "DOES NOT FIT", None: "unknown"}[f.fits]
    lines = [f"  fit:     {state} on {f.target}: {f.reason}"]
    if f.smallest_fit:
        lines.append(f"           smallest that fits: {f.smallest_fit}")
    lines.append(f"  download: {f.download_note}")
    time = f"~{_duration(f.estimate_s)}; " if f.estimate_s is not None else ""
    lines.append(f"  time:    {time}{f.estimate_note}")
    return lines
