"""A fake OpenAI-compatible completion server that talks like vLLM 0.32, for the harness's tests.

The harness's own engine management (spawn, health wait, PDEATHSIG, stopping the process tree,
SIGTERM/SIGKILL handling, failed records) is the same whatever answers on the port, so tests of
that behaviour run against this server in seconds instead of against vLLM in minutes. It is
started by the harness exactly as vLLM is: ``VllmServer`` runs ``python -m <entrypoint> --model
... --served-model-name ... --host 127.0.0.1 --port N <engine args>`` and tests set
``HARNESS_ENGINE_ENTRYPOINT=tests.fakeserver``. Standalone::

    python -m tests.fakeserver --model DIR --served-model-name tiny --port 8011 --fake-token-delay-ms 5

What it models (and what it does not):

* ``/health`` (200 once "loaded"), ``/v1/models``, ``/metrics`` (Prometheus text with vLLM 0.32's
  metric names: ``vllm:kv_cache_usage_perc``, ``vllm:cache_config_info``, request and token
  counters, a TTFT histogram) and ``/v1/completions``: token-id or text prompts, single or
  batched, ``max_tokens``/``min_tokens``/``ignore_eos``/``stop``, ``echo`` with ``logprobs`` (what
  lm-eval's ``local-completions`` loglikelihood requests need) and SSE streaming with one token
  per chunk and the final ``usage`` chunk of ``stream_options.include_usage``.
* No model is loaded: the weights are never read, generated tokens and log-probabilities are a
  deterministic function of the prompt (so two runs give the same accuracy), text prompts count
  one token per whitespace-separated word. Timing: ``--fake-ttft-ms`` before the first token,
  ``--fake-token-delay-ms`` between tokens, no batching slow-down.
* A process tree like vLLM's: the API server forks ``--fake-workers`` "engine core" processes in
  its process group; a graceful shutdown (SIGTERM/SIGINT) stops them. Nothing here watches the
  parent process: if the harness's PDEATHSIG or its group kill breaks, processes are left over
  and the tests' orphan checks see them (a fake stricter than the real engine, on purpose).
* Faults for lifecycle tests: ``--fake-startup-delay-s``, ``--fake-never-healthy`` (loads
  forever, the port never opens), ``--fake-fail-startup MSG`` (logs a traceback and exits 1, as
  vLLM does on a bad checkpoint), ``--fake-die-after-streams N`` (SIGKILLs itself when the Nth
  streaming request arrives: an OOM kill mid-benchmark), ``--fake-ignore-sigterm`` (server and
  workers ignore SIGTERM, so only SIGKILL stops them), each limited to one served model with
  ``--fake-only NAME``.
* Load-dependent answers: ``--fake-corrupt-above-inflight K`` answers with other tokens and other
  log-probabilities (a second deterministic function of the prompt) while more than K HTTP
  requests are in flight, counted as the request's answer is computed (after its TTFT wait):
  ground truth for accuracy-under-load tests, modelling an engine whose outputs change with batch
  composition (not batch invariant) or a race at high concurrency.

Fake options may also come from ``HARNESS_FAKESERVER_ARGS`` (shell syntax), so tests can configure
a server that the harness starts in a subprocess. Other arguments (vLLM's engine args) are
accepted and ignored, apart from ``--max-model-len``. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import shlex
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

ENV_ARGS = "HARNESS_FAKESERVER_ARGS"
VOCAB = 32000
BLOCK_SIZE = 16
WORDS = ("the", "a", "of", "and", "to", "in", "is", "Paris", "red", "one", "two", "3", "4", "7", ",", ".")
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


def _log(msg: str, level: str = "INFO", worker: bool = False) -> None:
    prefix = f"(EngineCore_DP0 pid={os.getpid()}) " if worker else ""
    print(f"{prefix}{level} {time.strftime('%m-%d %H:%M:%S')} [fakeserver.py] {msg}", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakeserver", allow_abbrev=False)
    p.add_argument("--model", required=True, help="path or id; only echoed in /v1/models")
    p.add_argument("--served-model-name", default=None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fake-token-delay-ms", type=float, default=2.0, help="between streamed tokens")
    p.add_argument("--fake-ttft-ms", type=float, default=5.0, help="before the first token")
    p.add_argument("--fake-kv-capacity-tokens", type=int, default=16384)
    p.add_argument("--fake-workers", type=int, default=1, help="forked 'engine core' processes")
    p.add_argument("--fake-only", default=None, help="apply the faults below only to this served name")
    p.add_argument("--fake-startup-delay-s", type=float, default=0.0)
    p.add_argument("--fake-never-healthy", action="store_true")
    p.add_argument("--fake-fail-startup", default=None, metavar="MSG")
    p.add_argument("--fake-die-after-streams", type=int, default=None, metavar="N")
    p.add_argument("--fake-ignore-sigterm", action="store_true")
    p.add_argument(
        "--fake-corrupt-above-inflight",
        type=int,
        default=None,
        metavar="K",
        help="answer differently (other tokens, other log-probabilities) when more than K requests are in flight",
    )
    args, _engine_args = p.parse_known_args(argv + shlex.split(os.environ.get(ENV_ARGS, "")))
    if args.host not in ("127.0.0.1", "localhost"):
        p.error("the fake server binds 127.0.0.1 only")
    args.served_model_name = args.served_model_name or args.model
    if args.fake_only is not None and args.fake_only != args.served_model_name:
        args.fake_startup_delay_s, args.fake_never_healthy, args.fake_fail_startup = 0.0, False, None
        args.fake_die_after_streams, args.fake_ignore_sigterm = None, False
        args.fake_corrupt_above_inflight = None
    return args


# ---------------------------------------------------------------------------------------------
# The "model": deterministic tokens and log-probabilities.


def _h(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def token_text(tok: int) -> str:
    return " " + WORDS[tok % len(WORDS)]


def tokenize(text: str) -> list[int]:
    return [_h("word", w) % VOCAB for w in text.split()]


def next_token(prompt_key: int, step: int) -> int:
    return _h(prompt_key, step) % VOCAB


def token_logprob(prev: int, tok: int, salt: str = "") -> float:
    return -0.01 - (_h("lp", prev, tok, *((salt,) if salt else ())) % 1000) / 100.0


def _prompts(raw: Any) -> list[list[int]]:
    if isinstance(raw, str):
        return [tokenize(raw)]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [list(raw)]
    if isinstance(raw, list) and raw and all(isinstance(x, str | list) for x in raw):
        return [tokenize(x) if isinstance(x, str) else [int(t) for t in x] for x in raw]
    raise ValueError("prompt must be a string, a list of strings, a list of token ids or a list of those")


def _logprobs(tokens: list[int], first: int, salt: str = "") -> dict[str, Any]:
    """vLLM's CompletionLogProbs for `tokens`, the first `first` of which have no predecessor."""
    out: dict[str, Any] = {"text_offset": [], "token_logprobs": [], "tokens": [], "top_logprobs": []}
    offset = 0
    for i, tok in enumerate(tokens):
        text = token_text(tok)
        out["tokens"].append(text)
        out["text_offset"].append(offset)
        offset += len(text)
        if i < first:
            out["token_logprobs"].append(None)
            out["top_logprobs"].append(None)
            continue
        lp = token_logprob(tokens[i - 1], tok, salt)
        top = {text: lp}
        if _h("alt", tokens[i - 1], tok) % 2:  # a likelier token exists: not greedy
            top[" <alt>"] = lp / 2
        out["token_logprobs"].append(lp)
        out["top_logprobs"].append(top)
    return out


