"""Client timing against ground truth: the harness and ``vllm bench serve`` on the truth server.

Starts ``tests/truthserver.py`` (chunks leave at scheduled times; it records when each really
left, on the host's monotonic clock), then at each concurrency runs every client in a child
process of its own on the same closed-loop workload and compares what each reports with what
the server did. Per load and client it prints:

* true vs reported output tok/s (true: the measured requests' tokens over first request read to
  last chunk sent);
* ITL p50 / p99 error: the client's percentile minus the true one (ms);
* bunched: share of the client's ITLs below half the schedule's smallest gap (the truth's own
  share is printed as the ``truth`` row: a server that fell behind bunches too);
* TTFT error, mean and p99: the client's minus the server's (request read to first chunk sent).
  Distribution-level, not per request: ``vllm bench serve`` keeps no request ids;
* client CPU µs per token: CPU of the client's process(es) while its benchmark function ran,
  over the tokens received; imports and worker start-up excluded (the harness workers' own
  start-up is printed apart as ``start s``);
* the harness's own verdict: workers, loop-lag p99 and whether it flagged itself client-bound.

Figures from a shared, busy machine carry its noise; run it under the engine lock so no vLLM
competes for the cores:

    flock /tmp/harness-engine.lock .venv/bin/python benchmarks/timing_truth.py \\
        [--concurrency 4,16,64,128] [--output-tokens 64] [--seconds 6] [--clients harness1,harness,vllm]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_harness(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run the harness load generator once; its per-request figures and CPU."""
    from harness.loadgen.client import LoadShape, LoadSpec, run_load

    load = LoadShape(
        input_tokens=cfg["input_tokens"],
        output_tokens=cfg["output_tokens"],
        num_requests=cfg["num_requests"],
        concurrency=cfg["concurrency"],
        warmup_requests=cfg["warmup"],
        client_workers=cfg["workers"],
    )
    spec = LoadSpec(load=load, seed=cfg["seed"], client_uvloop=cfg["uvloop"])
    ids = list(range(1000, 5000))
    t0, cpu0, ch0 = time.monotonic(), time.process_time(), _children_cpu()
    res = run_load(spec, cfg["url"], "truth", ids)
    cpu_all = time.process_time() - cpu0 + _children_cpu() - ch0
    ok = [r for r in res.requests if r.ok]
    h = res.health
    assert h is not None
    return {
        "window": [t0, time.monotonic()],
        "ttft_ms": [1000 * (r.first_token_s - r.send_s) for r in ok if r.first_token_s is not None],
        "itl_ms": [1000 * g for r in ok for g in r.itl_s],
        "tokens": sum(r.output_tokens for r in ok),
        "completed": len(ok),
        "duration_s": res.duration_s,
        "cpu_s": res.client_cpu_s,  # the measured phase: workers from the origin, or the loop thread
        "cpu_all_s": cpu_all,  # the whole call, children's start-up and imports included
        "workers": h.workers,
        "lag_p99_ms": h.lag_p99_ms,
        "busy": h.busy_share_max,
        "client_bound": h.client_bound,
    }


