"""`harness decide` reads accuracy at the operating point where the record measured it under load.

Synthetic records: a capacity search whose probes carry ``accuracy_under_load`` (as a suite with
``accuracy.under_load: {points: all}`` leaves them), with per-document sample logs idle and at
load, so the paired tests across rows can be checked document by document.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.decide.load import doc_scores
from harness.decide.render import render_markdown
from harness.decide.rows import decision_row
from harness.decide.verdicts import Constraints, DocScores, decide
from harness.record.run_record import RunRecord
from harness.record.underload import AccuracyUnderLoad, EvalTraffic, PairedFigures, TaskUnderLoad
from tests.decidedata import cap_record
from tests.factories import make_scenario, task_result

N = 40
TASK = "arc_challenge"  # acc_norm, filter none (tests.factories)


def _write_log(path: Path, scores: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"doc_id": i, "doc_hash": f"h{i}", "filter": "none", "acc_norm": v} for i, v in enumerate(scores)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _under_load(point: str, idle: list[float], load: list[float], share: float = 1.0) -> AccuracyUnderLoad:
    n = len(load)
    worse = sum(1 for a, b in zip(idle, load, strict=False) if a > b)
    better = sum(1 for a, b in zip(idle, load, strict=False) if a < b)
    paired = PairedFigures(
        n=n,
        metric="acc_norm",
        idle_value=sum(idle[:n]) / n,
        load_value=sum(load) / n,
        flips_better=better,
        flips_worse=worse,
        p_value=0.03 if worse else 1.0,
        method="mcnemar_exact",
        answers_changed_share=(worse + better) / n,
        output_type="loglikelihood",
    )
    task = TaskUnderLoad(
        task=TASK,
        metric="acc_norm,none",
        value=sum(load) / n,
        stderr=0.07,
        n_samples=n,
        samples_path=f"under_load/{point}/samples/{TASK}.jsonl",
        paired=paired,
    )
    traffic = EvalTraffic(
        requests=10,
        prompts=n,
        prompt_tokens=None,
        completion_tokens=None,
        during_load_share=share,
        duration_s=5.0,
    )
    return AccuracyUnderLoad(point=point, tasks=[task], traffic=traffic)


def record_at_load(
    tmp: Path,
    model: str,
    idle: list[float],
    load: dict[str, list[float]] | None = None,
    *,
    tok_s: float = 100.0,
    rates: dict[str, float] | None = None,
    error: str | None = None,
) -> tuple[RunRecord, Path]:
    """A capacity record (capacity point `cap@r4`) with idle scores, and ``load``: point -> the
    scores evaluated beside that point's load (extra points at ``rates``: point -> req/s)."""
    rec = cap_record(
        model, sum(idle) / len(idle), tok_s, variant="base", n=len(idle), se=0.07, hardware="cpu"
    )
    run_dir = tmp / rec.run_id
    task = task_result(
        TASK, (sum(idle) / len(idle), 0.07), n_samples=len(idle), samples_path=f"samples/{TASK}.jsonl"
    )
    _write_log(run_dir / f"samples/{TASK}.jsonl", idle)
    perf = dict(rec.performance)
    for name, rate in (rates or {}).items():
        perf[name] = make_scenario(name, concurrency=None, request_rate=rate, output_throughput=tok_s / 2)
    for name, scores in (load or {}).items():
        acc = _under_load(name, idle, scores)
        if error is not None:
            acc = AccuracyUnderLoad(point=name, error=error)
        perf[name] = perf[name].model_copy(update={"accuracy_under_load": acc})
        _write_log(run_dir / f"under_load/{name}/samples/{TASK}.jsonl", scores)
    rec = rec.model_copy(update={"scenarios": list(perf.values()), "tasks": [task]})
    return rec, run_dir


IDLE = [1.0] * 30 + [0.0] * 10  # 0.75
LOAD = [1.0] * 24 + [0.0] * 16  # 0.60: six documents right idle and wrong at load


