"""`harness arch MODEL`: architecture analytics and the batch-1 roofline, offline."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

# The GPU table, the report and the model facts (pydantic) load with the command, not its --help.
from harness.arch.defaults import DEFAULT_CONTEXT_TOKENS, DEFAULT_GPU_MEMORY_UTILIZATION
from harness.formatting import human_bytes, human_count

if TYPE_CHECKING:
    from harness.arch.gpus import GpuSpec
    from harness.arch.report import ArchReport
    from harness.model.facts import ArchFacts


def register_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "arch",
        help="architecture analytics: parameters, KV cache, sliding window, GPU fit and roofline",
        description=(
            "Parameters (total and active), weight and KV-cache bytes, the sliding-window bound, how much "
            "KV cache fits on a GPU, and the batch-1 decode roofline. Needs no network and no GPU."
        ),
    )
    p.add_argument("model", help="preset name or checkpoint directory")
    p.add_argument(
        "--gpu",
        action="append",
        help="table key (e.g. H100-SXM) or NVML device name; repeatable. Default: the detected GPU, else all",
    )
    p.add_argument(
        "--all-gpus", action="store_true", help="every GPU in the table, even when one is detected"
    )
    p.add_argument(
        "--context",
        type=int,
        default=DEFAULT_CONTEXT_TOKENS,
        help=f"context length in tokens for batch size and roofline (default {DEFAULT_CONTEXT_TOKENS})",
    )
    p.add_argument(
        "--tp", type=int, action="append", help="tensor-parallel size(s); default 1 and the preset's"
    )
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=DEFAULT_GPU_MEMORY_UTILIZATION,
        help=f"share of GPU memory the engine may use (default {DEFAULT_GPU_MEMORY_UTILIZATION}, vLLM's)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_arch)


def detected_gpu_names() -> list[str]:
    """NVML names of this machine's GPUs; empty where there is no driver or no GPU."""
    from harness.telemetry.nvml import open_gpus

    try:
        with open_gpus() as gpus:  # an empty set (with its reason) where there is no GPU
            return [str(d.name) for d in gpus]
    except Exception:  # noqa: BLE001 - a broken driver is the same as no GPU here
        return []


def _pick_gpus(args: argparse.Namespace) -> tuple[list[GpuSpec], str]:
    from harness.arch.gpus import GPUS, get_gpu, match_nvml_name

    if args.gpu:
        return [get_gpu(g) for g in args.gpu], "as asked"
    if not args.all_gpus:
        names = detected_gpu_names()
        specs = [s for s in (match_nvml_name(n) for n in names) if s is not None]
        if specs:
            return list(dict.fromkeys(specs)), f"detected: {names[0]}"
        if names:
            return list(GPUS), f"detected {names[0]}, which has no roofline entry; showing the whole table"
    return list(GPUS), "the whole table"