# ---------------------------------------------------------------------------------------------
# The server.


@dataclass
class Stats:
    running: dict[str, int] = field(default_factory=dict)  # request id -> tokens in its KV cache
    prompt_tokens: int = 0
    generation_tokens: int = 0
    success: dict[str, int] = field(default_factory=dict)  # finished_reason -> count
    ttft_s: list[float] = field(default_factory=list)
    streams: int = 0


class FakeServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.name = args.served_model_name
        self.stats = Stats()
        self.num_blocks = max(1, args.fake_kv_capacity_tokens // BLOCK_SIZE)

    def loading_log(self) -> list[str]:
        """What vLLM's CPU engine core logs once loaded (the harness reads the KV-cache size)."""
        tokens, max_len = self.num_blocks * BLOCK_SIZE, self.args.max_model_len
        return [
            "Loading weights took 0.00 seconds (fake: nothing is loaded)",
            f"CPU KV cache size: {tokens:,} tokens, Maximum concurrency for {max_len:,} tokens per "
            f"request: {tokens / max_len:.2f}x",
        ]

    def _labels(self, **extra: str) -> str:
        labels = {"engine": "0", "model_name": self.name, **extra}
        return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))

    def metrics_text(self) -> str:
        s, lab = self.stats, self._labels()
        used = sum(math.ceil(t / BLOCK_SIZE) for t in s.running.values())
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{lab}}} {float(len(s.running))}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{{{lab}}} 0.0",
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{{{lab}}} {min(1.0, used / self.num_blocks)}",
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE vllm:prompt_tokens_total counter",
            f"vllm:prompt_tokens_total{{{lab}}} {float(s.prompt_tokens)}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{lab}}} {float(s.generation_tokens)}",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            *(
                f"vllm:request_success_total{{{self._labels(finished_reason=r)}}} {float(n)}"
                for r, n in sorted(s.success.items())
            ),
            "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.",
            "# TYPE vllm:time_to_first_token_seconds histogram",
        ]
        for le in TTFT_BUCKETS_S:
            n = sum(1 for t in s.ttft_s if t <= le)
            lines.append(f"vllm:time_to_first_token_seconds_bucket{{{self._labels(le=str(le))}}} {float(n)}")
        lines += [
            f"vllm:time_to_first_token_seconds_bucket{{{self._labels(le='+Inf')}}} {float(len(s.ttft_s))}",
            f"vllm:time_to_first_token_seconds_count{{{lab}}} {float(len(s.ttft_s))}",
            f"vllm:time_to_first_token_seconds_sum{{{lab}}} {sum(s.ttft_s)}",
            "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
            "# TYPE vllm:cache_config_info gauge",
            f'vllm:cache_config_info{{block_size="{BLOCK_SIZE}",cache_dtype="auto",engine="0",'
            f'gpu_memory_utilization="0.3",num_cpu_blocks="None",num_gpu_blocks="{self.num_blocks}",'
            f'prefix_caching_hash_algo="sha256"}} 1.0',
        ]
        return "\n".join(lines) + "\n"

    def models_body(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": self.name,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "vllm",
                    "root": self.args.model,
                    "parent": None,
                    "max_model_len": self.args.max_model_len,
                }
            ],
        }

    @staticmethod
    def error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"message": message, "type": kind, "param": None, "code": status}}

    def validate(self, body: dict[str, Any]) -> tuple[list[list[int]], int] | tuple[int, dict[str, Any]]:
        """(prompts, max_tokens) of a completion request, or (status, error body)."""
        if body.get("model") not in (None, self.name):
            return self.error(404, "NotFoundError", f"The model `{body.get('model')}` does not exist.")
        try:
            prompts = _prompts(body.get("prompt"))
        except ValueError as exc:
            return self.error(400, "BadRequestError", str(exc))
        max_tokens = body.get("max_tokens")
        max_tokens = 16 if max_tokens is None else int(max_tokens)
        for p in prompts:
            if not p:
                return self.error(400, "BadRequestError", "The prompt cannot be empty.")
            if len(p) + max_tokens > self.args.max_model_len:
                return self.error(
                    400,
                    "BadRequestError",
                    f"This model's maximum context length is {self.args.max_model_len} tokens. However, "
                    f"you requested {len(p) + max_tokens} tokens ({len(p)} in the messages, "
                    f"{max_tokens} in the completion). Please reduce the length of the messages or completion.",
                )
        return prompts, max_tokens

    def corrupting(self) -> bool:
        """Whether answers are corrupted now: more than --fake-corrupt-above-inflight K in flight."""
        k = self.args.fake_corrupt_above_inflight
        return k is not None and len(self.stats.running) > k

    def generate(
        self, prompt: list[int], body: dict[str, Any], max_tokens: int, corrupt: bool = False
    ) -> tuple[list[int], str, str]:
        """(tokens, text, finish reason) for one prompt; `stop` strings end it early (excluded)."""
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        key = _h(tuple(prompt), body.get("seed"), *(("corrupt",) if corrupt else ()))
        tokens: list[int] = []
        text = ""
        for step in range(max_tokens):
            tok = next_token(key, step)
            piece = token_text(tok)
            hit = next((s for s in stops if s in text + piece), None)
            if hit is not None and step >= int(body.get("min_tokens") or 0):
                return tokens, (text + piece).split(hit)[0], "stop"
            tokens.append(tok)
            text += piece
        return tokens, text, "length"

    def choice(
        self, index: int, prompt: list[int], body: dict[str, Any], max_tokens: int, corrupt: bool = False
    ) -> dict[str, Any]:
        tokens, text, reason = self.generate(prompt, body, max_tokens, corrupt)
        echo = bool(body.get("echo"))
        shown = (prompt if echo else []) + tokens
        logprobs = None
        salt = "corrupt" if corrupt else ""
        if body.get("logprobs") is not None:
            logprobs = _logprobs(shown, first=1 if echo else 0, salt=salt)
            if not echo and tokens:  # the first generated token follows the prompt's last
                logprobs["token_logprobs"][0] = token_logprob(prompt[-1], tokens[0], salt)
                logprobs["top_logprobs"][0] = {token_text(tokens[0]): logprobs["token_logprobs"][0]}
        if echo:
            text = "".join(token_text(t) for t in prompt) + text
        return {
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": reason,
            "stop_reason": None,
            "prompt_logprobs": None,
            "_completion_tokens": len(tokens),
        }

    def finish(self, reasons: list[str], prompt_tokens: int, completion_tokens: int) -> None:
        """Count finished requests (one per prompt) and their tokens, as vLLM's counters do."""
        self.stats.prompt_tokens += prompt_tokens
        self.stats.generation_tokens += completion_tokens
        for reason in reasons:
            self.stats.success[reason] = self.stats.success.get(reason, 0) + 1


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": None,
    }


