"""Accuracy under load, the pure parts: suite language, pairing, tests, probe, record, tables, gate, chart."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from harness.accuracy.paired import compare_logs, sign_flip_test
from harness.analysis.tables import load_runs, load_tasks
from harness.dashboard.figures import validate
from harness.dashboard.underload import accuracy_vs_load, under_load_section
from harness.gate.underload import under_load_value
from harness.loadgen.invariance import ProbeOutput, compare_outputs, first_divergence
from harness.record.run_record import SCHEMA_VERSION, RunRecord
from harness.record.underload import (
    AccuracyUnderLoad,
    EvalTraffic,
    InvarianceProbe,
    PairedFigures,
    TaskUnderLoad,
)
from harness.spec.suite import SuiteError, parse_suite
from harness.spec.underload import measures_point, tasks_at_load
from harness.storage.store import write_record
from tests.factories import make_record

ROOT = Path(__file__).resolve().parents[2]

SUITE = """\
name: t
accuracy:
  tasks: [{{name: harness_capitals, limit: 20}}, harness_arithmetic]
  under_load: {under_load}
performance:
  scenarios:
    - {{name: chat, input_tokens: 8, output_tokens: 4, num_requests: 4, concurrency: [1, 4]}}
    - {{name: fixed, input_tokens: 8, output_tokens: 4, num_requests: 4, concurrency: 2}}
