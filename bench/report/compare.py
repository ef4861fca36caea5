"""``bench compare A B``: per configuration, what changed from record set A to B.

Configurations match by group hash (every hyper-parameter but the seed). A change
is marked only when it is both significant and large enough (asv's rule):

* accuracy: the 95% interval of B - A excludes 0 (Newcombe over eval images for
  one run a side, Welch's t over seeds otherwise) *and* |B - A| >= ``min_effect``;
* step time: the ratio B/A is beyond both runs' relative IQR *and* beyond ``factor``.

Rows whose two sides ran on different CPUs or framework versions say so: such a
ratio compares machines as much as code.
"""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

from bench.measure.stats import difference_of_proportions, welch_difference

from .format import tablefmt
from .groups import Group, group_hash, group_records
from .tables import speed


def accuracy_change(a: Group, b: Group, min_effect: float) -> tuple[float, bool]:
    if len(a.runs) == 1 and len(b.runs) == 1:
        la, lb = a.runs[0]["curve"][-1], b.runs[0]["curve"][-1]
        diff, ci = difference_of_proportions(lb["eval_correct"], lb["n_eval"], la["eval_correct"], la["n_eval"])
    else:
        diff, ci = welch_difference(a.finals(), b.finals())
    significant = ci is not None and not ci[0] <= 0 <= ci[1]
    return diff, significant and abs(diff) >= min_effect


def _noise(group: Group) -> float | None:
    steady = [r["timing"].get("steady", {}) for r in group.runs if not r["timing"].get("packed")]
    rel = [s["iqr_ms"] / s["median_ms"] for s in steady if s.get("n") and s.get("median_ms")]
    return max(rel) if rel else None


def step_change(a: Group, b: Group, factor: float) -> tuple[float | None, bool]:
    ma, mb = speed(a)["ms"], speed(b)["ms"]
    na, nb = _noise(a), _noise(b)
    if not ma or not mb or na is None or nb is None:
        return None, False
    ratio = mb / ma
    return ratio, abs(ratio - 1) > max(na, nb) and (ratio >= factor or ratio <= 1 / factor)


def _machine(group: Group) -> tuple:
    envs = [r.get("environment") or {} for r in group.runs]
    return tuple(sorted({(e.get("cpu"), "avx512f" in (e.get("cpu_flags") or []),
                          tuple(sorted((e.get("frameworks") or {}).items()))) for e in envs}, key=str))


def compare_rows(before: list[dict], after: list[dict], min_effect: float = 0.01,
                 factor: float = 1.05) -> list[list]:
    ga = {group_hash(g.runs[0]): g for g in group_records(before)}
    gb = {group_hash(g.runs[0]): g for g in group_records(after)}
    rows = []
    for key in sorted(set(ga) & set(gb), key=lambda k: (ga[k].label("experiment"), ga[k].label("backend"),
                                                        ga[k].label("strategy"))):
        a, b = ga[key], gb[key]
        dacc, acc_mark = accuracy_change(a, b, min_effect)
        ratio, step_mark = step_change(a, b, factor)
        same = "same" if _machine(a) == _machine(b) else "DIFFERENT cpu or frameworks"
        rows.append([a.label("experiment"), a.label("model"), a.label("backend"), a.label("arm"),
                     a.label("strategy") + (f" [{a.variant}]" if a.variant else ""), f"{len(a.runs)}/{len(b.runs)}",
                     f"{np.mean(a.finals()):.3f}", f"{np.mean(b.finals()):.3f}",
                     f"{dacc:+.3f}" + (" *" if acc_mark else ""),
                     "-" if ratio is None else f"{ratio:.2f}x" + (" *" if step_mark else ""), same])
    return rows


def render_compare(before, after, fmt: str = "terminal", min_effect: float = 0.01, factor: float = 1.05) -> str:
    rows = compare_rows(before, after, min_effect, factor)
    if not rows:
        return "no configuration appears in both sets of records (they match on every hyper-parameter but the seed)"
    table = tabulate(rows, headers=["experiment", "model", "backend", "arm", "strategy", "runs A/B", "top-1 A",
                                    "top-1 B", "Δ top-1", "ms/step B/A", "machine and versions"],
                     tablefmt=tablefmt(fmt), disable_numparse=True)
    return (table + f"\n\n* = significant (95%) and at least {min_effect:g} top-1 or a {factor:g}x step-time "
            "ratio beyond both runs' step-time IQR (see bench/report/compare.py)")
