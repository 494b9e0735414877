"""The gate with repeats, paired sample logs and validity: verdicts on synthetic runs."""

from __future__ import annotations

import json
from pathlib import Path

from harness.gate import compare, render_markdown
from harness.record.run_record import RunRecord
from harness.spec.suite import GateThreshold
from tests.factories import make_record, task_result
from tests.unit.test_rigor_execute import _run

ACC = [GateThreshold(metric="harness_capitals", max_abs_change=0.02)]


def _logs(folder: Path, scores: list[float]) -> Path:
    folder.mkdir(parents=True)
    with (folder / "harness_capitals.jsonl").open("w") as fh:
        for i, s in enumerate(scores):
            fh.write(json.dumps({"doc_id": i, "doc_hash": f"h{i}", "filter": "none", "acc": s}) + "\n")
    return folder


def _acc_record(value: float) -> RunRecord:
    t = task_result("harness_capitals", value, samples_path="samples/harness_capitals.jsonl")
    t = t.model_copy(update={"metrics": {"acc,none": value, "acc_stderr,none": 0.03}, "metric": "acc"})
    return make_record(accuracy={"harness_capitals": t}, analytics=None)


def test_paired_accuracy_regression_names_the_flips(tmp_path: Path) -> None:
    base = [1.0] * 60 + [0.0] * 40
    cand = [0.0] * 14 + [1.0] * 46 + [1.0] * 2 + [0.0] * 38  # 14 lost, 2 gained
    b, c = _logs(tmp_path / "b", base), _logs(tmp_path / "c", cand)
    report = compare(_acc_record(0.60), _acc_record(0.60), ACC, samples=(b, c))
    [cmp] = report.comparisons
    assert "- harness_capitals: 14 documents flipped worse, 2 better of 100" in render_markdown(report)
    assert cmp.verdict == "regression" and report.exit_code == 1
    assert cmp.reason.startswith("14 documents flipped worse, 2 better of 100")
    assert (
        (cmp.noise_basis or "").startswith("paired McNemar p = ")
        and cmp.change_abs is not None
        and round(cmp.change_abs, 2) == -0.12
    )
    # The record's means agree (0.60 both): only the paired comparison sees the flips. Unpaired,
    # stderrs of 0.03 a side cannot confirm a change within 0.02 (the old rule passed it).
    unpaired = compare(_acc_record(0.60), _acc_record(0.60), ACC)
    assert unpaired.comparisons[0].verdict == "inconclusive"


def test_paired_accuracy_same_logs_pass_and_few_flips_are_noise(tmp_path: Path) -> None:
    base = [1.0] * 60 + [0.0] * 40
    same = compare(
        _acc_record(0.6),
        _acc_record(0.6),
        ACC,
        samples=(_logs(tmp_path / "a", base), _logs(tmp_path / "b", base)),
    )
    assert same.comparisons[0].verdict == "pass"
    # 3 lost: worse by 0.03 in [-0.004, 0.064], straddling 0.02 (the old rule: within_noise, passed)
    few = [0.0] * 3 + [1.0] * 57 + [0.0] * 40
    noisy = compare(
        _acc_record(0.6),
        _acc_record(0.6),
        ACC,
        samples=(_logs(tmp_path / "c", base), _logs(tmp_path / "d", few)),
    )
    assert noisy.comparisons[0].verdict == "inconclusive"


def test_missing_logs_fall_back_to_unpaired(tmp_path: Path) -> None:
    report = compare(_acc_record(0.6), _acc_record(0.6), ACC, samples=(tmp_path / "x", tmp_path / "y"))
    assert report.comparisons[0].verdict == "inconclusive" and "unpaired" in report.comparisons[0].reason


def _perf_record(slowdown: float, repeats: int) -> RunRecord:
    body = f"""  repeats: {repeats}
  scenarios:
    - {{name: chat, input_tokens: 16, output_tokens: 11, num_requests: 8, concurrency: 1}}
"""
    _, results, _ = _run(body, slowdown)
    return make_record(accuracy={}, scenarios=results, analytics=None)


THR = [GateThreshold(metric="output_throughput", scenario="chat", max_rel_change=0.05)]


def test_perf_regression_needs_to_be_beyond_noise_over_repeats() -> None:
    report = compare(_perf_record(1.0, 3), _perf_record(1.3, 3), THR)
    [cmp] = report.comparisons
    assert cmp.verdict == "regression" and "all beyond the allowed" in cmp.reason
    assert cmp.noise_basis == "3 repeats"
    assert cmp.ci_low is not None and cmp.ci_high is not None and cmp.ci_high < -cmp.allowed_abs
    same = compare(_perf_record(1.0, 3), _perf_record(1.0, 3), THR)
    assert same.comparisons[0].verdict == "pass"


def test_one_repeat_takes_the_batch_means_noise_of_its_run() -> None:
    # The old rule compared on the threshold alone; one repeat now brings its request-level noise.
    report = compare(_perf_record(1.0, 1), _perf_record(1.3, 3), THR)
    [cmp] = report.comparisons
    assert cmp.verdict == "regression"
    assert cmp.noise_basis is not None and cmp.noise_basis.startswith("batch means of ")
    assert cmp.noise_basis.endswith(" / 3 repeats")


def test_an_invalid_point_is_refused_with_its_reason() -> None:
    good = _perf_record(1.0, 1)
    sr = good.performance["chat"]
    bad_sr = sr.model_copy(
        update={"valid": False, "validity_reasons": ["too few requests: 8 completed < minimum 50"]}
    )
    bad = good.model_copy(update={"scenarios": [bad_sr]})
    report = compare(good, bad, THR)
    assert report.exit_code == 2 and report.refused
    assert "candidate chat is invalid: too few requests: 8 completed < minimum 50" in report.headline()
    assert compare(good, bad, THR, allow_mismatch=True).exit_code == 2  # not a mismatch to wave through
