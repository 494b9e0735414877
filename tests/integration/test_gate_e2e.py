"""End to end: real runs through the harness-started (fake) engine, a baseline, and the gate.

Two runs of the same configuration must pass; a run whose engine is five times slower per
token must fail on throughput, with exit code 1. The engine is tests.fakeserver, whose speed
is set per run (its answers, and so the accuracy, are the same every time): what is tested is
the plumbing, records → baseline file → verdict → exit code and reports. The verdict rules
themselves are pinned by tests/unit/test_gate.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.api import run_suite
from harness.cli import main
from tests.integration.conftest import FakeEngine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]  # three runs

# Bounds are wide because two back-to-back runs on a shared 2-core machine differ in speed;
# a 20 ms/token engine against a 100 ms/token one is far outside them.
SUITE = """\
name: gate-e2e
description: Two identical tiny runs must pass the gate.
models: [tiny-llama]
seed: 1234
engine:
  extra_args: [--enforce-eager]
accuracy:
  tasks:
    - {name: harness_capitals, num_fewshot: 0, limit: 20}
performance:
  scenarios:
    - {name: c1-32-8, input_tokens: 32, output_tokens: 8, num_requests: 8, concurrency: 1, warmup_requests: 1}
gates:
  - {metric: harness_capitals, max_abs_change: 0.05}
  - {metric: output_throughput, scenario: c1-32-8, max_rel_change: 0.60}
  - {metric: p99_ttft_ms, scenario: c1-32-8, max_rel_change: 1.50, max_abs_change: 200}
  - {metric: failed, scenario: c1-32-8, max_abs_change: 0}
"""


def _gate(candidate: str, results: Path, out: Path) -> tuple[int, Path, Path]:
    junit, summary = out / f"gate-{candidate}.xml", out / f"gate-{candidate}.md"
    args = ["gate", "--candidate", candidate, "--results", str(results)]
    code = main([*args, "--junit", str(junit), "--summary", str(summary)])
    return code, junit, summary


def test_identical_runs_pass_the_gate_and_a_slower_engine_fails_it(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    suite = tmp_path / "gate-e2e.yaml"
    suite.write_text(SUITE)
    results = tmp_path / "results"

    def run(token_delay_ms: int) -> str:
        fake_engine("--fake-token-delay-ms", str(token_delay_ms))
        [rec] = run_suite(str(suite), models=["tiny-llama"], results=results, progress=False)
        assert rec.status == "ok", rec.error
        return rec.run_id

    first, second, slow = run(20), run(20), run(100)

    assert main(["baseline", "set", first, "--results", str(results)]) == 0
    baselines = list((results / "baselines").glob("tiny-llama__gate-e2e__*.json"))
    assert len(baselines) == 1

    code, junit, summary = _gate(second, results, tmp_path)
    assert code == 0, summary.read_text()
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert {c.get("name") for c in cases} == {
        "harness_capitals",
        "output_throughput",
        "p99_ttft_ms",
        "failed",
    }
    assert not [c for c in cases if c.find("failure") is not None]
    assert summary.read_text().startswith("## harness gate: PASS")

    code, junit, summary = _gate(slow, results, tmp_path)
    assert code == 1, summary.read_text()
    failed = {
        c.get("name")
        for c in ET.parse(junit).getroot().findall("testsuite/testcase")
        if c.find("failure") is not None
    }
    assert failed == {"output_throughput"}, summary.read_text()
    assert summary.read_text().startswith("## harness gate: REGRESSION")
