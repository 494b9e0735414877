"""The gate's value types: a resolved check, a figure, one metric's comparison and the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["regression", "missing", "inconclusive", "improvement", "pass", "new", "unmeasured"]
MetricKind = Literal["accuracy", "performance", "run"]
InconclusivePolicy = Literal["fail", "pass"]
FamilyMethod = Literal["holm", "bh", "none"]

FAILING: frozenset[str] = frozenset({"regression", "missing"})
VERDICT_ORDER: tuple[str, ...] = (
    "regression",
    "missing",
    "inconclusive",
    "improvement",
    "pass",
    "new",
    "unmeasured",
)
NOISE_SIGMAS = 2.0  # kept for importers; the rule now uses CONFIDENCE intervals
CONFIDENCE = 0.95  # two-sided interval of each change; each one-sided decision is at (1 − CONFIDENCE) / 2
DEFAULT_FAMILY: FamilyMethod = "holm"
# The `failed` gate: the candidate may fail this share of its requests more than the baseline
# did before a one-sided exact binomial test can call it a regression (a transient error or two
# does not fail a release).
DEFAULT_FAILED_SHARE = 0.01

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
    basis: str | None = None  # where `se` comes from ("stderr", "3 repeats"), or why there is none
    df: float = float("inf")  # degrees of freedom of `se` (inf: normal theory)
    se_one: float | None = None  # standard error of one repeat's figure (for "repeats needed")


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
    sigma: float | None  # standard error of the difference; None: no noise known
    noise_basis: str | None
    verdict: Verdict
    reason: str
    ci_low: float | None = None  # interval of change_abs at the report's confidence (metric units)
    ci_high: float | None = None
    p_value: float | None = None  # one-sided: H0 "worsening within the bound", before family control
    p_adjusted: float | None = None  # the same after the family rule (Holm or BH over the run's checks)
    repeats_needed: int | None = None  # inconclusive: repeats per side that would resolve it at this noise

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
    invalid: tuple[str, ...] = ()  # gated points flagged invalid in either run: never compared
    inconclusive_policy: InconclusivePolicy = "fail"  # what an inconclusive verdict does to the exit code
    family: FamilyMethod = DEFAULT_FAMILY
    confidence: float = CONFIDENCE

    @property
    def refused(self) -> bool:
        if self.candidate_error is not None:
            return False
        return bool(self.invalid) or (bool(self.mismatches) and not self.allow_mismatch)

    @property
    def failures(self) -> tuple[MetricComparison, ...]:
        return tuple(c for c in self.comparisons if c.failed)

    @property
    def inconclusive(self) -> tuple[MetricComparison, ...]:
        return tuple(c for c in self.comparisons if c.verdict == "inconclusive")

    def fails(self, c: MetricComparison) -> bool:
        """Whether this comparison fails the gate (inconclusive ones by the report's policy)."""
        return c.failed or (c.verdict == "inconclusive" and self.inconclusive_policy == "fail")

    @property
    def exit_code(self) -> int:
        if self.candidate_error is not None:
            return 1
        if self.refused:
            return 2
        return 1 if self.failures or (self.inconclusive and self.inconclusive_policy == "fail") else 0

    @property
    def status(self) -> str:
        if self.exit_code == 1 and self.candidate_error is None and not self.failures:
            return "INCONCLUSIVE"
        return {0: "PASS", 1: "REGRESSION", 2: "REFUSED"}[self.exit_code]

    @property
    def family_note(self) -> str:
        """How the run's checks were controlled as a family, for the report."""
        tested = sum(1 for c in self.comparisons if c.p_value is not None)
        if self.family == "none":
            return f"{tested} checks, each at one-sided α = {(1 - self.confidence) / 2:g} (no family control)"
        name = {"holm": "Holm (family-wise error)", "bh": "Benjamini–Hochberg (false discovery rate)"}
        return (
            f"{name[self.family]} over {tested} checks at one-sided α = {(1 - self.confidence) / 2:g}; "
            f"intervals at {self.confidence:.0%}"
        )

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.comparisons if c.verdict == verdict)

    def headline(self) -> str:
        """One line saying the outcome and why, with the exit code."""
        if self.candidate_error is not None:
            return f"REGRESSION (exit 1): the candidate run failed: {self.candidate_error}"
        if self.refused and self.invalid:
            return f"REFUSED (exit 2): {len(self.invalid)} gated point(s) invalid: {'; '.join(self.invalid)}"
        if self.refused:
            return (
                f"REFUSED (exit 2): the runs' configurations differ in {len(self.mismatches)} place(s); "
                "rerun like for like or pass --allow-mismatch"
            )
        counts = ", ".join(f"{self.count(v)} {v.replace('_', ' ')}" for v in VERDICT_ORDER if self.count(v))
        if self.failures:
            names = ", ".join(c.label for c in self.failures)
            return f"REGRESSION (exit 1): {names} ({counts})"
        if self.inconclusive and self.inconclusive_policy == "fail":
            names = ", ".join(c.label for c in self.inconclusive)
            return (
                f"INCONCLUSIVE (exit 1): {names} cannot be told from noise ({counts}); "
                "run more repeats, or pass --inconclusive pass"
            )
        if self.inconclusive:
            return f"PASS (exit 0, --inconclusive pass): nothing regressed ({counts})"
        return f"PASS (exit 0): nothing regressed ({counts or 'no metrics gated'})"
