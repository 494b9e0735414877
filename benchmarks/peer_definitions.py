"""GuideLLM's and AIPerf's own figures beside the harness's figures under each tool's definitions.

    python benchmarks/peer_definitions.py [--repeats 2] [--requests 40] [--concurrency 4]
        [--input-tokens 64] [--output-tokens 32] [--ttft-ms 50] [--token-delay-ms 20]
        [--guidellm /work/peers/guidellm/bin/guidellm] [--aiperf /work/peers/aiperf/bin/aiperf]
        [--endpoint URL --model NAME]  [--keep DIR]

One server (``tests.fakeserver`` started here with a token delay, unless ``--endpoint`` names a
running one, e.g. real vLLM under ``flock /tmp/harness-engine.lock``), one workload (random
prompts of ``--input-tokens``, ``--output-tokens`` out with ignore_eos, ``--concurrency``
streams, ``--requests`` requests, no warm-up), run by GuideLLM, AIPerf and the harness in turn,
``--repeats`` times (alternating: G, A, H, G, A, H, ...). For each peer run the script prints
the tool's own output tok/s, mean TTFT and mean ITL (from its report), the harness's figures
under that tool's definitions (:mod:`harness.interop.definitions`, from the harness runs'
request tables) and their difference; the brief's bands are output tok/s within +-3 %, mean TTFT
and mean ITL within +-5 %. The peers run in their own virtual environments (install them with
``python3 -m venv /work/peers/guidellm && /work/peers/guidellm/bin/pip install guidellm==0.8.1``
and likewise ``aiperf==0.13``); nothing of theirs is imported here. Each peer's report is also
imported (``harness import``) and recomputed under its own definitions, as a check of the reader.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIGS = ("output_throughput", "mean_ttft_ms", "mean_itl_ms")
BANDS = {"output_throughput": 3.0, "mean_ttft_ms": 5.0, "mean_itl_ms": 5.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy")


def _run(cmd: list[str], log: Path, timeout_s: float = 900.0, env: dict[str, str] | None = None) -> float:
    t0 = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(
            cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s, check=False, env=env
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed (exit {proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
    return time.monotonic() - t0


def guidellm(args: argparse.Namespace, url: str, out: Path) -> dict[str, float | None]:
    report = out / "benchmarks.json"
    backend = f"kind=openai_http,target={url},model={args.model},request_format=/v1/completions"
    _run(
        [
            args.guidellm,
            "run",
            "--backend",
            backend,
            "--profile",
            f"kind=concurrent,streams={args.concurrency}",
            "--constraint",
            f"kind=max_requests,count={args.requests}",
            "--tokenizer",
            f"kind=huggingface_auto,model={args.tokenizer}",
            "--data",
            f"kind=synthetic_text,prompt_tokens={args.input_tokens},output_tokens={args.output_tokens}",
            "--seed",
            "kind=static,value=0",
            "--output",
            f"kind=json,path={report}",
            "--disable-console-interactive",
        ],
        out / "guidellm.log",
    )
    m = json.loads(report.read_text())["benchmarks"][0]["metrics"]
    return {
        "output_throughput": m["output_tokens_per_second"]["successful"]["mean"],
        "mean_ttft_ms": m["time_to_first_token_ms"]["successful"]["mean"],
        "mean_itl_ms": m["inter_token_latency_ms"]["successful"]["mean"],
    }


def aiperf(args: argparse.Namespace, url: str, out: Path) -> dict[str, float | None]:
    _run(
        [
            args.aiperf,
            "profile",
            "--model-names",
            args.model,
            "--endpoint-type",
            "completions",
            "--streaming",
            "--url",
            url,
            "--tokenizer",
            args.tokenizer,
            "--use-server-token-count",
            "--prompt-input-tokens-mean",
            str(args.input_tokens),
            "--prompt-input-tokens-stddev",
            "0",
            "--prompt-output-tokens-mean",
            str(args.output_tokens),
            "--prompt-output-tokens-stddev",
            "0",
            "--extra-inputs",
            "ignore_eos:true",
            "--concurrency",
            str(args.concurrency),
            "--request-count",
            str(args.requests),
            "--random-seed",
            "0",
            "--export-level",
            "records",
            "--output-artifact-dir",
            str(out),
            "--ui-type",
            "none",
        ],
        out / "aiperf.log",
    )
    d = json.loads((out / "profile_export_aiperf.json").read_text())
    return {
        "output_throughput": d["output_token_throughput"]["avg"],
        "mean_ttft_ms": d["time_to_first_token"]["avg"],
        "mean_itl_ms": d["inter_token_latency"]["avg"],
    }


def harness_run(args: argparse.Namespace, url: str, out: Path) -> Path:
    """One harness run of the same workload; returns its run folder."""
    suite = out / "suite.yaml"
    suite.write_text(
        f"name: peer-definitions\nmodels: [{args.harness_model}]\nseed: 0\n"
        "performance:\n  scenarios:\n"
        f"    - {{name: c{args.concurrency}, input_tokens: {args.input_tokens}, output_tokens: "
        f"{args.output_tokens}, num_requests: {args.requests}, concurrency: {args.concurrency}, "
        "warmup_requests: 0}\n"
    )
    results = out / "results"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    _run(
        [sys.executable, "-m", "harness.cli", "run", str(suite), "--endpoint", url, "--results", str(results)]
        + ["--no-progress"],
        out / "harness.log",
        env=env,
    )
    [run_dir] = sorted((results / "runs").iterdir())
    return run_dir


def under(tool: str, run_dir: Path) -> dict[str, float | None]:
    from harness.interop.definitions import figures
    from harness.loadgen.client import requests_from_parquet
    from harness.storage.store import read_record

    rec = read_record(run_dir)
    [s] = rec.scenarios
    assert s.requests_path is not None
    return figures(tool, requests_from_parquet(run_dir / s.requests_path), s.duration)  # type: ignore[arg-type]


def imported(kind: str, path: Path, results: Path) -> dict[str, float | None]:
    """The peer's own file imported, recomputed under its own definitions (the reader's check)."""
    from harness.interop.cli import import_files

    [run_dir] = import_files(kind, [path], results)
    return under(kind, run_dir)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--input-tokens", type=int, default=64)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--ttft-ms", type=float, default=50.0, help="fake server: time to first token")
    p.add_argument("--token-delay-ms", type=float, default=20.0, help="fake server: between tokens")
    p.add_argument("--guidellm", default="/work/peers/guidellm/bin/guidellm")
    p.add_argument("--aiperf", default="/work/peers/aiperf/bin/aiperf")
    p.add_argument("--endpoint", help="a running server instead of the fake (its served name: --model)")
    p.add_argument("--model", default="smollm2-135m", help="served model name")
    p.add_argument("--keep", help="keep the peers' reports and the harness runs in this folder")
    args = p.parse_args()
    from harness.model.checkpoints import ensure_checkpoint

    args.tokenizer = str(ensure_checkpoint("smollm2-135m"))
    args.harness_model = "smollm2-135m"
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="peer-definitions-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    url = args.endpoint
    if url is None:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "tests.fakeserver", "--model", args.tokenizer, "--served-model-name"]
        cmd += [args.model, "--port", str(port), "--fake-ttft-ms", str(args.ttft_ms)]
        cmd += ["--fake-token-delay-ms", str(args.token_delay_ms)]
        server = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=(work / "server.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(url)
        rows: list[
            tuple[str, int, dict[str, float | None], dict[str, float | None], dict[str, float | None]]
        ] = []
        harness_dirs: list[Path] = []
        peer_runs: list[tuple[str, int, dict[str, float | None], Path]] = []
        for rep in range(args.repeats):
            for tool in ("guidellm", "aiperf", "harness"):
                out = work / f"{rep}-{tool}"
                out.mkdir(parents=True, exist_ok=True)
                t0 = time.monotonic()
                if tool == "guidellm":
                    peer_runs.append((tool, rep, guidellm(args, url, out), out / "benchmarks.json"))
                elif tool == "aiperf":
                    peer_runs.append((tool, rep, aiperf(args, url, out), out))
                else:
                    harness_dirs.append(harness_run(args, url, out))
                print(f"repeat {rep + 1} {tool}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
        for tool, rep, own, report in peer_runs:
            mine = under(tool, harness_dirs[rep])
            rows.append((tool, rep, own, mine, imported(tool, report, work / "imported")))
        _print(rows, args, url)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _print(rows: list[Any], args: argparse.Namespace, url: str) -> None:
    print(
        f"server {url} (fake: TTFT {args.ttft_ms} ms, {args.token_delay_ms} ms/token unless --endpoint); "
        f"{args.requests} requests, concurrency {args.concurrency}, {args.input_tokens} in / "
        f"{args.output_tokens} out; repeats alternate GuideLLM, AIPerf, harness"
    )
    head = f"{'tool':9} {'rep':>3} {'figure':18} {'tool own':>11} {'harness':>11} {'diff %':>8} {'band':>6}  "
    print(head + f"{'import':>11} {'vs own':>9}")
    for tool, rep, own, mine, back in rows:
        for key in FIGS:
            a, b, c = own.get(key), mine.get(key), back.get(key)
            diff = None if a is None or b is None or a == 0 else 100.0 * (b - a) / a
            ok = "" if diff is None else ("ok" if abs(diff) <= BANDS[key] else "OUT")
            rt = None if a is None or c is None or a == 0 else abs(c - a) / abs(a)
            print(
                f"{tool:9} {rep + 1:>3} {key:18} {_f(a):>11} {_f(b):>11} "
                f"{'—' if diff is None else f'{diff:+.2f}':>8} {ok:>6}  {_f(c):>11} "
                f"{'—' if rt is None else f'{rt:.1e}':>9}"
            )
    print(
        "harness: the harness's own runs (same server and workload) recomputed under the tool's definitions; "
        "import: the tool's own report imported and recomputed under its definitions (vs own: relative error)"
    )


def _f(x: float | None) -> str:
    return "null" if x is None else f"{x:.4g}"


if __name__ == "__main__":
    raise SystemExit(main())
