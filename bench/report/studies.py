"""Tables of tuning studies (``bench run --search N``), from study and run records alone.

* the hyper-parameters each backend's study chose, side by side, and whether the
  frameworks agree within the search's resolution;
* the strategy ranking under the tuned protocol, with intervals;
* time to the target accuracy on both clocks (AlgoPerf: compile on; MLPerf: off);
* what tuning buys: each tuned arm against the same arm at its recipe, only where both ran on one
  machine from one starting file (seeds paired); other pairs are named, not compared;
* a check that every study's winner is what its trials' records give.
"""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

from bench.measure.stats import difference_of_proportions, holm, mean_interval, paired_difference, paired_p
from bench.plan.config import ADDED_LATER, RunConfig
from bench.plan.study import Study, select
from bench.records.kinds import StudyRecord

from .format import tablefmt
from .groups import Group, group_records, machine_of, paired_finals, row_label, timed_runs

ALPHA = 0.05  # a ranking's family-wise error rate (Holm)
# What a study sets or changes in the arm it tunes: the tuned arm and the arm at its recipe are the same
# arm when everything else is equal (the study's validation split comes from train, never from the shots).
STUDY_FIELDS = ("lr", "weight_decay", "epochs", "study", "val_shots", "val_fraction", "test_eval", "val_eval",
                "notes", "seed", "trial")
# ... and what names the same data differently: an archive's path (its checksum, kept, says which data)
SAME_DATA = ("archive",)


def study_of(rec: dict) -> Study:
    return Study(RunConfig.from_json(rec["arm"]), rec["trials"], rec["sampler_seed"])


def study_machine(rec: dict, trial_machines: dict[str, set[str]] | None = None) -> str:
    """Where a study's trials ran, in words: its record's environment, or for an older record that
    names none, the one machine its trials' records name (``trial_machines``: study key -> labels)."""
    if rec.get("environment"):
        return StudyRecord(rec).machine.label
    found = (trial_machines or {}).get(rec["key"], set())
    return next(iter(found)) if len(found) == 1 else "not recorded"


