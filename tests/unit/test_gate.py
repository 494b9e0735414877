"""The regression gate: verdicts, noise, like-for-like refusals, outputs and exit codes."""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.gate import (
    GateError,
    GateReport,
    compare,
    judge,
    render_junit,
    render_markdown,
)
from harness.record.rigor import PointInfo, PointRigor, RepeatAggregates, SpreadStat
from harness.record.run_record import RunRecord, ScenarioResult
from harness.spec.suite import GateThreshold
from harness.storage.baseline import baseline_path, hardware_slug, set_baseline
from tests.factories import environment, spec_dict, task_result, write_run
from tests.factories import gate_record as _gate_record
from tests.factories import gate_scenario as _gate_scenario

# The gate needs a noise estimate for every figure it decides on (a verdict the data cannot
# support is inconclusive). These records carry what a run of the harness writes: a batch-means
# error of 1 % on each request-level figure and lm-eval stderrs of 0.01 (about 2,000 documents).
NOISE_REL = 0.01
_NOISY = ("output_throughput", "request_throughput", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms")


def scenario(**figures: object) -> ScenarioResult:
    sr = _gate_scenario(**figures)  # type: ignore[arg-type]
    spread = {}
    for key in _NOISY:
        value = getattr(sr, key)
        se = NOISE_REL * value
        spread[key] = SpreadStat(
            mean=value,
            std=se,
            n=10,
            ci95_low=value - 2.26 * se,
            ci95_high=value + 2.26 * se,
            method="batch_means",
        )
    rigor = PointRigor(point=PointInfo(scenario=sr.name, role="fixed", concurrency=1), request_spread=spread)
    return sr.model_copy(update={"rigor": rigor})


def with_repeats(sr: ScenarioResult, **per_repeat: list[float]) -> ScenarioResult:
    """The point measured len(values) times, each repeat with these figures."""
    n = len(next(iter(per_repeat.values())))
    reps = [
        RepeatAggregates(
            repeat=i + 1,
            completed=sr.completed,
            failed=sr.failed,
            duration=sr.duration,
            request_throughput=sr.request_throughput,
            output_throughput=sr.output_throughput,
            **{k: v[i] for k, v in per_repeat.items()},
        )
        for i in range(n)
    ]
    assert sr.rigor is not None
    return sr.model_copy(update={"rigor": sr.rigor.model_copy(update={"repeats": reps})})


def make_record(run_id: str = "run-base", **kw: object) -> RunRecord:
    kw.setdefault(
        "accuracy",
        {
            "harness_capitals": task_result("harness_capitals", (0.80, 0.01)),
            "harness_arithmetic": task_result("harness_arithmetic", (0.50, 0.01), num_fewshot=3),
        },
    )
    kw.setdefault("performance", {"c1": scenario()})
    return _gate_record(run_id, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the verdict rule


@pytest.mark.parametrize(
    ("candidate", "sigma", "verdict"),
    [
        # No noise known: the data cannot support a verdict (the old rule let the bound decide).
        (0.80, None, "inconclusive"),
        (0.7499, None, "inconclusive"),
        # A noise of zero: the bound decides, exactly on it is on it.
        (0.80, 0.0, "pass"),
        (0.75, 0.0, "pass"),
        (0.7499, 0.0, "regression"),
        (0.86, 0.0, "improvement"),
        # Worsening 0.10 in [0.002, 0.198]: straddles the allowed 0.05 (the old rule: within_noise, passed).
        (0.70, 0.05, "inconclusive"),
        (0.65, 0.05, "regression"),  # 0.15 in [0.052, 0.248]: all beyond 0.05
        (0.80, 0.02, "pass"),  # 0 in [-0.039, 0.039]: all within 0.05
        (0.86, 0.05, "pass"),  # better, but not surely beyond the bound
        (0.95, 0.05, "improvement"),  # -0.15 in [-0.248, -0.052]
    ],
)
def test_judge_accuracy_boundaries(candidate: float, sigma: float | None, verdict: str) -> None:
    got, reason = judge(0.80, candidate, higher_is_better=True, allowed=0.05, sigma=sigma)
    assert got == verdict, reason


def test_judge_lower_is_better() -> None:
    assert judge(100.0, 121.0, higher_is_better=False, allowed=20.0, sigma=0.0)[0] == "regression"
    assert judge(100.0, 79.0, higher_is_better=False, allowed=20.0, sigma=0.0)[0] == "improvement"
    assert judge(100.0, 119.0, higher_is_better=False, allowed=20.0, sigma=0.0)[0] == "pass"


# ---------------------------------------------------------------- compare


def by_label(report: GateReport) -> dict[str, str]:
    return {c.label: c.verdict for c in report.comparisons}


def test_identical_runs_pass() -> None:
    report = compare(make_record("a"), make_record("b", minutes=10))
    assert report.exit_code == 0
    assert set(by_label(report).values()) == {"pass"}
    assert report.thresholds_source == "gates of suite 'smoke'"
    assert [c.label for c in report.comparisons] == [
        "harness_capitals",
        "harness_arithmetic",
        "output_throughput [c1]",
        "p99_ttft_ms [c1]",
        "mean_tpot_ms [c1]",
    ]


def test_accuracy_drop_beyond_bound_and_noise_regresses() -> None:
    cand = make_record(
        "b",
        accuracy={
            **make_record().accuracy,
            "harness_capitals": task_result("harness_capitals", (0.60, 0.04)),
        },
    )
    report = compare(make_record(), cand)
    c = report.comparisons[0]  # regressions first
    assert (c.label, c.verdict) == ("harness_capitals", "regression")
    assert c.change_abs == pytest.approx(-0.20)
    assert c.sigma == pytest.approx(math.sqrt(0.01**2 + 0.04**2))
    assert report.exit_code == 1
    assert report.headline().startswith("REGRESSION (exit 1): harness_capitals")


def test_accuracy_drop_straddling_the_bound_is_inconclusive() -> None:
    # 0.08 worse against 0.05 allowed, but the interval ±1.96·sqrt(0.04²+0.04²) = ±0.111 reaches
    # below the bound. The old rule called this within noise and passed it; now it is
    # inconclusive, which fails by default and passes with --inconclusive pass.
    noisy = {"harness_capitals": task_result("harness_capitals", (0.80, 0.04))}
    base = make_record(accuracy={**make_record().accuracy, **noisy})
    cand = make_record(
        "b",
        accuracy={
            **make_record().accuracy,
            "harness_capitals": task_result("harness_capitals", (0.72, 0.04)),
        },
    )
    report = compare(base, cand)
    assert by_label(report)["harness_capitals"] == "inconclusive"
    assert report.comparisons[0].verdict == "inconclusive"  # sorted before passes
    assert report.exit_code == 1 and report.status == "INCONCLUSIVE"
    assert report.headline().startswith("INCONCLUSIVE (exit 1): harness_capitals")
    lenient = compare(base, cand, inconclusive="pass")
    assert lenient.exit_code == 0 and lenient.status == "PASS"


def test_throughput_drop_without_noise_is_inconclusive_not_bound_only() -> None:
    # The old rule let the bound alone decide a figure without a noise estimate (a silent
    # fallback); now the report says the data cannot support a verdict.
    bare = {"c1": _gate_scenario()}
    cand = make_record("b", performance={"c1": _gate_scenario(output_throughput=170.0)})  # -15% vs 10%
    report = compare(make_record(performance=bare), cand)
    c = next(x for x in report.comparisons if x.metric == "output_throughput")
    assert c.verdict == "inconclusive"
    assert c.sigma is None
    assert c.change_rel == pytest.approx(-0.15)
    assert "no noise estimate" in c.reason and "one repeat and no request-level noise" in c.reason
    assert report.exit_code == 1


def test_throughput_drop_with_batch_means_noise_regresses() -> None:
    cand = make_record("b", performance={"c1": scenario(output_throughput=170.0)})  # -15% vs 10%, ±2.8%
    report = compare(make_record(), cand)
    c = next(x for x in report.comparisons if x.metric == "output_throughput")
    assert c.verdict == "regression", c.reason
    assert c.noise_basis == "batch means of 10"
    assert report.exit_code == 1


def test_improvement_is_reported_and_does_not_fail() -> None:
    cand = make_record("b", performance={"c1": scenario(output_throughput=260.0, p99_ttft_ms=30.0)})
    report = compare(make_record(), cand)
    verdicts = by_label(report)
    assert verdicts["output_throughput [c1]"] == "improvement"
    assert verdicts["p99_ttft_ms [c1]"] == "improvement"
    assert report.exit_code == 0
    assert "refreshing the baseline" in report.comparisons[0].reason


def test_latency_noise_comes_from_batch_means_not_independent_requests() -> None:
    # The old rule took std/√completed (requests as independent): std 0.2 ms over 16 requests
    # gave 2σ = 0.14 ms and called a 0.6 ms rise (beyond 0.5 ms allowed) a regression. Requests
    # of one run share a queue; the record's batch-means error (here 1 %) is what counts.
    cand = make_record("b", performance={"c1": scenario(mean_tpot_ms=5.6)})
    c = next(x for x in compare(make_record(), cand).comparisons if x.metric == "mean_tpot_ms")
    assert c.sigma == pytest.approx(math.sqrt(0.05**2 + 0.056**2))
    assert c.verdict == "inconclusive"  # 0.6 in [0.45, 0.75] straddles 0.5
    assert c.repeats_needed is not None and c.repeats_needed >= 2
    far = make_record("b", performance={"c1": scenario(mean_tpot_ms=6.0)})
    assert by_label(compare(make_record(), far))["mean_tpot_ms [c1]"] == "regression"


def test_missing_task_and_scenario_fail() -> None:
    cand = make_record(
        "b", accuracy={"harness_capitals": task_result("harness_capitals", (0.8, 0.04))}, performance={}
    )
    report = compare(make_record(), cand)
    verdicts = by_label(report)
    assert verdicts["harness_arithmetic"] == "missing"
    assert verdicts["output_throughput [c1]"] == "missing"
    assert report.exit_code == 1
    assert all(c.verdict == "missing" for c in report.comparisons[:4])


def test_defaults_when_suite_declares_no_gates() -> None:
    spec = spec_dict(gates=[])
    base = make_record(spec=spec, performance={"c1": scenario(), "c8": scenario()})
    cand = make_record(
        "b",
        spec=spec,
        accuracy={**base.accuracy, "harness_opposites": task_result("harness_opposites", 0.5)},
        performance={"c1": scenario(), "c8": scenario(output_throughput=150.0)},
    )
    report = compare(base, cand)
    assert report.thresholds_source.startswith("project defaults")
    verdicts = by_label(report)
    assert verdicts["harness_opposites"] == "new"  # baseline has no figure: reported, not failed
    assert verdicts["output_throughput [c8]"] == "regression"  # a threshold without scenario covers all
    assert {"median_tpot_ms [c1]", "p99_ttft_ms [c8]", "failed [c1]"} <= verdicts.keys()
    capitals = next(c for c in report.comparisons if c.metric == "harness_capitals")
    assert capitals.max_abs_change == 0.02


def test_scenario_threshold_overrides_general_one() -> None:
    thresholds = [
        GateThreshold(metric="output_throughput", scenario="c1", max_rel_change=0.5),
        GateThreshold(metric="output_throughput", max_rel_change=0.01),
    ]
    base = make_record(performance={"c1": scenario(), "c8": scenario()})
    cand = make_record(
        "b", performance={"c1": scenario(output_throughput=170.0), "c8": scenario(output_throughput=170.0)}
    )
    verdicts = by_label(compare(base, cand, thresholds))
    assert verdicts == {"output_throughput [c1]": "pass", "output_throughput [c8]": "regression"}


def test_energy_metrics_derived_from_phase_energy() -> None:
    thresholds = [GateThreshold(metric="energy_per_output_token_j", max_rel_change=0.1)]
    unmeasured = compare(make_record(), make_record("b"), thresholds)
    assert by_label(unmeasured) == {"energy_per_output_token_j [c1]": "unmeasured"}
    assert unmeasured.exit_code == 0
    # Energy has no request-level noise: one repeat a side is inconclusive, repeats decide.
    one = compare(
        make_record(performance={"c1": scenario(energy_j=512.0)}),
        make_record("b", performance={"c1": scenario(energy_j=640.0)}),
        thresholds,
    )
    assert by_label(one) == {"energy_per_output_token_j [c1]": "inconclusive"}
    base = make_record(
        performance={
            "c1": with_repeats(
                scenario(energy_j=512.0),
                energy_per_output_token_j=[0.99, 1.01],
                output_tokens_per_j=[1 / 0.99, 1 / 1.01],
            )
        }
    )  # 1 J per token
    cand = make_record(
        "b",
        performance={
            "c1": with_repeats(
                scenario(energy_j=640.0),
                energy_per_output_token_j=[1.24, 1.26],
                output_tokens_per_j=[1 / 1.24, 1 / 1.26],
            )
        },
    )  # 1.25 J per token
    c = compare(base, cand, thresholds).comparisons[0]
    assert (c.baseline, c.candidate, c.verdict) == (1.0, 1.25, "regression")
    up = compare(base, cand, [GateThreshold(metric="output_tokens_per_j", max_rel_change=0.1)]).comparisons[0]
    assert (up.higher_is_better, up.verdict) == (True, "regression")


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (GateThreshold(metric="p99_ttf_ms"), "did you mean p99_ttft_ms"),
        (GateThreshold(metric="p99_ttft_ms", scenario="nope"), "neither run has"),
        (GateThreshold(metric="max_concurrency_reached"), "set higher_is_better"),
        (GateThreshold(metric="harness_capitals", scenario="c1"), "drop it"),
    ],
)
def test_bad_thresholds_raise(threshold: GateThreshold, message: str) -> None:
    with pytest.raises(GateError, match=message):
        compare(make_record(), make_record("b"), [threshold])


