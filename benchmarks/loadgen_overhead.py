"""The load generator's own cost: CPU per streamed token, and throughput at concurrency 1 and 32.

Starts a vLLM CPU server with the default model (or uses --endpoint), runs two closed-loop
scenarios and prints, per scenario: output tokens/s, the generator's CPU microseconds per
streamed token, and the share of one core it used. The generator is not the bottleneck when
that share is far below 100 % and the engine, not the client, is saturated.

As in a real run, telemetry is on while it measures: the GPU/CPU sampler (attached to the
engine's process tree when it started the engine) and the engine's /metrics poller, each in a
thread of the same process, so the figures include their interference with the client
(``--no-telemetry`` measures the client alone).

    .venv/bin/python benchmarks/loadgen_overhead.py [--endpoint URL] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from harness.engine.poller import MetricsPoller
from harness.engine.vllm_server import VllmServer
from harness.loadgen.client import LoadShape, LoadSpec, run_load, token_counter, usable_token_ids
from harness.loadgen.metrics import aggregate
from harness.model.checkpoints import ensure_checkpoint
from harness.model.presets import get_preset
from harness.telemetry import TelemetrySession


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--endpoint", help="use this running server instead of starting one")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--input-tokens", type=int, default=128)
    ap.add_argument("--output-tokens", type=int, default=64)
    ap.add_argument("--no-telemetry", action="store_true", help="measure without the sampler and poller")
    args = ap.parse_args()

    preset = get_preset(args.model)
    path = str(ensure_checkpoint(preset.name)) if preset.source == "builtin" else (preset.local_path or "")
    server = None
    if args.endpoint:
        base_url, served = args.endpoint, preset.name
    else:
        log = Path(tempfile.mkdtemp(prefix="loadgen-bench-")) / "engine.log"
        server = VllmServer(path, preset.name, preset.engine.as_cli(), log_path=log, startup_timeout_s=900)
        print(f"starting vLLM ({preset.name}); log: {log}", flush=True)
        server.start()
        base_url, served = server.base_url, preset.name
        print(f"engine healthy after {server.startup_s:.0f} s", flush=True)
    telemetry = poller = None
    try:
        if not args.no_telemetry:
            telemetry = TelemetrySession(None, gpu_env=dict(os.environ), gpu_count=1)
            telemetry.start()
            telemetry.attach(server.pid if server is not None else None)
            poller = MetricsPoller(base_url)
            telemetry.kv_cache = poller
            poller.start()
            print("telemetry on: sampler and /metrics poller running", flush=True)
        ids = usable_token_ids(path)
        count = token_counter(path)
        print(
            f"\n{'concurrency':>11} {'requests':>8} {'out tok/s':>10} {'client µs/tok':>14} {'client core %':>14}"
        )
        for concurrency, n in ((1, 16), (32, 96)):
            load = LoadShape(
                input_tokens=args.input_tokens,
                output_tokens=args.output_tokens,
                num_requests=n,
                concurrency=concurrency,
                warmup_requests=min(concurrency, 4),
                client_workers=1,
            )
            spec = LoadSpec(load=load, seed=1234 + n)
            window = f"scenario:c{concurrency}"
            if telemetry is not None:
                telemetry.begin_window(window)
            try:
                res = run_load(spec, base_url, served, ids, count_tokens=count)
            finally:
                if telemetry is not None:
                    telemetry.end_window(window)
            agg = aggregate(res.requests, duration_s=res.duration_s)
            tokens = agg["total_output_tokens"]
            us_per_tok = res.client_cpu_s * 1e6 / tokens if tokens else float("nan")
            core_pct = 100.0 * res.client_cpu_s / agg["duration"] if agg["duration"] else float("nan")
            print(
                f"{concurrency:>11} {agg['completed']:>8} {agg['output_throughput']:>10.1f} "
                f"{us_per_tok:>14.0f} {core_pct:>13.1f}%",
                flush=True,
            )
        print(
            "\nclient µs/tok: the generator thread's CPU time (parsing SSE, timing) per streamed token;"
            "\nclient core %: that CPU time over the scenario's duration (100 % = one core saturated)."
        )
    finally:
        if poller is not None:
            poller.stop()
        if telemetry is not None:
            telemetry.stop()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
