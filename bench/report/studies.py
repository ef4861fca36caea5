"""Tables of tuning studies (``bench run --search N``), from study and run records alone.

* the hyper-parameters each backend's study chose, side by side, and whether the
  frameworks agree within the search's resolution;
* the strategy ranking under the tuned protocol, with intervals;
* time to the target accuracy on both clocks (AlgoPerf: compile on; MLPerf: off);
* a check that every study's winner is what its trials' records give.
"""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

from bench.measure.stats import difference_of_proportions, mean_interval, paired_difference
from bench.plan.config import RunConfig
from bench.plan.study import Study, select

from .format import tablefmt
from .groups import group_records, row_label


def study_of(rec: dict) -> Study:
    return Study(RunConfig.from_json(rec["arm"]), rec["trials"], rec["sampler_seed"])


def latest_studies(studies: list[dict]) -> list[dict]:
    """One record per study key: the latest (a resumed study writes its selection again)."""
    out: dict[str, dict] = {}
    for rec in sorted(studies, key=lambda r: r.get("created", "")):
        out[rec["key"]] = rec
    return list(out.values())


def arm_label(arm: dict) -> str:
    if arm["arm"] == "scratch":
        return f"scratch ({arm.get('scratch_init') or 'native'} init)"
    return arm["strategy"]


def _point(rec: dict) -> str:
    if rec.get("winner") is None:
        return "no winner"
    p, row = rec["winner_point"], rec["trial_results"][rec["winner"]]
    return f"lr {p['lr']:.2g}, wd {p['weight_decay']:.1g}, x{p['schedule']} (trial {rec['winner']}, val {row['val_acc']:.3f})"


def agreement(recs: dict[str, dict]) -> str:
    """Do the backends' studies of one arm choose alike? The same trial; or else, on each backend,
    the other backends' choices score within the noise of its own on its validation split
    (Newcombe 95% interval of the difference includes 0)."""
    done = {b: r for b, r in recs.items() if r.get("winner") is not None}
    if len(done) < 2:
        return "-"
    winners = {r["winner"] for r in done.values()}
    if len(winners) == 1:
        return "agree (same trial)"
    for rec in done.values():
        rows = rec["trial_results"]
        best = rows[rec["winner"]]
        n = best.get("n_val")
        for other in winners - {rec["winner"]}:
            alt = rows[other]
            if alt["val_acc"] is None or not n:
                return "differ"
            _, ci = difference_of_proportions(round(best["val_acc"] * n), n, round(alt["val_acc"] * n), n)
            if ci[0] > 0:
                return "differ (resolved on validation)"
    return "agree within the search's resolution (different trials, within validation noise)"


def render_chosen(studies: list[dict], fmt: str = "terminal") -> str:
    studies = latest_studies(studies)
    backends = sorted({s["arm"]["backend"] for s in studies})
    by_arm: dict[tuple, dict[str, dict]] = {}
    for s in studies:
        a = s["arm"]
        by_arm.setdefault((a["experiment"], a["model"], arm_label(a), s["trials"]), {})[a["backend"]] = s
    rows = [[exp, model, label, n] + [_point(recs[b]) if b in recs else "-" for b in backends] + [agreement(recs)]
            for (exp, model, label, n), recs in sorted(by_arm.items())]
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "arm", "trials"] + backends + ["frameworks"],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def render_ranking(records: list[dict], fmt: str = "terminal") -> str:
    """Per (experiment, model, backend), the tuned strategies ranked by mean test top-1, each
    with its 95% t interval and its paired difference to the best (seeds paired)."""
    groups = [g for g in group_records(records) if g.label("protocol") == "tuned"]
    by_task: dict[tuple, list] = {}
    for g in groups:
        by_task.setdefault((g.label("experiment"), g.label("model"), g.label("backend")), []).append(g)
    rows = []
    for (exp, model, backend), gs in sorted(by_task.items()):
        gs = sorted(gs, key=lambda g: -np.mean(g.finals()))
        best = gs[0].by_seed()
        for rank, g in enumerate(gs, 1):
            mean, sd, ci = mean_interval(g.finals())
            seeds = sorted(set(best) & set(g.by_seed()))
            if g is gs[0] or len(seeds) < 2:
                diff = "best" if g is gs[0] else "-"
            else:
                d, dci = paired_difference([g.by_seed()[s]["accuracy"]["final"] for s in seeds],
                                           [best[s]["accuracy"]["final"] for s in seeds])
                tie = "tied with the best" if dci[0] <= 0 <= dci[1] else "below the best"
                diff = f"{d:+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}] {tie}"
            label = arm_label(g.config)
            interval = f" [{max(0, ci[0]):.3f}, {min(1, ci[1]):.3f}]" if ci else ""
            rows.append([exp, model, backend, rank, label, f"{mean:.3f} ± {sd:.3f}{interval} ({len(g.runs)})",
                         f"{g.label('lr'):.2g}", diff])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "backend", "rank", "arm", "test top-1 (tuned)",
                                   "tuned lr", "vs the best (paired, 95%)"], tablefmt=tablefmt(fmt),
                    disable_numparse=True)


def render_time_to_target(records: list[dict], fmt: str = "terminal") -> str:
    """Median over seeds of the training time to the target accuracy, on both clocks."""
    rows = []
    for g in group_records(records):
        ttas = [r.get("time_to_accuracy") or {} for r in g.runs]
        if not ttas or ttas[0].get("target") is None:
            continue
        reached = [t for t in ttas if t.get("train_s") is not None]
        med = lambda key: f"{np.median([t[key] for t in reached]):.1f}" if reached and all(  # noqa: E731
            t.get(key) is not None for t in reached) else "-"
        rows.append([g.label("experiment"), g.label("backend"), row_label(g), g.label("epochs"),
                     f"{ttas[0]['target']:.2f} on {ttas[0].get('split', 'eval')}", f"{len(reached)}/{len(ttas)}",
                     med("train_s"), med("train_s_no_compile"),
                     _median_s([t.get("total_train_s") for t in ttas])])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "backend", "arm", "epochs", "target", "reached",
                                   "to target s (compile on: AlgoPerf)", "to target s (compile off: MLPerf)",
                                   "whole schedule s"], tablefmt=tablefmt(fmt), disable_numparse=True)


def _median_s(values) -> str:
    """Median seconds, or "-" when a record predates the field."""
    return "-" if any(v is None for v in values) or not values else f"{np.median(values):.1f}"


def study_problems(studies: list[dict], records: list[dict]) -> list[str]:
    """Lines for studies whose record disagrees with what their trials' records give."""
    out = []
    for rec in latest_studies(studies):
        winner, rows = select(study_of(rec), records)
        missing = sum(r["status"] != "ok" for r in rows)
        if winner != rec.get("winner"):
            out.append(f"- study {rec['key']}: its record names trial {rec.get('winner')}, its trials' records give "
                       f"{winner}")
        if missing:
            out.append(f"- study {rec['key']} ({arm_label(rec['arm'])}, {rec['arm']['backend']}): {missing} of "
                       f"{len(rows)} trials without an ok record")
    return out