def test_explicit_direction_makes_any_field_gateable() -> None:
    th = [GateThreshold(metric="max_concurrency_reached", higher_is_better=True, max_abs_change=0)]
    # Gateable, but no noise is known for it in one repeat: inconclusive, said so (the old rule
    # passed it on the bound alone); --inconclusive pass lets it through.
    report = compare(make_record(), make_record("b"), th)
    assert by_label(report) == {"max_concurrency_reached [c1]": "inconclusive"}
    assert compare(make_record(), make_record("b"), th, inconclusive="pass").exit_code == 0


# ---------------------------------------------------------------- like for like


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": {"checksum_sha256": "e" * 64}}, "model checksum_sha256"),
        ({"model": {"revision": "abc"}}, "model revision"),
        (
            {"accuracy": {"harness_capitals": task_result("harness_capitals", (0.8, 0.04), version="2.0")}},
            "version",
        ),
        (
            {"accuracy": {"harness_capitals": task_result("harness_capitals", (0.8, 0.04), num_fewshot=5)}},
            "num_fewshot",
        ),
        (
            {
                "performance": {
                    "c1": scenario(
                        settings=scenario().settings.model_copy(
                            update={"load": scenario().settings.load.model_copy(update={"concurrency": 4})}
                        )
                    )
                }
            },
            "c1 concurrency",
        ),
        ({"env": environment(gpus=["NVIDIA H100 80GB HBM3"])}, "GPU count"),
        ({"env": environment(cpu_model="Other CPU")}, "CPU model"),
    ],
)
def test_configuration_mismatch_refuses(change: dict, expected: str) -> None:
    report = compare(make_record(), make_record("b", **change))
    assert report.refused
    assert report.exit_code == 2
    assert any(expected in m for m in report.mismatches), report.mismatches
    allowed = compare(make_record(), make_record("b", **change), allow_mismatch=True)
    assert allowed.exit_code in (0, 1)
    assert allowed.mismatches == report.mismatches


