"""The claims registry and its decision rules: each rule on synthetic figures (holds, does not hold,
inconclusive), the registry's schema, and a store whose runs are missing saying so."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.claims import evidence as ev
from harness.claims.evaluate import Store, evaluate_claims
from harness.claims.rules import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    KvPoint,
    PairedCounts,
    TaskComparison,
    combine,
    decide_accuracy_not_worse,
    decide_answers_unchanged,
    decide_kv_ratio,
    decide_point_ratio,
    decide_tpot_ratio,
    decide_window_bounded,
    paired_binary_ci,
)
from harness.claims.spec import RegistryError, load_registry
from harness.engine.server_metrics import ServerSample, write_series
from harness.record.run_record import EngineMemory, Resources, ServerWindow
from tests.factories import make_record

# --- the registry --------------------------------------------------------------------------------


def test_the_shipped_registry_covers_the_seven_claims() -> None:
    reg = load_registry()
    assert [c.id for c in reg.claims] == [
        "mistral-7b-beats-llama2-13b",
        "sliding-window-bounds-kv",
        "gqa-cuts-kv",
        "mixtral-costs-like-13b",
        "mla-compresses-kv",
        "quantization-loses-little",
        "speculative-decoding-keeps-quality",
    ]
    for c in reg.claims:
        assert c.source.url.startswith("https://")
        # Tiny models' accuracy means nothing: no accuracy rule may read a mechanism check.
        for part in c.parts:
            for check in part.checks:
                if check.rule.kind in ("accuracy_not_worse", "answers_unchanged"):
                    assert check.scope == "real", (c.id, part.name)


def test_a_typo_in_the_registry_names_the_claim_and_field(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "harness/claims/registry.yaml").read_text()
    bad = tmp_path / "registry.yaml"
    bad.write_text(text.replace("margin: 0.01}", "margn: 0.01}", 1))
    with pytest.raises(
        RegistryError, match=r"claim 'mistral-7b-beats-llama2-13b': parts\.0\.checks\.0\.rule.*margn"
    ):
        load_registry(bad)


# --- accuracy ------------------------------------------------------------------------------------


def _task(diff_lo: float, diff_hi: float, name: str = "arc") -> TaskComparison:
    return TaskComparison(
        name, 0.5 + (diff_lo + diff_hi) / 2, 0.5, diff_lo, diff_hi, "paired (McNemar)", 1000
    )


def test_accuracy_not_worse_holds_fails_and_is_inconclusive() -> None:
    assert decide_accuracy_not_worse([_task(0.01, 0.05), _task(-0.008, 0.02, "hs")], 0.01).verdict == HOLDS
    assert decide_accuracy_not_worse([_task(0.01, 0.05), _task(-0.09, -0.03, "hs")], 0.01).verdict == FAILS
    out = decide_accuracy_not_worse([_task(0.01, 0.05), _task(-0.04, 0.02, "hs")], 0.01)
    assert out.verdict == INCONCLUSIVE and "more documents" in out.evidence
    assert decide_accuracy_not_worse([], 0.01).verdict == INCONCLUSIVE
    no_ci = TaskComparison("arc", 0.6, 0.5, None, None, "unpaired (stderr)")
    assert decide_accuracy_not_worse([no_ci], 0.01).verdict == INCONCLUSIVE


def test_paired_binary_interval() -> None:
    lo, hi = paired_binary_ci(1000, 60, 20)  # +4 points, 80 discordant pairs
    assert lo == pytest.approx(0.04 - 1.96 * ((0.08 - 0.0016) / 1000) ** 0.5, abs=1e-4)
    assert lo > 0 and hi == pytest.approx(0.04 + (0.04 - lo))


def test_answers_unchanged() -> None:
    assert decide_answers_unchanged([PairedCounts("gsm8k", 500, 2, 1, 1.0)], 0.02, 0.05).verdict == HOLDS
    assert decide_answers_unchanged([PairedCounts("gsm8k", 500, 1, 30, 1e-7)], 0.02, 0.05).verdict == FAILS
    # 5 % flipped in balance: not significant, over the 2 % allowance, but the sample cannot say it is.
    out = decide_answers_unchanged([PairedCounts("gsm8k", 40, 1, 1, 1.0)], 0.02, 0.05)
    assert out.verdict == INCONCLUSIVE
    assert decide_answers_unchanged([], 0.02, 0.05).verdict == INCONCLUSIVE


# --- speed ---------------------------------------------------------------------------------------


def _noisy(mean: float, n: int = 40, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, mean * 0.03) for _ in range(n)]


def test_tpot_ratio_uses_welch_against_the_scaled_reference() -> None:
    ref = _noisy(20.0)
    assert decide_tpot_ratio(_noisy(24.0, seed=1), ref, at_most=1.5).verdict == HOLDS
    assert decide_tpot_ratio(_noisy(40.0, seed=1), ref, at_most=1.5).verdict == FAILS
    assert decide_tpot_ratio(_noisy(30.0, n=3, seed=1), ref, at_most=1.5).verdict == INCONCLUSIVE
    assert decide_tpot_ratio([10.0], ref, at_most=1.0).verdict == INCONCLUSIVE
    # at_least: the candidate must be significantly slower than the bound says.
    assert decide_tpot_ratio(_noisy(40.0, seed=1), ref, at_least=1.5).verdict == HOLDS


def test_point_ratio_needs_to_clear_the_tolerance() -> None:
    assert decide_point_ratio(1.2, 1.0, "energy_per_token_j", at_most=1.5).verdict == HOLDS
    assert decide_point_ratio(2.0, 1.0, "energy_per_token_j", at_most=1.5).verdict == FAILS
    assert decide_point_ratio(1.5, 1.0, "energy_per_token_j", at_most=1.5).verdict == INCONCLUSIVE
    assert decide_point_ratio(None, 1.0, "energy_per_token_j", at_most=1.5).verdict == INCONCLUSIVE


# --- KV memory -----------------------------------------------------------------------------------

CTX = [384, 640, 896, 1152, 1664, 2048]


def _pts(values: list[float | None]) -> list[KvPoint]:
    return [KvPoint(c, v) for c, v in zip(CTX, values, strict=True)]


def test_window_bounded_holds_when_flat_while_the_control_grows() -> None:
    w = _pts([384, 640, 640, 640, 640, 640])
    c = _pts([384, 640, 896, 1152, 1664, 2048])
    out = decide_window_bounded(512, 128, w, c)
    assert (
        out.verdict == HOLDS
        and out.figures["bound_tokens"] == 768
        and out.figures["points_past"] == [896, 1152, 1664, 2048]
    )


def test_window_bounded_fails_when_the_windowed_cache_keeps_growing() -> None:
    grows = _pts([384, 640, 896, 1152, 1664, 2048])
    assert decide_window_bounded(512, 128, grows, grows).verdict == FAILS


def test_window_bounded_is_inconclusive_without_points_past_the_window_or_growth() -> None:
    short = [KvPoint(384, 384), KvPoint(640, 640), KvPoint(896, 640)]
    assert decide_window_bounded(512, 128, short, short).verdict == INCONCLUSIVE  # one point past 768
    flat = _pts([384, 640, 640, 640, 640, 640])
    out = decide_window_bounded(512, 128, flat, flat)
    assert out.verdict == INCONCLUSIVE and "control" in out.evidence
    assert decide_window_bounded(None, 128, flat, flat).verdict == INCONCLUSIVE
    unmeasured = _pts([None] * 6)
    assert decide_window_bounded(512, 128, unmeasured, flat).verdict == INCONCLUSIVE


def test_kv_ratio() -> None:
    assert decide_kv_ratio(2048, 4096, 0.55, "MHA").verdict == HOLDS
    assert decide_kv_ratio(4096, 4096, 0.55, "MHA").verdict == FAILS
    out = decide_kv_ratio(None, 4096, 0.55, "MHA", "the engine did not report its KV-cache bytes")
    assert out.verdict == INCONCLUSIVE and "did not report" in out.evidence


def test_combine() -> None:
    assert combine([HOLDS, NOT_MEASURED]) == HOLDS
    assert combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([INCONCLUSIVE, FAILS, HOLDS]) == FAILS
    assert combine([NOT_MEASURED, NOT_MEASURED]) == NOT_MEASURED


def test_predicted_tokens_caps_windowed_layers() -> None:
    arch = {"sliding_window": 512, "num_layers": 4, "windowed_layers": 2}
    assert ev.predicted_tokens(arch, 2048) == (2 * 512 + 2 * 2048) // 4
    assert ev.predicted_tokens({"sliding_window": None, "num_layers": 2}, 2048) is None


# --- against a store ------------------------------------------------------------------------------


def test_claims_whose_runs_are_missing_say_so_instead_of_guessing(tmp_path: Path) -> None:
    results = evaluate_claims(tmp_path, has_gpu=False)
    assert len(results) == 7
    for r in results:
        assert r.verdict == NOT_MEASURED and not r.partial
        for p in r.parts:
            assert p.verdict == NOT_MEASURED and p.scope is None and not p.runs
            assert any("runs missing" in w for w in p.not_measured)
    sw = next(r for r in results if r.id == "sliding-window-bounds-kv").parts[0]
    assert "needs a GPU" in sw.not_measured[0] and "mistralai/Mistral-7B-v0.1" in sw.not_measured[0]
    assert "harness run claims-cpu --model tiny-mistral --model tiny-llama" in sw.not_measured[1]


def _sweep_record(model: str, held: list[int], run_dir: Path):  # type: ignore[no-untyped-def]
    """A claims-cpu record of `model` whose engine held `held[i]` tokens per sequence at point i."""
    block, blocks = 128, 8192
    scen = {f"ctx-{c - 128}": {"input_tokens": c - 128, "output_tokens": 128, "concurrency": 1} for c in CTX}
    rec = make_record(model, "claims-cpu", accuracy={}, scenarios=scen, family=model.split("-")[1])
    samples, perf = [], {}
    for i, (name, s) in enumerate(rec.performance.items()):
        t0 = 10.0 * i
        samples += [
            ServerSample(t_s=t0 + k, running=1, kv_cache_usage_frac=held[i] / ((blocks - 1) * block))
            for k in range(1, 5)
        ]
        samples.append(ServerSample(t_s=t0 + 6, running=0, kv_cache_usage_frac=0.0))  # idle: ignored
        perf[name] = s.model_copy(update={"server": ServerWindow(polls=5, start_s=t0, end_s=t0 + 7)})
    write_series(run_dir / "telemetry" / "server_metrics.parquet", samples)
    mem = EngineMemory(
        kv_cache_num_blocks=blocks, kv_cache_block_size=block, kv_cache_memory_bytes=blocks * block * 2048
    )
    res = (rec.resources or Resources(engine_peak_rss_bytes=None)).model_copy(
        update={"memory": mem, "server_metrics_path": "telemetry/server_metrics.parquet"}
    )
    return rec.model_copy(update={"resources": res, "scenarios": list(perf.values())})


def test_the_sweep_claim_from_records_and_their_metrics_series(tmp_path: Path) -> None:
    dirs = {m: tmp_path / m for m in ("tiny-mistral", "tiny-llama")}
    for d in dirs.values():
        d.mkdir()
    w = _sweep_record("tiny-mistral", [384, 640, 640, 640, 640, 640], dirs["tiny-mistral"])
    c = _sweep_record("tiny-llama", [384, 640, 896, 1152, 1664, 2048], dirs["tiny-llama"])
    points = ev.kv_sweep(w, dirs["tiny-mistral"])
    assert [p.context_tokens for p in points] == CTX
    assert [round(p.measured_kv_tokens or 0) for p in points] == [384, 640, 640, 640, 640, 640]
    assert [p.predicted_tokens_windowed for p in points] == [384, 512, 512, 512, 512, 512]
    assert points[-1].measured_kv_bytes == pytest.approx(640 * 2048)
    store = Store([w, c], {w.run_id: dirs["tiny-mistral"], c.run_id: dirs["tiny-llama"]})
    results = {r.id: r for r in evaluate_claims(tmp_path, has_gpu=False, store=store)}
    part = results["sliding-window-bounds-kv"].parts[0]
    assert part.verdict == HOLDS and part.scope == "mechanism" and part.runs == [w.run_id, c.run_id]
    assert any("[real]" in x and "claims-long" in x for x in part.not_measured)  # what would measure the rest
    gqa = results["gqa-cuts-kv"]
    assert gqa.verdict == HOLDS and gqa.partial  # KV memory measured; quality needs a GPU
    assert gqa.parts[0].figures["ratio"] == pytest.approx(0.5)
    assert gqa.parts[1].verdict == NOT_MEASURED


def test_block_accounting_of_a_window() -> None:
    # vLLM frees a block once all its tokens lie before context - window + 1.
    assert ev.block_tokens(1984, 128, 512) == 640  # 16 blocks allocated, 11 wholly outside the window
    assert ev.block_tokens(2047, 128, 512) == 512
    assert ev.block_tokens(1984, 128, None) == 2048
    assert ev.block_tokens(300, 128, 512) == 384
    assert ev.block_tokens(300, None, 512) is None


def test_the_command_prints_every_claim_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from harness.cli import main

    assert main(["claims", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for c in load_registry().claims:
        assert f"{c.id}: NOT MEASURED HERE" in out
    assert main(["claims", "--results", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {d["verdict"] for d in data} == {NOT_MEASURED} and len(data) == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims: []\n")
    assert main(["claims", "--registry", str(bad)]) == 2
    assert "claims" in capsys.readouterr().err


def test_the_claims_page_renders_verdicts_and_links(tmp_path: Path) -> None:
    from harness.dashboard.claimspage import claims_page

    results = evaluate_claims(tmp_path, has_gpu=False)
    html = claims_page(results, lambda rid: None, "2026-01-01 00:00 UTC")
    assert html.count('class="verdict na"') == 7 and "https://arxiv.org/abs/2310.06825" in html
    assert "accuracy means nothing" in html


@pytest.mark.parametrize(
    ("mistral", "verdict"),
    [((0.60, 0.01), HOLDS), ((0.50, 0.01), FAILS), ((0.55, 0.02), INCONCLUSIVE)],
)
def test_accuracy_claim_from_records_without_sample_logs(
    tmp_path: Path, mistral: tuple[float, float], verdict: str
) -> None:
    a = make_record(
        "mistral-7b", "claims", accuracy={"arc_challenge": mistral}, hardware="h100", family="mistral"
    )
    b = make_record(
        "llama2-13b", "claims", accuracy={"arc_challenge": (0.56, 0.01)}, hardware="h100", family="llama"
    )
    results = {r.id: r for r in evaluate_claims(tmp_path, has_gpu=True, store=Store([a, b]))}
    part = results["mistral-7b-beats-llama2-13b"].parts[0]
    assert part.verdict == verdict and part.scope == "real" and "unpaired (stderr)" in part.evidence
    cost = results["mistral-7b-beats-llama2-13b"].parts[1]
    # make_record gives the smoke suite's scenarios, not the claim's c1-512-128.
    assert cost.verdict == INCONCLUSIVE and "not in both runs" in cost.evidence
    assert results["mistral-7b-beats-llama2-13b"].verdict == (FAILS if verdict == FAILS else INCONCLUSIVE)
