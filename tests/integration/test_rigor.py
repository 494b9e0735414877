"""Repeats, sweep, SLO, capacity search and the paired accuracy gate on a real vLLM server.

Two runs of the same model and suite on the shared SmolLM2 server must pass the gate; the same
pair with the candidate's sample log altered so that correct documents flip to wrong must fail
it, naming the task and the flip counts.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine.vllm_server import VllmServer

SUITE = """\
name: rigor-it
models: [smollm2-135m]
seed: 1234
accuracy:
  tasks:
    - {name: harness_capitals, num_fewshot: 0}
performance:
  repeats: 2
  slo: {ttft_ms: 20000, tpot_ms: 2000}
  # vLLM-CPU shares the machine's cores with the client, whose loop then lags tens of ms: this
  # test is about repeats and gates, not timing, so it takes the limit the CPU suites take.
  validity: {max_loop_lag_ms: 250}
  scenarios:
    - {name: chat, input_tokens: 32, output_tokens: 8, num_requests: 4, concurrency: [1, 2], warmup_requests: 1}
    - name: cap
      input_tokens: 32
      output_tokens: 8
      num_requests: 4
      warmup_requests: 1
      repeats: 1
      search: {attainment: 0.75, over: request_rate, low: 0.5, high: 1, max_probes: 2}
gates:
  - {metric: harness_capitals, max_abs_change: 0.02}
  - {metric: output_throughput, scenario: chat@c1, max_rel_change: 0.9}
"""


@pytest.mark.integration
def test_rigor_records_and_the_paired_gate(smollm2_server: VllmServer, tmp_path: Path) -> None:
    from harness.api import run_suite

    suite = tmp_path / "rigor-it.yaml"
    suite.write_text(SUITE)
    results = tmp_path / "results"
    url = smollm2_server.base_url
    [first] = run_suite(str(suite), models=["smollm2-135m"], results=results, endpoint=url)
    [second] = run_suite(str(suite), models=["smollm2-135m"], results=results, endpoint=url)
    assert (first.status, second.status) == ("ok", "ok"), (first.error, second.error)

    c1 = second.performance["chat@c1"]
    assert c1.rigor is not None and len(c1.rigor.repeats) == 2
    spread = c1.rigor.spread["output_throughput"]
    assert spread.n == 2 and spread.method == "student_t" and spread.ci95_low is not None
    assert c1.completed == 8 and c1.slo_attainment == 1.0 and c1.request_goodput is not None
    assert c1.valid is True and c1.validity_reasons == []
    caps = [sr.rigor.capacity for sr in second.performance.values() if sr.rigor and sr.rigor.capacity]
    assert len(caps) == 1 and caps[0].probes and caps[0].probes[0].load == 0.5

    assert main(["baseline", "set", first.run_id, "--results", str(results)]) == 0
    summary = tmp_path / "pass.md"
    # Two repeats of four requests on a shared CPU can leave the throughput check `inconclusive`
    # (the honest verdict at that noise); the user's policy `--inconclusive pass` lets it through,
    # while a regression (the paired accuracy check's, or any other) still fails the gate.
    gate_args = ["gate", "--candidate", second.run_id, "--results", str(results), "--summary", str(summary)]
    assert main([*gate_args, "--inconclusive", "pass"]) == 0, summary.read_text()  # a regression fails

    # The same candidate with correct answers turned wrong in its sample log.
    altered = results / "runs" / (second.run_id + "-altered")
    shutil.copytree(results / "runs" / second.run_id, altered)
    log = altered / "samples" / "harness_capitals.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    flipped = 0
    for row in rows:
        if row.get("acc") == 1.0 and flipped < 12:
            row["acc"] = 0.0
            flipped += 1
    assert flipped >= 8, "too few correct answers to flip"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = tmp_path / "fail.md"
    code = main(["gate", "--candidate", str(altered), "--results", str(results), "--summary", str(summary)])
    text = summary.read_text()
    assert code == 1, text
    # Greedy log-likelihoods on one server are deterministic, so the flips are exactly ours.
    m = re.search(r"harness_capitals: (\d+) documents flipped worse, (\d+) better of (\d+)", text)
    assert m is not None, text
    assert (int(m.group(1)), int(m.group(2))) == (flipped, 0), text
