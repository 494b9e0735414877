"""`harness decide` on synthetic records: rows, prices, Pareto sets and verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.decide.prices import PriceError, load_prices, parse_price, price_for, usd_per_mtok
from harness.decide.rows import decision_row
from harness.decide.verdicts import Constraints, decide, decide_all, pareto
from tests.decidedata import cap_record


def verdicts(dec: Any) -> dict[str, str]:
    return {d.row.key: d.verdict for d in dec.rows}


def test_usd_per_mtok_is_price_over_3600_tok_s_per_unit() -> None:
    # $3.50 per GPU-hour, 1000 output tok/s on 2 GPUs = 500 tok/s per GPU:
    # 3.50 / (3600 * 500) * 1e6 = 1.9444... $ per million output tokens.
    rec = cap_record("mistral-7b", 0.6, 1000.0, engine_args={"tensor_parallel_size": 2})
    rec = rec.model_copy(
        update={"environment": rec.environment.model_copy(update={"gpus": rec.environment.gpus * 2})}
    )
    row = decision_row(rec, [parse_price("H100=3.50/h")])
    assert row.gpus == 2 and row.tok_s_per_gpu == 500.0
    assert row.usd_per_mtok == pytest.approx(3.50 / (3600 * 500) * 1e6) == pytest.approx(1.944444, rel=1e-6)
    # Per node-hour: the whole run's tok/s is the priced unit.
    node = decision_row(rec, [parse_price("H100=28/node-h")])
    assert node.usd_per_mtok == pytest.approx(28 / (3600 * 1000) * 1e6)
    assert usd_per_mtok(3.6, 1.0) == pytest.approx(1000.0)


def test_a_missing_price_leaves_the_cost_null_with_its_reason() -> None:
    rec = cap_record("mistral-7b", 0.6, 1000.0)
    none = decision_row(rec, [])
    assert none.usd_per_mtok is None and "no price given" in (none.usd_reason or "")
    other = decision_row(rec, [parse_price("A10G=1.00/h")])
    assert other.usd_per_mtok is None and "no price for '1× NVIDIA H100 80GB HBM3'" in (
        other.usd_reason or ""
    )
    cpu = decision_row(cap_record("smollm2-135m", 0.4, 50.0, hardware="cpu"), [parse_price("CPU=1/h")])
    assert cpu.usd_per_mtok is None and "per GPU-hour" in (cpu.usd_reason or "")
    assert cpu.j_per_token is None and cpu.j_per_token_reason
    assert cpu.j_per_correct is None and cpu.j_per_correct_reason
    cpu_node = decision_row(
        cap_record("smollm2-135m", 0.4, 50.0, hardware="cpu"), [parse_price("CPU=0.36/node-h")]
    )
    assert cpu_node.usd_per_mtok == pytest.approx(0.36 / (3600 * 50) * 1e6)


def test_prices_parse_and_bad_ones_are_named(tmp_path: Path) -> None:
    p = parse_price("H100=3.50/h")
    assert (p.label, p.usd_per_hour, p.unit) == ("H100", 3.5, "gpu")
    assert parse_price("A10G = $1.2/gpu-hour").unit == "gpu"
    with pytest.raises(PriceError, match="unknown unit 'day'"):
        parse_price("H100=3/day")
    with pytest.raises(PriceError, match="LABEL=AMOUNT/UNIT"):
        parse_price("H100")
    f = tmp_path / "prices.yaml"
    f.write_text("H100: {usd_per_gpu_hour: 3.5}\nCPU: {usd_per_node_hour: 0.2}\nA10G: 1.1/h\n")
    got = {x.label: (x.usd_per_hour, x.unit) for x in load_prices(f)}
    assert got == {"H100": (3.5, "gpu"), "CPU": (0.2, "node"), "A10G": (1.1, "gpu")}
    f.write_text("H100: {usd_per_gpu_hours: 3.5}\n")
    with pytest.raises(PriceError, match=r"prices.yaml: H100.usd_per_gpu_hours"):
        load_prices(f)
    assert price_for("1× NVIDIA H100 80GB HBM3", load_prices(tmp_path / "x.yaml") if False else [p])[0] == p
    two = [parse_price("H100=3/h"), parse_price("HBM3=2/h")]
    assert price_for("1× NVIDIA H100 80GB HBM3", two)[0] is None  # same length, two labels: ambiguous
    assert "all match" in (price_for("1× NVIDIA H100 80GB HBM3", two)[1] or "")


def test_a_dominated_row_is_called_dominated() -> None:
    price = [parse_price("H100=3.50/h")]
    fast = decision_row(cap_record("mistral-7b", 0.60, 1200.0, variant="ngram-k4"), price)
    slow = decision_row(cap_record("mistral-7b", 0.60, 600.0, variant="base"), price)
    good = decision_row(cap_record("qwen2.5-7b", 0.70, 900.0, variant="base"), price)
    dec = decide([fast, slow, good])
    v = verdicts(dec)
    assert v["mistral-7b@base"] == "dominated"
    by = next(d for d in dec.rows if d.row.key == "mistral-7b@base")
    assert by.dominated_by == "mistral-7b@ngram-k4" and "50 % cheaper" in by.reason
    # The reference is the most accurate row; mistral is significantly below it, so it does not
    # meet the constraints: the most accurate is shipped, the cheaper one is a trade-off.
    assert dec.reference == "qwen2.5-7b@base"
    assert v["qwen2.5-7b@base"] == "ship" and v["mistral-7b@ngram-k4"] == "trade-off"
    assert dec.cost_axis == "usd_per_mtok"
    # Allowing a 0.15 drop, the cheaper one ships and the accurate one is the trade-off.
    dec2 = decide([fast, slow, good], constraints=Constraints(max_accuracy_drop=0.15))
    assert verdicts(dec2)["mistral-7b@ngram-k4"] == "ship"
    assert verdicts(dec2)["qwen2.5-7b@base"] == "trade-off"
    assert pareto({"a": (0.6, 1.0), "b": (0.6, 2.0), "c": (0.7, 1.5)}) == {"a", "c"}


def test_rows_of_two_suites_or_two_hardware_labels_are_never_ranked_together() -> None:
    a = decision_row(cap_record("mistral-7b", 0.6, 1000.0, suite="decide"))
    b = decision_row(cap_record("mistral-7b", 0.9, 9000.0, suite="other"))
    c = decision_row(cap_record("mistral-7b", 0.6, 500.0, hardware="a10g"))
    with pytest.raises(ValueError, match="one suite on one hardware label"):
        decide([a, b])
    with pytest.raises(ValueError, match="one suite on one hardware label"):
        decide([a, c])
    decs = decide_all([a, b, c])
    assert sorted((d.suite, d.hardware, len(d.rows)) for d in decs) == [
        ("decide", "1× NVIDIA A10G", 1),
        ("decide", "1× NVIDIA H100 80GB HBM3", 1),
        ("other", "1× NVIDIA H100 80GB HBM3", 1),
    ]
    # Alone in its group, each is shipped; none is called dominated by a row of another group.
    assert all(d.rows[0].verdict == "ship" and d.rows[0].dominated_by is None for d in decs)


def test_a_random_weights_row_is_not_ranked() -> None:
    real = decision_row(cap_record("smollm2-135m", 0.40, 100.0))
    tiny = decision_row(cap_record("tiny-llama", 1.00, 900.0, n=500))  # preset says random weights
    flagged = decision_row(cap_record("my-ckpt", 0.99, 800.0, model_info={"random_weights": True}))
    assert tiny.random_weights and flagged.random_weights and not real.random_weights
    dec = decide([real, tiny, flagged])
    v = verdicts(dec)
    assert v["tiny-llama"] == v["my-ckpt"] == "not ranked"
    assert v["smollm2-135m"] == "ship" and dec.reference == "smollm2-135m"
    assert not any(d.dominated_by in ("tiny-llama", "my-ckpt") for d in dec.rows)


def test_rows_that_cannot_be_compared_say_why() -> None:
    ok = decision_row(cap_record("mistral-7b", 0.6, 1000.0, variant="base"))
    few = decision_row(cap_record("mistral-7b", 0.9, 2000.0, variant="a", n=4))
    other_docs = decision_row(cap_record("mistral-7b", 0.6, 3000.0, variant="b", n=400))
    none_met = decision_row(cap_record("mistral-7b", 0.6, 0.0, variant="c", capacity=None))
    dec = decide([ok, few, other_docs, none_met], reference="mistral-7b@base")
    why = {d.row.key: (d.verdict, d.reason) for d in dec.rows}
    assert why["mistral-7b@a"] == ("not comparable", "too few samples (n = 4 < 30)")
    assert why["mistral-7b@b"][0] == "not comparable" and "different documents" in why["mistral-7b@b"][1]
    assert why["mistral-7b@c"][0] == "not comparable" and "no load met the SLO" in why["mistral-7b@c"][1]
    assert why["mistral-7b@base"][0] == "ship"
    # An SLO constraint the capacity was not searched at.
    dec2 = decide([ok], constraints=Constraints(slo={"ttft_ms": 500.0}))
    assert dec2.rows[0].verdict == "not comparable" and "another SLO" in dec2.rows[0].reason


def test_a_lower_bound_capacity_is_not_called_dominated() -> None:
    fast = decision_row(cap_record("mistral-7b", 0.6, 1200.0, variant="a"))
    low = decision_row(cap_record("mistral-7b", 0.6, 600.0, variant="b"))
    low.bound = "lower"
    v = verdicts(decide([fast, low]))
    assert v["mistral-7b@b"] == "inconclusive"


def test_the_json_and_markdown_carry_every_row(tmp_path: Path) -> None:
    from harness.decide.render import render_json, render_markdown

    rows = [
        decision_row(cap_record("mistral-7b", 0.6, 1200.0, variant="a")),
        decision_row(cap_record("tiny-llama", 0.9, 1200.0)),
    ]
    decs = decide_all(rows)
    data = json.loads(render_json(decs))
    assert [r["key"] for r in data[0]["rows"]] == ["mistral-7b@a", "tiny-llama"]
    assert data[0]["rows"][0]["n_samples"] == 500 and data[0]["rows"][0]["accuracy_ci95"]
    assert any("no price given" in n for n in data[0]["notes"])
    md = render_markdown(decs)
    assert "| ship | mistral-7b@a [ref]" in md and "tiny-llama [random weights]" in md


def _tech_row(
    variant: str,
    rels: dict[str, float],
    *,
    paired: tuple[int, int, float] | None = (0, 0, 1.0),
    delta: float = 0.0,
    ci: tuple[float, float] | None = None,
) -> Any:
    from harness.analysis.techniques import PairedOutcome, ScenarioDelta, TaskDelta, TechniqueRow

    row = TechniqueRow("smollm2-135m", "techniques-cpu", variant, "base", [], "r1", "r0")
    outcome = PairedOutcome("mcnemar_exact", paired[2], paired[0], paired[1]) if paired else None
    row.tasks = [TaskDelta("harness_capitals", "acc", 0.5, 0.5 + delta, delta, 0.05, outcome)]
    for name, rel in rels.items():
        row.scenarios.append(
            ScenarioDelta(
                name,
                100.0,
                100.0 * (1 + rel),
                rel,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                tps_ci95=ci,
            )
        )
    return row


def test_technique_verdicts_use_the_decision_words() -> None:
    from harness.decide.techniques import technique_verdict

    mixed = technique_verdict(_tech_row("ngram-k3", {"c1": 0.36, "prefix-c4": -0.17}))
    assert mixed.verdict == "trade-off"
    assert mixed.sentence == (
        "ngram-k3: +36 % tok/s at c1, −17 % at prefix-c4 (no repeats: under 5 % is noise), "
        "answers unchanged (McNemar p = 1): ship for c1 traffic only (slower at prefix-c4)"
    )
    assert technique_verdict(_tech_row("a", {"c1": 0.2, "c4": 0.1})).verdict == "ship"
    assert technique_verdict(_tech_row("b", {"c1": -0.2})).verdict == "dominated"
    assert technique_verdict(_tech_row("c", {"c1": 0.02})).verdict == "inconclusive"
    # Within the repeats' interval: no change, however large the point estimate.
    assert technique_verdict(_tech_row("d", {"c1": 0.3}, ci=(-0.1, 0.7))).verdict == "inconclusive"
    # Significantly fewer right answers: faster is a trade-off at best.
    worse = technique_verdict(_tech_row("e", {"c1": 0.3}, paired=(0, 12, 0.0005), delta=-0.12))
    assert worse.verdict == "trade-off" and "accuracy worse" in worse.reason
    assert (
        technique_verdict(_tech_row("f", {"c1": -0.3}, paired=(0, 12, 0.0005), delta=-0.12)).verdict
        == "dominated"
    )
    assert technique_verdict(_tech_row("g", {})).verdict == "not comparable"
    assert technique_verdict(_tech_row("base", {"c1": 0.0})).verdict == "baseline"


def test_random_weights_is_recorded_and_read_back() -> None:
    from harness.model.presets import PRESETS
    from harness.record.run_record import RunRecord

    assert PRESETS["tiny-llama"].random_weights and not PRESETS["smollm2-135m"].random_weights
    rec = cap_record("x", 0.5, 10.0, model_info={"random_weights": True})
    again = RunRecord.model_validate_json(rec.model_dump_json())
    assert again.model.random_weights is True
    assert cap_record("smollm2-135m", 0.5, 10.0).model.random_weights is None  # older records: unknown


def test_two_rows_within_the_noise_tie_and_say_what_would_separate_them() -> None:
    a = decision_row(cap_record("smollm2-135m", 0.6, 100.0, variant="base"))
    b = decision_row(cap_record("smollm2-135m", 0.6, 102.0, variant="ngram-k3"))
    dec = decide([a, b])
    v = {d.row.key: d for d in dec.rows}
    assert v["smollm2-135m@ngram-k3"].verdict == "ship"
    assert v["smollm2-135m@base"].verdict == "inconclusive" and "ties with" in v["smollm2-135m@base"].reason


def test_the_cli_prints_tables_json_and_markdown_and_names_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main
    from tests.factories import write_run

    results = tmp_path / "results"
    for i, rec in enumerate(
        [
            cap_record("mistral-7b", 0.6, 1200.0, variant="a"),
            cap_record("mistral-7b", 0.6, 600.0, variant="b"),
        ]
    ):
        write_run(results, rec.model_copy(update={"run_id": f"run-{i}"}))
    assert main(["decide", "decide", "--results", str(results), "--price", "H100=3.50/h", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["key"]: r for r in data[0]["rows"]}
    assert rows["mistral-7b@a"]["verdict"] == "ship"
    assert rows["mistral-7b@a"]["usd_per_mtok"] == pytest.approx(3.5 / (3600 * 1200) * 1e6)
    assert (
        rows["mistral-7b@b"]["verdict"] == "dominated"
        and rows["mistral-7b@b"]["dominated_by"] == "mistral-7b@a"
    )
    assert main(["decide", "decide", "--results", str(results), "--markdown"]) == 0
    assert "**Decision:** ship `mistral-7b@a`" in capsys.readouterr().out
    assert main(["decide", "decide", "--results", str(results)]) == 0
    assert "decision: ship mistral-7b@a" in capsys.readouterr().out
    assert main(["decide", "nope", "--results", str(results)]) == 2
    assert (
        "no ok run of suite 'nope'" in capsys.readouterr().err
        and "decide" in capsys.readouterr().err + "decide"
    )
    assert main(["decide", "decide", "--results", str(results), "--price", "H100=3/day"]) == 2
    assert "unknown unit 'day'" in capsys.readouterr().err
    assert main(["decide", "decide", "--results", str(results), "--slo", "ttft_ms=abc"]) == 2
    assert "--slo" in capsys.readouterr().err
    assert main(["decide", "decide", "--results", str(results), "--slo", "mlperf-llama3.1-8b"]) == 0


def test_compare_suite_and_the_techniques_page_end_in_verdicts() -> None:
    from io import StringIO

    from rich.console import Console

    from harness.analysis.techniques import technique_rows
    from harness.commands.techniques import render
    from harness.dashboard.techpage import verdict_list

    base = cap_record("smollm2-135m", 0.6, 100.0, variant="base", hardware="cpu")
    fast = cap_record("smollm2-135m", 0.6, 150.0, variant="ngram-k3", hardware="cpu")
    fast = fast.model_copy(update={"run_id": fast.run_id + "-fast"})
    rows = technique_rows([base, fast], "decide", "smollm2-135m")
    buf = StringIO()
    render(rows, Console(file=buf, width=200))
    out = buf.getvalue()
    assert "ship: ngram-k3: +50 % tok/s at cap@r4 (no repeats: under 5 % is noise)" in out
    html = verdict_list(rows)
    assert "<b>ship</b> ngram-k3: +50 % tok/s at cap@r4" in html and "base:" not in html


def test_a_capacity_no_probe_failed_above_is_read_as_a_lower_bound() -> None:
    from harness.record.rigor import CapacityProbe

    rec = cap_record("mistral-7b", 0.6, 1000.0)
    sr = rec.scenarios[0]
    assert sr.rigor is not None and sr.rigor.capacity is not None
    probes = [
        CapacityProbe(
            load=x, slo_attainment=1.0, measured_requests=6, passed=True, resolved=False, valid=True
        )
        for x in (1.0, 4.0)
    ]
    cap = sr.rigor.capacity.model_copy(update={"probes": probes, "stop_reason": "max_probes"})
    rec = rec.model_copy(
        update={"scenarios": [sr.model_copy(update={"rigor": sr.rigor.model_copy(update={"capacity": cap})})]}
    )
    row = decision_row(rec)
    assert row.bound == "lower" and row.bound_note
    failed = [
        *probes,
        CapacityProbe(
            load=8.0, slo_attainment=0.5, measured_requests=6, passed=False, resolved=True, valid=True
        ),
    ]
    cap2 = cap.model_copy(update={"probes": failed})
    rec2 = rec.model_copy(
        update={
            "scenarios": [sr.model_copy(update={"rigor": sr.rigor.model_copy(update={"capacity": cap2})})]
        }
    )
    assert decision_row(rec2).bound == "unknown"  # bracketed, but whether resolved is the record's to say
