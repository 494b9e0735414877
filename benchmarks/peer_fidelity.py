"""The harness's load generator against ``vllm bench serve`` on one server, side by side.

Starts one vLLM CPU server (smollm2-135m, as the integration tests do) or uses --endpoint,
then runs each workload with both tools, alternating, over several repeats: each repeat draws
fresh prompts (a new seed, shared by both tools so that their open-loop arrival schedules are
identical), so no run hits another's prefix cache. Neither tool warms up inside a run (the
server is warmed once at the start). Prints per-repeat figures and the pooled table with the
harness/vLLM ratios, each ratio's 95 % interval from the repeats' scatter (Welch on log figures)
and issue 9's tolerances (output tok/s ±3 %, the latencies ±5 %): ``yes`` when the interval lies
inside the tolerance, ``NO`` when wholly outside, ``inconclusive`` when the repeats scatter too much
for either (a single vLLM repeat on a loaded 2-core machine scatters by ±10 % or more).

    flock /tmp/harness-engine.lock .venv/bin/python benchmarks/peer_fidelity.py \\
        [--endpoint URL] [--num-requests 24] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness.engine.vllm_bench import run_bench_serve
from harness.engine.vllm_server import VllmServer
from harness.loadgen.client import LoadShape, LoadSpec, run_load, token_counter, usable_token_ids
from harness.loadgen.metrics import aggregate
from harness.loadgen.peer import COMPARED, Run, pooled, ratios, run_from_harness, run_from_vllm, table
from harness.loadgen.peer_command import vllm_bench_args
from harness.model.checkpoints import ensure_checkpoint

SERVER_ARGS = ["--dtype", "float32", "--max-model-len", "2048", "--enforce-eager"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--endpoint", help="use this running server (serving smollm2-135m) instead of starting one"
    )
    ap.add_argument("--input-tokens", type=int, default=128)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--num-requests", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--concurrencies",
        default="2,8",
        help="closed-loop concurrencies, comma-separated (dividing --num-requests)",
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="Poisson arrival rate, requests/s (below the server's capacity)",
    )
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument(
        "--client-workers",
        type=int,
        default=1,
        help="the harness's load generator processes (docs/timing.md)",
    )
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()

    path = str(ensure_checkpoint("smollm2-135m"))
    served = "smollm2-135m"
    server = None
    if args.endpoint:
        base_url = args.endpoint
    else:
        log = Path(tempfile.mkdtemp(prefix="peer-fidelity-")) / "engine.log"
        server = VllmServer(path, served, SERVER_ARGS, log_path=log, startup_timeout_s=900, seed=1234)
        print(f"starting vLLM ({served}); log: {log}", flush=True)
        server.start()
        base_url = server.base_url
        print(f"engine healthy after {server.startup_s:.0f} s", flush=True)
    try:
        workloads = [(f"closed c={c}", int(c), None) for c in args.concurrencies.split(",")]
        workloads.append((f"Poisson {args.rate:g} req/s", None, args.rate))
        report = compare(base_url, served, path, workloads, args)
    finally:
        if server is not None:
            server.stop()
    print("\n" + table([(w, h, v) for w, h, v, _, _ in report], [(hr, vr) for _, _, _, hr, vr in report]))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {"workload": w, "harness": h, "vllm": v, "harness_repeats": hr, "vllm_repeats": vr}
                    for w, h, v, hr, vr in report
                ],
                indent=1,
            )
        )


def compare(
    base_url: str,
    served: str,
    tokenizer: str,
    workloads: list[tuple[str, int | None, float | None]],
    args: argparse.Namespace,
) -> list[tuple[str, dict[str, float], dict[str, float], list[dict[str, float]], list[dict[str, float]]]]:
    token_ids = usable_token_ids(tokenizer)
    count = token_counter(tokenizer)
    # Warm the server once (compilation, allocator) so that neither tool pays for it in a run.
    warm = LoadSpec(
        load=LoadShape(
            input_tokens=args.input_tokens,
            output_tokens=args.output_tokens,
            num_requests=8,
            concurrency=8,
            warmup_requests=0,
            client_workers=1,
        ),
        seed=1,
    )
    run_load(warm, base_url, served, token_ids, count_tokens=count)
    report = []
    for w_index, (name, concurrency, rate) in enumerate(workloads):
        runs: dict[str, list[Run]] = {"harness": [], "vllm": []}
        for rep in range(args.repeats):
            seed = args.seed + 100 * w_index + rep
            load = LoadShape(
                input_tokens=args.input_tokens,
                output_tokens=args.output_tokens,
                num_requests=args.num_requests,
                concurrency=concurrency,
                request_rate=rate,
                warmup_requests=0,
                client_workers=args.client_workers,
            )
            spec = LoadSpec(load=load, seed=seed)
            # Alternate which tool goes first, so that drift of the machine does not favour one.
            order = ("vllm", "harness") if rep % 2 == 0 else ("harness", "vllm")
            for tool in order:
                t0 = time.monotonic()
                if tool == "vllm":
                    bench = vllm_bench_args(spec, base_url, served, tokenizer)
                    result = run_bench_serve([*bench, "--ready-check-timeout-sec", "0", "--save-detailed"])
                    run = run_from_vllm(result)
                else:
                    res = run_load(
                        spec,
                        base_url,
                        served,
                        token_ids,
                        count_tokens=count,
                    )
                    agg = aggregate(res.requests, duration_s=res.duration_s)
                    run = run_from_harness(res.requests, agg["duration"])
                runs[tool].append(run)
                fig = pooled([run])
                print(
                    f"{name:>18} rep {rep} {tool:>7}: "
                    + ", ".join(f"{k} {fig[k]:.2f}" for k, _ in COMPARED)
                    + f", failed {fig['failed']:.0f} ({time.monotonic() - t0:.0f} s)",
                    flush=True,
                )
        h, v = pooled(runs["harness"]), pooled(runs["vllm"])
        print(
            f"{name:>18} pooled ratios: " + ", ".join(f"{k} {x:.3f}" for k, x in ratios(h, v).items()),
            flush=True,
        )
        report.append(
            (name, h, v, [pooled([r]) for r in runs["harness"]], [pooled([r]) for r in runs["vllm"]])
        )
    return report


if __name__ == "__main__":
    main()
