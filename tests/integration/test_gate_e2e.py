"""End to end: two real runs of the same configuration on the vLLM CPU server must pass the gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main

# One bundled offline task and one tiny load scenario: minutes on a laptop CPU. The bounds are
# wide because two back-to-back runs on a shared 2-core machine differ by tens of percent in
# speed; what this test checks is the plumbing (real records → baseline file → verdict → exit 0),
# while the verdict rules themselves are pinned by tests/unit/test_gate.py.
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
    - {name: c1-32-8, input_tokens: 32, output_tokens: 8, num_requests: 4, concurrency: 1, warmup_requests: 1}
gates:
  - {metric: harness_capitals, max_abs_change: 0.05}
  - {metric: output_throughput, scenario: c1-32-8, max_rel_change: 0.60}
  - {metric: p99_ttft_ms, scenario: c1-32-8, max_rel_change: 1.50, max_abs_change: 200}
  - {metric: failed, scenario: c1-32-8, max_abs_change: 0}
"""


@pytest.mark.integration
def test_two_identical_smoke_runs_pass_the_gate(tmp_path: Path) -> None:
    from harness.api import run_suite  # the runner's API; imported here so collection stays light

    suite = tmp_path / "gate-e2e.yaml"
    suite.write_text(SUITE)
    results = tmp_path / "results"

    first = run_suite(str(suite), models=["tiny-llama"], results=results, endpoint=None, progress=False)
    second = run_suite(str(suite), models=["tiny-llama"], results=results, endpoint=None, progress=False)
    assert [r.status for r in first + second] == ["ok", "ok"], [r.error for r in first + second]

    assert main(["baseline", "set", first[0].run_id, "--results", str(results)]) == 0
    baselines = list((results / "baselines").glob("tiny-llama__gate-e2e__*.json"))
    assert len(baselines) == 1

    junit, summary = tmp_path / "gate.xml", tmp_path / "gate.md"
    code = main(
        [
            "gate",
            "--candidate",
            second[0].run_id,
            "--results",
            str(results),
            "--junit",
            str(junit),
            "--summary",
            str(summary),
        ]
    )
    assert code == 0, summary.read_text()
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert {c.get("name") for c in cases} == {
        "harness_capitals",
        "output_throughput",
        "p99_ttft_ms",
        "failed",
    }
    assert summary.read_text().startswith("## harness gate: PASS")
