"""Architecture analytics: reference figures, arithmetic against real transformers models, GPUs, CLI."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import pytest

from harness.arch import (
    GPUS,
    arch_facts,
    arch_table,
    build_report,
    estimate,
    get_gpu,
    load_config,
    match_nvml_name,
    preset_facts,
    record_analytics,
    reported_scores,
    reported_vs_measured,
    roofline_points,
)
from harness.arch.gpus import UnknownGpuError
from harness.cli import main
from harness.model.checkpoints import TINY_MODELS, tiny_config
from harness.model.presets import PRESETS, get_preset
from harness.record.load import LoadShape
from harness.record.run_record import (
    Environment,
    GpuInfo,
    ModelInfo,
    RunRecord,
    ScenarioResult,
    ScenarioSettings,
    SuiteInfo,
    TaskResult,
)
from harness.spec.suite import load_suite

HUB_PRESETS = [p.name for p in PRESETS.values() if p.source == "hub"]


def facts(name: str):
    return preset_facts(get_preset(name))[0]


# --- reference values from the shipped configs (bf16) ---------------------------------------


@pytest.mark.parametrize(
    ("name", "total", "active", "kv_per_token"),
    [
        ("mistral-7b", 7_241_732_096, 7_241_732_096, 131_072),
        ("llama2-13b", 13_015_864_320, 13_015_864_320, 819_200),
        ("mixtral-8x7b", 46_702_792_704, 12_879_925_248, 131_072),
        ("qwen2.5-7b", 7_615_616_512, 7_615_616_512, 57_344),
        ("deepseek-7b", 6_910_365_696, 6_910_365_696, 491_520),
        ("deepseek-v2-lite", 15_706_484_224, 2_661_150_208, 31_104),
        ("phi-2", 2_779_683_840, 2_779_683_840, 327_680),
        ("phi-3-mini", 3_821_079_552, 3_821_079_552, 393_216),
    ],
)
def test_reference_figures_of_the_hub_presets(name: str, total: int, active: int, kv_per_token: int) -> None:
    f = facts(name)
    assert f.dtype == "bfloat16"
    assert f.total_params == total
    assert f.active_params == active
    assert f.kv_bytes_per_token == kv_per_token
    assert f.weight_bytes == 2 * total
    assert f.active_weight_bytes == 2 * active


def test_headline_rounding_matches_the_issue() -> None:
    assert round(facts("mistral-7b").total_params / 1e9, 2) == 7.24
    assert round(facts("llama2-13b").total_params / 1e9, 2) == 13.02
    mixtral = facts("mixtral-8x7b")
    assert (round(mixtral.total_params / 1e9, 1), round(mixtral.active_params / 1e9, 1)) == (46.7, 12.9)


def test_gqa_and_mla_savings_against_full_multi_head() -> None:
    mistral = facts("mistral-7b")
    assert (mistral.attention, mistral.kv_bytes_per_token_mha, mistral.kv_saving_factor) == (
        "GQA",
        524_288,
        4.0,
    )
    qwen = facts("qwen2.5-7b")
    assert qwen.kv_bytes_per_token_mha == 2 * 28 * 28 * 128 * 2 and qwen.kv_saving_factor == 7.0
    lite = facts("deepseek-v2-lite")
    assert lite.attention == "MLA"
    assert lite.kv_bytes_per_token == (512 + 64) * 27 * 2
    # Uncompressed: every head caches a 192-dim key (128 nope + 64 rope) and a 128-dim value.
    assert lite.kv_bytes_per_token_mha == 27 * 16 * (192 + 128) * 2
    llama = facts("llama2-13b")
    assert llama.attention == "MHA" and llama.kv_saving_factor == 1.0


def test_mistral_batch1_roofline_on_h100_sxm() -> None:
    h100 = get_gpu("H100-SXM")
    assert h100.bandwidth_bytes_per_s == 3.35e12
    est = estimate(facts("mistral-7b"), h100, context_tokens=0)
    assert est.decode_tokens_per_s == pytest.approx(231.3, abs=0.1)
    assert est.decode_tokens_per_s_weights_only == pytest.approx(est.decode_tokens_per_s)
    # At 4k context the cache adds 4096 x 131072 bytes per token read.
    at_4k = estimate(facts("mistral-7b"), h100, context_tokens=4096)
    assert at_4k.decode_tokens_per_s == pytest.approx(3.35e12 / (2 * 7_241_732_096 + 4096 * 131_072))
    assert at_4k.prefill_tokens_per_s == pytest.approx(989.5e12 / (2 * 7_241_732_096))


def test_kv_capacity_and_batch_on_one_gpu() -> None:
    f = facts("mistral-7b")
    est = estimate(f, get_gpu("H100-SXM"), context_tokens=4096, gpu_memory_utilization=0.9)
    budget = int(80 * 2**30 * 0.9) - 2 * 7_241_732_096
    assert est.fits and est.kv_budget_bytes_per_gpu == budget
    assert est.kv_tokens == budget // 131_072
    assert est.max_batch == budget // (4096 * 131_072)


def test_mixtral_does_not_fit_one_80gb_gpu_but_fits_two() -> None:
    f = facts("mixtral-8x7b")
    one = estimate(f, get_gpu("H100-SXM"), tensor_parallel_size=1)
    assert not one.fits and one.kv_tokens is None and one.max_batch is None
    assert one.reason is not None and "does not fit" in one.reason
    two = estimate(f, get_gpu("H100-SXM"), tensor_parallel_size=2)
    assert two.fits and two.kv_tokens is not None and two.kv_tokens > 0
    # Two GPUs each read half the active weights: twice the batch-1 ceiling with an empty cache.
    assert two.decode_tokens_per_s_weights_only == pytest.approx(2 * one.decode_tokens_per_s_weights_only)


def test_mla_cache_is_replicated_under_tensor_parallelism() -> None:
    f = facts("deepseek-v2-lite")
    gpu = get_gpu("A100-SXM-80GB")
    two = estimate(f, gpu, tensor_parallel_size=2, context_tokens=1000)
    assert two.kv_tokens == two.kv_budget_bytes_per_gpu // f.kv_bytes_per_token
    gqa = facts("mistral-7b")
    gqa_two = estimate(gqa, gpu, tensor_parallel_size=2)
    assert gqa_two.kv_tokens == int(gqa_two.kv_budget_bytes_per_gpu // (gqa.kv_bytes_per_token / 2))


# --- sliding window ----------------------------------------------------------------------------


def test_sliding_window_caps_the_cache_per_sequence() -> None:
    f = facts("mistral-7b")
    assert (f.sliding_window, f.windowed_layers) == (4096, 32)
    cap = 4096 * 131_072
    assert f.kv_bytes_per_sequence(1000) == 1000 * 131_072
    assert (
        f.kv_bytes_per_sequence(4096)
        == f.kv_bytes_per_sequence(32_768)
        == f.kv_bytes_per_sequence(10**6)
        == cap
    )
    report = build_report(get_preset("mistral-7b"), [get_gpu("L4")])
    by_ctx = {c.context_tokens: c for c in report.kv_per_sequence}
    assert set(by_ctx) == {4096, 32_768}  # 32k is also the config's maximum
    assert by_ctx[32_768].kv_bytes == cap and by_ctx[32_768].kv_bytes_without_window == 32_768 * 131_072
    # No window: the cache grows without bound.
    llama = facts("llama2-13b")
    assert llama.sliding_window is None and llama.kv_bytes_per_sequence(8192) == 8192 * 819_200


def test_window_only_on_the_layers_the_config_names() -> None:
    base = json.loads(json.dumps(load_config(get_preset("qwen2.5-7b"))[0]))
    assert arch_facts(base).sliding_window is None  # use_sliding_window is false in Qwen2.5
    base.update(use_sliding_window=True, sliding_window=1024, max_window_layers=20)
    f = arch_facts(base)
    assert (f.sliding_window, f.windowed_layers) == (1024, 8)
    per_layer = 2 * 4 * 128 * 2
    assert f.kv_bytes_per_sequence(4096) == per_layer * (20 * 4096 + 8 * 1024)
    base.pop("use_sliding_window")
    base["layer_types"] = ["sliding_attention", "full_attention"] * 14
    assert arch_facts(base).windowed_layers == 14


def test_window_cap_matches_the_transformers_cache() -> None:
    torch = pytest.importorskip("torch")
    import transformers

    cfg = tiny_config("tiny-mistral")
    f = arch_facts(cfg.to_dict())
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    out = model(torch.randint(3, 1000, (1, 500)), use_cache=True)
    cache = out.past_key_values
    for _ in range(30):  # decode past the 512-token window
        cache = model(torch.tensor([[5]]), past_key_values=cache, use_cache=True).past_key_values
    held = cache.layers[0].keys.shape[2]
    ours = f.kv_bytes_per_sequence(530) // int(f.kv_bytes_per_token)
    # transformers keeps window - 1 past tokens (the new token attends to itself); ours is W.
    assert f.sliding_window == 512 and ours == 512 and held in (511, 512)


# --- arithmetic against instantiated transformers models ----------------------------------------


def _meta_model(cfg: Any):
    torch = pytest.importorskip("torch")
    import transformers

    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(cfg)


def _expert_params(model: Any) -> tuple[int, int]:
    """(routed-expert parameters per layer, number of MoE layers) read off the model's modules."""
    per_layer, layers = 0, 0
    for name, module in model.named_modules():
        if name.endswith("mlp.experts"):
            layers += 1
            per_layer = sum(p.numel() for p in module.parameters())
    return per_layer, layers