def test_a_row_reads_accuracy_at_its_capacity_point_and_says_so(tmp_path: Path) -> None:
    rec, _ = record_at_load(tmp_path, "smollm2-135m", IDLE, {"cap@r4": LOAD})
    row = decision_row(rec)
    assert row.point == "cap@r4" and row.accuracy_at == "cap@r4"
    assert row.accuracy == pytest.approx(0.60) and row.idle_accuracy == pytest.approx(0.75)
    assert row.n_samples == N
    assert row.accuracy_source.startswith("at load point cap@r4: arc_challenge")
    (t,) = row.tasks
    assert t.source == "cap@r4" and t.idle_value == pytest.approx(0.75)
    assert t.vs_idle is not None and "−6/+0 flipped" in t.vs_idle and "same 40 documents" in t.vs_idle


def test_without_accuracy_under_load_the_row_is_idle_and_says_why(tmp_path: Path) -> None:
    rec, _ = record_at_load(tmp_path, "smollm2-135m", IDLE)
    row = decision_row(rec)
    assert row.accuracy_at == "idle" and row.accuracy == pytest.approx(0.75)
    assert row.accuracy_source == "idle: the suite measured no accuracy under load (accuracy.under_load)"
    failed, _ = record_at_load(tmp_path, "smollm2-135m", IDLE, {"cap@r4": LOAD}, error="lm-eval exited 1")
    row = decision_row(failed)
    assert (
        row.accuracy_at == "idle"
        and "evaluation under load failed (cap@r4: lm-eval exited 1)" in row.accuracy_source
    )


def test_the_nearest_point_below_is_used_never_one_above(tmp_path: Path) -> None:
    below, _ = record_at_load(
        tmp_path, "smollm2-135m", IDLE, {"cap@r2": LOAD, "cap@r1": IDLE}, rates={"cap@r2": 2.0, "cap@r1": 1.0}
    )
    row = decision_row(below)
    assert row.accuracy_at == "cap@r2" and row.accuracy == pytest.approx(0.60)
    assert "nearest below the operating point" in row.accuracy_source
    above, _ = record_at_load(tmp_path, "smollm2-135m", IDLE, {"cap@r8": LOAD}, rates={"cap@r8": 8.0})
    row = decision_row(above)
    assert row.accuracy_at == "idle" and row.accuracy == pytest.approx(0.75)
    assert "only at cap@r8, none at or below cap@r4's load (4 req/s)" in row.accuracy_source


def test_a_fixed_scenario_reads_its_own_point(tmp_path: Path) -> None:
    rec, _ = record_at_load(tmp_path, "smollm2-135m", IDLE, {"cap@r4": LOAD})
    perf = {"busy@c16": make_scenario("busy@c16", concurrency=16).model_copy(
        update={"accuracy_under_load": _under_load("busy@c16", IDLE, LOAD)}
    )}  # fmt: skip
    rec = rec.model_copy(update={"scenarios": list(perf.values())})
    row = decision_row(rec, scenario="busy@c16")
    assert row.basis == "scenario busy@c16" and row.accuracy_at == "busy@c16"
    assert row.accuracy_source.startswith("at load point busy@c16")


def _scores(pairs: list[tuple[RunRecord, Path]]) -> tuple[list, dict[str, DocScores | None]]:
    rows = [decision_row(rec, run_dir=d) for rec, d in pairs]
    return rows, {r.run_id: doc_scores(rec, d, r) for r, (rec, d) in zip(rows, pairs, strict=True)}


