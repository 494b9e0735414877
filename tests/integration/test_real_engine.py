"""What only the real vLLM CPU server can show (every test here is ``slow``: minutes).

* The shipped smoke suite on the real pretrained SmolLM2 (one server shared by the session):
  accuracy above chance, real /v1/completions through lm-eval and the load generator.
* Every family's vLLM code path (SWA, GQA, MoE, MLA, Phi-3) started by the harness with its
  preset's engine arguments: vLLM accepts them, loads, serves, logs its KV-cache size and
  exposes its KV-cache gauge the way the harness parses them.
* The fake server (tests/fakeserver.py) answers like this vLLM: same fields, same stream shape,
  same log-probability layout, same metric names. The lifecycle tests rely on that.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.api import run_suite
from harness.engine.vllm_metrics import cache_config_from_metrics, kv_cache_usage_frac, parse_prometheus
from harness.engine.vllm_server import VllmServer
from harness.model.checkpoints import TINY_MODELS, ensure_checkpoint
from harness.record.run_record import RunRecord
from harness.storage.store import runs_dir
from tests.integration.checks import check_consistency
from tests.integration.conftest import FakeEngine
from tests.integration.procs import TAG_ENV, describe, kill_all, tagged_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

FAMILY_SUITE = """\
name: family
models: [{model}]
seed: 3
engine:
  extra_args: [--enforce-eager]
performance:
  scenarios:
    # Long enough (seconds) for the 0.5 s /metrics poller to see the KV cache in use.
    - {{name: c2, input_tokens: 64, output_tokens: 32, num_requests: 6, concurrency: 2, warmup_requests: 1}}
