"""Variants: typed overlays to engine flags, conflicts refused, planning, and the techniques table."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from harness.analysis.techniques import kv_capacity, technique_rows
from harness.planning.plan import describe, plan_runs
from harness.record.run_record import EngineMemory, Resources, VariantInfo
from harness.spec.suite import LoadedSuite, SuiteError, parse_suite
from harness.spec.variants import VariantSpec
from tests.factories import T0, make_record

SUITE = """
name: t
models: [smollm2-135m]
engine: {extra_args: ["--enforce-eager"]}
variants:
  - {name: base}
  - name: ngram
    speculative: {method: ngram, num_speculative_tokens: 3, prompt_lookup_max: 4}
  - {name: nocache, enable_prefix_caching: false, max_num_seqs: 4, env: {VLLM_CPU_OMP_THREADS_BIND: all}}
  - {name: fp8kv, kv_cache_dtype: fp8, enable_chunked_prefill: false}
  - {name: awq, quantization: awq, model: org/model-awq}
"""


def test_typed_fields_become_vllm_flags() -> None:
    v = VariantSpec(
        name="x",
        speculative={
            "method": "ngram",
            "num_speculative_tokens": 3,
            "prompt_lookup_min": 2,
            "prompt_lookup_max": 4,
        },
        enable_prefix_caching=False,
        enable_chunked_prefill=True,
        kv_cache_dtype="fp8",
        max_num_seqs=8,
        extra_args=["--enforce-eager"],
    )
    args = v.cli_args()
    i = args.index("--speculative-config")
    assert json.loads(args[i + 1]) == {
        "method": "ngram",
        "num_speculative_tokens": 3,
        "prompt_lookup_min": 2,
        "prompt_lookup_max": 4,
    }
    assert args[i + 2 :] == [
        "--no-enable-prefix-caching",
        "--enable-chunked-prefill",
        "--kv-cache-dtype",
        "fp8",
        "--max-num-seqs",
        "8",
        "--enforce-eager",
    ]


@pytest.mark.parametrize(
    ("flag", "owner"),
    [
        ("--speculative-config", "speculative"),
        ("--kv-cache-dtype=fp8", "kv_cache_dtype"),
        ("--no-enable-prefix-caching", "enable_prefix_caching"),
        ("--max-num-seqs", "max_num_seqs"),
        ("--quantization", "quantization"),
    ],
)
def test_a_flag_owned_by_a_field_is_refused_naming_the_field(flag: str, owner: str) -> None:
    text = SUITE + f'  - {{name: bad, extra_args: ["{flag}"]}}\n'
    with pytest.raises(SuiteError) as err:
        parse_suite(text, source="s.yaml")
    msg = str(err.value)
    assert "s.yaml:12: variants.5.extra_args" in msg and f"`{owner}`" in msg


def test_speculative_methods_need_their_fields() -> None:
    with pytest.raises(ValidationError, match="prompt_lookup_max"):
        VariantSpec(name="x", speculative={"method": "ngram", "num_speculative_tokens": 2})
    with pytest.raises(ValidationError, match="drafter's `model`"):
        VariantSpec(name="x", speculative={"method": "draft_model", "num_speculative_tokens": 2})
    with pytest.raises(SuiteError, match="duplicate variant names: base"):
        parse_suite(SUITE + "  - {name: base}\n")


def test_plan_makes_one_run_per_variant_with_the_overlay() -> None:
    spec = parse_suite(SUITE)
    plans = plan_runs(LoadedSuite(spec=spec, path=None, sha256=None))
    assert [p.variant.name for p in plans if p.variant] == ["base", "ngram", "nocache", "fp8kv", "awq"]
    assert all(p.baseline_variant == "base" for p in plans)
    by = {p.variant.name: p for p in plans if p.variant}
    assert by["base"].engine.extra_args == ("--enforce-eager",)
    assert "--no-enable-prefix-caching" in by["nocache"].engine.as_cli()
    assert by["nocache"].engine_env == {"VLLM_CPU_OMP_THREADS_BIND": "all"}
    assert by["awq"].engine.quantization == "awq" and by["awq"].model.hub_id == "org/model-awq"
    assert by["awq"].model.name == "smollm2-135m" and by["awq"].model.source == "hub"
    text = "\n".join(describe(by["ngram"]))
    assert "run: smollm2-135m@ngram × t" in text and "variant: ngram (vs base): speculative ngram k=3" in text
    assert "variant: base (baseline)" in "\n".join(describe(by["base"]))


def test_variants_refuse_an_external_endpoint() -> None:
    spec = parse_suite(SUITE)
    with pytest.raises(ValueError, match="external --endpoint"):
        plan_runs(LoadedSuite(spec=spec, path=None, sha256=None), endpoint="http://127.0.0.1:9")


def variant_record(name: str, *, tps: float, acc: float, kv_tokens: int, minutes: int = 0, **kw: object):
    rec = make_record(
        suite="techniques-cpu",
        accuracy={"harness_capitals": (acc, 0.02)},
        scenarios={"c1": {"output_throughput": tps, "median_ttft_ms": 40.0, "median_tpot_ms": 8.0}},
        started_at=T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )
    assert rec.resources is not None
    memory = EngineMemory(kv_cache_capacity_tokens=kv_tokens, kv_cache_memory_bytes=1 << 30)
    info = VariantInfo(name=name, baseline="base", is_baseline=name == "base", changes=[name])
    return rec.model_copy(
        update={"variant": info, "resources": rec.resources.model_copy(update={"memory": memory})}
    )


def test_kv_capacity_predicted_from_cache_bytes_and_kv_bytes_per_token() -> None:
    rec = variant_record("base", tps=100, acc=0.9, kv_tokens=23_296)
    kv = kv_capacity(rec)
    assert kv is not None
    # smollm2-135m: 30 layers x 3 KV heads x 64 dims x (K and V) x 4 bytes (float32 on the CPU)
    assert kv.kv_bytes_per_token == 30 * 3 * 64 * 2 * 4
    assert kv.predicted_tokens == (1 << 30) // 46_080 == 23_301
    assert kv.measured_tokens == 23_296  # whole 128-token blocks: the engine rounds down


def test_technique_rows_compare_each_variant_with_the_latest_baseline() -> None:
    records = [
        variant_record("base", tps=100, acc=0.80, kv_tokens=1000, minutes=0),
        variant_record("base", tps=110, acc=0.82, kv_tokens=1000, minutes=5),  # the latest base counts
        variant_record("ngram", tps=132, acc=0.82, kv_tokens=1000, minutes=10),
        variant_record("nocache", tps=99, acc=0.78, kv_tokens=1000, minutes=15, status="failed", error="x"),
        make_record(suite="techniques-cpu", started_at=T0),  # no variant: not a technique run
    ]
    rows = technique_rows(records, "techniques-cpu", "smollm2-135m")
    assert [r.variant for r in rows] == ["base", "ngram"]  # failed runs are left out
    ngram = rows[1]
    assert ngram.scenarios[0].output_tps_rel == pytest.approx(0.2)
    assert ngram.tasks[0].delta == pytest.approx(0.0) and ngram.tasks[0].delta_se == pytest.approx(
        0.02 * 2**0.5
    )
    assert rows[0].scenarios[0].output_tps_rel == pytest.approx(0.0)
    assert ngram.baseline_run_id == records[1].run_id


def test_records_without_memory_have_no_kv_capacity() -> None:
    rec = make_record()
    bare = rec.model_copy(update={"resources": Resources(engine_peak_rss_bytes=None)})
    assert kv_capacity(bare) is None
