"""Decisions against a bound under noise: intervals of a change, repeats needed, batch means,
family-wise control and small-sample paired tests.

Built on the primitives of :mod:`harness.stats` (t and normal quantiles, Wilson, Welch, McNemar);
pure functions over plain numbers (numpy only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats import CONFIDENCE, PairedResult, Spread, _normal_ppf, _paired_arrays, t_ppf, t_sf


@dataclass(frozen=True)
class Estimate:
    """A figure with the standard error of its estimator and the degrees of freedom of that error.

    ``df`` is ``math.inf`` for a normal-theory error (lm-eval's stderr), ``n - 1`` over ``n``
    repeats or ``k - 1`` over ``k`` batch means. ``se`` is None when no noise is known.
    """

    value: float
    se: float | None
    df: float = math.inf
    basis: str | None = None


@dataclass(frozen=True)
class DiffInterval:
    """``diff`` (candidate − baseline) with its standard error, Welch–Satterthwaite degrees of
    freedom and the two-sided interval at ``confidence``."""

    diff: float
    se: float
    df: float
    low: float
    high: float
    confidence: float


def t_quantile(q: float, df: float) -> float:
    """Student-t quantile, the normal one for infinite (or huge) degrees of freedom."""
    if math.isinf(df) or df > 1e6:
        return _normal_ppf(q)
    return t_ppf(q, df)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t); the normal distribution for infinite degrees of freedom."""
    if math.isinf(df) or df > 1e6:
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    return 1.0 - t_sf(t, df)


def satterthwaite_df(se_a: float, df_a: float, se_b: float, df_b: float) -> float:
    """Welch–Satterthwaite degrees of freedom of a difference of two independent estimates."""
    va, vb = se_a * se_a, se_b * se_b
    den = (va * va / df_a if not math.isinf(df_a) else 0.0) + (
        vb * vb / df_b if not math.isinf(df_b) else 0.0
    )
    if den == 0.0:
        return math.inf
    return (va + vb) ** 2 / den


def difference_interval(
    baseline: Estimate, candidate: Estimate, confidence: float = CONFIDENCE
) -> DiffInterval | None:
    """Interval of candidate − baseline from each side's own standard error (None: a side has none).

    Each side's error and degrees of freedom are combined as in Welch's test, so two sets of
    repeats give exactly Welch's interval, two lm-eval stderrs the normal one.
    """
    if baseline.se is None or candidate.se is None:
        return None
    se = math.sqrt(baseline.se**2 + candidate.se**2)
    df = satterthwaite_df(baseline.se, baseline.df, candidate.se, candidate.df)
    diff = candidate.value - baseline.value
    half = t_quantile(0.5 + confidence / 2.0, df) * se if se > 0 else 0.0
    return DiffInterval(diff=diff, se=se, df=df, low=diff - half, high=diff + half, confidence=confidence)


def repeats_estimate(
    values: Sequence[float], centre: float | None = None, basis: str | None = None
) -> Estimate:
    """The mean of per-repeat values (or `centre`, e.g. a pooled headline) with se = s/√n, df = n − 1."""
    a = np.asarray([float(v) for v in values], dtype=float)
    value = float(a.mean()) if centre is None else float(centre)
    if a.size < 2:
        return Estimate(value, None, math.inf, basis)
    return Estimate(value, float(a.std(ddof=1)) / math.sqrt(a.size), float(a.size - 1), basis)


def welch_interval(
    baseline: Sequence[float], candidate: Sequence[float], confidence: float = CONFIDENCE
) -> DiffInterval:
    """Welch's interval of mean(candidate) − mean(baseline) (at least two values a side)."""
    if len(baseline) < 2 or len(candidate) < 2:
        raise ValueError("Welch's interval needs at least two values on each side")
    got = difference_interval(repeats_estimate(baseline), repeats_estimate(candidate), confidence)
    assert got is not None
    return got


def relative_change_interval(
    baseline: Sequence[float], candidate: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(change, low, high) of the relative change mean(c)/mean(b) − 1: Welch's interval of the
    difference over the baseline mean. [100, 103, 97] → [110, 113, 107] gives +10 % in
    [+3.2 %, +16.8 %] (the ratio of opposite interval ends would give [−4.6 %, +26.9 %])."""
    iv = welch_interval(baseline, candidate, confidence)
    mb = float(np.mean(np.asarray(baseline, dtype=float)))
    if mb == 0:
        raise ValueError("a relative change needs a non-zero baseline mean")
    return iv.diff / abs(mb), iv.low / abs(mb), iv.high / abs(mb)


def one_sided_p(estimate: float, se: float, df: float, bound: float) -> float:
    """p-value of H0 `true ≤ bound` against `true > bound` for an estimate with error `se`."""
    if se <= 0:
        return 0.0 if estimate > bound else 1.0
    return 1.0 - t_cdf((estimate - bound) / se, df)


def repeats_to_resolve(
    distance: float, se_one_repeat: float, confidence: float = CONFIDENCE, cap: int = 1000
) -> int | None:
    """Repeats per side after which an interval of the difference would clear a bound that is
    `distance` from the estimate, if the noise stays as measured (`se_one_repeat`: the standard
    error of one repeat's figure). None: not within `cap` (the estimate sits on the bound)."""
    if distance <= 0:
        return None
    if se_one_repeat <= 0:
        return 2
    for n in range(2, cap + 1):
        half = t_quantile(0.5 + confidence / 2.0, 2 * n - 2) * se_one_repeat * math.sqrt(2.0 / n)
        if half < distance:
            return n
    return None


# --- Request-level noise that allows for correlation: batch means ----------------------------


def batch_means(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = lambda x: float(np.mean(x)),
    batches: int = 10,
    confidence: float = CONFIDENCE,
) -> Spread:
    """Batch-means interval of a statistic of a series in time order (requests by send time).

    Neighbouring requests of one run are correlated (they share a queue), so resampling them
    as independent understates the noise. The series is cut into `batches` contiguous
    batches (at most n // 2, at least 2); the statistic of each batch gives the standard error
    ``sd(batch statistics) / √k`` with k − 1 degrees of freedom, centred on the statistic of
    the whole series. For percentiles this is an approximation (a batch's p99 is estimated
    from fewer requests, which makes the error conservative). Fewer than 4 values: no interval.
    """
    a = np.asarray([float(v) for v in values], dtype=float)
    if a.size == 0:
        raise ValueError("batch_means needs at least one value")
    point = float(statistic(a))
    k = min(batches, a.size // 2)
    if a.size < 4 or k < 2:
        return Spread(mean=point, std=None, n=int(a.size), ci95_low=None, ci95_high=None, method="none")
    stats = np.array([statistic(part) for part in np.array_split(a, k)], dtype=float)
    return _batch_spread(point, stats, confidence)


def _batch_spread(point: float, stats: np.ndarray, confidence: float = CONFIDENCE) -> Spread:
    k = int(stats.size)
    se = float(stats.std(ddof=1)) / math.sqrt(k)
    half = t_ppf(0.5 + confidence / 2.0, k - 1) * se
    return Spread(
        mean=point, std=se, n=k, ci95_low=point - half, ci95_high=point + half, method="batch_means"
    )


def batch_spread(
    point: float, batch_values: Sequence[float], confidence: float = CONFIDENCE
) -> Spread | None:
    """Batch-means interval centred on `point` from already computed per-batch figures."""
    stats = np.asarray([float(v) for v in batch_values], dtype=float)
    if stats.size < 2:
        return None
    return _batch_spread(point, stats, confidence)


# --- Multiple comparisons -----------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control, any dependence)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate control)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    out = [1.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p_values[i] * m / rank)
        out[i] = min(1.0, running)
    return out


# --- Small-n-safe tests --------------------------------------------------------------------------


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), exact (log-space terms)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        total += math.exp(
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        )
    return min(1.0, total)


def sign_flip_test(
    baseline: Sequence[float],
    candidate: Sequence[float],
    n_resamples: int = 20000,
    seed: int = 0,
    alternative: str = "two-sided",
) -> PairedResult:
    """Paired sign-flip permutation test of the mean per-item difference (candidate − baseline).

    Under no change each item's difference is as likely positive as negative, so the p-value
    is the share of sign assignments whose mean is at least as extreme as the observed one:
    exact (all 2^m assignments of the m non-zero differences) up to m = 16, else Monte Carlo
    with the observed assignment counted (never 0). Valid at any n, unlike the bootstrap.
    `alternative`: ``two-sided``, ``less`` (candidate lower) or ``greater``.
    """
    x, y = _paired_arrays(baseline, candidate)
    d = y - x
    gained, lost = int(np.sum(d > 0)), int(np.sum(d < 0))
    nz = d[d != 0]
    observed = float(d.mean()) if d.size else 0.0
    if nz.size == 0:
        return PairedResult(
            n=int(d.size), mean_diff=observed, p_value=1.0, gained=0, lost=0, method="sign_flip"
        )
    s_obs = float(nz.sum())
    if nz.size <= 16:
        signs = ((np.arange(1 << nz.size)[:, None] >> np.arange(nz.size)) & 1) * 2 - 1
        sums = (signs * np.abs(nz)).sum(axis=1)
        total = sums.size
        extra = 0
    else:
        rng = np.random.default_rng(seed)
        signs = rng.integers(0, 2, size=(n_resamples, nz.size)) * 2 - 1
        sums = (signs * np.abs(nz)).sum(axis=1)
        total = n_resamples + 1
        extra = 1
    eps = 1e-12 * max(1.0, float(np.abs(nz).sum()))
    if alternative == "less":
        hits = int(np.sum(sums <= s_obs + eps))
    elif alternative == "greater":
        hits = int(np.sum(sums >= s_obs - eps))
    else:
        hits = int(np.sum(np.abs(sums) >= abs(s_obs) - eps))
    return PairedResult(
        n=int(d.size),
        mean_diff=observed,
        p_value=min(1.0, (hits + extra) / total),
        gained=gained,
        lost=lost,
        method="sign_flip",
    )
