"""Prompt sources and traffic shapes on hand-made inputs: lengths, prefix reuse, turns, traces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from harness.spec.workload import ConversationSpec, LengthDist, PrefixSpec, PromptSource, TraceSpec
from harness.workloads.build import (
    WorkItem,
    WorkloadError,
    WorkloadShape,
    build_sessions,
    build_workload,
    dataset_items,
    implied_prefix_hit_rate,
    load_trace,
    render_turn,
    sample_lengths,
    task_prompts,
    trace_items,
    with_shared_prefixes,
)

VOCAB = list(range(100, 200))


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def text_of(n: int, rng: np.random.Generator) -> str:
    return " ".join(f"w{int(x)}" for x in rng.integers(0, 50, size=n))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- lengths -----------------------------------------------------------------------------------


def test_fixed_lengths_are_the_mean() -> None:
    assert sample_lengths(LengthDist(), 128, 5, rng()) == [128] * 5


def test_uniform_lengths_follow_vllms_range_ratio() -> None:
    out = sample_lengths(LengthDist(kind="uniform", range_ratio=0.25), 100, 4000, rng())
    assert min(out) == 75 and max(out) == 125  # floor(100*0.75) .. ceil(100*1.25), both reached
    assert abs(np.mean(out) - 100) < 1.5


def test_normal_and_lognormal_have_the_asked_mean_and_std() -> None:
    for kind in ("normal", "lognormal"):
        out = np.array(sample_lengths(LengthDist(kind=kind, std_tokens=40), 200, 20000, rng(1)))
        assert abs(out.mean() - 200) < 3, kind
        assert abs(out.std() - 40) < 3, kind
    skew = np.array(sample_lengths(LengthDist(kind="lognormal", std_tokens=150), 200, 20000, rng(2)))
    assert np.median(skew) < skew.mean()  # a long right tail, as real prompt lengths have


def test_lengths_are_clipped_to_bounds() -> None:
    out = sample_lengths(
        LengthDist(kind="normal", std_tokens=500, min_tokens=10, max_tokens=300), 100, 2000, rng()
    )
    assert min(out) == 10 and max(out) == 300


def test_normal_needs_std() -> None:
    with pytest.raises(ValidationError, match="std_tokens"):
        LengthDist(kind="normal")


# --- sources -----------------------------------------------------------------------------------


def sharegpt(prompt: str, reply: str, *more: str) -> dict[str, object]:
    conv = [{"from": "human", "value": prompt}, {"from": "gpt", "value": reply}]
    for i, m in enumerate(more):
        conv.append({"from": "human" if i % 2 == 0 else "gpt", "value": m})
    return {"conversations": conv}


def test_dataset_rows_are_filtered_like_vllm_sharegpt() -> None:
    rows = [
        sharegpt("a b c d e", "one two three four five six"),  # kept: 5 in, 6 out
        sharegpt("too short", "one two three four five"),  # prompt under 4 tokens
        sharegpt("a b c d", "x y"),  # reply under 4 tokens
        sharegpt(" ".join(["w"] * 1100), "one two three four"),  # prompt over 1024
        sharegpt(" ".join(["w"] * 1000), " ".join(["r"] * 1100)),  # total over 2048
        {"prompt": "p q r s t u", "output_len": 9},  # plain row with its own length
    ]
    items = dataset_items(PromptSource(kind="dataset", path="x"), rows, 2, 64, words, rng())
    got = sorted((i.input_tokens, i.output_tokens) for i in items)
    assert got == [(5, 6), (6, 9)]
    fixed = dataset_items(
        PromptSource(kind="dataset", path="x", fixed_output_tokens=True), rows, 3, 64, words, rng()
    )
    # with a fixed output length the short-reply row is kept, as vLLM skips the output check
    assert sorted(i.output_tokens for i in fixed) == [64, 64, 64]
    assert {i.input_tokens for i in fixed} <= {4, 5, 6, 1000}  # 1000 + 64 fits in 2048


def test_dataset_reuses_rows_when_too_few_pass() -> None:
    items = dataset_items(
        PromptSource(kind="dataset", path="x"), [sharegpt("a b c d", "e f g h")], 3, 8, words, rng()
    )
    assert [i.prompt for i in items] == ["a b c d"] * 3


def test_dataset_without_usable_rows_is_a_clear_error() -> None:
    with pytest.raises(WorkloadError, match="length limits"):
        dataset_items(PromptSource(kind="dataset", path="x"), [sharegpt("a", "b")], 2, 8, words, rng())


def test_builtin_dataset_builds_single_turn_text_requests() -> None:
    shape = WorkloadShape(
        input_tokens=64,
        output_tokens=32,
        num_requests=20,
        warmup_requests=2,
        prompts=PromptSource(kind="dataset", path="builtin:sharegpt-mini"),
    )
    wl = build_workload(shape, 5, VOCAB, words, text_of)
    assert len(wl.items) == 22
    assert all(isinstance(i.prompt, str) and i.input_tokens >= 4 for i in wl.items)
    assert len({i.output_tokens for i in wl.items}) > 3  # output lengths from the reference replies


def test_bad_dataset_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"prompt": "a b c d"}) + "\n{oops\n")
    shape = WorkloadShape(
        input_tokens=8, output_tokens=8, num_requests=1, prompts=PromptSource(kind="dataset", path="d.jsonl")
    )
    with pytest.raises(WorkloadError, match=r"d\.jsonl:2"):
        build_workload(shape, 0, VOCAB, words, text_of, base_dir=tmp_path)


def test_task_prompts_render_the_bundled_questions() -> None:
    prompts = task_prompts(["harness_capitals"])
    assert len(prompts) == 81
    assert prompts[0].startswith("Question: What is the capital of ") and prompts[0].endswith("Answer:")
    with pytest.raises(WorkloadError, match="no bundled task"):
        task_prompts(["nope"])


def test_random_prompts_have_exact_lengths_and_depend_on_the_seed() -> None:
    shape = WorkloadShape(
        input_tokens=50,
        output_tokens=10,
        num_requests=30,
        prompts=PromptSource(input_len=LengthDist(kind="uniform", range_ratio=0.5)),
    )
    a = build_workload(shape, 1, VOCAB, words, text_of)
    b = build_workload(shape, 2, VOCAB, words, text_of)
    assert all(len(i.prompt) == i.input_tokens for i in a.items)
    assert len({i.input_tokens for i in a.items}) > 5
    assert [i.prompt for i in a.items] != [i.prompt for i in b.items]


# --- shared prefixes ---------------------------------------------------------------------------


def test_shared_prefixes_are_reused_round_robin() -> None:
    items = [WorkItem(prompt=[1] * 10, input_tokens=10, output_tokens=4) for _ in range(6)]
    out = with_shared_prefixes(items, PrefixSpec(groups=2, length=40), VOCAB, rng())
    assert [i.prefix_group for i in out] == [0, 1, 0, 1, 0, 1]
    assert all(i.input_tokens == 50 and len(i.prompt) == 50 for i in out)
    assert out[0].prompt[:40] == out[2].prompt[:40] == out[4].prompt[:40]
    assert out[0].prompt[:40] != out[1].prompt[:40]


def test_implied_hit_rate_counts_whole_blocks_after_each_groups_first_request() -> None:
    items = [
        WorkItem(prompt=[], input_tokens=50, output_tokens=1, prefix_group=g, shared_prefix_tokens=40)
        for g in (0, 1, 0, 1, 0, 1)
    ]
    # 4 later requests find floor(40/16)*16 = 32 cached tokens each, out of 300 prompt tokens
    assert implied_prefix_hit_rate(items, 16) == pytest.approx(4 * 32 / 300)
    assert implied_prefix_hit_rate(items, 8) == pytest.approx(4 * 40 / 300)
    plain = [WorkItem(prompt=[], input_tokens=10, output_tokens=1)]
    assert implied_prefix_hit_rate(plain, 16) == 0.0


def test_implied_hit_rate_leaves_the_warm_up_out() -> None:
    """Issue 21 item 8: the warm-up fills the cache but its prompts are not in the server's window."""
    items = [
        WorkItem(prompt=[], input_tokens=50, output_tokens=1, prefix_group=g, shared_prefix_tokens=40)
        for g in (0, 1, 0, 1, 0, 1)
    ]
    # two warm-up requests (one per group) miss; the four measured ones all hit 32 of 50 tokens
    assert implied_prefix_hit_rate(items, 16, warmup_requests=2) == pytest.approx(32 / 50)
    assert implied_prefix_hit_rate(items, 16) == pytest.approx(4 * 32 / 300)  # warm-up counted: lower
    assert implied_prefix_hit_rate(items[:2], 16, warmup_requests=2) is None  # nothing measured
    shape = WorkloadShape(
        input_tokens=8,
        output_tokens=4,
        num_requests=6,
        warmup_requests=2,
        prefix=PrefixSpec(groups=2, length=40),
    )
    built = build_workload(shape, 0, VOCAB, words, text_of, block_size=16)
    assert len(built.items) == 8
    assert built.implied_prefix_hit_rate == pytest.approx(6 * 32 / (6 * 48))


