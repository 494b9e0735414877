"""The gate's paired accuracy verdict on synthetic sample logs, and its noise rule over repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import scipy.stats as ss

from harness.record.run_record import TaskResult
from harness.rigor.compare import (
    SampleLogError,
    noise_check,
    paired_accuracy,
    paired_verdict,
)


def task(value: float, metric: str = "acc", flt: str = "none") -> TaskResult:
    return TaskResult(
        name="harness_capitals",
        metric=metric,
        value=value,
        stderr=0.01,
        n_samples=200,
        num_fewshot=0,
        metrics={f"{metric},{flt}": value, f"{metric}_stderr,{flt}": 0.01},
    )


def write_log(path: Path, scores: list[float], metric: str = "acc", flt: str = "none") -> Path:
    with path.open("w") as fh:
        for i, s in enumerate(scores):
            fh.write(json.dumps({"doc_id": i, "doc_hash": f"h{i}", "filter": flt, metric: s}) + "\n")
            fh.write(json.dumps({"doc_id": i, "doc_hash": f"h{i}", "filter": "other", metric: 1 - s}) + "\n")
    return path


def test_known_flips_give_mcnemar_counts_and_p(tmp_path: Path) -> None:
    base = [1.0] * 120 + [0.0] * 80
    cand = list(base)
    for i in range(15):  # 15 correct answers lost
        cand[i] = 0.0
    for i in range(120, 123):  # 3 gained
        cand[i] = 1.0
    b = write_log(tmp_path / "b.jsonl", base)
    c = write_log(tmp_path / "c.jsonl", cand)
    p = paired_accuracy(task(0.6), b, c)
    assert (p.result.lost, p.result.gained, p.result.n) == (15, 3, 200)
    assert p.worse == 15 and p.better == 3 and p.filter == "none"
    assert p.result.p_value == pytest.approx(ss.binomtest(3, 18, 0.5).pvalue)
    verdict, text = paired_verdict(p, allowed_abs=0.02)
    assert verdict == "regression"
    assert "harness_capitals: 15 documents flipped worse, 3 better of 200" in text and "McNemar" in text


def test_identical_logs_pass(tmp_path: Path) -> None:
    scores = [1.0, 0.0] * 50
    p = paired_accuracy(task(0.5), write_log(tmp_path / "b", scores), write_log(tmp_path / "c", scores))
    assert p.result.p_value == 1.0 and paired_verdict(p, 0.0)[0] == "pass"


def test_few_flips_are_not_significant(tmp_path: Path) -> None:
    base = [1.0] * 100
    cand = [0.0] * 4 + [1.0] * 96  # 4 lost, 0 gained: p = 0.125
    p = paired_accuracy(task(1.0), write_log(tmp_path / "b", base), write_log(tmp_path / "c", cand))
    assert p.result.p_value == pytest.approx(0.125)
    assert paired_verdict(p, allowed_abs=0.0)[0] == "pass"


def test_continuous_metric_uses_the_sign_flip_test(tmp_path: Path) -> None:
    # The paired bootstrap was anti-conservative at small n (issue #21); the sign-flip
    # permutation test holds its level at any n.
    base = [0.5 + 0.001 * i for i in range(100)]
    cand = [v - 0.05 for v in base]
    t = task(0.55, metric="f1")
    p = paired_accuracy(t, write_log(tmp_path / "b", base, "f1"), write_log(tmp_path / "c", cand, "f1"), 2000)
    assert p.result.method == "sign_flip" and p.result.lost == 100
    assert p.result.mean_diff == pytest.approx(-0.05)
    assert paired_verdict(p, allowed_abs=0.01)[0] == "regression"


def test_different_documents_are_refused(tmp_path: Path) -> None:
    b = write_log(tmp_path / "b", [1.0, 0.0, 1.0])
    c = write_log(tmp_path / "c", [1.0, 0.0])
    with pytest.raises(SampleLogError, match="different documents \\(1 only in the baseline"):
        paired_accuracy(task(0.6), b, c)


def test_noise_rule_over_repeats() -> None:
    quiet = noise_check([100.0, 101.0, 99.5], [90.0, 90.5, 89.8])
    assert quiet.beyond_noise is True and quiet.intervals_separate is True
    assert quiet.p_value == pytest.approx(
        ss.ttest_ind([90.0, 90.5, 89.8], [100.0, 101.0, 99.5], equal_var=False).pvalue
    )
    noisy = noise_check([100.0, 80.0, 120.0], [95.0, 75.0, 110.0])
    assert noisy.beyond_noise is False and "overlap" in noisy.note
    one = noise_check([100.0], [90.0, 91.0])
    assert one.beyond_noise is None and "without a noise estimate (1 vs 2 repeats)" in one.note