def test_gpu_model_mismatch() -> None:
    base = make_record(env=environment(gpus=["NVIDIA A100-SXM4-80GB"] * 2))
    cand = make_record("b", env=environment(gpus=["NVIDIA H100 80GB HBM3"] * 2))
    report = compare(base, cand)
    assert [m for m in report.mismatches if m.startswith("GPU")] == [
        "GPU models: ['NVIDIA A100-SXM4-80GB'] → ['NVIDIA H100 80GB HBM3']"
    ]


def test_version_changes_are_notes_not_mismatches() -> None:
    cand = make_record("b", env=environment(packages={"vllm": "0.33.0", "lm-eval": "0.4.13"}))
    report = compare(make_record(), cand)
    assert report.exit_code == 0
    assert "vllm 0.11.0 → 0.33.0" in report.notes


def test_failed_candidate_is_a_regression_with_its_error() -> None:
    cand = make_record("b", status="failed", error="engine did not become healthy in 600 s", performance={})
    report = compare(make_record(), cand)
    assert report.exit_code == 1
    assert report.candidate_error == "engine did not become healthy in 600 s"
    assert "engine did not become healthy" in report.headline()


def test_failed_baseline_cannot_be_compared() -> None:
    with pytest.raises(GateError, match="baseline run run-base failed"):
        compare(make_record(status="failed", error="boom"), make_record("b"))