def child_vllm(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run ``vllm bench serve`` in this process (the project's version patch), timing its benchmark()."""
    from harness.engine.vllm_bench import _patch_version_lookup
    from harness.loadgen.client import LoadShape, LoadSpec
    from harness.loadgen.peer_command import vllm_bench_args

    _patch_version_lookup()
    import vllm.benchmarks.serve as serve
    from vllm.entrypoints.cli.main import main as vllm_main

    load = LoadShape(
        input_tokens=cfg["input_tokens"],
        output_tokens=cfg["output_tokens"],
        num_requests=cfg["num_requests"],
        concurrency=cfg["concurrency"],
        warmup_requests=cfg["warmup"],
        client_workers=1,
    )
    spec = LoadSpec(load=load, seed=cfg["seed"])
    real = serve.benchmark
    box: dict[str, float] = {}

    async def timed(*a: Any, **k: Any) -> Any:
        box["cpu0"] = time.process_time()
        try:
            return await real(*a, **k)
        finally:
            box["cpu1"] = time.process_time()

    serve.benchmark = timed  # main_async looks the name up at call time
    out = Path(tempfile.mkdtemp(prefix="truth-vllm-"))
    args = vllm_bench_args(spec, cfg["url"], "truth", cfg["tokenizer"])
    sys.argv = ["vllm", "bench", "serve", *args, "--ready-check-timeout-sec", "0", "--save-result"]
    sys.argv += ["--save-detailed", "--result-dir", str(out), "--result-filename", "r.json", "--disable-tqdm"]
    t0 = time.monotonic()
    vllm_main()
    t1 = time.monotonic()
    r = json.loads((out / "r.json").read_text())
    ok = [i for i, e in enumerate(r["errors"]) if not e]
    return {
        "window": [t0, t1],
        "ttft_ms": [1000 * r["ttfts"][i] for i in ok],
        "itl_ms": [1000 * g for i in ok for g in r["itls"][i]],
        "tokens": int(sum(r["output_lens"][i] for i in ok)),
        "completed": r["completed"],
        "duration_s": r["duration"],
        "reported_tok_s": r["output_throughput"],
        "cpu_s": box["cpu1"] - box["cpu0"],
        "cpu_all_s": None,
        "workers": 1,
        "lag_p99_ms": None,
        "busy": None,
        "client_bound": None,
    }


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def truth_rows(truth_dir: Path, window: list[float], n: int) -> list[dict[str, Any]]:
    """The last ``n`` requests the server read inside the client's window (warm-ups come first)."""
    from tests.truthserver import read_truth

    rows = [r for r in read_truth(truth_dir) if window[0] <= r["recv_s"] <= window[1]]
    return rows[-n:]


def compare(run: dict[str, Any], truth: list[dict[str, Any]], min_gap_ms: float) -> dict[str, Any]:
    true_ttft = np.array([1000 * (r["sent_s"][0] - r["recv_s"]) for r in truth])
    true_itl = np.array([1000 * g for r in truth for g in np.diff(r["sent_s"])])
    true_tok = sum(len(r["sent_s"]) for r in truth)
    span = max(r["sent_s"][-1] for r in truth) - min(r["recv_s"] for r in truth)
    ttft, itl = np.array(run["ttft_ms"]), np.array(run["itl_ms"])
    reported = run.get("reported_tok_s") or run["tokens"] / run["duration_s"]
    return {
        "true_tok_s": true_tok / span,
        "tok_s": reported,
        "itl_p50_err": float(np.median(itl) - np.median(true_itl)),
        "itl_p99_err": float(np.percentile(itl, 99) - np.percentile(true_itl, 99)),
        "bunched": float(np.mean(itl < 0.5 * min_gap_ms)),
        "true_bunched": float(np.mean(true_itl < 0.5 * min_gap_ms)),
        "ttft_mean_err": float(ttft.mean() - true_ttft.mean()),
        "ttft_p99_err": float(np.percentile(ttft, 99) - np.percentile(true_ttft, 99)),
        "us_per_tok": 1e6 * run["cpu_s"] / run["tokens"] if run["tokens"] else float("nan"),
        "true_itl_p99": float(np.percentile(true_itl, 99)),
        "buffered": sum(r["buffered"] for r in truth),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", default="4,16,64,128")
    ap.add_argument("--input-tokens", type=int, default=16)
    ap.add_argument("--output-tokens", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=6.0, help="target length of each run")
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--ttft-jitter-ms", type=float, default=5.0)
    ap.add_argument("--itl-ms", type=float, default=10.0)
    ap.add_argument("--itl-jitter-ms", type=float, default=2.0)
    ap.add_argument("--server-processes", type=int, default=1)
    ap.add_argument(
        "--clients",
        default="harness1,harness,vllm",
        help="harness1 (one loop), harness (workers sized from the warm-up), harnessN (N workers), "
        "harness-uv (uvloop, automatic workers), vllm",
    )
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()
    if args.child:
        cfg = json.loads(args.child)
        out = child_vllm(cfg) if cfg["tool"] == "vllm" else child_harness(cfg)
        print("RESULT " + json.dumps(out))
        return

    from harness.model.checkpoints import ensure_checkpoint

    tokenizer = str(ensure_checkpoint("smollm2-135m"))
    port = free_port()
    truth_dir = Path(tempfile.mkdtemp(prefix="truth-"))
    server_cmd = [
        sys.executable,
        "-m",
        "tests.truthserver",
        "--port",
        str(port),
        "--truth-dir",
        str(truth_dir),
    ]
    server_cmd += ["--ttft-ms", str(args.ttft_ms), "--ttft-jitter-ms", str(args.ttft_jitter_ms)]
    server_cmd += ["--itl-ms", str(args.itl_ms), "--itl-jitter-ms", str(args.itl_jitter_ms)]
    server_cmd += ["--processes", str(args.server_processes)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen(server_cmd, env=env, cwd=ROOT)
    min_gap = args.itl_ms - args.itl_jitter_ms
    per_request_s = (args.ttft_ms + args.itl_ms * (args.output_tokens - 1)) / 1000.0
    rows: list[dict[str, Any]] = []
    try:
        time.sleep(1.0)
        print(
            f"truth server: TTFT {args.ttft_ms:g}±{args.ttft_jitter_ms:g} ms, ITL {args.itl_ms:g}±"
            f"{args.itl_jitter_ms:g} ms (uniform; bunched: ITL < {0.5 * min_gap:g} ms), "
            f"{args.output_tokens} tokens/request, {args.server_processes} process(es)",
            flush=True,
        )
        head = (
            f"{'c':>4} {'client':>9} {'wk':>2} {'true tok/s':>10} {'tok/s':>8} {'ITL p50 err':>11} "
            f"{'ITL p99 err':>11} {'bunched':>8} {'TTFT mean err':>13} {'TTFT p99 err':>12} "
            f"{'us/tok':>7} {'lag p99':>7} {'flag':>6}"
        )
        print(head, flush=True)
        for c in [int(x) for x in args.concurrency.split(",")]:
            n = max(2 * c, int(round(args.seconds * c / per_request_s)))
            for i, tool in enumerate(args.clients.split(",")):
                workers: int | None
                if tool == "harness1":
                    workers = 1
                elif tool in ("harness", "harness-uv"):
                    workers = None
                elif tool.startswith("harness"):
                    workers = int(tool.removeprefix("harness"))
                else:
                    workers = None
                cfg = {
                    "tool": "vllm" if tool == "vllm" else "harness",
                    "url": f"http://127.0.0.1:{port}",
                    "tokenizer": tokenizer,
                    "input_tokens": args.input_tokens,
                    "output_tokens": args.output_tokens,
                    "num_requests": n,
                    "concurrency": c,
                    "warmup": min(c, 8),
                    "seed": 100 + c + i,
                    "workers": workers,
                    "uvloop": tool == "harness-uv",
                }
                p = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(cfg)],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=900,
                    check=False,
                )
                line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
                if p.returncode != 0 or line is None:
                    print(f"{c:>4} {tool:>9} failed: {(p.stdout + p.stderr)[-1500:]}", flush=True)
                    continue
                run = json.loads(line.removeprefix("RESULT "))
                time.sleep(0.3)  # the server's last line is written after [DONE]
                fig = compare(run, truth_rows(truth_dir, run["window"], n), min_gap)
                flag = "bound" if run["client_bound"] else ("ok" if run["lag_p99_ms"] is not None else "-")
                lag = f"{run['lag_p99_ms']:.2f}" if run["lag_p99_ms"] is not None else "-"
                print(
                    f"{c:>4} {tool:>9} {run['workers']:>2} {fig['true_tok_s']:>10.0f} {fig['tok_s']:>8.0f} "
                    f"{fig['itl_p50_err']:>11.3f} {fig['itl_p99_err']:>11.3f} {fig['bunched']:>8.2%} "
                    f"{fig['ttft_mean_err']:>13.3f} {fig['ttft_p99_err']:>12.3f} {fig['us_per_tok']:>7.1f} "
                    f"{lag:>7} {flag:>6}   (truth bunched {fig['true_bunched']:.2%}, "
                    f"true ITL p99 {fig['true_itl_p99']:.2f} ms, buffered {fig['buffered']})",
                    flush=True,
                )
                rows.append({"concurrency": c, "client": tool, "requests": n, **fig, **run})
    finally:
        server.terminate()
        server.wait(timeout=10)
    if args.json:
        for r in rows:
            r.pop("ttft_ms", None)
            r.pop("itl_ms", None)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