def test_shared_prefix_needs_token_prompts() -> None:
    shape = WorkloadShape(
        input_tokens=8,
        output_tokens=8,
        num_requests=2,
        prompts=PromptSource(kind="tasks", tasks=["harness_capitals"]),
        prefix=PrefixSpec(groups=1, length=8),
    )
    with pytest.raises(WorkloadError, match="token-id prompts"):
        build_workload(shape, 0, VOCAB, words, text_of)


# --- multi-turn --------------------------------------------------------------------------------


def test_each_turn_starts_with_the_previous_turns_prompt_and_reply() -> None:
    t1 = render_turn([], "hello")
    t2 = render_turn([("hello", " hi there")], "and then?")
    t3 = render_turn([("hello", " hi there"), ("and then?", " more")], "bye")
    assert t2.startswith(t1 + " hi there\n")
    assert t3.startswith(t2 + " more\n")
    assert t2.startswith(t1 + " hi there\n")
    assert t3.count("User: ") == 3 and t3.endswith("User: bye\nAssistant:")


def test_sessions_take_dataset_turns_then_generated_text() -> None:
    rows = [sharegpt("first q", "r1", "second q", "r2")]
    sessions = build_sessions(ConversationSpec(turns=3), 2, 6, 16, rng(), text_of, rows)
    assert len(sessions) == 2
    for s in sessions:
        assert s.user_messages[:2] == ("first q", "second q")
        assert words(s.user_messages[2]) == 6  # topped up with generated text
        assert s.output_tokens == (16, 16, 16)
    generated = build_sessions(
        ConversationSpec(turns=2, user_tokens=LengthDist(kind="uniform", range_ratio=0.5)),
        50,
        20,
        8,
        rng(),
        text_of,
    )
    lengths = [words(m) for s in generated for m in s.user_messages]
    assert min(lengths) >= 10 and max(lengths) <= 30 and len(set(lengths)) > 5


