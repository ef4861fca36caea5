"""Intervals against known values and against SciPy itself (2, 12 and 30 seeds)."""
import numpy as np
import pytest
from scipy import stats

from bench.measure.stats import (above_chance, difference_of_proportions, mean_interval, paired_difference,
                         seeds_needed, t_quantile, welch_difference, wilson_interval)


@pytest.mark.parametrize("df,expected", [(1, 12.706), (11, 2.201), (20, 2.086), (29, 2.045)])
def test_t_quantiles_match_tables(df, expected):
    assert t_quantile(df) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("n", [2, 12, 30])
def test_mean_interval_matches_scipy(n):
    values = np.random.default_rng(n).uniform(0.6, 0.9, n)
    mean, sd, (lo, hi) = mean_interval(values)
    ref = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    assert sd == pytest.approx(values.std(ddof=1))


@pytest.mark.parametrize("n", [2, 12, 30])
def test_paired_interval_matches_scipy(n):
    rng = np.random.default_rng(100 + n)
    a, b = rng.uniform(0.7, 0.9, n), rng.uniform(0.3, 0.6, n)
    gap, (lo, hi) = paired_difference(a, b)
    d = a - b
    ref = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
    assert gap == pytest.approx(d.mean()) and (lo, hi) == pytest.approx(ref, rel=1e-9)


def test_wilson_interval_known_value_and_edges():
    # 81/263: the worked example of Wilson (1927) as tabulated by Newcombe (1998): 0.2553-0.3662
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    lo, hi = wilson_interval(80, 100)
    lo2, hi2 = wilson_interval(800, 1000)
    assert hi2 - lo2 < hi - lo


def test_newcombe_difference_of_proportions():
    # Newcombe (1998), table II example: 56/70 - 48/80 = 0.2, hybrid score interval 0.0524-0.3339
    d, (lo, hi) = difference_of_proportions(56, 70, 48, 80)
    assert d == pytest.approx(0.2) and (lo, hi) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_welch_and_degenerate_cases():
    diff, (lo, hi) = welch_difference([0.5, 0.52, 0.51], [0.7, 0.72, 0.69])
    assert diff == pytest.approx(0.70333 - 0.51, abs=1e-5) and 0 < lo < diff < hi
    assert paired_difference([0.5], [0.4])[1] is None
    assert paired_difference([0.6, 0.7], [0.5, 0.6]) == (pytest.approx(0.1), pytest.approx((0.1, 0.1)))


def test_seeds_needed_and_chance():
    assert seeds_needed(0.1, 0.4) == 3  # t(2) 4.303 * 0.1 / sqrt(3) = 0.248 < 0.4, n=2 gives 0.898
    assert seeds_needed(0.2, 0.0) is None and seeds_needed(1.0, 0.01) is None
    assert above_chance(60, 100, 2) and not above_chance(55, 100, 2)


def test_holm_adjusts_step_down_and_keeps_the_order_given():
    from bench.measure.stats import holm
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> made non-decreasing
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []


def test_paired_p_is_scipys_paired_t_test():
    from scipy import stats as st

    from bench.measure.stats import paired_p
    a, b = [0.80, 0.82, 0.79, 0.85], [0.70, 0.75, 0.74, 0.72]
    assert paired_p(a, b) == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert paired_p([0.8], [0.7]) is None and paired_p([0.8, 0.7], [0.8, 0.7]) == 1.0