@pytest.mark.parametrize("name", [*TINY_MODELS, "smollm2-135m"])
def test_param_counts_equal_the_transformers_model(name: str) -> None:
    import transformers

    cfg_dict = load_config(get_preset(name))[0]
    cfg = tiny_config(name) if name in TINY_MODELS else transformers.AutoConfig.for_model(**cfg_dict)
    model = _meta_model(cfg)
    total = sum(p.numel() for p in model.parameters())
    f = arch_facts(cfg_dict)
    assert f.total_params == total
    if f.moe is None:
        assert f.active_params == total
    else:
        per_layer, layers = _expert_params(model)
        n, k = (
            cfg.num_local_experts if hasattr(cfg, "num_local_experts") else cfg.n_routed_experts,
            cfg.num_experts_per_tok,
        )
        assert layers == f.moe.moe_layers and per_layer == n * f.moe.params_per_expert
        assert f.active_params == total - layers * per_layer * (n - k) // n
        assert f.active_params < total


@pytest.mark.parametrize("name", TINY_MODELS)
def test_kv_bytes_per_token_equal_the_transformers_cache(name: str) -> None:
    torch = pytest.importorskip("torch")
    import transformers

    cfg = tiny_config(name)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    cache = model(torch.tensor([[1, 5, 7, 9]]), use_cache=True).past_key_values
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    f = arch_facts(cfg.to_dict(), dtype="float32")
    assert f.kv_bytes_per_token == held / 4


