"""Statistics for decisions under noise: intervals over repeats, two-sample and paired tests.

Pure functions over plain numbers (numpy only; scipy is used by the tests as a reference,
never here). What each function answers:

* :func:`t_interval`: mean of a few repeats with a Student-t 95 % interval (the spread a
  record stores per headline figure);
* :func:`welch_test`: are two sets of repeats' means different (unequal variances)?
* :func:`mcnemar_exact`: did a 0/1 metric change on the same documents? Exact two-sided
  binomial test on the discordant pairs;
* :func:`paired_bootstrap`: the same question for a continuous per-document metric;
* :func:`bootstrap_interval`: an interval for a per-request statistic (a median, a p99)
  by resampling requests;
* :func:`wilson_interval`: an interval for an attainment fraction near 1.

The Student-t distribution is computed here (regularized incomplete beta by continued
fraction, inverted by bisection) so that the runtime needs no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """Mean of `n` values with the sample standard deviation and a 95 % interval.

    ``method`` says how the interval was made: ``"student_t"`` over repeats, ``"bootstrap"``
    over requests, or ``"none"`` when one value gives no interval (bounds are then None).
    """

    mean: float
    std: float | None
    n: int
    ci95_low: float | None
    ci95_high: float | None
    method: str


@dataclass(frozen=True)
class TestResult:
    """A two-sided test: the statistic, its degrees of freedom where any, and the p-value."""

    statistic: float
    p_value: float
    df: float | None = None


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of candidate against baseline on the same items.

    ``mean_diff`` is candidate − baseline. For 0/1 metrics ``gained`` counts items that went
    0 → 1 and ``lost`` items that went 1 → 0; for continuous metrics they count items that
    rose and fell.
    """

    n: int
    mean_diff: float
    p_value: float
    gained: int
    lost: int
    method: str
    ci95_low: float | None = None
    ci95_high: float | None = None


# --- Student t ----------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The continued fraction converges fast on this side of the mean; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` (possibly fractional) degrees of freedom."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t: the `t` with P(T <= t) = q."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while 1.0 - t_sf(hi, df) < q:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 1.0 - t_sf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


# --- Intervals ------------------------------------------------------------------------------


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Spread:
    """Mean, sample std (ddof=1) and Student-t interval of `values` (e.g. one figure per repeat).

    One value: the mean alone, std and bounds None (no noise estimate). Identical values give
    a zero-width interval.
    """
    a = np.asarray([float(v) for v in values], dtype=float)
    if a.size == 0:
        raise ValueError("t_interval needs at least one value")
    mean = float(a.mean())
    if a.size == 1:
        return Spread(mean=mean, std=None, n=1, ci95_low=None, ci95_high=None, method="none")
    std = float(a.std(ddof=1))
    half = t_ppf(0.5 + confidence / 2.0, a.size - 1) * std / math.sqrt(a.size)
    return Spread(
        mean=mean, std=std, n=int(a.size), ci95_low=mean - half, ci95_high=mean + half, method="student_t"
    )


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = lambda x: float(np.median(x)),
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Spread:
    """Percentile-bootstrap interval of a per-request statistic, resampling requests.

    ``mean`` is the statistic on the data as measured; ``std`` the bootstrap standard error.
    """
    a = np.asarray([float(v) for v in values], dtype=float)
    if a.size == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    point = float(statistic(a))
    if a.size == 1:
        return Spread(mean=point, std=None, n=1, ci95_low=None, ci95_high=None, method="none")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_resamples, a.size))
    boots = np.array([statistic(a[row]) for row in idx], dtype=float)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha])
    return Spread(
        mean=point,
        std=float(boots.std(ddof=1)),
        n=int(a.size),
        ci95_low=float(low),
        ci95_high=float(high),
        method="bootstrap",
    )


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (sound near 0 and 1, unlike the normal one)."""
    if trials <= 0:
        return 0.0, 1.0
    successes = min(max(successes, 0), trials)
    z = _normal_ppf(0.5 + confidence / 2.0)
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denom
    half = z * math.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _normal_ppf(q: float) -> float:
    """Standard normal quantile by bisection on erf (accurate to ~1e-12)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def intervals_overlap(a: Spread, b: Spread) -> bool | None:
    """Whether two intervals overlap; None when either has no interval."""
    if None in (a.ci95_low, a.ci95_high, b.ci95_low, b.ci95_high):
        return None
    assert a.ci95_low is not None and a.ci95_high is not None
    assert b.ci95_low is not None and b.ci95_high is not None
    return not (a.ci95_high < b.ci95_low or b.ci95_high < a.ci95_low)


