"""Accuracy under load against a fake engine whose answers change above K requests in flight.

Ground truth (STYLE.md, habit 18): ``--fake-corrupt-above-inflight 3`` answers with other
log-probabilities and tokens only while more than 3 requests are in flight. A multiple-choice
task is first calibrated so that the fake's idle answer is the gold one (its idle accuracy is then
1, so every changed answer is a worse flip). At ``solo@c1`` (1 load request + 1 evaluation request
+ the probe: at most 3 in flight) the harness must report no flip; at ``chat@c8`` significant worse
flips (McNemar p < 0.05), naming the point and the task. A fake that corrupts nothing reports zero
flips at every point, for a multiple-choice and a generative task.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.accuracy.lmeval import TASKS_DIR
from harness.analysis.tables import load_runs, load_tasks
from harness.api import run_suite
from harness.record.run_record import RunRecord
from tests.integration.conftest import FakeEngine

pytestmark = pytest.mark.integration

SUITE = """\
name: under-load-it
models: [tiny-llama]
seed: 7
accuracy:
  include_path: tasks
  tasks:
    - {{name: {mc}, num_fewshot: 0, limit: 40}}
{extra}
  batch_size: 4
  under_load:
    points: [solo@c1, chat@c8]
    probe: {{prompts: 3, input_tokens: 16, output_tokens: 4}}
performance:
  scenarios:
    - {{name: solo, input_tokens: 16, output_tokens: 4, num_requests: 60, concurrency: [1], warmup_requests: 0}}
    - {{name: chat, input_tokens: 16, output_tokens: 4, num_requests: 800, concurrency: [8], warmup_requests: 0}}
"""


def _task(tmp: Path, name: str, source: str, gold: dict[int, int] | None = None) -> None:
    """A copy of a bundled task under a new name (and, for multiple choice, new gold answers)."""
    src = TASKS_DIR / source
    dest = tmp / "tasks" / name
    dest.mkdir(parents=True, exist_ok=True)
    [yml] = src.glob("*.yaml")
    [data] = src.glob("*.jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    if gold is not None:
        rows = [{**r, "gold": gold.get(i, r["gold"])} for i, r in enumerate(rows)]
    (dest / data.name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = yml.read_text().replace(f"task: {source}", f"task: {name}").replace("@DATA_DIR@", str(dest))
    (dest / yml.name).write_text(text)


def _suite(tmp: Path, mc: str, extra: str = "", load: bool = True) -> Path:
    path = tmp / "suite.yaml"
    text = SUITE.format(mc=mc, extra=extra)
    if not load:  # the idle evaluation alone
        text = text.split("  under_load:")[0]
    path.write_text(text)
    return path


def _idle_answers(record: RunRecord, run_dir: Path, task: str) -> dict[int, int]:
    """The fake's idle choice per document (argmax log-likelihood), from the idle sample log."""
    samples = run_dir / record.accuracy[task].samples_path  # type: ignore[operator]
    out = {}
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        # acc_norm, the headline: log-likelihood per character of the continuation
        scores = [r[0] / len(arg[1]) for r, arg in zip(row["filtered_resps"], row["arguments"], strict=True)]
        out[int(row["doc_id"])] = max(range(len(scores)), key=scores.__getitem__)
    return out


