"""Statistics for accuracies (fractions in [0, 1]), from SciPy rather than hand-written tables.

* one run: top-1 on n eval images is a binomial proportion -> Wilson score interval;
* one configuration over seeds: mean with Student's t interval;
* fine-tuned minus scratch over the same seeds: paired t interval;
* two configurations with one run each: Newcombe's hybrid score interval, built
  from the two Wilson intervals (better coverage than the Wald interval near 0 or 1);
* two groups of seeds: Welch's t interval;
* several comparisons read together (a ranking): paired t p-values with Holm's step-down
  adjustment, so "resolved" holds for the family at 5%, not for each line alone.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (e.g. top-1 on ``total`` eval images)."""
    if total == 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(correct), int(total)).proportion_ci(confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student t quantile (df = n - 1)."""
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, tuple[float, float] | None]:
    """(mean, sample sd, t interval of the mean); no interval for a single value."""
    a = np.asarray(values, dtype=np.float64)
    mean = float(a.mean())
    if a.size < 2:
        return mean, 0.0, None
    sd = float(a.std(ddof=1))
    half = t_quantile(a.size - 1, confidence) * sd / math.sqrt(a.size)
    return mean, sd, (mean - half, mean + half)


def paired_difference(a, b, confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float] | None]:
    """Mean of a - b over paired seeds with its t interval (``scipy.stats.ttest_rel``)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean = float(d.mean())
    if d.size < 2:
        return mean, None
    if np.all(d == d[0]):  # no spread: the t statistic is undefined, the interval is the point
        return mean, (mean, mean)
    ci = stats.ttest_rel(a, b).confidence_interval(confidence)
    return mean, (float(ci.low), float(ci.high))


def paired_p(a, b) -> float | None:
    """Two-sided p of the paired t test of a against b (``scipy.stats.ttest_rel``); None with fewer
    than 2 pairs; 1.0 or 0.0 where the differences have no spread (all zero, or all one value)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size < 2:
        return None
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values, in the order given: sorted ascending, the i-th
    (from 0) of m is multiplied by m - i, made non-decreasing, capped at 1. Rejecting where the
    adjusted p < alpha controls the family-wise error rate at alpha."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        out[i] = running
    return out


def welch_difference(a, b, confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float] | None]:
    """mean(b) - mean(a) over two groups of seeds with Welch's t interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(b.mean() - a.mean())
    if a.size < 2 or b.size < 2:
        return diff, None
    if a.std() == 0 and b.std() == 0:
        return diff, (diff, diff)
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(confidence)
    return diff, (float(ci.low), float(ci.high))


def difference_of_proportions(c1: int, n1: int, c2: int, n2: int,
                              confidence: float = CONFIDENCE) -> tuple[float, tuple[float, float]]:
    """p1 - p2 with Newcombe's hybrid score interval (from the two Wilson intervals)."""
    p1, p2 = c1 / n1, c2 / n2
    l1, u1 = wilson_interval(c1, n1, confidence)
    l2, u2 = wilson_interval(c2, n2, confidence)
    d = p1 - p2
    return d, (d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2))


def seeds_needed(sd: float, effect: float, confidence: float = CONFIDENCE, most: int = 100) -> int | None:
    """Fewest seeds whose t interval of a mean difference with this spread excludes 0
    when the true difference is ``effect``; None when more than ``most`` would be needed."""
    if effect == 0:
        return None
    if sd == 0:
        return 2
    for n in range(2, most + 1):
        if t_quantile(n - 1, confidence) * sd / math.sqrt(n) < abs(effect):
            return n
    return None


def above_chance(correct: int, total: int, classes: int, confidence: float = CONFIDENCE) -> bool:
    """Is top-1 significantly above 1/classes (the lower Wilson bound above chance)?"""
    return wilson_interval(correct, total, confidence)[0] > 1.0 / classes


def time_change(before, after, factor: float, alpha: float = 0.05, alternative: str = "two-sided") -> dict:
    """Did a time move from samples ``before`` to ``after`` (each sample one process's median)?
    asv's rule: a change only when it is both significant (Mann-Whitney U, SciPy's exact test for
    small samples; ``alternative="greater"``: only a slowdown counts) and at least ``factor``
    (the ratio of the medians, after/before, >= factor or <= 1/factor). Processes, not steps,
    are the samples: steps of one process share its speed, which varies between processes."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    ratio = float(np.median(b) / np.median(a)) if len(a) and len(b) else None
    out = {"ratio": ratio, "n": (len(a), len(b)), "p": None, "significant": False, "beyond_factor": False}
    if ratio is None:
        return out
    out["beyond_factor"] = ratio >= factor or (alternative == "two-sided" and ratio <= 1 / factor)
    if min(len(a), len(b)) >= 2 and len(set(np.concatenate([a, b]))) > 1:
        out["p"] = float(stats.mannwhitneyu(b, a, alternative=alternative).pvalue)
        out["significant"] = out["p"] < alpha
    return out


def smallest_p(n_before: int, n_after: int) -> float:
    """The smallest one-sided p Mann-Whitney U can give with these sample sizes (complete separation):
    below ``alpha`` or no gate can ever fire."""
    ways = math.comb(n_before + n_after, n_before)
    return 1.0 / ways if ways < 1e300 else 0.0  # a float cannot hold 1/ways beyond that, and it is 0 to alpha