"""
FAMILY_PARALLEL = 3


def test_smoke_suite_on_smollm2(smollm2_server: VllmServer, results: Path) -> None:
    """The shipped smoke suite on the real pretrained default, through --endpoint."""
    [rec] = run_suite("smoke", models=["smollm2-135m"], results=results, endpoint=smollm2_server.base_url)
    run_dir = runs_dir(results) / rec.run_id
    check_consistency(rec, run_dir)
    assert rec.engine is not None and rec.engine.kind == "endpoint"
    assert set(rec.accuracy) == {"harness_capitals", "harness_opposites", "harness_arithmetic"}
    chance = {"harness_capitals": 0.25, "harness_opposites": 0.25, "harness_arithmetic": 0.0}
    for name, task in rec.accuracy.items():
        assert task.stderr is not None
        assert task.value - 2 * task.stderr > chance[name], (name, task.value, task.stderr)
    # An external endpoint's weights cannot be checksummed from here: the record says so.
    assert rec.model.checksum_sha256 is None
    assert rec.model.checksum is not None and "unverified" in rec.model.checksum.reason


# ---------------------------------------------------------------------------------------------
# The fake server against the real one.


def _post(base_url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{base_url}/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        if body.get("stream"):
            lines = [ln.decode().strip() for ln in r]
            return [ln[5:].strip() for ln in lines if ln.startswith("data:")]
        return json.load(r)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return str(r.read().decode())


def _shape(obj: Any) -> Any:
    """Keys and value types, recursively; lists by their first element."""
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in sorted(obj.items()) if v is not None}
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj else []
    return type(obj).__name__


@pytest.fixture
def fake_server(fake_engine: FakeEngine, tmp_path: Path) -> Iterator[VllmServer]:
    server = VllmServer(
        str(ensure_checkpoint("smollm2-135m")),
        "smollm2-135m",
        ["--max-model-len", "2048"],
        log_path=tmp_path / "fake.log",
        startup_timeout_s=60,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_fake_server_answers_like_vllm(smollm2_server: VllmServer, fake_server: VllmServer) -> None:
    real, fake = smollm2_server.base_url, fake_server.base_url
    prompt = [1, 415, 5565, 302, 4108, 349]

    # The load generator's streaming request: one chunk per token, then the usage chunk, [DONE].
    stream = {
        "model": "smollm2-135m",
        "prompt": prompt,
        "max_tokens": 5,
        "min_tokens": 5,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r_events, f_events = _post(real, stream), _post(fake, stream)
    assert r_events[-1] == f_events[-1] == "[DONE]"
    r_chunks, f_chunks = [json.loads(e) for e in r_events[:-1]], [json.loads(e) for e in f_events[:-1]]
    assert len(r_chunks) == len(f_chunks) == 6
    assert _shape(f_chunks[0]) == _shape(r_chunks[0])
    assert _shape(f_chunks[-1]) == _shape(r_chunks[-1])
    assert f_chunks[-1]["usage"] == r_chunks[-1]["usage"] | {"prompt_tokens_details": None}
    assert [c["choices"][0]["finish_reason"] for c in f_chunks[:-1]] == [
        c["choices"][0]["finish_reason"] for c in r_chunks[:-1]
    ]

    # lm-eval's loglikelihood request (batched token ids, echo, one log-probability each).
    ll = {
        "model": "smollm2-135m",
        "prompt": [prompt, prompt[:3]],
        "temperature": 0,
        "max_tokens": 1,
        "logprobs": 1,
        "seed": 1234,
        "echo": True,
    }
    r_out, f_out = _post(real, ll), _post(fake, ll)
    assert _shape(f_out["usage"]) == _shape(r_out["usage"])
    for r_choice, f_choice in zip(r_out["choices"], f_out["choices"], strict=True):
        assert r_choice["index"] == f_choice["index"]
        r_lp, f_lp = r_choice["logprobs"], f_choice["logprobs"]
        assert set(f_lp) == set(r_lp)
        for key in r_lp:
            assert len(f_lp[key]) == len(r_lp[key]), key
        assert r_lp["token_logprobs"][0] is None and f_lp["token_logprobs"][0] is None
        assert all(isinstance(x, float) for x in f_lp["token_logprobs"][1:])

    # /v1/models and the /metrics the harness polls.
    r_models, f_models = json.loads(_get(f"{real}/v1/models")), json.loads(_get(f"{fake}/v1/models"))
    assert set(f_models["data"][0]) <= set(r_models["data"][0])
    assert f_models["data"][0]["id"] == r_models["data"][0]["id"]
    r_metrics, f_metrics = _get(f"{real}/metrics"), _get(f"{fake}/metrics")
    real_names = {s.name for s in parse_prometheus(r_metrics)}
    fake_names = {s.name for s in parse_prometheus(f_metrics)}
    assert fake_names <= real_names, fake_names - real_names
    assert kv_cache_usage_frac(f_metrics) is not None and kv_cache_usage_frac(r_metrics) is not None
    r_cfg, f_cfg = cache_config_from_metrics(r_metrics), cache_config_from_metrics(f_metrics)
    assert r_cfg is not None and f_cfg is not None and f_cfg.capacity_tokens


# ---------------------------------------------------------------------------------------------
# Every model family on a harness-started vLLM.


@dataclass(frozen=True)
class FamilyRuns:
    records: dict[str, RunRecord]
    results: Path
    leftovers: str  # processes the runs left alive, described


@pytest.fixture(scope="module")
def family_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FamilyRuns]:
    """One harness run per family, FAMILY_PARALLEL engines at a time.

    A vLLM CPU start-up is mostly single-threaded (imports, model construction), so on two
    cores several overlap well; done one after the other, the six cost ten minutes. They all
    finish before any family test looks at them, under a process tag of their own.
    """
    base = tmp_path_factory.mktemp("families")
    results = base / "results"
    saved = {k: os.environ.get(k) for k in (TAG_ENV, "HARNESS_CPU_KVCACHE_GIB")}
    tag = f"families-{uuid.uuid4().hex[:8]}"
    os.environ[TAG_ENV] = tag
    os.environ["HARNESS_CPU_KVCACHE_GIB"] = "1"  # several engines at once: keep each small

    def run(name: str) -> RunRecord:
        suite = base / f"{name}.yaml"
        suite.write_text(FAMILY_SUITE.format(model=name))
        [rec] = run_suite(suite, results=results)
        return rec

    try:
        with ThreadPoolExecutor(max_workers=FAMILY_PARALLEL, thread_name_prefix="family") as pool:
            records = dict(zip(TINY_MODELS, pool.map(run, TINY_MODELS), strict=True))
        alive = tagged_processes(tag)
        described = describe(alive)
        kill_all(alive)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield FamilyRuns(records, results, described)


@pytest.mark.timeout(1800)  # the first one waits for all six runs
@pytest.mark.parametrize("name", TINY_MODELS)
def test_each_family_runs_on_a_harness_started_engine(name: str, family_runs: FamilyRuns) -> None:
    """Every family's vLLM code path (SWA, GQA, MoE, MLA, Phi-3) loads and serves with the
    preset's arguments on the CPU, started, measured and stopped by the harness."""
    rec = family_runs.records[name]
    check_consistency(rec, runs_dir(family_runs.results) / rec.run_id)
    assert rec.engine is not None and rec.engine.kind == "vllm-server"
    assert rec.engine.command and "vllm.entrypoints.openai.api_server" in rec.engine.command
    assert rec.engine.startup_s and rec.engine.startup_s > 1
    assert rec.resources is not None and rec.resources.phases["engine_start"].engine_cpu_s
    memory = rec.resources.memory
    assert memory is not None and memory.kv_cache_source == "engine log", memory
    assert memory.kv_cache_capacity_tokens and memory.kv_cache_capacity_tokens > 0
    # A scenario's window is stored once, on the scenario (schema v3), not also in resources.phases.
    c2 = rec.performance["c2"].resources
    assert c2 is not None and "scenario:c2" not in rec.resources.phases
    kv = c2.kv_cache
    assert kv is not None and kv.polls > 0 and kv.peak_usage_frac is not None, kv
    assert not family_runs.leftovers, f"engine processes left behind: {family_runs.leftovers}"