def test_worse_flips_only_above_k_in_flight(fake_engine: FakeEngine, tmp_path: Path) -> None:
    results = tmp_path / "results"
    _task(tmp_path, "fake_capitals", "harness_capitals")
    fake_engine("--fake-token-delay-ms", "10", "--fake-corrupt-above-inflight", "3")
    [calib] = run_suite(str(_suite(tmp_path, "fake_capitals", load=False)), results=results)
    assert calib.status == "ok", calib.error
    gold = _idle_answers(calib, results / "runs" / calib.run_id, "fake_capitals")
    _task(tmp_path, "fake_capitals", "harness_capitals", gold)  # the fake's idle answers are now right

    [rec] = run_suite(str(_suite(tmp_path, "fake_capitals")), results=results)
    assert rec.status == "ok", rec.error
    assert rec.accuracy["fake_capitals"].value == 1.0

    low, high = rec.performance["solo@c1"], rec.performance["chat@c8"]
    for point in (low, high):
        acc = point.accuracy_under_load
        assert acc is not None and acc.point == point.name and acc.error is None
        assert acc.traffic is not None and acc.traffic.requests >= 40 and acc.traffic.prompts >= 160
        assert acc.traffic.prompt_tokens and acc.traffic.prompt_tokens > 0
        # the latency figures are the load generator's own requests, not the evaluation's
        assert point.completed == point.settings.load.num_requests
    [lo] = low.accuracy_under_load.tasks  # type: ignore[union-attr]
    [hi] = high.accuracy_under_load.tasks  # type: ignore[union-attr]
    assert lo.task == hi.task == "fake_capitals"
    assert lo.paired is not None and hi.paired is not None
    assert (lo.paired.flips_worse, lo.paired.flips_better, lo.paired.p_value) == (0, 0, 1.0)
    assert lo.paired.answers_changed_share == 0.0 and lo.paired.max_abs_delta_loglik == 0.0
    assert high.accuracy_under_load.traffic.during_load_share == 1.0  # type: ignore[union-attr]
    assert hi.paired.method == "mcnemar_exact" and hi.paired.n == 40
    assert hi.paired.flips_better == 0 and hi.paired.flips_worse >= 8, hi.paired
    assert hi.paired.p_value < 0.05
    assert hi.paired.answers_changed_share > 0  # argmax of the raw log-likelihood changed
    assert hi.paired.max_abs_delta_loglik is not None and hi.paired.max_abs_delta_loglik > 0
    assert hi.value < 1.0 and hi.ci95_low is not None

    assert low.invariance is not None and low.invariance.identical_share == 1.0
    assert high.invariance is not None and high.invariance.identical_share < 1.0
    assert high.invariance.min_first_divergence == 0

    tasks = load_tasks(results)
    at = tasks[(tasks.run_id == rec.run_id) & (tasks.load_point == "chat@c8")]
    assert list(at.task) == ["fake_capitals"]
    assert int(at["paired.flips_worse"].iloc[0]) == hi.paired.flips_worse
    runs = load_runs(results)
    row = runs[(runs.run_id == rec.run_id) & (runs.scenario == "chat@c8")]
    assert float(row["invariance.identical_share"].iloc[0]) < 1.0

    from harness.accuracy.underload_report import under_load_lines

    text = "\n".join(under_load_lines(rec))
    assert "chat@c8" in text and "fake_capitals" in text


def test_no_corruption_no_flips(fake_engine: FakeEngine, tmp_path: Path) -> None:
    results = tmp_path / "results"
    _task(tmp_path, "fake_capitals", "harness_capitals")
    _task(tmp_path, "fake_arithmetic", "harness_arithmetic")
    fake_engine("--fake-token-delay-ms", "10")
    extra = "    - {name: fake_arithmetic, num_fewshot: 0, limit: 20}"
    [rec] = run_suite(str(_suite(tmp_path, "fake_capitals", extra)), results=results)
    assert rec.status == "ok", rec.error
    for name in ("solo@c1", "chat@c8"):
        point = rec.performance[name]
        assert point.accuracy_under_load is not None
        rows = {t.task: t for t in point.accuracy_under_load.tasks}
        assert set(rows) == {"fake_capitals", "fake_arithmetic"}
        for t in rows.values():
            assert t.paired is not None, t.reason
            assert (t.paired.flips_worse, t.paired.flips_better) == (0, 0)
            assert t.paired.answers_changed_share == 0.0
            assert t.value == rec.accuracy[t.task].value
        assert rows["fake_arithmetic"].paired.generated_text_changed_share == 0.0  # type: ignore[union-attr]
        assert rows["fake_arithmetic"].paired.output_type == "generate_until"  # type: ignore[union-attr]
        assert rows["fake_capitals"].paired.max_abs_delta_loglik == 0.0  # type: ignore[union-attr]
        assert point.invariance is not None and point.invariance.identical_share == 1.0
