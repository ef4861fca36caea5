"""Fine-tuned minus scratch over paired seeds, and the verdict a table prints for it: one place for
the gaps table, the recipes comparison and the site."""
from __future__ import annotations

import numpy as np

from bench.measure.stats import difference_of_proportions, paired_difference, seeds_needed


def gap(ft_runs: list[dict], sc_runs: list[dict]) -> tuple[float, tuple[float, float], str, float | None]:
    """(gap, 95% interval, how, sd of the paired differences or None)."""
    ft, sc = [r["accuracy"]["final"] for r in ft_runs], [r["accuracy"]["final"] for r in sc_runs]
    if len(ft) == 1:
        a, b = ft_runs[0]["curve"][-1], sc_runs[0]["curve"][-1]
        d, ci = difference_of_proportions(a["eval_correct"], a["n_eval"], b["eval_correct"], b["n_eval"])
        return d, ci, "1 seed: eval-set interval (Newcombe)", None
    d, ci = paired_difference(ft, sc)
    return d, ci, f"{len(ft)} paired seeds, t interval", float(np.std(np.subtract(ft, sc), ddof=1))


def verdict(d: float, ci: tuple[float, float], n: int, sd: float | None) -> str:
    if ci[0] > 0:
        return "resolved"
    if ci[1] < 0:
        return "fine-tuned below scratch (resolved)"
    need = seeds_needed(sd, d) if sd is not None else None
    below = "fine-tuned below scratch; " if d < 0 else ""
    more = f"~{need} seeds would resolve this spread" if need else "spread too large to resolve"
    return f"{below}unresolved: interval includes 0 ({more})" if n > 1 else f"{below}unresolved (1 seed)"
