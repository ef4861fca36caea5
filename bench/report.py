"""Tables from result records (never typed by hand): terminal, markdown or CSV.

Records of the same configuration but different seeds are grouped: accuracy is
shown as mean ± sd over seeds with the 95% t interval of the mean when n > 1,
and with the 95% Wilson interval over eval images when n == 1.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from tabulate import tabulate

from .stats import difference_of_proportions, paired_difference, t_quantile_975

GROUP_KEYS = ("experiment", "dataset", "model", "backend", "arm", "strategy", "shots", "image_size")


def group_records(records: list[dict], keys=GROUP_KEYS) -> dict[tuple, list[dict]]:
    """Ok, non-pretrain records grouped by the config values of ``keys`` (seeds together)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in records:
        if rec.get("status") == "ok" and rec["config"]["arm"] != "pretrain":
            groups[tuple(rec["config"].get(k) for k in keys)].append(rec)
    return groups


def _fmt_acc(values: list[float], ci: list | None) -> str:
    if len(values) == 1:
        lo, hi = ci or (None, None)
        return f"{values[0]:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{values[0]:.3f}"
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    half = t_quantile_975(len(values) - 1) * sd / np.sqrt(len(values))
    return f"{mean:.3f} ± {sd:.3f} [{max(0.0, mean - half):.3f}, {min(1.0, mean + half):.3f}]"


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_rows(records: list[dict]) -> list[dict]:
    """One row per configuration (seeds grouped), ok runs only."""
    rows = []
    for key, recs in sorted(group_records(records).items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        row = dict(zip(GROUP_KEYS, key))
        finals = [r["accuracy"]["final"] for r in recs]
        steady = [r["timing"].get("steady", {}) for r in recs]
        tta = [r["time_to_accuracy"].get("train_s") for r in recs]
        row.update(
            seeds=len(recs),
            acc=_fmt_acc(finals, recs[0]["accuracy"].get("final_ci95")),
            acc_mean=float(np.mean(finals)),
            best=float(np.mean([r["accuracy"]["best"] for r in recs])),
            ms_step=_median([s.get("median_ms") for s in steady]),
            p90_ms=_median([s.get("p90_ms") for s in steady]),
            img_s=_median([s.get("img_per_s") for s in steady]),
            compile_s=_median([(r["timing"].get("compile_ms") or 0) / 1e3 for r in recs]),
            data_ms=_median([r["timing"].get("data", {}).get("median_ms") for r in recs]),
            target=recs[0]["time_to_accuracy"].get("target"),
            tta_s=None if any(t is None for t in tta) else float(np.median(tta)),
            reached=f"{sum(t is not None for t in tta)}/{len(tta)}",
            train_s=_median([r["curve"][-1]["cum_train_s"] for r in recs]),
            cpu=recs[0]["environment"].get("cpu"),
        )
        rows.append(row)
    return rows


def render_table(records: list[dict], fmt: str = "terminal") -> str:
    rows = summary_rows(records)
    headers = ["experiment", "model", "backend", "arm", "strategy", "shots", "seeds",
               "top-1 (final)", "best", "ms/step", "p90 ms", "img/s", "compile s",
               "data ms", "time to target s", "train s"]
    table = [[r["experiment"], r["model"], r["backend"], r["arm"], r["strategy"],
              _fmt(r["shots"], "d") if r["shots"] else "all", r["seeds"], r["acc"],
              _fmt(r["best"], ".3f"), _fmt(r["ms_step"], ".1f"), _fmt(r["p90_ms"], ".1f"),
              _fmt(r["img_s"], ".1f"), _fmt(r["compile_s"], ".2f"), _fmt(r["data_ms"], ".2f"),
              (f"{r['tta_s']:.1f} (≥{r['target']:.2f})" if r["tta_s"] is not None
               else f"not reached {r['reached']}" if r["target"] is not None else "-"),
              _fmt(r["train_s"], ".1f")] for r in rows]
    tablefmt = {"terminal": "simple", "markdown": "github"}[fmt]
    out = tabulate(table, headers=headers, tablefmt=tablefmt, disable_numparse=True)
    failed = [r for r in records if r.get("status") != "ok"]
    if failed:
        lines = [f"- {r['config']['backend']} {r['config']['arm']} {r['config']['strategy']} "
                 f"seed {r['config']['seed']}: {r['status']}: {r.get('error')}" for r in failed]
        out += "\n\nRuns that did not finish:\n" + "\n".join(lines)
    return out


def render_environments(records: list[dict], fmt: str = "terminal") -> str:
    """Which machines and framework versions the table was measured on."""
    seen = {}
    for r in records:
        env = r.get("environment") or {}
        fw = ", ".join(f"{k} {v}" for k, v in sorted(env.get("frameworks", {}).items()))
        key = (r["config"]["backend"], env.get("cpu"), fw, (env.get("git") or {}).get("commit"))
        seen[key] = (env.get("cpu_count"), ", ".join(env.get("gpu") or []) or "none",
                     ", ".join(f"{k}={v}" for k, v in (env.get("runtime") or {}).items()) or "-")
    rows = [[b, cpu, n, gpu, fw, rt, (c or "?")[:10]] for (b, cpu, fw, c), (n, gpu, rt) in sorted(seen.items(), key=str)]
    return tabulate(rows, headers=["backend", "cpu", "cores", "gpu", "frameworks", "runtime settings", "commit"],
                    tablefmt={"terminal": "simple", "markdown": "github"}[fmt])


def render_strategy_matrix(records: list[dict], fmt: str = "terminal") -> str:
    """Strategy x backend top-1 per experiment (MindCV's Aircraft-table layout).

    A cell is ``mean ± sd (n)`` over seeds; the columns of a row come from the same
    configuration on different backends, so reading across compares frameworks.
    """
    from .strategies import ALL_STRATEGIES

    groups = group_records(records)
    backends = sorted({key[GROUP_KEYS.index("backend")] for key in groups})
    tables = defaultdict(dict)
    for values, recs in groups.items():
        r = dict(zip(GROUP_KEYS, values))
        key = (r["experiment"], r["model"], r["shots"], r["image_size"])
        finals = [rec["accuracy"]["final"] for rec in recs]
        sd = f" ± {np.std(finals, ddof=1):.3f}" if len(finals) > 1 else ""
        tables[key].setdefault(r["strategy"], {})[r["backend"]] = f"{np.mean(finals):.3f}{sd} ({len(finals)})"
    order = {s: i for i, s in enumerate(ALL_STRATEGIES)}
    out = []
    for (experiment, model, shots, size), by_strategy in sorted(tables.items(), key=lambda kv: str(kv[0])):
        body = [[s] + [cells.get(b, "-") for b in backends]
                for s, cells in sorted(by_strategy.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))]
        title = f"{experiment}: {model}, {shots or 'all'} shots/class, {size} px"
        out.append(("#### " if fmt == "markdown" else "") + title + "\n\n" + tabulate(
            body, headers=["strategy"] + backends,
            tablefmt={"terminal": "simple", "markdown": "github"}[fmt], disable_numparse=True))
    return "\n\n".join(out)