def test_mla_figures_follow_the_attention_modules() -> None:
    cfg = tiny_config("tiny-deepseek")
    model = _meta_model(cfg)
    attn = model.model.layers[0].self_attn
    f = arch_facts(cfg.to_dict(), dtype="float32")
    latent = attn.kv_a_proj_with_mqa.out_features  # kv_lora_rank + qk_rope_head_dim
    assert f.kv_bytes_per_token == latent * cfg.num_hidden_layers * 4
    full = cfg.num_attention_heads * (attn.qk_head_dim + cfg.v_head_dim)
    assert f.kv_bytes_per_token_mha == full * cfg.num_hidden_layers * 4


def test_phi2_and_query_lora_variants_equal_the_transformers_model() -> None:
    import transformers

    phi = transformers.PhiConfig(
        vocab_size=1000, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4
    )
    for cfg in (phi, transformers.PhiConfig(**{**phi.to_dict(), "qk_layernorm": True})):
        assert arch_facts(cfg.to_dict()).total_params == sum(p.numel() for p in _meta_model(cfg).parameters())
    ds = tiny_config("tiny-deepseek")
    ds.q_lora_rank = 96
    assert arch_facts(ds.to_dict()).total_params == sum(p.numel() for p in _meta_model(ds).parameters())


def test_quantization_and_kv_dtype() -> None:
    cfg = load_config(get_preset("mistral-7b"))[0]
    bf16 = arch_facts(cfg, dtype="bfloat16")
    awq = arch_facts(cfg, dtype="float16", quantization="awq")
    # Linear layers at 4 bits; embeddings, head and norms stay at 16 bits.
    assert awq.weight_bytes == round(bf16.params.linear / 2 + (bf16.total_params - bf16.params.linear) * 2)
    assert arch_facts(cfg, kv_cache_dtype="fp8").kv_bytes_per_token == 65_536
    assert arch_facts(cfg, dtype="auto").dtype == "bfloat16"  # the config's torch_dtype