def test_conversation_workload_counts_warmup_sessions() -> None:
    shape = WorkloadShape(
        input_tokens=12,
        output_tokens=8,
        num_requests=4,
        warmup_requests=1,
        conversation=ConversationSpec(turns=3, think_time_s=0.5),
    )
    wl = build_workload(shape, 3, VOCAB, words, text_of)
    assert wl.is_conversation and len(wl.sessions) == 5 and not wl.items


# --- traces ------------------------------------------------------------------------------------


def test_mooncake_trace_is_sorted_shifted_and_time_scaled(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    rows = [
        {"timestamp": 5000, "input_length": 30, "output_length": 5, "hash_ids": [7]},
        {"timestamp": 1000, "input_length": 20, "output_length": 4, "hash_ids": [7]},
        {"timestamp": 3000, "input_length": 600, "output_length": 6, "hash_ids": [7, 9]},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows))
    got = load_trace(p, TraceSpec(path=str(p), speedup=2.0))
    assert [(t, i, o) for t, i, o, _ in got] == [(0.0, 20, 4), (1.0, 600, 6), (2.0, 30, 5)]
    items = trace_items(got, VOCAB, seed=3)
    assert [i.at_s for i in items] == [0.0, 1.0, 2.0]
    assert [len(i.prompt) for i in items] == [20, 600, 30]
    # rows sharing hash id 7 share its tokens; the second block of row 2 is its own
    assert items[0].prompt == items[1].prompt[:20] == items[2].prompt[:20]
    assert load_trace(p, TraceSpec(path=str(p), max_requests=1))[0][1] == 20


def test_burstgpt_csv_trace(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        "10.0,ChatGPT,100,20,120,Conversation log\n12.5,GPT-4,50,10,60,API log\n"
    )
    got = load_trace(p, TraceSpec(path=str(p), speedup=0.5))
    assert [(t, i, o) for t, i, o, _ in got] == [(0.0, 100, 20), (5.0, 50, 10)]
    p.write_text("Timestamp,Model\n1,x\n")
    with pytest.raises(WorkloadError, match=r"b\.csv:2"):
        load_trace(p, TraceSpec(path=str(p)))


def test_builtin_trace_replays_with_gaps_and_shared_blocks() -> None:
    shape = WorkloadShape(
        input_tokens=1,
        output_tokens=1,
        num_requests=1,
        trace=TraceSpec(path="builtin:trace-mini", speedup=4.0, max_requests=40),
    )
    wl = build_workload(shape, 0, VOCAB, words, text_of)
    assert len(wl.items) == 40
    times = [i.at_s for i in wl.items]
    assert times[0] == 0.0 and times == sorted(times)
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() > 1.0  # bursty: more variable than Poisson
