"""Recipes compared: the same task, model, strategy and backend trained under two or more recipes
(``bench.plan.recipe.recipe_label``). Does the fine-tuned-vs-scratch verdict change with the recipe,
and do the frameworks still agree? Seeds are paired (same seed: same initialisation and data order);
every row says whether its runs share one machine and one starting file."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from tabulate import tabulate

from bench.measure.stats import mean_interval, paired_difference

from .format import tablefmt
from .groups import Group, machine_of, pair_groups, paired_finals, group_records
from .pairs import gap, verdict


def _mean_ci(values: list[float]) -> str:
    mean, _, ci = mean_interval(values)
    return f"{mean:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _by_recipe(records: list[dict]) -> dict[tuple, dict[str, tuple[Group, Group]]]:
    """(experiment, model, strategy, backend) -> recipe -> (fine-tuned group, scratch group), where
    a task was trained under at least two recipes."""
    out: dict[tuple, dict[str, tuple[Group, Group]]] = defaultdict(dict)
    for ft, sc in pair_groups(group_records(records)):
        key = tuple(ft.label(k) for k in ("experiment", "model", "strategy", "backend"))
        out[key][ft.label("recipe")] = (ft, sc)
    return {k: v for k, v in out.items() if len(v) > 1}


def _sources(groups: list[Group]) -> str:
    """One machine and one starting file, or what differs."""
    runs = [r for g in groups for r in g.runs]
    machines = {machine_of(r) for r in runs}
    files = {((r.get("model") or {}).get("weights") or {}).get("sha256") for r in runs if r["config"]["arm"] == "finetune"}
    parts = [f"one machine ({next(iter(machines))})" if len(machines) == 1 else f"{len(machines)} machines: "
             "rows are not comparable"]
    parts.append(f"one starting file (sha256 {next(iter(files))[:12]})" if len(files) == 1 and None not in files
                 else f"{len(files)} starting files")
    return ", ".join(parts)


def _budget(groups: list[Group]) -> str:
    """The tuning budget every arm had, and what was selected on what, read from the records."""
    studies = {r["config"].get("study") is not None for g in groups for r in g.runs}
    if studies == {False}:
        return ("no arm tuned: every arm at its recipe's settings (the same, zero, tuning budget), its final "
                "epoch reported, nothing selected on test")
    if studies == {True}:
        return "every arm tuned by a study of the same declared budget, chosen on validation, never on test"
    return "some arms tuned and some not: the rows do not share a tuning budget"


def _shift_rows(experiment: str, model: str, backend: str, recipes: dict, base: str) -> list[list]:
    """Each other recipe minus ``base``, per arm, seeds paired."""
    rows = []
    for recipe, (ft, sc) in sorted(recipes.items()):
        if recipe == base:
            continue
        for arm, (old, new) in (("fine-tuned", (recipes[base][0], ft)), ("scratch", (recipes[base][1], sc))):
            after, before = paired_finals(new, old)
            change, ci = paired_difference([r["accuracy"]["final"] for r in after],
                                           [r["accuracy"]["final"] for r in before])
            rows.append([experiment, model, backend, arm, f"{recipe} - {base}", len(after),
                         f"{change:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")])
    return rows


def _summary(verdicts: dict[str, dict[str, bool]], finetuned: dict[str, list[float]]) -> list[str]:
    """Per recipe: on how many backends fine-tuning resolves above scratch, how far the backends'
    fine-tuned means lie apart; then whether any backend's verdict changes with the recipe."""
    lines = []
    for recipe, by_backend in sorted(verdicts.items()):
        won = [b for b, ok in sorted(by_backend.items()) if ok]
        lines.append(f"- {recipe}: fine-tuning beats scratch (95% paired t interval over seeds above 0) on "
                     f"{len(won)} of {len(by_backend)} "
                     f"backends ({', '.join(won) or 'none'}); the backends' fine-tuned means span "
                     f"{max(finetuned[recipe]) - min(finetuned[recipe]):.3f}")
    backends = sorted(set().union(*verdicts.values()))
    changed = [b for b in backends if len({by.get(b) for by in verdicts.values()}) > 1]
    if not changed:
        return lines + ["- the verdict is the same under every recipe on every backend"]
    for b in changed:
        said = [f"{'resolved' if by[b] else 'not resolved (interval includes 0 or is below)'} under {recipe}"
                for recipe, by in sorted(verdicts.items()) if b in by]
        lines.append(f"- the verdict changes with the recipe on {b}: {'; '.join(said)}")
    return lines


def render_recipes(records: list[dict], fmt: str = "terminal") -> str:
    buckets = _by_recipe(records)
    if not buckets:
        return ""
    rows, shifts = [], []
    verdicts: dict[str, dict[str, bool]] = defaultdict(dict)
    finetuned: dict[str, list[float]] = defaultdict(list)
    tasks: dict[tuple, list[Group]] = defaultdict(list)
    for (experiment, model, strategy, backend), recipes in sorted(buckets.items()):
        base = "constant" if "constant" in recipes else sorted(recipes)[0]
        for recipe, (ft, sc) in sorted(recipes.items(), key=lambda kv: kv[0] != base):
            ft_runs, sc_runs = paired_finals(ft, sc)
            d, ci, _, sd = gap(ft_runs, sc_runs)
            verdicts[recipe][backend] = ci[0] > 0
            finetuned[recipe].append(float(np.mean([r["accuracy"]["final"] for r in ft_runs])))
            rows.append([experiment, model, strategy, backend, recipe, len(ft_runs),
                         _mean_ci([r["accuracy"]["final"] for r in ft_runs]),
                         _mean_ci([r["accuracy"]["final"] for r in sc_runs]),
                         f"{d:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]", verdict(d, ci, len(ft_runs), sd)])
        shifts += _shift_rows(experiment, model, backend, recipes, base)
        tasks[(experiment, model, strategy)] += [g for pair in recipes.values() for g in pair]
    table = tabulate(rows, headers=["experiment", "model", "strategy", "backend", "recipe", "seeds",
                                    "fine-tuned top-1 [95% t]", "scratch top-1 [95% t]",
                                    "fine-tuned - scratch (seeds paired)", "verdict"],
                     tablefmt=tablefmt(fmt), disable_numparse=True)
    change = tabulate(shifts, headers=["experiment", "model", "backend", "arm", "recipe change", "seeds",
                                       "top-1 change (seeds paired) [95% t]"], tablefmt=tablefmt(fmt),
                      disable_numparse=True)
    lines = [f"- {' '.join(task)}: {_sources(groups)}; {_budget(groups)}" for task, groups in tasks.items()]
    return "\n\n".join([table, change, "\n".join(lines + _summary(verdicts, finetuned))])
