"""A group task (mmlu) keeps its paired test: lm-eval logs samples per subtask, not per group."""

from __future__ import annotations

from pathlib import Path

from harness.accuracy.lmeval import task_results
from harness.rigor.compare import paired_accuracy
from tests.unit.test_accuracy import ARGS, AccuracySpec, TaskSpec, resolve_invocation


def _out(correct_a: list[int], correct_b: list[int]) -> dict:
    def rows(scores: list[int]) -> list[dict]:
        # doc ids restart in every subtask, as in lm-eval
        return [
            {"doc_id": i, "doc_hash": f"h{i}", "filter": "none", "acc": float(s)}
            for i, s in enumerate(scores)
        ]

    return {
        "results": {
            "grp": {"acc,none": 0.5, "acc_stderr,none": 0.05},
            "a": {"acc,none": 0.5},
            "b": {"acc,none": 0.5},
        },
        "group_subtasks": {"grp": ["a", "b"]},
        "samples": {"a": rows(correct_a), "b": rows(correct_b)},
    }


def test_group_samples_are_written_per_subtask_and_paired(tmp_path: Path) -> None:
    inv = resolve_invocation(AccuracySpec(), TaskSpec(name="grp"), ARGS, None)
    runs = []
    for name, a, b in (("base", [1] * 50, [1] * 50), ("cand", [0] * 6 + [1] * 44, [0] * 6 + [1] * 44)):
        run_dir = tmp_path / name
        (run_dir / "samples").mkdir(parents=True)
        r = task_results(_out(a, b), inv, run_dir / "samples", run_dir)["grp"]
        assert r.samples_path == "samples/grp.jsonl"  # the group's log exists (it used to be absent)
        runs.append((r, run_dir / r.samples_path))
    (task, base_log), (_, cand_log) = runs
    p = paired_accuracy(task, base_log, cand_log)
    # 100 documents across two subtasks whose doc ids overlap: 12 lost, none gained.
    assert (p.result.n, p.result.lost, p.result.gained) == (100, 12, 0)
    assert p.one_sided_worse_p < 0.001