# --- GPU table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nvml_name", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "H100-SXM"),
        ("NVIDIA H100 PCIe", "H100-PCIe"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA A100-SXM4-80GB", "A100-SXM-80GB"),
        ("NVIDIA A100 80GB PCIe", "A100-PCIe-80GB"),
        ("NVIDIA A100-SXM4-40GB", "A100-SXM-40GB"),
        ("NVIDIA A100-PCIE-40GB", "A100-PCIe-40GB"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
    ],
)
def test_gpu_lookup_by_nvml_name(nvml_name: str, key: str) -> None:
    spec = match_nvml_name(nvml_name)
    assert spec is not None and spec.key == key
    # Exactly one entry claims the name.
    import re

    claims = [g.key for g in GPUS if any(re.search(p, nvml_name, re.IGNORECASE) for p in g.patterns)]
    assert claims == [key]
    assert get_gpu(nvml_name) == spec == get_gpu(key.lower())


@pytest.mark.parametrize(
    "nvml_name",
    [
        "NVIDIA H100 NVL",
        "NVIDIA H200 NVL",
        "NVIDIA A10",
        "NVIDIA L40",
        "Tesla T4",
        "NVIDIA GeForce RTX 4090 D",
    ],
)
def test_gpus_without_an_entry(nvml_name: str) -> None:
    assert match_nvml_name(nvml_name) is None
    with pytest.raises(UnknownGpuError, match="no roofline entry"):
        get_gpu(nvml_name)


def test_gpu_table_figures_are_sane() -> None:
    for g in GPUS:
        assert 16 * 2**30 <= g.memory_bytes <= 160 * 2**30
        assert 2e11 <= g.bandwidth_bytes_per_s <= 5e12
        assert 5e13 <= g.bf16_dense_flops_per_s <= 1.1e15
        assert 50 <= g.board_power_w <= 750
    assert len({g.key for g in GPUS}) == len(GPUS)


# --- reported scores -------------------------------------------------------------------------------


def _task(task: str, value: float, metric: str = "acc", shots: int = 0, **metrics: float) -> TaskResult:
    return TaskResult(
        name=task, metric=metric, value=value, stderr=0.01, n_samples=100, num_fewshot=shots, metrics=metrics
    )


def test_reported_scores_use_the_standard_suite_tasks_and_shots() -> None:
    standard = {t.name: t.num_fewshot for t in load_suite("standard").spec.accuracy.tasks}
    mistral = {s.task: s for s in reported_scores("mistral-7b")}
    assert set(mistral) == set(standard)
    for task, score in mistral.items():
        assert score.num_fewshot == standard[task]
        assert 0 < score.value < 1 and score.source and score.settings
    assert {t: round(s.value * 100, 2) for t, s in mistral.items()} == {
        "arc_challenge": 59.98,
        "hellaswag": 83.31,
        "mmlu": 64.16,
        "truthfulqa_mc2": 42.15,
        "winogrande": 78.37,
        "gsm8k": 37.83,
    }
    for name in HUB_PRESETS:
        for score in reported_scores(name):
            assert score.task in standard and score.num_fewshot == standard[score.task]
    assert reported_scores("smollm2-135m") == ()


def test_measured_minus_reported() -> None:
    accuracy = {
        "arc_challenge": _task(
            "arc_challenge",
            0.58,
            "acc",
            25,
            **{"acc,none": 0.58, "acc_norm,none": 0.61, "acc_norm_stderr,none": 0.014},
        ),
        "hellaswag": _task("hellaswag", 0.8331, "acc_norm", 10),
        "gsm8k": _task(
            "gsm8k", 0.40, "exact_match,flexible-extract", 5, **{"exact_match,strict-match": 0.36}
        ),
        "mmlu": _task("mmlu", 0.60, "acc", 0),
        "harness_capitals": _task("harness_capitals", 0.9),
    }
    out = reported_vs_measured("mistral-7b", accuracy)
    assert set(out) == {"arc_challenge", "hellaswag", "gsm8k", "mmlu"}
    assert out["arc_challenge"].measured == 0.61  # acc_norm, the leaderboard's metric, not the headline acc
    assert out["arc_challenge"].delta == pytest.approx(0.61 - 0.5998)
    assert out["arc_challenge"].measured_stderr == 0.014  # the stderr of acc_norm, not of the headline
    assert out["hellaswag"].delta == pytest.approx(0.0) and out["hellaswag"].comparable
    assert out["hellaswag"].measured_stderr == 0.01  # the headline's own stderr
    assert out["gsm8k"].measured == 0.36 and out["gsm8k"].measured_stderr is None  # none reported
    assert not out["mmlu"].comparable and out["mmlu"].note is not None and "shots differ" in out["mmlu"].note
    assert reported_vs_measured("qwen2.5-7b", accuracy) == {}


