"""harness.stats against hand-computed values and scipy (the reference, used only in tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as ss

from harness import stats


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7.5, 30, 200])
@pytest.mark.parametrize("q", [0.6, 0.9, 0.975, 0.995])
def test_t_ppf_matches_scipy(df: float, q: float) -> None:
    assert stats.t_ppf(q, df) == pytest.approx(ss.t.ppf(q, df), rel=1e-9)
    assert stats.t_ppf(1 - q, df) == pytest.approx(ss.t.ppf(1 - q, df), rel=1e-9)


def test_t_ppf_hand_values() -> None:
    # Printed t tables: t_{0.975} = 12.706 (df 1), 4.303 (df 2), 2.776 (df 4).
    assert stats.t_ppf(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert stats.t_ppf(0.975, 2) == pytest.approx(4.3027, abs=1e-4)
    assert stats.t_ppf(0.975, 4) == pytest.approx(2.7764, abs=1e-4)


def test_t_interval_by_hand() -> None:
    # 10, 12, 14: mean 12, s = 2, se = 2/√3, t(0.975, 2) = 4.3027 -> half width 4.9683.
    s = stats.t_interval([10, 12, 14])
    assert (s.mean, s.std, s.n, s.method) == (12.0, 2.0, 3, "student_t")
    assert s.ci95_low == pytest.approx(12 - 4.30265 * 2 / math.sqrt(3), abs=1e-4)
    assert s.ci95_high == pytest.approx(16.9683, abs=1e-4)
    lo, hi = ss.t.interval(0.95, 2, loc=12, scale=2 / math.sqrt(3))
    assert (s.ci95_low, s.ci95_high) == pytest.approx((lo, hi), rel=1e-9)


def test_t_interval_one_value_has_no_interval() -> None:
    s = stats.t_interval([5.0])
    assert (s.mean, s.std, s.n, s.ci95_low, s.ci95_high, s.method) == (5.0, None, 1, None, None, "none")
    with pytest.raises(ValueError):
        stats.t_interval([])


def test_welch_matches_scipy() -> None:
    a, b = [10.1, 10.4, 9.9, 10.2], [10.9, 11.4, 11.0]
    mine = stats.welch_test(a, b)
    ref = ss.ttest_ind(b, a, equal_var=False)
    assert mine.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert mine.p_value == pytest.approx(ref.pvalue, rel=1e-7)


def test_welch_constant_sides() -> None:
    assert stats.welch_test([1, 1], [1, 1]).p_value == 1.0
    assert stats.welch_test([1, 1], [2, 2]).p_value == 0.0
    with pytest.raises(ValueError):
        stats.welch_test([1], [1, 2])


def test_mcnemar_by_hand() -> None:
    # 8 documents gained, 2 lost: p = 2 * (C(10,0)+C(10,1)+C(10,2)) / 2^10 = 2 * 56/1024.
    base = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 5
    cand = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 5
    r = stats.mcnemar_exact(base, cand)
    assert (r.gained, r.lost, r.n) == (8, 2, 20)
    assert r.p_value == pytest.approx(112 / 1024)
    assert r.p_value == pytest.approx(ss.binomtest(2, 10, 0.5).pvalue)
    assert r.mean_diff == pytest.approx(6 / 20)


def test_mcnemar_no_discordant_pairs_and_balanced() -> None:
    assert stats.mcnemar_exact([1, 0, 1], [1, 0, 1]).p_value == 1.0
    assert stats.mcnemar_exact([1, 0], [0, 1]).p_value == 1.0
    with pytest.raises(ValueError, match="0/1"):
        stats.mcnemar_exact([0.5], [1])
    with pytest.raises(ValueError, match="length"):
        stats.mcnemar_exact([1, 0], [1])


@pytest.mark.parametrize("k,n", [(0, 1), (3, 40), (17, 40), (0, 30), (100, 1000)])
def test_binomial_against_scipy(k: int, n: int) -> None:
    assert stats.binom_two_sided_half(k, n) == pytest.approx(ss.binomtest(k, n, 0.5).pvalue, rel=1e-9)


def test_paired_bootstrap_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0.5, 0.1, size=200)
    shifted = base + 0.05 + rng.normal(0, 0.01, size=200)
    r = stats.paired_bootstrap(base, shifted, n_resamples=4000, seed=3)
    assert r.mean_diff == pytest.approx(0.05, abs=0.005)
    assert r.p_value < 0.001 and r.ci95_low is not None and r.ci95_low > 0.04
    same = base + rng.normal(0, 0.01, size=200)
    r2 = stats.paired_bootstrap(base, same, n_resamples=4000, seed=3)
    assert r2.p_value > 0.05
    assert stats.paired_bootstrap([1, 2], [1, 2]).p_value == 1.0


def test_bootstrap_interval_of_a_median_covers_it() -> None:
    rng = np.random.default_rng(0)
    x = rng.exponential(100.0, size=300)
    s = stats.bootstrap_interval(x, n_resamples=1000, seed=1)
    assert s.method == "bootstrap" and s.n == 300
    assert s.ci95_low is not None and s.ci95_high is not None
    assert s.ci95_low < float(np.median(x)) < s.ci95_high
    ref = ss.bootstrap((x,), np.median, n_resamples=1000, method="percentile", random_state=1)
    assert s.ci95_low == pytest.approx(ref.confidence_interval.low, rel=0.1)


def test_wilson_by_hand() -> None:
    # 95 of 100: centre (0.95 + 1.96²/200)/(1 + 1.96²/100); published interval [0.888, 0.978].
    lo, hi = stats.wilson_interval(95, 100)
    assert lo == pytest.approx(0.8883, abs=1e-3) and hi == pytest.approx(0.9785, abs=1e-3)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert stats.wilson_interval(10, 10)[1] == 1.0


def test_intervals_overlap() -> None:
    a = stats.t_interval([1.0, 1.1, 0.9])
    b = stats.t_interval([5.0, 5.1, 4.9])
    assert stats.intervals_overlap(a, b) is False
    assert stats.intervals_overlap(a, a) is True
    assert stats.intervals_overlap(a, stats.t_interval([1.0])) is None
