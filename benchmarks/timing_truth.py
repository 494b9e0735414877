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
* TTFT error, mean and p99: the client's minus the server's (request arrived, by the kernel's
  receive timestamp, to first chunk sent).
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
    spec = LoadSpec(load=load, seed=cfg["seed"], client_uvloop=cfg["uvloop"], client_http=cfg["http"])
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
        "event_loop": h.event_loop,
        "send_abs_s": [r.send_s + (res.first_send_s or 0.0) for r in ok],  # perf_counter, absolute
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
        "send_abs_s": [r["start_times"][i] for i in ok],  # perf_counter before session.post
        "cpu_s": box["cpu1"] - box["cpu0"],
        "cpu_all_s": None,
        "workers": 1,
        "lag_p99_ms": None,
        "busy": None,
        "client_bound": None,
    }


def peer_command(tool: str, cfg: dict[str, Any], out: Path) -> list[str]:
    """GuideLLM's or AIPerf's command line for the workload (as in benchmarks/peer_definitions.py)."""
    bin_dir = Path(cfg["peers_bin"])
    if tool == "guidellm":
        backend = f"kind=openai_http,target={cfg['url']},model=truth,request_format=/v1/completions"
        return [
            str(bin_dir / "guidellm"),
            "run",
            "--backend",
            backend,
            "--profile",
            f"kind=concurrent,streams={cfg['concurrency']}",
            "--constraint",
            f"kind=max_requests,count={cfg['num_requests']}",
            "--tokenizer",
            f"kind=huggingface_auto,model={cfg['tokenizer']}",
            "--data",
            f"kind=synthetic_text,prompt_tokens={cfg['input_tokens']},output_tokens={cfg['output_tokens']}",
            "--seed",
            f"kind=static,value={cfg['seed']}",
            "--output",
            f"kind=json,path={out / 'benchmarks.json'}",
            "--disable-console-interactive",
        ]
    return [
        str(bin_dir / "aiperf"),
        "profile",
        "--model-names",
        "truth",
        "--endpoint-type",
        "completions",
        "--streaming",
        "--url",
        cfg["url"],
        "--tokenizer",
        cfg["tokenizer"],
        "--use-server-token-count",
        "--prompt-input-tokens-mean",
        str(cfg["input_tokens"]),
        "--prompt-input-tokens-stddev",
        "0",
        "--prompt-output-tokens-mean",
        str(cfg["output_tokens"]),
        "--prompt-output-tokens-stddev",
        "0",
        "--extra-inputs",
        "ignore_eos:true",
        "--concurrency",
        str(cfg["concurrency"]),
        "--request-count",
        str(cfg["num_requests"]),
        "--random-seed",
        str(cfg["seed"]),
        "--export-level",
        "records",
        "--output-artifact-dir",
        str(out),
        "--ui-type",
        "none",
    ]