# --- run-record analytics ---------------------------------------------------------------------------


def _env(gpus: list[GpuInfo] | None = None) -> Environment:
    return Environment(
        harness_version="0",
        git_sha=None,
        python="3",
        platform="linux",
        hostname="h",
        cpu_model="Test CPU 9000",
        cpu_count=2,
        memory_total_bytes=1,
        gpus=gpus or [],
    )


def _scenario(concurrency: int | None, rate: float | None, tpot_ms: float | None) -> ScenarioResult:
    none: dict[str, Any] = {
        f"{s}_{m}_ms": None
        for s in ("mean", "median", "std", "p90", "p99")
        for m in ("ttft", "tpot", "itl", "e2el")
    }
    none["median_tpot_ms"] = tpot_ms
    return ScenarioResult(
        name="c1",
        settings=ScenarioSettings(
            load=LoadShape(
                input_tokens=512,
                output_tokens=128,
                num_requests=8,
                concurrency=concurrency,
                request_rate=rate,
                warmup_requests=1,
            ),
            seed=1,
        ),
        completed=8,
        failed=0,
        duration=1.0,
        total_input_tokens=4096,
        total_output_tokens=1024,
        request_throughput=8.0,
        output_throughput=1024.0,
        total_token_throughput=5120.0,
        max_concurrency_reached=concurrency or 8,
        client_cpu_s=0.1,
        client_cpu_us_per_output_token=1.0,
        **none,
    )


def test_record_analytics_on_a_cpu_has_no_roofline_with_the_reason() -> None:
    perf = {"rate": _scenario(8, 4.0, 30.0), "c1": _scenario(1, None, 20.0)}
    out = record_analytics(get_preset("tiny-mistral"), performance=perf, environment=_env()).model_dump(
        mode="json"
    )
    assert out["architecture"]["total_params"] == 17_564_928
    assert out["roofline"] is None and out["gpu"] is None
    assert out["roofline_reason"] == "no roofline entry for this hardware (CPU: Test CPU 9000)"
    decode = out["decode"]
    assert decode["scenario"] == "c1" and decode["context_tokens"] == 512 + 64
    assert decode["measured_tokens_per_s"] == pytest.approx(50.0)
    assert decode["fraction_of_roofline"] is None and "CPU: Test CPU 9000" in decode["reason"]


def test_record_analytics_on_an_h100_sets_speed_against_the_roofline() -> None:
    env = _env([GpuInfo(index=0, name="NVIDIA H100 80GB HBM3", memory_total_bytes=81559 * 2**20)])
    accuracy = {"hellaswag": _task("hellaswag", 0.82, "acc_norm", 10)}
    out = record_analytics(
        get_preset("mistral-7b"),
        performance={"c1": _scenario(1, None, 5.0)},
        accuracy=accuracy,
        environment=env,
    ).model_dump(mode="json")
    assert out["gpu"] == "H100-SXM" and out["roofline"]["memory_bytes"] == 81559 * 2**20
    ceiling = 3.35e12 / (2 * 7_241_732_096 + (512 + 64) * 131_072)
    assert out["decode"]["roofline_tokens_per_s"] == pytest.approx(ceiling)
    assert out["decode"]["fraction_of_roofline"] == pytest.approx(200.0 / ceiling)
    assert out["reported_vs_measured"]["hellaswag"]["delta"] == pytest.approx(0.82 - 0.8331)
    # An unknown GPU keeps the measurement and says why the ceiling is missing.
    other = record_analytics(
        get_preset("mistral-7b"),
        performance={"c1": _scenario(1, None, 5.0)},
        environment=_env([GpuInfo(index=0, name="NVIDIA H100 NVL")]),
    ).model_dump(mode="json")
    assert other["roofline"] is None and other["roofline_reason"].endswith("(GPU: NVIDIA H100 NVL)")
    assert other["decode"]["measured_tokens_per_s"] == pytest.approx(200.0)


def test_record_analytics_never_raises(tmp_path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "mamba",
                "hidden_size": 8,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "vocab_size": 10,
            }
        )
    )
    out = record_analytics(get_preset(str(tmp_path)), environment=_env()).model_dump()
    assert out["architecture"] is None and "mamba" in out["architecture_reason"]
    assert out["decode"] is None and out["roofline"] is None


