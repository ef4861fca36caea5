"""Model scale: ImageNet top-1 (as published for each architecture) against transfer accuracy,
per backend and strategy, from the records of a multi-architecture experiment (imagenet-scale)."""
from __future__ import annotations

from collections import defaultdict

from scipy import stats
from tabulate import tabulate

from architectures import get_spec
from bench.measure.stats import holm, mean_interval, paired_p

from .format import tablefmt
from .groups import group_records, row_label


def imagenet_top1(model: str) -> float | None:
    return get_spec(model).config.get("imagenet_top1") if model else None


def scale_rows(records: list[dict]) -> list[dict]:
    """One row per (experiment, backend, strategy row, model) of experiments with two or more
    architectures that publish an ImageNet top-1; final test top-1 over seeds."""
    by_exp = defaultdict(set)
    for r in records:
        if imagenet_top1(r["config"]["model"]) is not None and r["config"]["arm"] != "pretrain":
            by_exp[r["config"]["experiment"]].add(r["config"]["model"])
    keep = {e for e, models in by_exp.items() if len(models) >= 2}
    rows = []
    for g in group_records([r for r in records if r["config"]["experiment"] in keep]):
        model = g.label("model")
        if imagenet_top1(model) is None:
            continue
        mean, sd, ci = mean_interval(g.finals())
        rows.append({"experiment": g.label("experiment"), "backend": g.label("backend"), "row": row_label(g),
                     "model": model, "imagenet_top1": imagenet_top1(model), "mean": mean, "sd": sd, "ci": ci,
                     "seeds": len(g.runs), "by_seed": {s: r["accuracy"]["final"] for s, r in g.by_seed().items()},
                     "machine": g.machine_label})
    return rows


ALPHA = 0.05  # the family-wise error rate of one ranking (Holm)


def pairwise(rows: list[dict]) -> list[str]:
    """Every pair of models in one ranking (same experiment, backend, strategy row): the paired
    difference over common seeds, the paired t test's raw p and Holm's adjusted p over the pairs."""
    pairs = []
    ordered = sorted(rows, key=lambda r: -imagenet_top1(r["model"]))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            seeds = sorted(set(a["by_seed"]) & set(b["by_seed"]))
            x, y = [a["by_seed"][s] for s in seeds], [b["by_seed"][s] for s in seeds]
            p = paired_p(x, y)
            if p is not None:
                pairs.append((f"{a['model']} − {b['model']}", float(sum(x) - sum(y)) / len(seeds), p))
    adjusted = holm([p for _, _, p in pairs])
    return [f"{name} {d:+.3f} (p {p:.3f}, Holm {q:.3f}{': resolved' if q < ALPHA else ''})"
            for (name, d, p), q in zip(pairs, adjusted)]


def ranking(rows: list[dict]) -> dict[tuple, list[str]]:
    """(experiment, backend, row) -> models, best transfer accuracy first."""
    out = defaultdict(list)
    for r in sorted(rows, key=lambda r: -r["mean"]):
        out[(r["experiment"], r["backend"], r["row"])].append(r["model"])
    return out


def render_model_scale(records: list[dict], fmt: str = "terminal") -> str:
    rows = scale_rows(records)
    if not rows:
        return ""
    models = sorted({r["model"] for r in rows}, key=lambda m: imagenet_top1(m))
    cells = defaultdict(dict)
    for r in rows:
        ci = f" [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]" if r["ci"] else ""
        cells[(r["experiment"], r["row"], r["backend"])][r["model"]] = f"{r['mean']:.3f} ± {r['sd']:.3f}{ci}"
    body = [[e, row, b] + [cells[(e, row, b)].get(m, "-") for m in models] for (e, row, b) in sorted(cells)]
    headers = ["experiment", "strategy", "backend"] + [f"{m} ({imagenet_top1(m):.1f}%)" for m in models]
    table = tabulate(body, headers=headers, tablefmt=tablefmt(fmt), disable_numparse=True)
    lines = []
    ranks = ranking(rows)
    by_row = defaultdict(dict)
    for (e, b, row), order in ranks.items():
        by_row[(e, row)][b] = order
    groups = defaultdict(list)
    for r in rows:
        groups[(r["experiment"], r["backend"], r["row"])].append(r)
    for (e, row), per_backend in sorted(by_row.items()):
        orders = {tuple(o) for o in per_backend.values()}
        imagenet_order = sorted(next(iter(per_backend.values())), key=lambda m: -imagenet_top1(m))
        taus = []
        for b, order in sorted(per_backend.items()):
            if len(order) >= 3:
                tau = stats.kendalltau([imagenet_top1(m) for m in order], [-i for i in range(len(order))]).statistic
                taus.append(f"{b} {tau:+.2f}")
        same = "the same on every backend" if len(orders) == 1 else "differs by backend"
        lines.append(f"- {e}, {row}: order by mean {same} ("
                     + "; ".join(f"{b}: {' > '.join(o)}" for b, o in sorted(per_backend.items()))
                     + f"); ImageNet order {' > '.join(imagenet_order)}"
                     + (f"; Kendall tau with ImageNet top-1: {', '.join(taus)}" if taus else "") + ".")
        for b in sorted(per_backend):
            tests = pairwise(groups[(e, b, row)])
            if tests:
                resolved = [t for t in tests if t.endswith("resolved)")]
                lines.append(f"  - {b}, seeds paired: " + "; ".join(tests) + (
                    " — no pair resolved after Holm's adjustment" if not resolved else ""))
    lines.append(f"- A model ranks above another only where their paired difference is resolved after Holm's "
                 f"step-down adjustment over the pairs of one backend and strategy (family-wise {ALPHA:g}); "
                 "the raw p is shown beside it.")
    source = next((get_spec(m).config.get("imagenet_top1_source") for m in models), None)
    if source:
        lines.append(f"- ImageNet top-1 (in the header) as published: {source}")
    return table + "\n\n" + "\n".join(lines)