def trial_machines(records: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in records:
        if r["config"].get("study") and r["config"].get("trial") is not None and r.get("environment"):
            out.setdefault(r["config"]["study"], set()).add(machine_of(r))
    return out


def latest_studies(studies: list[dict], records: list[dict] = ()) -> list[dict]:
    """One record per study key and machine: the latest (a resumed study writes its selection again);
    the same study run on two machines is two studies."""
    out: dict[tuple, dict] = {}
    machines = trial_machines(list(records))
    for rec in sorted(studies, key=lambda r: r.get("created", "")):
        out[(rec["key"], study_machine(rec, machines))] = rec
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
    """Do the backends' studies of one arm choose alike? The same trial; or else, on each backend's own
    validation split, is its pick resolved above the other backends' picks (Newcombe 95% interval of
    the difference excludes 0)? The line names the backends on whose validation it is and is not, so
    "differ" never rests on one framework's validation alone without saying so."""
    done = {b: r for b, r in recs.items() if r.get("winner") is not None}
    if len(done) < 2:
        return "-"
    winners = {r["winner"] for r in done.values()}
    if len(winners) == 1:
        return "agree (same trial)"
    resolved, within, unknown = [], [], []
    for backend, rec in sorted(done.items()):
        rows = rec["trial_results"]
        best = rows[rec["winner"]]
        n = best.get("n_val")
        others = [rows[w] for w in winners - {rec["winner"]}]
        if not n or any(o["val_acc"] is None for o in others):
            unknown.append(backend)
            continue
        lows = [difference_of_proportions(round(best["val_acc"] * n), n, round(o["val_acc"] * n), n)[1][0]
                for o in others]
        (resolved if any(lo > 0 for lo in lows) else within).append(backend)
    if not resolved:
        return "agree within the search's resolution (different trials, within validation noise on " \
               f"{', '.join(within)}'s validation)" + (f"; {', '.join(unknown)}: not scored" if unknown else "")
    said = f"differ: resolved on {', '.join(resolved)}'s own validation"
    said += f"; within noise on {', '.join(within)}'s" if within else " (every backend's)"
    return said + (f"; {', '.join(unknown)}: not scored" if unknown else "")


def render_chosen(studies: list[dict], fmt: str = "terminal", records: list[dict] = ()) -> str:
    machines = trial_machines(list(records))
    studies = latest_studies(studies, records)
    backends = sorted({s["arm"]["backend"] for s in studies})
    by_arm: dict[tuple, dict[str, dict]] = {}
    for s in studies:
        a = s["arm"]
        by_arm.setdefault((a["experiment"], a["model"], arm_label(a), s["trials"], study_machine(s, machines)),
                          {})[a["backend"]] = s
    rows = [[exp, model, label, n] + [_point(recs[b]) if b in recs else "-" for b in backends]
            + [agreement(recs), machine] for (exp, model, label, n, machine), recs in sorted(by_arm.items())]
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "arm", "trials"] + backends + ["frameworks", "machine"],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def render_ranking(records: list[dict], fmt: str = "terminal") -> str:
    """Per (experiment, model, backend, machine), the tuned strategies ranked by mean test top-1, each
    with its 95% t interval and its paired difference to the best (seeds paired): the paired t test's
    raw p and Holm's adjusted p over the family of comparisons with the best of that task; "below the
    best" only where the adjusted p < 0.05."""
    groups = [g for g in group_records(records) if g.label("protocol") == "tuned"]
    by_task: dict[tuple, list] = {}
    for g in groups:
        by_task.setdefault((g.label("experiment"), g.label("model"), g.label("backend"), g.machine_label), []).append(g)
    rows = []
    for (exp, model, backend, machine), gs in sorted(by_task.items()):
        gs = sorted(gs, key=lambda g: -np.mean(g.finals()))
        best = gs[0].by_seed()
        tests = {}
        for g in gs[1:]:
            seeds = sorted(set(best) & set(g.by_seed()))
            mine, top = [g.by_seed()[s]["accuracy"]["final"] for s in seeds], [best[s]["accuracy"]["final"] for s in seeds]
            if len(seeds) >= 2:
                tests[id(g)] = (paired_difference(mine, top), paired_p(mine, top))
        adjusted = dict(zip(tests, holm([p for _, p in tests.values()])))
        for rank, g in enumerate(gs, 1):
            mean, sd, ci = mean_interval(g.finals())
            if g is gs[0] or id(g) not in tests:
                diff = "best" if g is gs[0] else "-"
            else:
                (d, dci), p = tests[id(g)]
                tie = "below the best (resolved)" if adjusted[id(g)] < ALPHA else "not resolved below the best"
                diff = f"{d:+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}], p {p:.3f}, Holm {adjusted[id(g)]:.3f}: {tie}"
            label = arm_label(g.config)
            interval = f" [{max(0, ci[0]):.3f}, {min(1, ci[1]):.3f}]" if ci else ""
            rows.append([exp, model, backend, rank, label, f"{mean:.3f} ± {sd:.3f}{interval} ({len(g.runs)})",
                         f"{g.label('lr'):.2g}", diff, machine])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "backend", "rank", "arm", "test top-1 (tuned)",
                                   "tuned lr", "vs the best (paired t, 95%; raw and Holm-adjusted p)", "machine"],
                    tablefmt=tablefmt(fmt), disable_numparse=True) + \
        f"\n\nFamily: the comparisons with the best of one experiment, model, backend and machine; Holm's " \
        f"step-down adjustment at {ALPHA:g} (a strategy is below the best only where its adjusted p is below it)."


def render_time_to_target(records: list[dict], fmt: str = "terminal") -> str:
    """Median over seeds of the training time to the target accuracy, on both clocks."""
    rows = []
    for g in group_records(records):
        ttas = [r.get("time_to_accuracy") or {} for r in g.runs]
        if not ttas or ttas[0].get("target") is None:
            continue
        # times from the runs timed alone (timing.contention); whether the target was reached, from every run
        clean = [r.get("time_to_accuracy") or {} for r in timed_runs(g)]
        reached = [t for t in clean if t.get("train_s") is not None]
        med = lambda key: f"{np.median([t[key] for t in reached]):.1f}" if reached and all(  # noqa: E731
            t.get(key) is not None for t in reached) else "-"
        rows.append([g.label("experiment"), g.label("model"), g.label("backend"), row_label(g), g.label("epochs"),
                     f"{ttas[0]['target']:.2f} on {ttas[0].get('split', 'eval')}", f"{sum(t.get('train_s') is not None for t in ttas)}/{len(ttas)}",
                     med("train_s"), med("train_s_no_compile"),
                     _median_s([t.get("total_train_s") for t in clean]), g.machine_label])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "backend", "arm", "epochs", "target", "reached",
                                   "to target s (compile on: AlgoPerf)", "to target s (compile off: MLPerf)",
                                   "whole schedule s", "machine"], tablefmt=tablefmt(fmt), disable_numparse=True)