# ---------------------------------------------------------------- outputs


def markdown_rows(text: str) -> list[dict[str, str]]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for ln in lines[2:]:  # lines[1] is the alignment row
        cells = [c.strip() for c in ln.strip("|").split(" | ")]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def regressing_pair() -> tuple[GateReport, int]:
    cand = make_record(
        "b",
        accuracy={
            **make_record().accuracy,
            "harness_capitals": task_result("harness_capitals", (0.60, 0.04)),
        },
        performance={"c1": scenario(output_throughput=170.0)},
    )
    report = compare(make_record(), cand)
    return report, 2


def test_markdown_table_parses_with_regressions_first() -> None:
    report, n_regressions = regressing_pair()
    text = render_markdown(report)
    assert text.splitlines()[0] == "## harness gate: REGRESSION"
    rows = markdown_rows(text)
    assert [r["metric"] for r in rows] == [c.label for c in report.comparisons]
    assert [r["verdict"] for r in rows[:n_regressions]] == ["**regression**"] * n_regressions
    assert rows[0]["metric"] == "harness_capitals"
    assert rows[0]["baseline"] == "0.8" and rows[0]["candidate"] == "0.6"
    assert rows[0]["change"] == "-0.2 (-25.0%)"
    assert rows[0]["allowed"] == "≥ -0.05"
    throughput = next(r for r in rows if r["metric"] == "output_throughput [c1]")
    assert throughput["allowed"] == "≥ -10% (-20)"
    assert throughput["noise"].endswith("(batch means of 10)") and throughput["noise"].startswith("±")


