"""Small statistics for accuracies (fractions in [0, 1])."""
from __future__ import annotations

import math


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (e.g. top-1 on n eval images)."""
    if total == 0:
        return (0.0, 1.0)
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


# Two-sided 97.5% quantiles of Student's t for df = 1..10 (beyond: normal approximation).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t_quantile_975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def paired_difference(a: list[float], b: list[float]) -> tuple[float, tuple[float, float] | None]:
    """Mean of a - b over paired seeds, with a 95% t interval (None for a single pair)."""
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    if len(d) < 2:
        return mean, None
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    half = t_quantile_975(len(d) - 1) * sd / math.sqrt(len(d))
    return mean, (mean - half, mean + half)


def difference_of_proportions(c1: int, n1: int, c2: int, n2: int) -> tuple[float, tuple[float, float]]:
    """p1 - p2 with a 95% normal (Wald) interval: the single-seed eval-set uncertainty."""
    p1, p2 = c1 / n1, c2 / n2
    half = 1.959964 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1 - p2, (p1 - p2 - half, p1 - p2 + half)