"""


def _suite(under_load: str) -> object:
    return parse_suite(SUITE.format(under_load=under_load), source="s.yaml")


def test_points_and_tasks_are_checked_when_the_suite_loads() -> None:
    spec = _suite("{points: [chat@c4, fixed], tasks: [harness_capitals], limit: 10}")
    ul = spec.accuracy.under_load  # type: ignore[attr-defined]
    assert measures_point(ul, "chat@c4") and measures_point(ul, "fixed")
    assert not measures_point(ul, "chat@c1") and not measures_point(ul, "chat@c4#2")
    [task] = tasks_at_load(ul, spec.accuracy.tasks)  # type: ignore[attr-defined]
    assert (task.name, task.limit) == ("harness_capitals", 10)
    with pytest.raises(
        SuiteError, match=r"under_load.points: no load point 'chat@c8' \(points: chat@c1, chat@c4"
    ):
        _suite("{points: [chat@c8]}")
    with pytest.raises(SuiteError, match=r"s.yaml:\d+: accuracy: .*'nope' is not in accuracy.tasks"):
        _suite("{points: all, tasks: [nope]}")
    with pytest.raises(SuiteError, match="exceeds task harness_capitals's idle limit 20"):
        _suite("{points: all, limit: 30}")
    with pytest.raises(SuiteError, match="unknown field"):
        _suite("{points: all, limt: 3}")


def _mc_log(path: Path, lls: list[list[float]], acc: list[int]) -> Path:
    with path.open("w") as fh:
        for i, (ll, a) in enumerate(zip(lls, acc, strict=True)):
            row = {
                "doc_id": i,
                "doc_hash": f"h{i}",
                "arguments": [["ctx", f" c{j}"] for j in range(len(ll))],
                "resps": [[[v, False]] for v in ll],
                "filtered_resps": [[v, False] for v in ll],
                "filter": "none",
                "acc": a,
            }
            fh.write(json.dumps(row) + "\n")
    return path


def _gen_log(path: Path, texts: list[str], answers: list[str], em: list[float]) -> Path:
    with path.open("w") as fh:
        for i, (t, a, m) in enumerate(zip(texts, answers, em, strict=True)):
            for flt in ("none", "first-number"):
                row = {
                    "doc_id": i,
                    "doc_hash": f"h{i}",
                    "arguments": [["ctx", {"until": ["\n"]}]],
                    "resps": [[t]],
                    "filtered_resps": [a if flt == "first-number" else t],
                    "filter": flt,
                    "exact_match": m,
                }
                fh.write(json.dumps(row) + "\n")
    return path


def test_multiple_choice_pairing(tmp_path: Path) -> None:
    idle = _mc_log(tmp_path / "idle.jsonl", [[-1, -2], [-3, -1], [-1, -2], [-2, -1]], [1, 1, 0, 1])
    load = _mc_log(tmp_path / "load.jsonl", [[-1.5, -2], [-1, -3], [-2, -1], [-2, -1.25]], [1, 0, 1, 1])
    p = compare_logs(idle, load, "acc", "none")
    assert (p.n, p.flips_better, p.flips_worse, p.method) == (4, 1, 1, "mcnemar_exact")
    assert p.p_value == 1.0 and p.answers_changed_share == 0.5  # docs 1 and 2 chose another choice
    assert p.max_abs_delta_loglik == pytest.approx(2.0) and p.generated_text_changed_share is None
    assert p.output_type == "loglikelihood"
    assert compare_logs(idle, idle, "acc", "none").max_abs_delta_loglik == 0.0


def test_generative_pairing_tells_text_from_answer(tmp_path: Path) -> None:
    idle = _gen_log(tmp_path / "i.jsonl", [" 4\n", " 7", " 2"], ["4", "7", "2"], [1, 0, 1])
    load = _gen_log(tmp_path / "l.jsonl", [" 4 \n", " 7", " 3"], ["4", "7", "3"], [1, 0, 0])
    p = compare_logs(idle, load, "exact_match", "first-number")
    assert (p.flips_worse, p.flips_better) == (1, 0)
    assert p.generated_text_changed_share == pytest.approx(2 / 3)  # doc 0: other text, same answer
    assert p.answers_changed_share == pytest.approx(1 / 3)
    assert p.max_abs_delta_loglik is None and p.output_type == "generate_until"


def test_sign_flip_is_exact_for_few_differences_and_matches_enumeration() -> None:
    d = [0.5, 0.2, -0.1, 0.4, 0.0]
    nz = [x for x in d if x]
    want = np.mean(
        [
            abs(sum(s * x for s, x in zip(signs, nz, strict=True))) >= sum(nz) - 1e-12
            for signs in itertools.product((1, -1), repeat=4)
        ]
    )
    assert sign_flip_test(d) == pytest.approx(want)
    assert sign_flip_test([0.0, 0.0]) == 1.0
    assert sign_flip_test([1.0] * 30) < 0.001  # drawn: (hits + 1) / (draws + 1)


def test_probe_comparison() -> None:
    assert first_divergence(["a", "b"], ["a", "b"]) is None
    assert first_divergence(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert first_divergence(["a"], ["a", "b"]) == 1
    ref = [ProbeOutput(("token_id:1", "token_id:2"), True)] * 2
    got = [ProbeOutput(("token_id:1", "token_id:2"), True), ProbeOutput(("token_id:1", "token_id:9"), True)]
    probe = compare_outputs(ref, got, 2, 16)
    assert (probe.identical, probe.identical_share, probe.first_divergence) == (1, 0.5, [None, 1])
    assert probe.min_first_divergence == 1 and probe.tokens_compared == "token_ids"


def _record() -> RunRecord:
    rec = make_record(scenarios={"chat@c1": {"concurrency": 1}, "chat@c16": {"concurrency": 16}})
    out = []
    for s, worse in zip(rec.scenarios, (0, 7), strict=True):
        paired = PairedFigures(
            n=40, metric="acc", idle_value=0.5, load_value=0.5 - worse / 40, flips_better=0, flips_worse=worse,
            p_value=1.0 if not worse else 0.0156, method="mcnemar_exact", answers_changed_share=worse / 40,
            max_abs_delta_loglik=0.25 * worse, output_type="loglikelihood",
        )  # fmt: skip
        task = TaskUnderLoad(
            task="harness_capitals", metric="acc,none", value=paired.load_value, stderr=0.07, ci95_low=0.3,
            ci95_high=0.6, n_samples=40, samples_path="under_load/x/samples/harness_capitals.jsonl", paired=paired,
        )  # fmt: skip
        acc = AccuracyUnderLoad(
            point=s.name,
            tasks=[task],
            traffic=EvalTraffic(
                requests=10,
                prompts=160,
                prompt_tokens=900,
                completion_tokens=10,
                during_load_share=1.0,
                duration_s=3.0,
            ),
        )
        probe = InvarianceProbe(
            prompts=4, output_tokens=8, identical=4 - bool(worse), identical_share=(4 - bool(worse)) / 4,
            first_divergence=[None, None, None, 3 if worse else None], min_first_divergence=3 if worse else None,
            tokens_compared="token_ids", load_concurrency=s.settings.load.concurrency,
        )  # fmt: skip
        out.append(s.model_copy(update={"accuracy_under_load": acc, "invariance": probe}))
    return rec.model_copy(update={"scenarios": out})


def test_record_schema_tables_gate_and_chart(tmp_path: Path) -> None:
    rec = _record()
    schema = json.loads((ROOT / "schema" / f"run_record.v{SCHEMA_VERSION}.json").read_text())
    jsonschema.validate(json.loads(rec.model_dump_json()), schema)
    results = tmp_path / "results"
    write_record(results / "runs" / rec.run_id, rec)

    tasks = load_tasks(results)
    idle = tasks[tasks.load_point.isna()]
    at = tasks[tasks.load_point == "chat@c16"]
    assert set(idle.task) >= {"harness_capitals"} and list(at.task) == ["harness_capitals"]
    assert int(at["paired.flips_worse"].iloc[0]) == 7 and int(at["concurrency"].iloc[0]) == 16
    runs = load_runs(results)
    row = runs[runs.scenario == "chat@c16"]
    assert float(row["invariance.identical_share"].iloc[0]) == 0.75
    assert int(row["accuracy_under_load.traffic.requests"].iloc[0]) == 10

    assert under_load_value(rec.performance["chat@c16"], "flips_worse") == 7.0
    assert under_load_value(rec.performance["chat@c16"], "answers_changed_share") == 7 / 40
    assert under_load_value(make_record().scenarios[0], "flips_worse") is None

    spec = accuracy_vs_load([rec])
    assert spec is not None
    validate(spec)
    html = under_load_section(rec)
    assert "chat@c16" in html and "harness_capitals" in html and "3/4" in html
    assert accuracy_vs_load([make_record()]) is None and under_load_section(make_record()) == ""


def test_gate_on_flips_worse_at_a_named_point() -> None:
    from harness.gate import compare
    from harness.spec.suite import GateThreshold

    base = _record()
    worse = base.model_copy(update={"run_id": "cand"})
    s16 = worse.performance["chat@c16"]
    acc = s16.accuracy_under_load
    assert acc is not None and acc.tasks[0].paired is not None
    paired = acc.tasks[0].paired.model_copy(update={"flips_worse": 12})
    task = acc.tasks[0].model_copy(update={"paired": paired})
    s16 = s16.model_copy(update={"accuracy_under_load": acc.model_copy(update={"tasks": [task]})})
    worse = worse.model_copy(update={"scenarios": [worse.scenarios[0], s16]})
    gate = [GateThreshold(metric="flips_worse", scenario="chat@c16", max_abs_change=2)]
    report = compare(base, worse, gate)
    [c] = report.comparisons
    assert (c.metric, c.scenario, c.verdict) == ("flips_worse", "chat@c16", "regression")
    assert compare(base, base, gate).comparisons[0].verdict != "regression"
