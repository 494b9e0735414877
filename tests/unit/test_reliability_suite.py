"""Suites that cannot exhaust memory or hide mistakes (issue 28, items 4, 7 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec.suite import SuiteError, load_suite, parse_suite
from harness.spec.yaml_load import MAX_NODES, expanded_size, load_suite_yaml

SCENARIO = "{name: %s, num_requests: 2, concurrency: 1, input_tokens: 8, output_tokens: 8}"


def _laughs(levels: int) -> str:
    lines = ["name: laughs", "accuracy:", "  tasks: [harness_arithmetic]", "  gen_kwargs:"]
    lines.append('    l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    for i in range(1, levels):
        lines.append(f"    l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_at_load_without_expanding() -> None:
    text = _laughs(9)
    assert len(text) < 1000  # a few hundred bytes, 9^9 values once expanded
    with pytest.raises(SuiteError, match=f"more than {MAX_NODES} values once aliases are expanded"):
        parse_suite(text, "laughs.yaml")


def test_a_few_honest_aliases_still_load() -> None:
    spec = parse_suite(_laughs(3))
    assert spec.accuracy.gen_kwargs is not None and len(spec.accuracy.gen_kwargs["l2"]) == 9


def test_expanded_size_counts_shared_nodes_each_time_and_refuses_recursion() -> None:
    node, _ = load_suite_yaml("a: &x [1, 2]\nb: [*x, *x]\n")
    assert node is not None and expanded_size(node) == 1 + (1 + 3) + (
        1 + (1 + 3 + 3)
    )  # map, a: [1, 2], b: [x, x]
    with pytest.raises(SuiteError, match="recursive alias|invalid YAML"):
        parse_suite("a: &x [*x]\n")


def test_duplicate_keys_are_refused_naming_both_lines() -> None:
    with pytest.raises(
        SuiteError, match=r"s.yaml:4: invalid YAML: duplicate key 'seed': first at line 2, again at line 4"
    ):
        parse_suite("name: s\nseed: 1\nmodels: []\nseed: 2\n", "s.yaml")


def test_merge_keys_may_be_overridden() -> None:
    text = "name: s\nengine:\n  <<: &e {max_model_len: 512}\n  max_model_len: 1024\n"
    assert parse_suite(text).engine.max_model_len == 1024


@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_a_message_not_a_recursion_error(depth: int) -> None:
    # ours refuses past 64 levels; libyaml itself stops at 1000 ("maximum nesting depth")
    with pytest.raises(
        SuiteError, match="deep.yaml:2: invalid YAML: (nested deeper than 64|.*nesting depth)"
    ):
        parse_suite("name: s\ndescription: " + "[" * depth + "]" * depth + "\n", "deep.yaml")


def test_a_suite_that_is_not_utf8_names_the_byte_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_bytes(b"name: s\ndescription: caf\xe9\n")
    with pytest.raises(SuiteError, match=r"bad.yaml:2: not UTF-8 text \(byte 0xe9 at offset 24\)"):
        load_suite(p)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("scenario", '"a\\0b"', "control characters"),
        ("scenario", "x" * 201, "at most 200"),
        ("task", '"t\\x07"', "control characters"),
        ("suite", '"s\\0"', "control characters"),
    ],
)
def test_names_are_checked_at_load(field: str, value: str, message: str) -> None:
    name = value if field == "suite" else "s"
    task = value if field == "task" else "harness_arithmetic"
    scen = value if field == "scenario" else "c1"
    text = (
        f"name: {name}\naccuracy:\n  tasks: [{task}]\nperformance:\n  scenarios:\n    - {SCENARIO % scen}\n"
    )
    with pytest.raises(SuiteError, match=message):
        parse_suite(text, "n.yaml")


def test_duplicate_task_names_are_refused() -> None:
    text = "name: s\naccuracy:\n  tasks:\n    - {name: harness_capitals, limit: 2}\n    - {name: harness_capitals, limit: 3}\n"
    with pytest.raises(
        SuiteError, match=r"n.yaml:5: accuracy.tasks.1.name: duplicate task name 'harness_capitals'"
    ):
        parse_suite(text, "n.yaml")


@pytest.mark.parametrize("rate", ["1e-300", ".inf", ".nan", "1e9"])
def test_request_rate_is_bounded(rate: str) -> None:
    scen = f"{{name: r, num_requests: 2, request_rate: {rate}, input_tokens: 8, output_tokens: 8}}"
    with pytest.raises(SuiteError, match=r"request_rate: .* requests/s is outside \[0.001, 1e\+06\]"):
        parse_suite(f"name: s\nperformance:\n  scenarios:\n    - {scen}\n", "r.yaml")


def test_a_sweep_of_rates_is_bounded_value_by_value() -> None:
    scen = "{name: r, num_requests: 2, request_rate: [1, 1e-9], input_tokens: 8, output_tokens: 8}"
    with pytest.raises(SuiteError, match="1e-09 requests/s"):
        parse_suite(f"name: s\nperformance:\n  scenarios:\n    - {scen}\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b'{"prompt": "a"}\n{"prompt": "caf\xe9"}\n', r"data.jsonl:2: the dataset file is not UTF-8"),
        (b'{"prompt": "a"}\n{oops\n', r"data.jsonl:2: not a JSON object"),
        (b"[1, 2", "not a JSON array"),
        (b"\n\n", "has no rows"),
    ],
    ids=["missing", "bad-utf8", "bad-json", "bad-array", "empty"],
)
def test_dataset_files_are_checked_at_load(tmp_path: Path, content: bytes | None, message: str) -> None:
    if content is not None:
        (tmp_path / "data.jsonl").write_bytes(content)
    scen = "{name: d, num_requests: 2, concurrency: 1, input_tokens: 8, output_tokens: 8, prompts: {kind: dataset, path: data.jsonl}}"
    suite = tmp_path / "d.yaml"
    suite.write_text(f"name: d\nperformance:\n  scenarios:\n    - {scen}\n")
    with pytest.raises(SuiteError, match=message):
        load_suite(suite)


def test_a_trace_file_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"timestamp": 0, "input_length": 8, "output_length": 8}\nnope\n')
    suite = tmp_path / "t.yaml"
    suite.write_text(
        "name: t\nperformance:\n  scenarios:\n    - {name: t, num_requests: 1, input_tokens: 8, output_tokens: 8, trace: {path: t.jsonl}}\n"
    )
    with pytest.raises(SuiteError, match=r"t.jsonl:2: not a JSON object \(trace file\)"):
        load_suite(suite)


def test_a_large_suite_loads(tmp_path: Path) -> None:
    """Correctness at size only; the time per scenario is benchmarks/suite_scale.py's to print."""
    body = "".join(f"    - {SCENARIO % f's{i}'}\n" for i in range(3000))
    spec = parse_suite(f"name: big\nperformance:\n  scenarios:\n{body}")
    assert len(spec.performance.scenarios) == 3000
    with pytest.raises(SuiteError, match="duplicate scenario names: s1"):
        parse_suite(f"name: big\nperformance:\n  scenarios:\n{body}    - {SCENARIO % 's1'}\n")
