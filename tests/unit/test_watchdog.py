"""The engine watchdog: a frozen (SIGSTOP) engine ends the scenario with what was measured."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine.watchdog import EngineHungError, EngineWatchdog
from harness.loadgen.client import LoadShape, LoadSpec, run_load
from harness.loadgen.metrics import aggregate
from harness.model.weights import ResolvedModel
from harness.planning.plan import plan_runs
from harness.run.runner import RunHooks, execute
from harness.spec.suite import LoadedSuite, parse_suite

# An OpenAI-like server in its own process: /health, and completions streamed one token per 50 ms.
SERVER = textwrap.dedent(
    """
    import asyncio, json, sys
    from aiohttp import web

    async def health(request):
        return web.Response(text="ok")

    async def completions(request):
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(body["max_tokens"]):
            await asyncio.sleep(0.05)
            await resp.write(b"data: " + json.dumps({"choices": [{"index": 0, "text": "t"}]}).encode() + b"\\n\\n")
        usage = {"choices": [], "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": body["max_tokens"]}}
        await resp.write(b"data: " + json.dumps(usage).encode() + b"\\n\\ndata: [DONE]\\n\\n")
        return resp

    app = web.Application()
    async def models(request):
        return web.json_response({"object": "list", "data": [{"id": "smollm2-135m", "object": "model"}]})

    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", completions)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "fake server did not start"
                time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)


def test_sigstop_mid_scenario_ends_it_with_what_was_measured(
    engine: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = engine
    dog = EngineWatchdog(url, timeout_s=1.5, poll_s=0.2, process_state=lambda: "stopped")
    dog.start()
    # 12 requests of 10 tokens (0.5 s each), two at a time; the engine freezes after the second ends.
    spec = LoadSpec(
        load=LoadShape(
            input_tokens=4,
            output_tokens=10,
            num_requests=12,
            concurrency=2,
            request_rate=None,
            warmup_requests=0,
            request_timeout_s=3600,
            client_workers=1,
        ),
        seed=0,
    )
    done: list[float] = []

    def on_done() -> None:
        done.append(time.monotonic())
        if len(done) == 2:
            os.kill(proc.pid, signal.SIGSTOP)

    try:
        res = run_load(spec, url, "m", [5, 6, 7], on_done=on_done, abort=dog)
    finally:
        dog.stop()
    assert dog.cause is not None and "stopped answering" in dog.cause and "stopped" in dog.cause
    assert res.aborted == dog.cause
    # ended by the watchdog's timeout after the freeze (with slack for a busy machine), not the request timeout
    assert time.monotonic() - done[1] < 1.5 + 8.0
    m = aggregate(res.requests, duration_s=res.duration_s)
    assert 2 <= m["completed"] < 12 and m["completed"] + m["failed"] == 12
    assert all(
        r.error and ("cancelled" in r.error or "not sent" in r.error) for r in res.requests if not r.ok
    )


def test_a_process_that_exits_trips_at_once(engine: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = engine
    dog = EngineWatchdog(
        url, timeout_s=60, poll_s=0.1, process_check=lambda: None if proc.poll() is None else "died"
    )
    dog.start()
    try:
        time.sleep(0.3)
        assert dog() is None
        proc.kill()
        deadline = time.monotonic() + 5
        while dog() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dog() == "died"
    finally:
        dog.stop()


def test_guard_interrupts_a_blocked_phase(engine: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = engine
    dog = EngineWatchdog(url, timeout_s=0.5, poll_s=0.1)
    dog.start()
    os.kill(proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        with pytest.raises(EngineHungError), dog.guard():
            while time.monotonic() - t0 < 20:  # a phase that would wait for the engine forever
                time.sleep(0.05)
    finally:
        dog.stop()
    assert time.monotonic() - t0 < 10
    with pytest.raises(EngineHungError), dog.guard():
        pass  # once tripped, a new guarded phase does not even start


SUITE = """
name: watchdog
seed: 1
engine: {watchdog_timeout_s: 1.5}
performance:
  scenarios:
    - {name: first, input_tokens: 4, output_tokens: 4, num_requests: 2, concurrency: 2}
    - {name: frozen, input_tokens: 4, output_tokens: 10, num_requests: 12, concurrency: 2}
    - {name: never, input_tokens: 4, output_tokens: 4, num_requests: 2, concurrency: 2}
"""


def test_run_fails_with_the_cause_and_keeps_what_was_measured(
    engine: tuple[subprocess.Popen[bytes], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.loadgen.client as client
    import harness.run.runner as runner

    proc, url = engine
    monkeypatch.setattr(runner, "resolve_model", lambda plan: ResolvedModel("m", "m", None, None, "test"))
    monkeypatch.setattr(client, "usable_token_ids", lambda path: [5, 6, 7])
    monkeypatch.setattr(client, "token_counter", lambda path: len)
    (plan,) = plan_runs(
        LoadedSuite(spec=parse_suite(SUITE), path=None, sha256=None), ["smollm2-135m"], endpoint=url
    )

    current: list[str] = []
    done: list[str] = []

    def on_request_done() -> None:  # the engine freezes once two measured requests of "frozen" ended
        done.append(current[-1])
        if done.count("frozen") == 2:
            os.kill(proc.pid, signal.SIGSTOP)

    hooks = RunHooks(
        on_scenario_start=lambda name, total: current.append(name), on_request_done=on_request_done
    )
    record = execute(plan, tmp_path / "results", hooks)
    assert record.status == "failed"
    assert record.error is not None and "stopped answering" in record.error and "watchdog" in record.error
    perf = record.performance
    assert perf["first"].completed == 2 and perf["first"].incomplete is None
    assert perf["frozen"].incomplete is not None and "stopped answering" in perf["frozen"].incomplete
    assert 2 <= perf["frozen"].completed < 12 and perf["frozen"].failed == 12 - perf["frozen"].completed
    assert "never" not in perf
    settings = perf["first"].settings
    assert (
        settings.load.temperature == 0.0 and settings.scenario_seed != perf["frozen"].settings.scenario_seed
    )
    assert settings.vllm_bench_command is not None and "--temperature 0" in settings.vllm_bench_command