def test_the_paired_test_pairs_like_with_like_and_says_where_each_side_was_measured(tmp_path: Path) -> None:
    # qwen: idle 0.75, at its capacity point 0.60 (six documents lost). mistral: idle only, the
    # same documents right as qwen idle. Paired at load vs idle, qwen lost 6 documents to mistral;
    # had the test read qwen's idle log, it would see no difference at all.
    loaded = record_at_load(tmp_path, "qwen2.5-7b", IDLE, {"cap@r4": LOAD}, tok_s=200.0)
    idle = record_at_load(tmp_path, "mistral-7b", IDLE, tok_s=100.0)
    rows, scores = _scores([loaded, idle])
    dec = decide(rows, scores)
    assert dec.reference == "mistral-7b@base"  # the most accurate (0.75 idle vs 0.60 at load)
    q = next(d for d in dec.rows if d.row.key == "qwen2.5-7b@base")
    t = q.vs_reference
    assert t is not None and t.method == "mcnemar_exact" and t.n == N
    assert (t.better, t.worse) == (0, 6) and t.diff == pytest.approx(-0.15)
    assert t.note == "qwen2.5-7b@base vs mistral-7b@base: arc_challenge at load point cap@r4 vs idle"
    assert "at load point cap@r4 vs idle" in t.describe()
    md = render_markdown([dec])
    assert "| cap@r4 |" in md and "| idle |" in md
    assert "some rows' accuracy is at their load point and others' idle" in md
    # Both idle: the same documents, no note (qwen, as accurate and faster, is the reference).
    rows2, scores2 = _scores([record_at_load(tmp_path, "qwen2.5-7b", IDLE, tok_s=200.0), idle])
    t2 = next(d for d in decide(rows2, scores2).rows if d.row.key == "mistral-7b@base").vs_reference
    assert t2 is not None and t2.note is None and (t2.better, t2.worse) == (0, 0)


def test_a_load_subset_of_the_documents_is_paired_on_the_documents_both_evaluated(tmp_path: Path) -> None:
    # At load, qwen evaluated the first 20 documents only (a smaller under_load.limit).
    sub = [1.0] * 14 + [0.0] * 6  # of the first 20 (all right idle), six lost at load
    loaded = record_at_load(tmp_path, "qwen2.5-7b", IDLE, {"cap@r4": sub}, tok_s=200.0)
    idle = record_at_load(tmp_path, "mistral-7b", IDLE, tok_s=100.0)
    rows, scores = _scores([loaded, idle])
    dec = decide(rows, scores, Constraints(min_samples=20))
    q = next(d for d in dec.rows if d.row.key == "qwen2.5-7b@base")
    assert q.row.n_samples == 20 and q.verdict != "not comparable", q.reason
    t = q.vs_reference
    assert t is not None and t.n == 20 and (t.better, t.worse) == (0, 6)
    assert t.diff == pytest.approx(-6 / 20)
    assert t.note is not None and t.note.startswith("paired on the 20 documents both evaluated")


def test_a_task_not_evaluated_under_load_stays_idle_beside_one_that_was(tmp_path: Path) -> None:
    rec, _ = record_at_load(tmp_path, "smollm2-135m", IDLE, {"cap@r4": LOAD})
    other = task_result("hellaswag", (0.5, 0.05), n_samples=N, samples_path=None)
    rec = rec.model_copy(update={"tasks": [*rec.tasks, other]})
    row = decision_row(rec)
    assert row.accuracy_at == "cap@r4 + idle"
    assert row.accuracy == pytest.approx((0.60 + 0.5) / 2)
    assert row.accuracy_source.endswith("; idle (not evaluated under load): hellaswag")
    assert {t.task: t.source for t in row.tasks} == {TASK: "cap@r4", "hellaswag": "idle"}


def test_the_decision_page_shows_where_each_accuracy_was_measured(tmp_path: Path) -> None:
    from harness.dashboard.decidepage import decision_page

    loaded = record_at_load(tmp_path, "qwen2.5-7b", IDLE, {"cap@r4": LOAD}, tok_s=200.0)
    idle = record_at_load(tmp_path, "mistral-7b", IDLE, tok_s=100.0)
    rows, scores = _scores([loaded, idle])
    html = decision_page([decide(rows, scores)], tmp_path / "dash", "now")
    assert 'class="se acc-at acc-load"' in html and ">at load point cap@r4</span>" in html
    assert 'class="se acc-at acc-idle"' in html and ">idle</span>" in html
    assert "qwen2.5-7b@base: accuracy at load point cap@r4: arc_challenge" in html
    assert "Accuracy at the operating point where it was measured under load, else idle" in html