def _median_s(values) -> str:
    """Median seconds, or "-" when a record predates the field."""
    return "-" if any(v is None for v in values) or not values else f"{np.median(values):.1f}"


def study_problems(studies: list[dict], records: list[dict]) -> list[str]:
    """Lines for studies whose record disagrees with what their trials' records give."""
    out = []
    machines = trial_machines(records)
    for rec in latest_studies(studies, records):
        where = study_machine(rec, machines)  # its own trials: the same study run elsewhere has its own
        winner, rows = select(study_of(rec), [r for r in records if where == "not recorded" or machine_of(r) == where])
        missing = sum(r["status"] != "ok" for r in rows)
        if winner != rec.get("winner"):
            out.append(f"- study {rec['key']}: its record names trial {rec.get('winner')}, its trials' records give "
                       f"{winner}")
        if missing:
            out.append(f"- study {rec['key']} ({arm_label(rec['arm'])}, {rec['arm']['backend']}): {missing} of "
                       f"{len(rows)} trials without an ok record")
    return out


def _arm_key(group: Group) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in group.config.items()
                        if k not in STUDY_FIELDS + SAME_DATA and ADDED_LATER.get(k, object()) != v))


def _place(group: Group) -> str:
    return group.machine_label + (f" from {group.start[:8]}" if group.start else "")


def tuning_gains(records: list[dict]) -> tuple[list[list], list[str]]:
    """Rows of tuned minus recipe for the same arm on one machine from one starting file (seeds paired),
    and one line per tuned arm whose recipe rows ran elsewhere or from another file (not compared)."""
    groups = group_records(records)
    recipe: dict[tuple, list[Group]] = {}
    for g in groups:
        if g.label("protocol") == "recipe":
            recipe.setdefault(_arm_key(g), []).append(g)
    rows, apart = [], {}
    for tuned in (g for g in groups if g.label("protocol") == "tuned"):
        candidates = recipe.get(_arm_key(tuned), [])
        same = [g for g in candidates if (g.machine, g.start) == (tuned.machine, tuned.start)]
        if not same:
            if candidates:
                key = (tuned.label("experiment"), _place(tuned), "; ".join(sorted({_place(g) for g in candidates})))
                apart.setdefault(key, []).append(f"{tuned.label('backend')} {row_label(tuned)}")
            continue
        after, before = paired_finals(tuned, same[0])
        if not after:
            continue
        d, ci = paired_difference([r["accuracy"]["final"] for r in after], [r["accuracy"]["final"] for r in before])
        said = "-" if ci is None else "gain (resolved)" if ci[0] > 0 else "loss (resolved)" if ci[1] < 0 else \
            "no resolved change"
        rows.append([tuned.label("experiment"), tuned.label("model"), tuned.label("backend"), row_label(same[0]),
                     _place(tuned), len(after), f"{np.mean([r['accuracy']['final'] for r in before]):.3f}",
                     f"{np.mean([r['accuracy']['final'] for r in after]):.3f}",
                     f"{d:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""), said])
    return rows, [f"- {exp}: not compared, the tuned rows ran on {tuned} and their recipe rows on {there} "
                  f"({len(arms)} arms: {', '.join(sorted(arms))})" for (exp, tuned, there), arms in sorted(apart.items())]


def render_tuning_gains(records: list[dict], fmt: str = "terminal") -> str:
    rows, apart = tuning_gains(records)
    if not rows and not apart:
        return ""
    table = tabulate(rows, headers=["experiment", "model", "backend", "arm", "machine, starting file", "seeds",
                                    "at its recipe", "tuned", "tuned − recipe (paired t, 95%)", "verdict"],
                     tablefmt=tablefmt(fmt), disable_numparse=True) if rows else ""
    return "\n\n".join(part for part in (table, "\n".join(apart)) if part)