# --- Tests ------------------------------------------------------------------------------------


def welch_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Welch's unequal-variance t-test, two-sided; statistic is (mean_b − mean_a) / se.

    Needs at least two values on each side. Both sides constant: p = 1 when the means are
    equal, else 0 (the difference is certain).
    """
    diff, se, df = welch_difference(a, b)
    if se == 0.0:
        return TestResult(
            statistic=math.copysign(math.inf, diff) if diff else 0.0, p_value=float(diff == 0.0)
        )
    t = diff / se
    return TestResult(statistic=t, p_value=min(1.0, 2.0 * t_sf(abs(t), df)), df=df)


def welch_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """mean(b) − mean(a), its standard error with unequal variances, and the Welch-Satterthwaite
    degrees of freedom (NaN when the standard error is 0). At least two values on each side."""
    x = np.asarray([float(v) for v in a], dtype=float)
    y = np.asarray([float(v) for v in b], dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError("Welch's test needs at least two values on each side")
    vx, vy = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se2 = vx + vy
    df = se2**2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1)) if se2 else math.nan
    return float(y.mean() - x.mean()), math.sqrt(se2), float(df)


def binom_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials with p = 1/2."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    # Exact integer arithmetic, then one division: no underflow for large n.
    return min(1.0, float(2 * tail / (1 << n))) if 2 * k != n else 1.0


def mcnemar_exact(baseline: Sequence[float], candidate: Sequence[float]) -> PairedResult:
    """Exact McNemar test on paired 0/1 outcomes (same documents, two runs).

    Only discordant pairs carry information: ``gained`` (0 → 1) and ``lost`` (1 → 0). Under
    no change each discordant pair is a fair coin, so p is the two-sided binomial probability
    of a split at least as uneven as the one seen.
    """
    x, y = _paired_arrays(baseline, candidate)
    for arr in (x, y):
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("McNemar's test needs 0/1 outcomes; use paired_bootstrap for others")
    gained = int(np.sum((x == 0) & (y == 1)))
    lost = int(np.sum((x == 1) & (y == 0)))
    return PairedResult(
        n=int(x.size),
        mean_diff=float((y - x).mean()) if x.size else 0.0,
        p_value=binom_two_sided_half(min(gained, lost), gained + lost),
        gained=gained,
        lost=lost,
        method="mcnemar_exact",
    )


def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> PairedResult:
    """Paired bootstrap of the mean per-item difference (candidate − baseline).

    Items are resampled with their pairing kept. The interval is the percentile interval of
    the resampled mean differences; the p-value is two-sided under the null made true by
    centring the differences on zero (the fraction of resampled means at least as far from 0
    as the one observed).
    """
    x, y = _paired_arrays(baseline, candidate)
    d = y - x
    gained, lost = int(np.sum(d > 0)), int(np.sum(d < 0))
    if d.size == 0:
        return PairedResult(n=0, mean_diff=0.0, p_value=1.0, gained=0, lost=0, method="paired_bootstrap")
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_resamples, d.size))
    means = d[idx].mean(axis=1)
    centred = means - observed
    p = float((np.sum(np.abs(centred) >= abs(observed) - 1e-15) + 1) / (n_resamples + 1))
    if not np.any(d):
        p = 1.0
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return PairedResult(
        n=int(d.size),
        mean_diff=observed,
        p_value=min(1.0, p),
        gained=gained,
        lost=lost,
        method="paired_bootstrap",
        ci95_low=float(low),
        ci95_high=float(high),
    )


def _paired_arrays(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray([float(v) for v in baseline], dtype=float)
    y = np.asarray([float(v) for v in candidate], dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    return x, y


# --- Intervals of a difference, and decisions against a bound ---------------------------------
