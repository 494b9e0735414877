"""Workloads on a real vLLM server: shared prefixes hit the prefix cache as implied, and
multi-turn sessions resend their real history."""

from __future__ import annotations

import numpy as np
import pytest

from harness.engine.poller import MetricsPoller
from harness.engine.server_metrics import server_sample, summarize_window
from harness.engine.vllm_metrics import cache_config_from_metrics
from harness.engine.vllm_server import VllmServer
from harness.loadgen.client import LoadShape, LoadSpec, run_load
from harness.loadgen.prompts import usable_token_ids
from harness.loadgen.sessions import run_sessions
from harness.spec.workload import ConversationSpec, PrefixSpec
from harness.workloads.build import WorkItem, build_sessions, implied_prefix_hit_rate, with_shared_prefixes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def spec(n: int, concurrency: int, warmup: int = 0) -> LoadSpec:
    load = LoadShape(
        input_tokens=1,
        output_tokens=4,
        num_requests=n,
        concurrency=concurrency,
        request_rate=None,
        warmup_requests=warmup,
        client_workers=1,
    )
    return LoadSpec(load=load, seed=0)


def test_shared_prefixes_hit_the_cache_as_implied(smollm2_server: VllmServer) -> None:
    poller = MetricsPoller(smollm2_server.base_url)
    poller.poll_once()
    cfg = cache_config_from_metrics(poller.last_text or "")
    assert cfg is not None and cfg.block_size
    ids = usable_token_ids(str(smollm2_server.model_path))
    rng = np.random.default_rng(7)
    # Two groups of 2 blocks each, own suffix of 40 tokens; sequential, so the order is known.
    plen = 2 * cfg.block_size
    base = [
        WorkItem(prompt=rng.choice(ids, 40).tolist(), input_tokens=40, output_tokens=4) for _ in range(10)
    ]
    items = with_shared_prefixes(base, PrefixSpec(groups=2, length=plen), ids, rng)
    implied = implied_prefix_hit_rate(items, cfg.block_size)
    t0 = poller.clock()
    result = run_load(spec(10, 1), smollm2_server.base_url, smollm2_server.served_name, ids, items=items)
    poller.poll_once()
    window = poller.server_window(t0, poller.clock(), implied)
    assert all(r.ok for r in result.requests)
    assert implied == pytest.approx(8 * plen / sum(i.input_tokens for i in items))
    assert window.prefix_cache_hit_rate is not None
    print(f"prefix hit rate measured {window.prefix_cache_hit_rate:.3f} vs implied {implied:.3f}")
    assert window.prefix_cache_hit_rate == pytest.approx(implied, abs=0.05)


def test_sessions_resend_the_real_history(smollm2_server: VllmServer) -> None:
    ids = usable_token_ids(str(smollm2_server.model_path))
    sessions = build_sessions(
        ConversationSpec(turns=3), 2, 8, 6, np.random.default_rng(1), lambda n, r: f"hello {n}"
    )
    before = server_sample(
        MetricsPoller(smollm2_server.base_url).fetch(f"{smollm2_server.base_url}/metrics"), 0.0
    )
    result = run_sessions(spec(2, 2), smollm2_server.base_url, smollm2_server.served_name, sessions)
    after = server_sample(
        MetricsPoller(smollm2_server.base_url).fetch(f"{smollm2_server.base_url}/metrics"), 1.0
    )
    rows = sorted(result.requests, key=lambda r: (r.session, r.turn))
    assert [(r.session, r.turn) for r in rows] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert all(r.ok and r.output_tokens == 6 for r in rows)
    for s in (0, 1):
        turns = [r for r in rows if r.session == s]
        # each turn's prompt holds the previous prompt plus the reply: the server counts more tokens
        assert turns[0].input_tokens < turns[1].input_tokens < turns[2].input_tokens
        assert turns[1].input_tokens >= turns[0].input_tokens + 6
    assert summarize_window([before, after], 0.0, 1.0).generation_tokens == 36
    assert ids  # the tokenizer path resolved
