"""The gate's verdict rules, pure: the interval of a change against its bound, the `failed`
share, paired accuracy and the family rule over a run's checks (docs/statistics.md)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.formatting import num
from harness.gate.report import (
    CONFIDENCE,
    DEFAULT_FAILED_SHARE,
    DEFAULT_FAMILY,
    Check,
    FamilyMethod,
    MetricComparison,
    Verdict,
)
from harness.rigor import compare as rigor
from harness.stats_bounds import benjamini_hochberg, binom_sf, holm, one_sided_p, t_quantile

if TYPE_CHECKING:
    from harness.record.run_record import RunRecord


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
    df: float = math.inf,
    confidence: float = CONFIDENCE,
) -> tuple[Verdict, str]:
    """The verdict for one metric and a one-line reason: the interval of the worsening against
    the allowed worsening.

    With ``w`` the worsening (positive: worse) and ``[w − h, w + h]`` its interval at
    `confidence` (``h = t(df) · sigma``): ``regression`` when the whole interval is beyond
    `allowed`, ``pass`` when it is all within it (``improvement`` when it is all better than
    ``−allowed``), ``inconclusive`` when it straddles the bound, or when no noise is known
    (`sigma` None): a verdict the data cannot support is not given.
    """
    worsening = (baseline - candidate) if higher_is_better else (candidate - baseline)
    word = "worse" if worsening > 0 else "better"
    moved = f"{word} by {num(abs(worsening))}" if worsening else "unchanged"
    if sigma is None:
        return (
            "inconclusive",
            f"{moved} (allowed {num(allowed)}) but no noise estimate: run ≥ 2 repeats a side",
        )
    half = t_quantile(0.5 + confidence / 2.0, df) * sigma if sigma > 0 else 0.0
    low, high = worsening - half, worsening + half
    span = f"worsening in [{num(low)}, {num(high)}] at {confidence:.0%}"
    slack = allowed * 1e-9 + 1e-12  # a figure exactly on its bound is on it, not past it
    if low > allowed + slack:
        return "regression", f"{moved}, {span}: all beyond the allowed {num(allowed)}"
    if high <= allowed + slack:
        if high < -allowed - slack:
            return (
                "improvement",
                f"{moved}, {span}: all better than −{num(allowed)}; consider refreshing the baseline",
            )
        return "pass", f"{moved}, {span}: all within the allowed {num(allowed)}"
    return "inconclusive", f"{moved}, {span}: straddles the allowed {num(allowed)}"


def worsening_of(b: float, c: float, higher_is_better: bool) -> float:
    return (b - c) if higher_is_better else (c - b)


def make_comparison(
    check: Check,
    b: float | None,
    c: float | None,
    allowed: float | None,
    sigma: float | None,
    verdict: Verdict,
    reason: str,
    *,
    basis: str | None = None,
    ci: tuple[float, float] | None = None,
    p_value: float | None = None,
    repeats_needed: int | None = None,
) -> MetricComparison:
    change_abs = c - b if b is not None and c is not None else None
    return MetricComparison(
        metric=check.metric,
        scenario=check.scenario,
        kind=check.kind,
        higher_is_better=check.higher_is_better,
        baseline=b,
        candidate=c,
        change_abs=change_abs,
        change_rel=change_abs / abs(b) if change_abs is not None and b else None,
        max_abs_change=check.max_abs_change,
        max_rel_change=check.max_rel_change,
        allowed_abs=allowed,
        sigma=sigma,
        noise_basis=basis,
        verdict=verdict,
        reason=reason,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        p_value=p_value,
        p_adjusted=p_value,
        repeats_needed=repeats_needed,
    )


def failed_share(
    baseline: RunRecord, candidate: RunRecord, check: Check, allowed: float, confidence: float = CONFIDENCE
) -> MetricComparison:
    """`failed`: the candidate's failed share against the baseline's plus a tolerated share.

    H0: the candidate fails at most ``baseline share + max(DEFAULT_FAILED_SHARE, allowed / n)``
    of its requests; a one-sided exact binomial test rejecting it (after the family rule) is a
    regression, anything else a pass: a count of rare events cannot be "inconclusive" in any
    way more repeats would fix cheaply, and one transient error does not fail a release.
    """
    sb = baseline.performance[check.scenario or ""]
    sc = candidate.performance[check.scenario or ""]
    nb, nc = sb.completed + sb.failed, sc.completed + sc.failed
    share_b = sb.failed / nb if nb else 0.0
    tolerated = max(DEFAULT_FAILED_SHARE, allowed / nc if nc else 0.0)
    p0 = min(1.0, share_b + tolerated)
    p = binom_sf(sc.failed, nc, p0) if nc else 1.0
    alpha = (1.0 - confidence) / 2.0
    verdict: Verdict = "regression" if p < alpha else "pass"
    reason = (
        f"{sc.failed} of {nc} failed vs {sb.failed} of {nb}; tolerated share {share_b:.1%} + {tolerated:.1%}, "
        f"exact binomial p = {p:.3g}"
    )
    return make_comparison(
        check,
        float(sb.failed),
        float(sc.failed),
        allowed,
        None,
        verdict,
        reason,
        basis=f"binomial over {nc} requests",
        p_value=p,
    )


def paired(
    baseline: RunRecord,
    candidate: RunRecord,
    check: Check,
    samples: tuple[Path, Path],
    allowed: float,
    confidence: float = CONFIDENCE,
) -> MetricComparison | str:
    """Accuracy on the same documents, per document; a string says why it could not be paired.

    The change is the mean per-document difference with its paired t-interval (sd/√n); the
    same interval-against-bound rule as :func:`judge` gives the verdict, and a regression must
    also be significant by a small-n-safe exact test (one-sided exact McNemar for 0/1 scores,
    a sign-flip permutation test otherwise): its p-value is the larger of the two.
    """
    tb, tc = baseline.accuracy.get(check.metric), candidate.accuracy.get(check.metric)
    if tb is None or tc is None or not tb.samples_path or not tc.samples_path:
        return "no sample logs: unpaired"
    logs = (samples[0] / Path(tb.samples_path).name, samples[1] / Path(tc.samples_path).name)
    if not (logs[0].is_file() and logs[1].is_file()):
        missing = ", ".join(str(p) for p in logs if not p.is_file())
        return f"sample log missing ({missing}): unpaired"
    try:
        p = rigor.paired_accuracy(tc, logs[0], logs[1])
    except (rigor.SampleLogError, ValueError, OSError) as exc:
        return f"paired comparison impossible: {exc}"
    hib = check.higher_is_better
    d = p.differences
    n = len(d)
    mean = sum(d) / n if n else 0.0
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else None
    se = sd / math.sqrt(n) if sd is not None else None
    worsening = -mean if hib else mean
    verdict, reason = judge(0.0, mean, hib, allowed, se, float(n - 1), confidence)
    p_t = one_sided_p(worsening, se, float(n - 1), allowed) if se is not None else None
    p_value = None if p_t is None else max(p_t, p.one_sided_worse_p)
    if verdict == "regression" and p.one_sided_worse_p >= (1.0 - confidence) / 2.0:
        verdict = "inconclusive"
        reason += f"; but the exact test finds no worsening (p = {p.one_sided_worse_p:.3g})"
    half = t_quantile(0.5 + confidence / 2.0, float(n - 1)) * se if se else 0.0
    test = "McNemar" if p.result.method == "mcnemar_exact" else "sign-flip"
    return make_comparison(
        check,
        p.baseline_mean,
        p.candidate_mean,
        allowed,
        se,
        verdict,
        f"{p.describe(with_task=False)}; {reason}",
        basis=f"paired {test} p = {p.one_sided_worse_p:.3g} (one-sided)",
        ci=(mean - half, mean + half) if se is not None else None,
        p_value=p_value,
    )


def apply_family(
    results: Sequence[MetricComparison], method: FamilyMethod = DEFAULT_FAMILY, confidence: float = CONFIDENCE
) -> list[MetricComparison]:
    """The family rule over one run's checks: Holm (family-wise error) or Benjamini–Hochberg
    (false discovery rate) on the one-sided regression p-values; a regression whose adjusted
    p-value no longer clears α = (1 − confidence) / 2 becomes inconclusive, said so."""
    idx = [i for i, r in enumerate(results) if r.p_value is not None]
    if method == "none" or not idx:
        return list(results)
    ps = [results[i].p_value or 0.0 for i in idx]
    adjusted = holm(ps) if method == "holm" else benjamini_hochberg(ps)
    alpha = (1.0 - confidence) / 2.0
    name = "Holm" if method == "holm" else "Benjamini–Hochberg"
    out = list(results)
    for i, adj in zip(idx, adjusted, strict=True):
        r = dataclasses.replace(out[i], p_adjusted=adj)
        if r.verdict == "regression" and adj >= alpha:
            verdict: Verdict = "pass" if r.metric == "failed" and r.kind == "performance" else "inconclusive"
            r = dataclasses.replace(
                r,
                verdict=verdict,
                reason=f"{r.reason}; not after {name} over {len(idx)} checks (adjusted p = {adj:.3g} ≥ {alpha:g})",
            )
        out[i] = r
    return out
