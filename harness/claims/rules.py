"""The decision rules of the claims registry, as pure functions on plain figures.

Every rule ends in one of :data:`Verdict`'s values and says why; a rule whose data cannot
support either answer says ``inconclusive`` and what would resolve it. The statistics are
:mod:`harness.stats`' (Welch's t-test, exact McNemar, Wilson intervals); the rules are the
claims' own and live here, apart from the gate's verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.stats import wilson_interval

Verdict = Literal["holds", "does not hold", "inconclusive", "not measured here"]
HOLDS: Verdict = "holds"
FAILS: Verdict = "does not hold"
INCONCLUSIVE: Verdict = "inconclusive"
NOT_MEASURED: Verdict = "not measured here"
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Outcome:
    """A rule's verdict, one line of evidence, and the figures behind it (JSON-ready)."""

    verdict: Verdict
    evidence: str
    figures: dict[str, Any] = field(default_factory=dict)


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """Several measured verdicts as one: any 'does not hold' wins, then 'inconclusive', then 'holds';
    nothing measured is 'not measured here'."""
    measured = [v for v in verdicts if v != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if FAILS in measured:
        return FAILS
    if INCONCLUSIVE in measured:
        return INCONCLUSIVE
    return HOLDS


# --- accuracy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskComparison:
    """candidate − reference accuracy on one task, with its 95 % interval (0..1 units)."""

    task: str
    candidate: float
    reference: float
    ci_low: float | None
    ci_high: float | None
    method: str  # "paired (McNemar)", "paired (bootstrap)" or "unpaired (stderr)"
    n: int | None = None

    @property
    def diff(self) -> float:
        return self.candidate - self.reference


def paired_binary_ci(n: int, gained: int, lost: int) -> tuple[float, float]:
    """95 % Wald interval of a paired difference of proportions (gained/lost discordant pairs of n)."""
    if n <= 0:
        return (-1.0, 1.0)
    d = (gained - lost) / n
    var = max(0.0, ((gained + lost) / n - d * d) / n)
    half = Z95 * math.sqrt(var)
    return (d - half, d + half)


def unpaired_ci(diff: float, se_a: float | None, se_b: float | None) -> tuple[float | None, float | None]:
    if se_a is None or se_b is None:
        return (None, None)
    half = Z95 * math.sqrt(se_a**2 + se_b**2)
    return (diff - half, diff + half)


def decide_accuracy_not_worse(tasks: Sequence[TaskComparison], margin: float) -> Outcome:
    """Holds when every task's lower bound is ≥ −margin; does not hold when any task's upper bound
    is < −margin; inconclusive otherwise (or with no common task, or a task with no interval)."""
    if not tasks:
        return Outcome(INCONCLUSIVE, "no task in common between the two runs")
    per: list[Verdict] = []
    parts = []
    for t in tasks:
        if t.ci_low is None or t.ci_high is None:
            per.append(INCONCLUSIVE)
            parts.append(f"{t.task} {t.diff:+.3f} (no interval: no stderr and no sample logs)")
            continue
        v = HOLDS if t.ci_low >= -margin else FAILS if t.ci_high < -margin else INCONCLUSIVE
        per.append(v)
        parts.append(f"{t.task} {t.diff:+.3f} [{t.ci_low:+.3f}, {t.ci_high:+.3f}] {t.method}")
    verdict = combine(per)
    why = "; ".join(parts)
    if verdict == INCONCLUSIVE:
        why += f" — an interval straddles −{margin:g}: more documents would resolve it"
    return Outcome(
        verdict,
        why,
        {"margin": margin, "tasks": [dict(t.__dict__, diff=t.diff) for t in tasks]},
    )


@dataclass(frozen=True)
class PairedCounts:
    """Documents of one task scored 0/1 in both runs: how many flipped each way, and McNemar's p."""

    task: str
    n: int
    gained: int
    lost: int
    p_value: float


def decide_answers_unchanged(tasks: Sequence[PairedCounts], max_changed_frac: float, alpha: float) -> Outcome:
    """Holds when every task's changed share is ≤ ``max_changed_frac`` and McNemar finds no change;
    does not hold when McNemar's p < alpha or the share's 95 % Wilson lower bound exceeds the
    allowance; inconclusive otherwise."""
    if not tasks:
        return Outcome(INCONCLUSIVE, "no task with per-document sample logs in both runs to pair")
    per: list[Verdict] = []
    parts = []
    for t in tasks:
        changed = t.gained + t.lost
        frac = changed / t.n if t.n else 0.0
        low, _ = wilson_interval(changed, t.n) if t.n else (0.0, 1.0)
        if t.p_value < alpha or low > max_changed_frac:
            v: Verdict = FAILS
        elif frac <= max_changed_frac:
            v = HOLDS
        else:
            v = INCONCLUSIVE
        per.append(v)
        parts.append(f"{t.task}: {changed}/{t.n} changed (+{t.gained}/−{t.lost}, McNemar p={t.p_value:.2g})")
    return Outcome(
        combine(per),
        "; ".join(parts),
        {"max_changed_frac": max_changed_frac, "tasks": [t.__dict__ for t in tasks]},
    )


# --- speed --------------------------------------------------------------------------------------


def _bound(at_most: float | None, at_least: float | None) -> tuple[str, float]:
    if at_most is not None:
        return "≤", at_most
    assert at_least is not None
    return "≥", at_least


def decide_tpot_ratio(
    candidate_ms: Sequence[float],
    reference_ms: Sequence[float],
    at_most: float | None = None,
    at_least: float | None = None,
    alpha: float = 0.05,
) -> Outcome:
    """Per-request TPOT: Welch's test of the candidate against ``bound × reference``."""
    from harness.stats import welch_test

    op, bound = _bound(at_most, at_least)
    if len(candidate_ms) < 2 or len(reference_ms) < 2:
        return Outcome(
            INCONCLUSIVE,
            f"needs at least two requests on each side ({len(candidate_ms)} and {len(reference_ms)})",
        )
    mc = sum(candidate_ms) / len(candidate_ms)
    mr = sum(reference_ms) / len(reference_ms)
    ratio = mc / mr if mr else math.inf
    # statistic > 0: the candidate is slower than bound × reference (its TPOT is larger).
    test = welch_test([bound * r for r in reference_ms], candidate_ms)
    significant = test.p_value < alpha
    claimed_side = test.statistic < 0 if op == "≤" else test.statistic > 0
    verdict: Verdict = (HOLDS if claimed_side else FAILS) if significant else INCONCLUSIVE
    ev = (
        f"TPOT ratio {ratio:.3f} (claim {op} {bound:g}; {mc:.2f} vs {mr:.2f} ms, "
        f"{len(candidate_ms)} and {len(reference_ms)} requests, Welch p={test.p_value:.2g})"
    )
    if verdict == INCONCLUSIVE:
        ev += " — not significant: more requests would resolve it"
    return Outcome(
        verdict,
        ev,
        {
            "ratio": ratio,
            "bound": bound,
            "op": op,
            "p_value": test.p_value,
            "candidate_mean_ms": mc,
            "reference_mean_ms": mr,
        },
    )


def decide_point_ratio(
    candidate: float | None,
    reference: float | None,
    figure: str,
    at_most: float | None = None,
    at_least: float | None = None,
    tolerance: float = 0.05,
) -> Outcome:
    """A figure without spread: the ratio must clear the bound by ``tolerance`` (relative)."""
    op, bound = _bound(at_most, at_least)
    if candidate is None or reference is None or reference == 0:
        return Outcome(INCONCLUSIVE, f"{figure} not measured on both sides ({candidate} and {reference})")
    ratio = candidate / reference
    lo, hi = bound * (1 - tolerance), bound * (1 + tolerance)
    if op == "≤":
        verdict: Verdict = HOLDS if ratio <= lo else FAILS if ratio >= hi else INCONCLUSIVE
    else:
        verdict = HOLDS if ratio >= hi else FAILS if ratio <= lo else INCONCLUSIVE
    ev = f"{figure} ratio {ratio:.3f} (claim {op} {bound:g}; {candidate:.4g} vs {reference:.4g}; one measurement each)"
    if verdict == INCONCLUSIVE:
        ev += f" — within {100 * tolerance:g}% of the bound: repeats would resolve it"
    return Outcome(verdict, ev, {"ratio": ratio, "bound": bound, "op": op, "figure": figure})


# --- KV memory -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KvPoint:
    """Measured KV tokens one sequence holds at a context length (None: not measured)."""

    context_tokens: int
    measured_tokens: float | None


def decide_window_bounded(
    window: int | None,
    block_size: int | None,
    windowed: Sequence[KvPoint],
    control: Sequence[KvPoint],
    slack_blocks: int = 2,
    min_points_past: int = 2,
) -> Outcome:
    """The windowed model's cache stays ≤ window + slack past the bound while the control's grows."""
    if not window:
        return Outcome(INCONCLUSIVE, "the windowed model's architecture has no sliding window")
    bs = block_size or 16
    bound = window + slack_blocks * bs
    w = {p.context_tokens: p.measured_tokens for p in windowed if p.measured_tokens is not None}
    c = {p.context_tokens: p.measured_tokens for p in control if p.measured_tokens is not None}
    past = sorted(ctx for ctx in w if ctx > bound and ctx in c)
    figs: dict[str, Any] = {"window": window, "block_size": bs, "bound_tokens": bound, "points_past": past}
    if len(past) < min_points_past:
        return Outcome(
            INCONCLUSIVE,
            f"{len(past)} sweep point(s) past {bound} tokens measured on both models; "
            f"{min_points_past} needed (longer prompts or a shorter window would resolve it)",
            figs,
        )
    over = [ctx for ctx in past if w[ctx] > bound]
    longest = past[-1]
    shown = ", ".join(f"{ctx}: {w[ctx]:.0f} vs {c[ctx]:.0f}" for ctx in past)
    if over:
        return Outcome(
            FAILS,
            f"windowed cache grows past the window: {len(over)} of {len(past)} points over {bound} tokens "
            f"(context: windowed vs control tokens/seq {shown})",
            figs,
        )
    if c[longest] <= bound:
        return Outcome(
            INCONCLUSIVE,
            f"the control's cache did not grow past {bound} tokens either (at {longest}: {c[longest]:.0f}): "
            "the gauge may not see per-sequence use",
            figs,
        )
    return Outcome(
        HOLDS,
        f"windowed ≤ {bound} tokens/seq at every point past the window while the control grows "
        f"(context: windowed vs control tokens/seq {shown})",
        figs,
    )


def decide_kv_ratio(
    candidate_bytes: float | None,
    reference_bytes: float | None,
    at_most: float,
    reference_label: str,
    reason: str | None = None,
) -> Outcome:
    """Measured KV bytes per token over the reference's: holds when ≤ at_most (exact allocations)."""
    if candidate_bytes is None or not reference_bytes:
        return Outcome(INCONCLUSIVE, reason or "KV bytes per token not measured on both sides")
    ratio = candidate_bytes / reference_bytes
    verdict: Verdict = HOLDS if ratio <= at_most else FAILS
    return Outcome(
        verdict,
        f"KV bytes/token {candidate_bytes:,.0f} vs {reference_bytes:,.0f} ({reference_label}): ratio {ratio:.3f} "
        f"(claim ≤ {at_most:g})",
        {
            "ratio": ratio,
            "candidate_bytes_per_token": candidate_bytes,
            "reference_bytes_per_token": reference_bytes,
        },
    )
