"""``bench compare A B``: per-configuration ratios between two sets of records,
with a mark where the difference exceeds the noise (asv-compare style).

Noise: step time — the larger relative IQR of the two runs' steady-state steps;
accuracy — the 95% interval of the difference (eval-set binomial for one seed a
side, Welch/t over seeds otherwise).
"""
from __future__ import annotations

import math

import numpy as np
from tabulate import tabulate

from .report import group_records
from .stats import difference_of_proportions, t_quantile_975

KEY = ("experiment", "dataset", "model", "backend", "arm", "strategy", "shots", "image_size", "batch_size")


def _accuracy_change(a: list[dict], b: list[dict]) -> tuple[float, bool]:
    fa = [r["accuracy"]["final"] for r in a]
    fb = [r["accuracy"]["final"] for r in b]
    if len(a) == 1 and len(b) == 1:
        la, lb = a[0]["curve"][-1], b[0]["curve"][-1]
        diff, (lo, hi) = difference_of_proportions(lb["eval_correct"], lb["n_eval"], la["eval_correct"], la["n_eval"])
        return diff, not lo <= 0 <= hi
    va = np.var(fa, ddof=1) / len(fa) if len(fa) > 1 else 0.0
    vb = np.var(fb, ddof=1) / len(fb) if len(fb) > 1 else 0.0
    diff = float(np.mean(fb) - np.mean(fa))
    half = t_quantile_975(max(min(len(fa), len(fb)) - 1, 1)) * math.sqrt(va + vb)
    return diff, abs(diff) > half


def _step_change(a: list[dict], b: list[dict]) -> tuple[float | None, bool]:
    def med_and_noise(recs):
        s = [r["timing"].get("steady", {}) for r in recs]
        s = [x for x in s if x.get("n")]
        if not s:
            return None, None
        med = float(np.median([x["median_ms"] for x in s]))
        return med, float(max(x["iqr_ms"] / x["median_ms"] for x in s))
    ma, na = med_and_noise(a)
    mb, nb = med_and_noise(b)
    if ma is None or mb is None:
        return None, False
    ratio = mb / ma
    return ratio, abs(ratio - 1) > max(na, nb)


def compare_rows(before: list[dict], after: list[dict]) -> list[list]:
    ga, gb = group_records(before, KEY), group_records(after, KEY)
    rows = []
    for key in sorted(set(ga) & set(gb), key=lambda k: tuple(map(str, k))):
        a, b = ga[key], gb[key]
        dacc, acc_sig = _accuracy_change(a, b)
        ratio, step_sig = _step_change(a, b)
        rows.append([key[0], key[3], key[4], key[5], f"{len(a)}/{len(b)}",
                     f"{np.mean([r['accuracy']['final'] for r in a]):.3f}",
                     f"{np.mean([r['accuracy']['final'] for r in b]):.3f}",
                     f"{dacc:+.3f}" + (" *" if acc_sig else ""),
                     "-" if ratio is None else f"{ratio:.2f}x" + (" *" if step_sig else "")])
    return rows


def render_compare(before, after, fmt: str = "terminal") -> str:
    rows = compare_rows(before, after)
    if not rows:
        return "no configuration appears in both sets of records"
    table = tabulate(rows, headers=["experiment", "backend", "arm", "strategy", "runs A/B", "top-1 A",
                                    "top-1 B", "Δ top-1", "ms/step B/A"],
                     tablefmt={"terminal": "simple", "markdown": "github"}[fmt], disable_numparse=True)
    return table + "\n\n* = the difference exceeds the noise (see bench/compare.py)"