def gap_rows(records: list[dict]) -> list[list]:
    """Fine-tuned minus scratch top-1 per (experiment, model, backend, strategy), seeds paired."""
    ok = [r for r in records if r.get("status") == "ok"]
    scratch = {}
    for r in ok:
        c = r["config"]
        if c["arm"] == "scratch":
            scratch[(c["experiment"], c["model"], c["backend"], c.get("shots"), c["seed"])] = r
    groups: dict[tuple, list[tuple[dict, dict]]] = defaultdict(list)
    for r in ok:
        c = r["config"]
        partner = scratch.get((c["experiment"], c["model"], c["backend"], c.get("shots"), c["seed"]))
        if c["arm"] == "finetune" and partner:
            groups[(c["experiment"], c["model"], c["backend"], c["strategy"], c.get("shots"))].append((r, partner))
    rows = []
    for key, pairs in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        ft = [p[0]["accuracy"]["final"] for p in pairs]
        sc = [p[1]["accuracy"]["final"] for p in pairs]
        if len(pairs) == 1:
            a, b = pairs[0][0]["curve"][-1], pairs[0][1]["curve"][-1]
            gap, ci = difference_of_proportions(a["eval_correct"], a["n_eval"], b["eval_correct"], b["n_eval"])
            how = "1 seed, eval-set interval"
        else:
            gap, ci = paired_difference(ft, sc)
            how = f"{len(pairs)} paired seeds, t interval"
        rows.append([*key[:4], key[4] or "all", f"{np.mean(ft):.3f}", f"{np.mean(sc):.3f}",
                     f"{gap:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]", how])
    return rows


def render_gaps(records: list[dict], fmt: str = "terminal") -> str:
    rows = gap_rows(records)
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "backend", "strategy", "shots", "fine-tuned",
                                   "scratch", "gap (95% CI)", "interval"],
                    tablefmt={"terminal": "simple", "markdown": "github"}[fmt], disable_numparse=True)