def test_junit_has_one_case_per_metric_and_failures_for_regressions() -> None:
    report, n_regressions = regressing_pair()
    root = ET.fromstring(render_junit(report))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(report.comparisons) == int(suite.get("tests", "-1"))
    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [
        ("harness.gate.accuracy", "harness_capitals"),
        ("harness.gate.c1", "output_throughput"),
    ]
    assert int(suite.get("failures", "-1")) == n_regressions
    failure = failed[0].find("failure")
    assert failure is not None and failure.get("type") == "regression"


def test_same_weights_in_another_folder_are_like_for_like() -> None:
    base = make_record(model={"source": "/cache-a/m", "checksum_sha256": "a" * 64})
    moved = make_record("b", model={"source": "/cache-b/m", "checksum_sha256": "a" * 64})
    assert compare(base, moved).exit_code == 0
    unchecked = make_record("c", model={"source": "/cache-b/m", "checksum_sha256": None})
    assert compare(base, unchecked).exit_code == 2


def test_junit_refusal_is_an_error_case() -> None:
    report = compare(make_record(), make_record("b", model={"checksum_sha256": "e" * 64}))
    suite = ET.fromstring(render_junit(report)).find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and "model checksum_sha256" in (error.text or "")


# ---------------------------------------------------------------- baselines


def test_hardware_slug() -> None:
    assert hardware_slug(environment(gpus=["NVIDIA H100 80GB HBM3"] * 2)) == "nvidia-h100-80gb-hbm3-x2"
    assert hardware_slug(environment(cpu_model="AMD EPYC 7763 64-Core Processor")) == (
        "cpu-amd-epyc-7763-64-core-processor"
    )
    assert hardware_slug(environment(cpu_model=None)) == "cpu-unknown"  # type: ignore[arg-type]