def build_app(server: FakeServer) -> Any:
    from aiohttp import web

    args = server.args

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(server.models_body())

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=server.metrics_text(), content_type="text/plain", charset="utf-8")

    async def completions(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response(server.error(400, "BadRequestError", "invalid JSON")[1], status=400)
        checked = server.validate(body)
        if isinstance(checked[0], int):
            status, err = checked  # type: ignore[misc]
            return web.json_response(err, status=status)
        prompts, max_tokens = checked  # type: ignore[misc]
        if body.get("stream"):
            server.stats.streams += 1
            if (
                args.fake_die_after_streams is not None
                and server.stats.streams >= args.fake_die_after_streams
            ):
                _log(f"dying on streaming request {server.stats.streams} (--fake-die-after-streams)", "ERROR")
                os.kill(os.getpid(), signal.SIGKILL)
            return await stream(request, body, prompts, max_tokens)
        rid = uuid.uuid4().hex
        server.stats.running[rid] = sum(len(p) for p in prompts)
        try:
            t0 = time.perf_counter()
            await asyncio.sleep(args.fake_ttft_ms / 1000.0)
            server.stats.ttft_s.append(time.perf_counter() - t0)
            corrupt = server.corrupting()
            choices = [server.choice(i, p, body, max_tokens, corrupt) for i, p in enumerate(prompts)]
            n_out = sum(c.pop("_completion_tokens") for c in choices)
            await asyncio.sleep(args.fake_token_delay_ms * max(0, max_tokens - 1) / 1000.0)
        finally:
            server.stats.running.pop(rid, None)
        n_in = sum(len(p) for p in prompts)
        server.finish([c["finish_reason"] for c in choices], n_in, n_out)
        return web.json_response(
            {
                "id": f"cmpl-{rid}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": server.name,
                "choices": choices,
                "usage": _usage(n_in, n_out),
            }
        )

    async def stream(
        request: web.Request, body: dict[str, Any], prompts: list[list[int]], max_tokens: int
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

        async def send(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> None:
            chunk: dict[str, Any] = {
                "id": rid,
                "object": "text_completion",
                "created": created,
                "model": server.name,
            }
            chunk.update(choices=choices, usage=usage)
            if usage is not None:  # vLLM 0.32 names itself in the usage chunk only
                chunk["system_fingerprint"] = "vllm-0.32.0-fake"
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        server.stats.running[rid] = sum(len(p) for p in prompts)
        corrupt = server.corrupting()
        outs = [server.generate(p, body, max_tokens, corrupt) for p in prompts]
        t0 = time.perf_counter()
        try:
            await asyncio.sleep(args.fake_ttft_ms / 1000.0)
            server.stats.ttft_s.append(time.perf_counter() - t0)
            longest = max((len(toks) for toks, _, _ in outs), default=0)
            for step in range(max(longest, 1)):
                if step:
                    await asyncio.sleep(args.fake_token_delay_ms / 1000.0)
                choices = []
                for i, (toks, _text, reason) in enumerate(outs):
                    if step >= len(toks):
                        continue
                    last = step == len(toks) - 1
                    choices.append(
                        {
                            "index": i,
                            "text": token_text(toks[step]),
                            "logprobs": None,
                            "finish_reason": reason if last else None,
                            "stop_reason": None,
                        }
                    )
                server.stats.running[rid] += len(choices)
                if choices:
                    await send(choices)
        finally:
            server.stats.running.pop(rid, None)
        n_in, n_out = sum(len(p) for p in prompts), sum(len(t) for t, _, _ in outs)
        server.finish([reason for _, _, reason in outs], n_in, n_out)
        if (body.get("stream_options") or {}).get("include_usage"):
            await send([], _usage(n_in, n_out))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/completions", completions)
    return app


# ---------------------------------------------------------------------------------------------
# Process life.


def _fork_workers(n: int, ignore_sigterm: bool) -> list[int]:
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:  # the "engine core": holds nothing, lives until signalled
            signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore_sigterm else signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _log("engine core started", worker=True)
            while True:
                time.sleep(3600)
        pids.append(pid)
    return pids


def _stop_workers(pids: list[int], grace_s: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for pid in pids:
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


async def _serve(server: FakeServer, workers: list[int]) -> None:
    from aiohttp import web

    args = server.args
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if args.fake_ignore_sigterm and sig == signal.SIGTERM:
            signal.signal(sig, signal.SIG_IGN)
        else:
            loop.add_signal_handler(sig, stop.set)
    await asyncio.sleep(args.fake_startup_delay_s)
    for line in server.loading_log():
        _log(line, worker=True)
    if args.fake_never_healthy:
        _log("loading forever (--fake-never-healthy)")
        await stop.wait()
    else:
        runner = web.AppRunner(build_app(server), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        _log(f"Starting vLLM API server 0 on http://127.0.0.1:{args.port}")
        print("INFO:     Application startup complete.", flush=True)
        await stop.wait()
        print("INFO:     Shutting down", flush=True)
        await runner.cleanup()
    _stop_workers(workers)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _log(f"fake OpenAI-compatible server (tests.fakeserver) for {args.served_model_name}: no model is loaded")
    workers = _fork_workers(args.fake_workers, args.fake_ignore_sigterm)
    if args.fake_fail_startup:
        time.sleep(args.fake_startup_delay_s)
        _log("EngineCore failed to start.", "ERROR", worker=True)
        print("Traceback (most recent call last):", flush=True)
        print(f"ValueError: {args.fake_fail_startup}", flush=True)
        _stop_workers(workers)
        return 1
    asyncio.run(_serve(FakeServer(args), workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