def _cmd_arch(args: argparse.Namespace) -> int:
    from harness.arch.gpus import UnknownGpuError
    from harness.arch.report import build_report
    from harness.console import consoles
    from harness.model.facts import ArchError
    from harness.model.presets import get_preset

    console, err_console = consoles()

    preset = get_preset(args.model)
    try:
        gpus, chosen = _pick_gpus(args)
        report = build_report(
            preset,
            gpus,
            context_tokens=args.context,
            tensor_parallel_sizes=args.tp,
            gpu_memory_utilization=args.gpu_memory_utilization,
        )
    except (ArchError, UnknownGpuError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return 0
    for line in render(report, chosen):
        console.print(line, highlight=False, soft_wrap=True)
    return 0


def _attention(f: ArchFacts) -> str:
    if f.attention == "MLA":
        return (
            f"MLA: {f.num_attention_heads} heads; caches a {f.kv_lora_rank}-dim latent + "
            f"{f.qk_rope_head_dim}-dim rotary key per layer"
        )
    if f.attention == "MHA":
        return f"MHA: {f.num_attention_heads} heads x {f.head_dim}"
    return f"{f.attention}: {f.num_attention_heads} query heads, {f.num_kv_heads} KV heads x {f.head_dim}"


def render(report: ArchReport, chosen: str = "") -> list[str]:
    """The human-readable report, one string per line (rich markup)."""
    f = report.facts
    quant = f" ({f.quantization})" if f.quantization else ""
    lines = [
        f"[bold]{report.preset}[/]  {report.source}  {f.architecture or f.model_type}  {f.dtype}{quant}",
        f"  config            {report.config_origin}",
    ]
    if f.moe:
        m = f.moe
        shared = f" + {m.shared_experts} shared" if m.shared_experts else ""
        lines.append(
            f"  parameters        {human_count(f.total_params)} total, {human_count(f.active_params)} active per token "
            f"(top-{m.experts_per_token} of {m.num_experts} experts{shared}, {m.moe_layers} MoE layers)"
        )
    else:
        lines.append(f"  parameters        {human_count(f.total_params)} total = active per token (dense)")
    lines += [
        f"  weights           {human_bytes(f.weight_bytes)} at {f.dtype}{quant}; {human_bytes(f.active_weight_bytes)} read per token",
        f"  attention         {_attention(f)}",
        f"  KV cache          {f.kv_bytes_per_token:,} B/token; full multi-head would be "
        f"{f.kv_bytes_per_token_mha:,} B/token ({f.kv_saving_factor:.1f}x)",
    ]
    if f.sliding_window:
        lines.append(
            f"  sliding window    {f.sliding_window:,} tokens on {f.windowed_layers}/{f.num_layers} layers: "
            f"the cache per sequence stops growing at {f.sliding_window:,} tokens"
        )
    else:
        lines.append("  sliding window    none: the cache grows with every token")
    cache = []
    for c in report.kv_per_sequence:
        label = f"{c.context_tokens:,}" + (" (max)" if c.context_tokens == f.max_context_tokens else "")
        text = f"{label}: {human_bytes(c.kv_bytes)}"
        if c.kv_bytes != c.kv_bytes_without_window:
            text += f" (without window {human_bytes(c.kv_bytes_without_window)})"
        cache.append(text)
    lines.append("  cache/sequence    " + " | ".join(cache))
    ctx = report.gpus[0].context_tokens if report.gpus else 0
    lines.append("")
    lines.append(
        f"GPUs ({chosen}); fit at {report.gpus[0].gpu_memory_utilization:g} of memory; context {ctx:,} tokens"
        if report.gpus
        else "no GPUs"
    )
    header = (
        "gpu", "tp", "mem GiB", "TB/s", "TFLOPS", "W", "KV tokens", f"batch@{ctx:,}",
        "decode tok/s (weights only)", f"decode tok/s @{ctx:,}", "prefill tok/s", "roofline J/token",
    )  # fmt: skip
    rows = [header]
    for g in report.gpus:
        fit = (f"{g.kv_tokens:,}", f"{g.max_batch:,}") if g.fits else ("does not fit", "-")
        rows.append(
            (
                g.gpu,
                str(g.tensor_parallel_size),
                f"{g.memory_bytes / (1 << 30):.0f}",
                f"{g.bandwidth_bytes_per_s / 1e12:.2f}",
                f"{g.bf16_dense_flops_per_s / 1e12:.0f}",
                f"{g.board_power_w:.0f}",
                *fit,
                f"{g.decode_tokens_per_s_weights_only:,.1f}",
                f"{g.decode_tokens_per_s:,.1f}",
                f"{g.prefill_tokens_per_s:,.0f}",
                f"{g.decode_j_per_token_at_board_power:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append(
            "  "
            + "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    lines.append(
        "  decode: bandwidth / (active weights + KV cache) per token at batch 1; prefill: dense BF16 peak / "
        "(2 x active params); roofline J/token: full board power at the roofline speed, a bound, not a "
        "measurement (measured J/token is on a run's page)"
    )
    lines += [f"  note: {n}" for n in report.notes]
    return lines