def test_failed_run_cannot_become_baseline(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be a baseline"):
        set_baseline(tmp_path, make_record(status="failed", error="boom"))


# ---------------------------------------------------------------- CLI and exit codes


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_run(tmp_path, make_record("20250101-base"))
    return tmp_path


def test_cli_baseline_set_then_gate_passes(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "set", "20250101-base", "--results", str(results)]) == 0
    path = baseline_path(results, make_record())
    assert path.name == "tiny-llama__smoke__cpu-amd-epyc-7b13.json"
    assert json.loads(path.read_text())["run_id"] == "20250101-base"
    write_run(results, make_record("20250101-cand", minutes=5))
    junit, summary = tmp_path / "gate.xml", tmp_path / "gate.md"
    code = main(
        ["gate", "--latest", "--results", str(results), "--junit", str(junit), "--summary", str(summary)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "PASS (exit 0)" in out
    assert {r["verdict"] for r in markdown_rows(summary.read_text())} == {"pass"}
    assert ET.parse(junit).getroot().get("failures") == "0"


def test_cli_gate_regression_exits_1(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "baseline",
                "set",
                "--latest",
                "--model",
                "tiny-llama",
                "--suite",
                "smoke",
                "--results",
                str(results),
            ]
        )
        == 0
    )
    write_run(
        results, make_record("20250101-cand", minutes=5, performance={"c1": scenario(p99_ttft_ms=80.0)})
    )
    assert main(["gate", "--candidate", "20250101-cand", "--results", str(results)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION (exit 1): p99_ttft_ms [c1]" in out
    assert "│ p99_ttft_ms [c1] " in out  # the scenario survives rich's markup in table cells
    assert out.index("regression") < out.index("pass")  # regressions first


def test_cli_gate_without_baseline_exits_2(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, junit = tmp_path / "gate.md", tmp_path / "gate.xml"
    code = main(
        ["gate", "--latest", "--results", str(results), "--summary", str(summary), "--junit", str(junit)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "no baseline at" in err and "harness baseline set" in err
    assert summary.read_text().startswith("## harness gate: REFUSED")
    assert ET.parse(junit).getroot().get("errors") == "1"


def test_cli_gate_mismatch_exits_2_unless_allowed(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["baseline", "set", "20250101-base", "--results", str(results)])
    write_run(results, make_record("20250101-cand", minutes=5, model={"checksum_sha256": "e" * 64}))
    assert main(["gate", "--latest", "--results", str(results)]) == 2
    assert "REFUSED (exit 2)" in capsys.readouterr().out
    assert main(["gate", "--latest", "--results", str(results), "--allow-mismatch"]) == 0
    out = capsys.readouterr().out
    assert "configuration differs (--allow-mismatch)" in out
    assert out.index("model checksum_sha256") < out.index("regression gate")  # above the table


def test_cli_gate_failed_candidate_exits_1(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["baseline", "set", "20250101-base", "--results", str(results)])
    write_run(results, make_record("20250101-cand", minutes=5, status="failed", error="OOM in scenario c1"))
    assert main(["gate", "--latest", "--results", str(results)]) == 1
    assert "OOM in scenario c1" in capsys.readouterr().out


def test_cli_gate_unreadable_baseline_exits_2(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"run_id": 3}')
    assert main(["gate", "--latest", "--results", str(results), "--baseline", str(bad)]) == 2
    assert "not a valid run record" in capsys.readouterr().err


def test_cli_gate_explicit_baseline_path(results: Path) -> None:
    write_run(results, make_record("20250101-cand", minutes=5))
    base = results / "runs" / "20250101-base"
    assert (
        main(["gate", "--candidate", "20250101-cand", "--baseline", str(base), "--results", str(results)])
        == 0
    )


def test_cli_gate_no_runs_exits_2(tmp_path: Path) -> None:
    assert main(["gate", "--latest", "--results", str(tmp_path)]) == 2


def test_cli_baseline_list(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["baseline", "set", "20250101-base", "--results", str(results)])
    capsys.readouterr()
    assert main(["baseline", "list", "--results", str(results)]) == 0
    assert "tiny-llama__smoke__cpu-amd-epyc-7b13.json" in capsys.readouterr().out


# ---------------------------------------------------------------- inconclusive, families, failed


def _straddling_pair() -> tuple[RunRecord, RunRecord]:
    noisy = {"harness_capitals": task_result("harness_capitals", (0.80, 0.04))}
    worse = {"harness_capitals": task_result("harness_capitals", (0.72, 0.04))}
    return (
        make_record(accuracy={**make_record().accuracy, **noisy}),
        make_record("b", accuracy={**make_record().accuracy, **worse}),
    )


def test_inconclusive_renders_in_markdown_and_junit_by_policy() -> None:
    base, cand = _straddling_pair()
    strict = compare(base, cand)
    text = render_markdown(strict)
    assert text.splitlines()[0] == "## harness gate: INCONCLUSIVE"
    row = next(r for r in markdown_rows(text) if r["metric"] == "harness_capitals")
    assert row["verdict"] == "_inconclusive_"
    assert "fails the gate (`--inconclusive fail`, the default)" in text
    assert "Family: Holm (family-wise error) over" in text
    case = ET.fromstring(render_junit(strict)).find("testsuite/testcase[@name='harness_capitals']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "inconclusive"
    lenient = compare(base, cand, inconclusive="pass")
    case = ET.fromstring(render_junit(lenient)).find("testsuite/testcase[@name='harness_capitals']")
    assert case is not None and case.find("failure") is None and case.find("skipped") is not None
    assert "does not fail the gate (`--inconclusive pass`)" in render_markdown(lenient)


def test_inconclusive_performance_says_how_many_repeats_resolve_it() -> None:
    cand = make_record("b", performance={"c1": scenario(output_throughput=181.0)})  # -9.5 % vs 10 %
    c = next(x for x in compare(make_record(), cand).comparisons if x.metric == "output_throughput")
    assert c.verdict == "inconclusive" and c.repeats_needed is not None
    assert f"about {c.repeats_needed} repeats a side would resolve it" in c.reason
    row = next(
        r for r in markdown_rows(render_markdown(compare(make_record(), cand))) if "throughput" in r["metric"]
    )
    assert row["verdict"] == f"_inconclusive (~{c.repeats_needed} repeats)_"


def test_holm_turns_a_lone_marginal_regression_in_a_family_inconclusive() -> None:
    from harness.gate import apply_family

    report = compare(*_straddling_pair())
    [acc] = [c for c in report.comparisons if c.metric == "harness_capitals"]
    p = acc.p_value
    assert p is not None and acc.p_adjusted is not None and acc.p_adjusted >= p
    marginal = dataclasses.replace(acc, verdict="regression", p_value=0.02, p_adjusted=0.02)
    quiet = [dataclasses.replace(acc, metric=f"q{i}", verdict="pass", p_value=0.9) for i in range(9)]
    [first, *_] = apply_family([marginal, *quiet], "holm")
    assert first.verdict == "inconclusive" and "not after Holm over 10 checks" in first.reason
    assert first.p_adjusted == pytest.approx(0.2)
    assert apply_family([marginal, *quiet], "none")[0].verdict == "regression"


def test_failed_requests_are_judged_by_a_binomial_test_with_a_tolerated_share() -> None:
    def failing(n_failed: int) -> RunRecord:
        sr = scenario()
        return make_record(
            "b", performance={"c1": sr.model_copy(update={"failed": n_failed, "completed": 200})}
        )

    th = [GateThreshold(metric="failed", max_abs_change=0)]
    base = make_record(performance={"c1": scenario().model_copy(update={"completed": 200})})
    one = compare(base, failing(1), th).comparisons[0]  # the old rule failed a run on one error
    assert one.verdict == "pass" and "exact binomial p" in one.reason
    many = compare(base, failing(12), th).comparisons[0]  # 12 of 212 ≫ 1 %
    assert many.verdict == "regression", many.reason


def test_cli_inconclusive_policy(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = _straddling_pair()
    write_run(results, base.model_copy(update={"run_id": "20250101-noisy"}))
    main(["baseline", "set", "20250101-noisy", "--results", str(results)])
    write_run(results, cand.model_copy(update={"run_id": "20250101-cand"}))
    args = ["gate", "--candidate", "20250101-cand", "--results", str(results)]
    assert main(args) == 1
    assert "INCONCLUSIVE (exit 1): harness_capitals" in capsys.readouterr().out
    assert main([*args, "--inconclusive", "pass"]) == 0
    assert main([*args, "--family", "bh", "--inconclusive", "pass"]) == 0
    assert "Benjamini–Hochberg" in capsys.readouterr().out