def test_dashboard_tables() -> None:
    rows = {r["preset"]: r for r in arch_table()}
    assert set(rows) == set(PRESETS)
    assert all(r["error"] is None for r in rows.values())
    assert rows["mixtral-8x7b"]["active_params"] < rows["mixtral-8x7b"]["total_params"]
    assert rows["deepseek-v2-lite"]["kv_bytes_per_token"] == 31_104
    # Mistral's 4,096-token window caps a 32k sequence's cache at an eighth of the uncapped size.
    m = rows["mistral-7b"]
    assert (m["sliding_window"], m["windowed_layers"], m["num_layers"]) == (4096, 32, 32)
    assert m["kv_bytes_max_context"] * 8 == m["kv_bytes_max_context_no_window"] == 32768 * 131_072
    assert rows["llama2-13b"]["kv_bytes_max_context"] == rows["llama2-13b"]["kv_bytes_max_context_no_window"]
    assert (rows["mixtral-8x7b"]["num_experts"], rows["mixtral-8x7b"]["experts_per_token"]) == (8, 2)
    assert rows["mistral-7b"]["num_experts"] is None
    now = datetime.now(timezone.utc)
    analytics = record_analytics(
        get_preset("tiny-llama"), performance={"c1": _scenario(1, None, 10.0)}, environment=_env()
    )
    rec = RunRecord(
        run_id="r1",
        status="ok",
        suite=SuiteInfo(name="smoke"),
        model=ModelInfo(preset="tiny-llama", family="llama", source="x", served_name="x"),
        environment=_env(),
        started_at=now,
        finished_at=now,
        analytics=analytics,
    )
    (point,) = roofline_points([rec])
    assert point["measured_tokens_per_s"] == pytest.approx(100.0) and point["roofline_tokens_per_s"] is None


# --- CLI ---------------------------------------------------------------------------------------------


def test_cli_prints_the_mistral_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "mistral-7b", "--gpu", "H100-SXM"]) == 0
    out = capsys.readouterr().out
    for text in (
        "7.24 B total",
        "131,072 B/token",
        "524,288 B/token (4.0x)",
        "4,096 tokens",
        "H100-SXM",
        "231.3",
    ):
        assert text in out


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["arch", "mixtral-8x7b", "--gpu", "NVIDIA H100 80GB HBM3", "--json", "--context", "8192"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["facts"]["active_params"] == 12_879_925_248
    rows = {r["tensor_parallel_size"]: r for r in data["gpus"]}
    assert set(rows) == {1, 2} and not rows[1]["fits"] and rows[2]["fits"]
    assert rows[2]["context_tokens"] == 8192


@pytest.mark.parametrize("name", list(PRESETS))
def test_cli_prints_every_preset_offline(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", name, "--gpu", "L4"]) == 0
    out = capsys.readouterr().out
    assert "KV cache" in out and "L4" in out and "decode" in out


def test_cli_uses_the_detected_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import harness.arch.cli as arch_cli

    monkeypatch.setattr(arch_cli, "detected_gpu_names", lambda: ["NVIDIA L40S"])
    assert main(["arch", "qwen2.5-7b", "--json"]) == 0
    assert [r["gpu"] for r in json.loads(capsys.readouterr().out)["gpus"]] == ["L40S"]
    monkeypatch.setattr(arch_cli, "detected_gpu_names", lambda: [])
    assert main(["arch", "qwen2.5-7b", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["gpus"]) == len(GPUS)


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "mistral7b"]) == 2
    assert "did you mean mistral-7b" in capsys.readouterr().err
    assert main(["arch", "mistral-7b", "--gpu", "B200"]) == 2
    assert "no roofline entry" in capsys.readouterr().err


def test_shipped_configs_cover_every_hub_preset() -> None:
    for name in HUB_PRESETS:
        cfg, origin = load_config(get_preset(name))
        assert cfg["model_type"] and "shipped" in origin
    assert math.isclose(facts("deepseek-v2-lite").total_params / 1e9, 15.7, abs_tol=0.01)


def test_vllm_032_defaults_and_the_sliding_window_note() -> None:
    from harness.arch.report import DEFAULT_GPU_MEMORY_UTILIZATION, _notes

    assert DEFAULT_GPU_MEMORY_UTILIZATION == 0.92  # vLLM 0.32 (harness arch used 0.9)
    [note] = _notes(facts("mistral-7b"))  # no layer_types: vLLM windows every layer
    assert "every layer when the config has no layer_types" in note and "32/32 layers" in note
