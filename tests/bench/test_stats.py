import pytest

from bench.stats import difference_of_proportions, paired_difference, wilson_interval


def test_wilson_interval_contains_estimate_and_narrows_with_n():
    lo, hi = wilson_interval(80, 100)
    assert lo < 0.8 < hi
    lo2, hi2 = wilson_interval(800, 1000)
    assert hi2 - lo2 < hi - lo
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_paired_difference_t_interval():
    mean, ci = paired_difference([0.8, 0.82, 0.78], [0.4, 0.38, 0.42])
    assert mean == pytest.approx(0.4)
    assert ci[0] < 0.4 < ci[1] and ci[0] > 0.2  # clearly positive
    assert paired_difference([0.5], [0.4])[1] is None


def test_difference_of_proportions():
    gap, (lo, hi) = difference_of_proportions(80, 100, 40, 100)
    assert gap == pytest.approx(0.4) and lo < 0.4 < hi and lo > 0