def run_peer(tool: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Run GuideLLM or AIPerf (their own virtual environment) and read back their request rows.

    CPU: the whole tool, every process it started and waited for, start-up and imports included
    (``start s`` is its wall time before the first request was read, printed apart).
    GuideLLM keeps each request's first and last token time, not every chunk's: its ITLs here are
    per-request means (``itl_kind``), and bunching cannot be seen in them.
    """
    from harness.interop.aiperf import read_aiperf
    from harness.interop.guidellm import read_guidellm

    out = Path(tempfile.mkdtemp(prefix=f"truth-{tool}-"))
    log = out / "log.txt"
    ch0, t0 = _children_cpu(), time.monotonic()
    with log.open("w") as fh:
        p = subprocess.run(
            peer_command(tool, cfg, out), stdout=fh, stderr=subprocess.STDOUT, timeout=900, check=False
        )
    t1, cpu = time.monotonic(), _children_cpu() - ch0
    if p.returncode != 0:
        raise RuntimeError(f"{tool} exit {p.returncode}; {log}:\n{log.read_text()[-1500:]}")
    if tool == "guidellm":
        run = read_guidellm(out / "benchmarks.json")
        m = json.loads((out / "benchmarks.json").read_text())["benchmarks"][0]["metrics"]
        reported = m["output_tokens_per_second"]["successful"]["mean"]
    else:
        run = read_aiperf(out)
        reported = json.loads((out / "profile_export_aiperf.json").read_text())["output_token_throughput"][
            "avg"
        ]
    [sc] = run.scenarios
    ok = [r for r in sc.requests if r.ok and r.first_token_s is not None]
    if tool == "guidellm":
        itl = [
            1000 * (r.end_s - r.first_token_s) / (r.output_tokens - 1)
            for r in ok
            if r.end_s is not None and r.first_token_s is not None and r.output_tokens > 1
        ]
    else:
        itl = [1000 * g for r in ok for g in r.itl_s]
    return {
        "window": [t0, t1],
        "ttft_ms": [1000 * (r.first_token_s - r.send_s) for r in ok if r.first_token_s is not None],
        "itl_ms": itl,
        "itl_kind": "request-mean" if tool == "guidellm" else "gap",
        "tokens": sum(r.output_tokens for r in ok),
        "completed": len(ok),
        "duration_s": sc.duration_s,
        "reported_tok_s": reported,
        "cpu_s": cpu,
        "cpu_all_s": cpu,
        "workers": None,
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


def arrived(r: dict[str, Any]) -> float:
    """When the request reached the server: the kernel's receive stamp, else the server's read."""
    a = r.get("arrival_s")
    return float(a) if a is not None else float(r["recv_s"])


def compare(run: dict[str, Any], truth: list[dict[str, Any]], min_gap_ms: float) -> dict[str, Any]:
    # The true TTFT runs from the request's arrival at the server (kernel receive time) to its
    # first chunk leaving: the server's own read delay is the server's, as in a real server.
    true_ttft = np.array([1000 * (r["sent_s"][0] - arrived(r)) for r in truth])
    gaps_ms = np.array([1000 * g for r in truth for g in np.diff(r["sent_s"])])
    if run.get("itl_kind") == "request-mean":  # GuideLLM: one mean ITL per request
        true_itl = np.array(
            [1000 * float(np.mean(np.diff(r["sent_s"]))) for r in truth if len(r["sent_s"]) > 1]
        )
    else:
        true_itl = gaps_ms
    true_tok = sum(len(r["sent_s"]) for r in truth)
    span = max(r["sent_s"][-1] for r in truth) - min(arrived(r) for r in truth)
    ttft, itl = np.array(run["ttft_ms"]), np.array(run["itl_ms"])
    reported = run.get("reported_tok_s") or run["tokens"] / run["duration_s"]
    return {
        "true_tok_s": true_tok / span,
        "tok_s": reported,
        "itl_p50_err": float(np.median(itl) - np.median(true_itl)),
        "itl_p99_err": float(np.percentile(itl, 99) - np.percentile(true_itl, 99)),
        "bunched": float(np.mean(itl < 0.5 * min_gap_ms)) if run.get("itl_kind") != "request-mean" else None,
        "true_bunched": float(np.mean(gaps_ms < 0.5 * min_gap_ms)),
        "ttft_mean_err": float(ttft.mean() - true_ttft.mean()),
        "ttft_p99_err": float(np.percentile(ttft, 99) - np.percentile(true_ttft, 99)),
        "us_per_tok": 1e6 * run["cpu_s"] / run["tokens"] if run["tokens"] else float("nan"),
        "true_itl_p99": float(np.percentile(true_itl, 99)),
        # mean(request arrived at the server) - mean(client stamped the send): the send side's
        # share of the TTFT error (same requests, same clock); the rest is the receive side's
        "send_arrival_ms": 1000
        * (float(np.mean([arrived(r) for r in truth])) - float(np.mean(run["send_abs_s"])))
        if run.get("send_abs_s")
        else None,
        # the server's loop: arrival to read (part of the true TTFT, not of any client's error)
        "server_read_lag_ms": 1000 * float(np.mean([r["recv_s"] - arrived(r) for r in truth])),
        "buffered": sum(r["buffered"] for r in truth),
    }


PEERS = ("guidellm", "aiperf")


def harness_options(tool: str) -> dict[str, Any]:
    """``harness1`` one loop, ``harness`` automatic, ``harnessN`` N workers; ``-uv``: on uvloop;
    ``-aio``: aiohttp instead of the harness's own HTTP client (``harness1-uv-aio``)."""
    if not tool.startswith("harness"):
        return {"workers": None, "uvloop": False, "http": "harness"}
    name, aio = tool.removesuffix("-aio"), tool.endswith("-aio")
    name, uv = name.removesuffix("-uv"), name.endswith("-uv")
    count = name.removeprefix("harness")
    return {"workers": int(count) if count else None, "uvloop": uv, "http": "aiohttp" if aio else "harness"}


def report(
    c: int,
    tool: str,
    n: int,
    run: dict[str, Any],
    truth_dir: Path,
    min_gap: float,
    rows: list[dict[str, Any]],
    startup_cpu_s: float | None,
) -> None:
    """Compare one client's run with the truth, print its row and keep it."""
    time.sleep(0.3)  # the server's last line is written after [DONE]
    fig = compare(run, truth_rows(truth_dir, run["window"], n), min_gap)
    net = fig["us_per_tok"]
    if startup_cpu_s is not None and run["tokens"]:  # a peer: its start-up CPU taken off
        net = 1e6 * (run["cpu_s"] - startup_cpu_s) / run["tokens"]
    fig["us_per_tok_net"] = net
    flag = "bound" if run["client_bound"] else ("ok" if run["lag_p99_ms"] is not None else "-")
    lag = f"{run['lag_p99_ms']:.2f}" if run["lag_p99_ms"] is not None else "-"
    bunched = "n/a" if fig["bunched"] is None else f"{fig['bunched']:.2%}"
    wk = "-" if run["workers"] is None else str(run["workers"])
    send = "" if fig["send_arrival_ms"] is None else f", send->arrival {fig['send_arrival_ms']:.3f} ms"
    send += f", server read lag {fig['server_read_lag_ms']:.3f} ms"
    print(
        f"{c:>4} {tool:>11} {wk:>2} {fig['true_tok_s']:>10.0f} {fig['tok_s']:>8.0f} "
        f"{fig['itl_p50_err']:>11.3f} {fig['itl_p99_err']:>11.3f} {bunched:>8} "
        f"{fig['ttft_mean_err']:>13.3f} {fig['ttft_p99_err']:>12.3f} {fig['us_per_tok']:>7.1f} {net:>7.1f} "
        f"{lag:>7} {flag:>6}   (truth bunched {fig['true_bunched']:.2%}, "
        f"true ITL p99 {fig['true_itl_p99']:.2f} ms, buffered {fig['buffered']}{send})",
        flush=True,
    )
    rows.append({"concurrency": c, "client": tool, "requests": n, **fig, **run})


def peer_startup(tool: str, cfg: dict[str, Any]) -> float | None:
    """The peer's CPU for one request at concurrency 1: its start-up and imports, near enough."""
    try:
        return float(run_peer(tool, {**cfg, "concurrency": 1, "num_requests": 1})["cpu_s"])
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"{tool}: start-up run failed: {exc}", flush=True)
        return None


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
    ap.add_argument("--server-uvloop", action="store_true", help="run the truth server on uvloop")
    ap.add_argument(
        "--clients",
        default="harness1,harness,vllm",
        help="harness1 (one loop), harness (workers sized from the warm-up), harnessN (N workers), "
        "any of them with -uv (on uvloop) and then -aio (aiohttp, not the own HTTP client), vllm, "
        "guidellm, aiperf",
    )
    ap.add_argument(
        "--peers-bin", type=Path, default=Path("/work/peers/bin"), help="GuideLLM's and AIPerf's bin"
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
    server_cmd += ["--processes", str(args.server_processes)] + (["--uvloop"] if args.server_uvloop else [])
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
            f"{'c':>4} {'client':>11} {'wk':>2} {'true tok/s':>10} {'tok/s':>8} {'ITL p50 err':>11} "
            f"{'ITL p99 err':>11} {'bunched':>8} {'TTFT mean err':>13} {'TTFT p99 err':>12} "
            f"{'us/tok':>7} {'net':>7} {'lag p99':>7} {'flag':>6}"
        )
        base = {"url": f"http://127.0.0.1:{port}", "tokenizer": tokenizer, "seed": 1}
        base |= {"input_tokens": args.input_tokens, "output_tokens": args.output_tokens}
        base["peers_bin"] = str(args.peers_bin)
        startup = {t: peer_startup(t, base) for t in args.clients.split(",") if t in PEERS}
        for t, cpu in startup.items():
            print(f"{t}: start-up CPU {cpu if cpu is None else round(cpu, 2)} s (one request at c1)")
        print(head, flush=True)
        for c in [int(x) for x in args.concurrency.split(",")]:
            n = max(2 * c, int(round(args.seconds * c / per_request_s)))
            for i, tool in enumerate(args.clients.split(",")):
                cfg = {
                    "tool": tool,
                    "url": f"http://127.0.0.1:{port}",
                    "tokenizer": tokenizer,
                    "input_tokens": args.input_tokens,
                    "output_tokens": args.output_tokens,
                    "num_requests": n,
                    "concurrency": c,
                    "warmup": min(c, 8),
                    "seed": 100 + c + i,
                    "peers_bin": str(args.peers_bin),
                    **harness_options(tool),
                }
                if tool in PEERS:
                    try:
                        run = run_peer(tool, cfg)
                    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                        print(f"{c:>4} {tool:>11} failed: {exc}", flush=True)
                        continue
                    report(c, tool, n, run, truth_dir, min_gap, rows, startup.get(tool))
                    continue
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
                report(c, tool, n, run, truth_dir, min_gap, rows, None)
    finally:
        server.terminate()
        server.wait(timeout=10)
    if args.json:
        for r in rows:
            for key in ("ttft_ms", "itl_ms", "send_abs_s"):
                r.pop(key, None)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
