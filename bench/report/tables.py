"""Tables from result records (never typed by hand): terminal or markdown.

A row is one configuration (``bench/report/groups.py``): its seeds are summarised as
mean ± sd with the 95% t interval of the mean, or for one seed the 95% Wilson
interval over the eval images. Fine-tuned minus scratch pairs seeds (paired t
interval; one seed: Newcombe's interval over the eval images); a row whose
interval includes 0 is marked unresolved, with the seeds its spread would need.
Collapsed runs, duplicate seeds, contended and packed step times are marked.
"""
from __future__ import annotations

import numpy as np
from tabulate import tabulate

from bench.measure.peak import best_measured
from bench.plan.config import RunConfig, precision_of
from bench.records.kinds import Machine
from bench.records.store import parse_time
from bench.measure.stats import mean_interval, seeds_needed

from .format import tablefmt
from .pairs import gap, verdict
from .groups import (Group, busy, group_records, machine_of, pair_groups, paired_finals, row_label, scratch_baselines,
                     timed_runs)

BUSY, PACKED, COLLAPSED = "†", "‡", "⚠"
HOW_TO_READ = """### How to read these tables

* **A row is one configuration on one machine from one starting file**: records group by their config
  hash without the seed, the machine (CPU model, ISA flags, cores, GPUs) and, for a fine-tuned arm, the
  sha256 of its starting weights, so runs that differ in any hyper-parameter (lr, optimizer, epochs,
  batch, BatchNorm mode, stem, shots, scratch initialiser, ...), in machine or in starting file never
  share a row; where two rows would look alike, `[field=value]` names what differs. A seed run twice
  counts once (the latest run) and is listed as a duplicate.
* **Accuracy** is top-1 on the eval split (a fraction). Over seeds: `mean ± sd [lo, hi]`, the 95%
  Student t interval of the mean (SciPy); one seed: its top-1 with the 95% Wilson interval over the
  eval images. `⚠k/n`: k of n runs ended not significantly above chance (lower Wilson bound <= 1/classes).
* **Fine-tuned minus scratch** pairs the two arms seed by seed on the same task, budget and machine:
  paired t interval (one seed: Newcombe's interval over the eval images). A row whose interval includes
  0 says *unresolved*, with the number of seeds its observed spread would need; a fine-tuned arm below
  its scratch arm says so. Scratch arms start from the shared canonical init (`shared`) unless marked
  `native`. Rankings read together (strategies against the best, models against each other) show raw
  and Holm-adjusted p.
* **Seeds** were chosen from the spread measured before publishing: enough that the paired t interval of
  the noisiest row excludes 0 at the smallest gap seen then. *Seeds: were there enough?* checks that
  choice against these records: per experiment the largest spread of paired differences, the smallest
  gap, and the seeds a paired t interval would need at those.
* **Times**: steady-state train step (compile step and warm-up excluded), median over the seeds timed
  alone; time to target is cumulative training time, evaluation excluded. `†`: some runs were timed
  while other processes used more than 10% of the machine's CPU: their times are left out (their
  accuracy stands) and the runs are listed; `‡`: a packed run (`--pack`), whose times are left out.
  GFLOP/s: the record's counted FLOPs per step over the median step, with its share of the fastest
  kernel `bench peak` measured in the run's precision on that machine (records from before FLOPs were
  counted show `-`). The *machine* column names where each row ran; *Measured on* lists the machines.
* **Peak RSS MiB**: the training process's peak resident memory (`getrusage` max RSS), median over
  seeds; it counts the framework's runtime and the data held in memory, not only the model."""


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def accuracy_cell(group: Group) -> str:
    finals = group.finals()
    if len(finals) == 1:
        lo, hi = group.runs[0]["accuracy"].get("final_ci95") or (None, None)
        text = f"{finals[0]:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{finals[0]:.3f}"
    else:
        mean, sd, (lo, hi) = mean_interval(finals)
        text = f"{mean:.3f} ± {sd:.3f} [{max(0.0, lo):.3f}, {min(1.0, hi):.3f}]"
    collapsed = sum(bool(r.get("flags")) for r in group.runs)
    return text + (f" {COLLAPSED}{collapsed}/{len(finals)}" if collapsed else "")


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _mean(values):
    """The mean where every value is there (a run without one: no mean), else None."""
    return float(np.mean(values)) if values and all(v is not None for v in values) else None


def timing_marks(group: Group) -> str:
    timings = [r.get("timing", {}) for r in group.runs]
    return (PACKED if any(t.get("packed") for t in timings) else "") + \
        (BUSY if any(busy(r) for r in group.runs) else "")


def speed(group: Group) -> dict:
    """Median over seeds of each clean run's steady-state step statistics (``timed_runs``)."""
    timings = [r.get("timing", {}) for r in timed_runs(group)]
    steady = [t.get("steady", {}) for t in timings]
    return {"ms": _median([s.get("median_ms") for s in steady]), "p90": _median([s.get("p90_ms") for s in steady]),
            "iqr": _median([s.get("iqr_ms") for s in steady]), "img_s": _median([s.get("img_per_s") for s in steady]),
            "compile_s": _median([(t.get("compile_ms") or 0) / 1e3 for t in timings]) if timings else None,
            "data_ms": _median([(t.get("data") or {}).get("median_ms") for t in timings])}


def achieved(group: Group, ms: float | None) -> str:
    """GFLOP/s of the median step (the records' counted FLOPs) and its share of the fastest kernel
    ``bench peak`` measured in the run's precision on that machine."""
    flops = _median([((r.get("model") or {}).get("flops") or {}).get("per_step") for r in group.runs])
    if not flops or not ms:
        return "-"
    gflops = flops / ms / 1e6
    precision = precision_of(group.runs[0]["config"])
    best = best_measured((group.runs[0].get("environment") or {}).get("peak"), precision)
    return f"{gflops:.0f}" + (f" ({100 * gflops / best['gflops']:.0f}%)" if best else "")


def _tta(group: Group) -> str:
    tta = [(r.get("time_to_accuracy") or {}).get("train_s") for r in group.runs]
    target = (group.runs[0].get("time_to_accuracy") or {}).get("target")
    if target is None:
        return "-"
    if any(t is None for t in tta):
        return f"not reached {sum(t is not None for t in tta)}/{len(tta)}"
    clean = [r["time_to_accuracy"]["train_s"] for r in timed_runs(group)]  # a time: clean runs only
    return f"{np.median(clean):.1f} (≥{target:.2f})" if clean else f"reached {len(tta)}/{len(tta)}"


def _selected(group: Group) -> str:
    chosen = [r["accuracy"].get("selected") for r in group.runs]
    if not all(chosen):
        return "-"
    return f"{np.mean([c['test_acc'] for c in chosen]):.3f} (epoch {np.median([c['epoch'] for c in chosen]):g})"


TABLE_HEADERS = ["experiment", "model", "backend", "arm", "strategy", "shots", "seeds", "top-1 (final)",
                 "top-1 (val-selected)", "best", "ms/step", "p90 ms", "img/s", "GFLOP/s (% peak)", "compile s",
                 "data ms", "time to target s", "train s", "peak RSS MiB", "machine"]


def table_rows(records: list[dict]) -> tuple[list[str], list[list], list[Group]]:
    """The "All configurations" table: headers, one row per configuration, and its groups (row order)."""
    groups = group_records(records)
    rows = []
    for g in groups:
        s = speed(g)
        rows.append(dict(zip(TABLE_HEADERS, [
            g.label("experiment"), g.label("model"), g.label("backend"), g.label("arm"), row_label(g),
            _fmt(g.label("shots"), "d") if g.label("shots") else "all", len(g.runs), accuracy_cell(g),
            _selected(g), _fmt(_mean([r["accuracy"].get("best") for r in g.runs]), ".3f"),
            _fmt(s["ms"], ".1f") + timing_marks(g), _fmt(s["p90"], ".1f"), _fmt(s["img_s"], ".1f"),
            achieved(g, s["ms"]), _fmt(s["compile_s"], ".2f"), _fmt(s["data_ms"], ".2f"), _tta(g),
            _fmt(_median([r["curve"][-1]["cum_train_s"] for r in timed_runs(g)]), ".1f"),
            _fmt(_median([(r.get("timing") or {}).get("peak_rss_mb") for r in g.runs]), ".0f"), g.machine_label])))
    # a column no run fills (no run carved a validation split) is left out
    headers = [h for h in TABLE_HEADERS if h != "top-1 (val-selected)" or any(row[h] != "-" for row in rows)]
    return headers, [[row[h] for h in headers] for row in rows], groups


def render_table(records: list[dict], fmt: str = "terminal") -> str:
    headers, rows, groups = table_rows(records)
    out = tabulate(rows, headers=headers, tablefmt=tablefmt(fmt), disable_numparse=True)
    notes = render_notes(records, groups)
    return out + ("\n\n" + notes if notes else "")


def render_notes(records: list[dict], groups: list[Group]) -> str:
    lines = []
    for g in groups:
        name = f"{g.label('backend')} {g.label('experiment')} {row_label(g)}"
        for r in g.runs:
            for flag in r.get("flags") or []:
                lines.append(f"- {COLLAPSED} {name} seed {r['config']['seed']}: {flag['flag']}: {flag['why']}")
        if g.duplicates:
            seeds = sorted({r["config"]["seed"] for r in g.duplicates})
            lines.append(f"- {name}: seed(s) {seeds} ran more than once; the latest run counts, "
                         f"{len(g.duplicates)} earlier run(s) ignored (duplicate)")
    contended = [(g, r) for g in groups for r in g.runs if busy(r)]
    if contended:
        lines.append(f"- {BUSY} step times measured while other processes used more than 10% of the machine's CPU "
                     "(timing.contention in the record) are left out of the time columns (accuracy stands): "
                     + "; ".join(f"{g.label('backend')} {g.label('experiment')} {row_label(g)} seed "
                                 f"{r['config']['seed']} ({100 * r['timing']['contention'].get('other_share', 0):.0f}% "
                                 "other CPU)" for g, r in contended))
    unseeded = [g for g in groups if any(not reproducible(r) for r in g.runs)]
    if unseeded:
        lines.append("- seeds that do not reproduce: " + "; ".join(
            f"{g.label('backend')} {g.label('experiment')} {g.label('model')} {row_label(g)}" for g in unseeded)
            + ". These ran before the MindSpore backend drew its dropout masks from a seeded op: MindSpore 2.9's "
            "CPU Dropout draws different masks from one seed in different processes (docs/traps.md), so a rerun of "
            "one of their seeds gives another result; their spread over seeds includes that variation")
    winners: dict[str, list] = {}
    for g in groups:
        if g.config.get("study"):
            winners.setdefault(g.config["study"], []).append(g)
    for key, chosen in sorted(winners.items()):
        if len(chosen) > 1:  # a study re-selected (a --resume before decided studies were kept): say so
            lines.append(f"- study {key}: {len(chosen)} tuned rows ("
                         + "; ".join(f"{g.label('backend')} {row_label(g)}" for g in chosen)
                         + ") from one study: it chose more than once (its trials re-run after its finals began); "
                         "its study record names the winner it kept")
    for (_, init), (chosen, variants) in sorted(scratch_baselines(groups).items(), key=lambda kv: str(kv[0])):
        if variants > 1:
            lines.append(f"- {chosen.label('backend')} {chosen.label('experiment')} {chosen.label('model')}: trained "
                         f"from scratch ({init} init) under {variants} settings; fine-tuned rows are compared with one, "
                         f"{row_label(chosen)} (chosen by a tuning study, else the most seeds, else the first config "
                         "hash; never by a test score)")
    if any(PACKED in timing_marks(g) for g in groups):
        lines.append(f"- {PACKED} packed run (bench run --pack): its step times are left out")
    failed = [r for r in records if r.get("status") != "ok"]
    lines += [f"- not finished: {r['config']['backend']} {r['config']['arm']} {r['config']['strategy']} "
              f"seed {r['config']['seed']}: {r['status']}: {r.get('error')}" for r in failed]
    return "\n".join(lines)


def reproducible(rec: dict) -> bool:
    """False for a run known not to reproduce for its seed: a MindSpore run of an architecture with dropout
    from before the backend recorded its determinism (it used MindSpore's own unseeded-in-effect Dropout)."""
    from architectures import get_spec
    from bench.core.errors import ConfigError
    c = rec["config"]
    if c["backend"] != "mindspore" or "determinism" in (rec.get("environment") or {}):
        return True
    try:
        return not get_spec(c["model"]).config.get("dropout")
    except ConfigError:  # an architecture this bench does not know: nothing to say about it
        return True


def render_strategy_matrix(records: list[dict], fmt: str = "terminal") -> str:
    """Strategy x backend top-1 per experiment (MindCV's Aircraft-table layout).

    A cell is ``mean ± sd (n)`` over seeds; the columns of a row come from one
    configuration on different backends, so reading across compares frameworks.
    """
    from bench.plan.strategies import ALL_STRATEGIES

    groups = group_records(records)
    backends = sorted({g.label("backend") for g in groups})
    tables: dict[tuple, dict[str, dict[str, str]]] = {}
    for g in groups:
        key = tuple(g.label(k) for k in ("experiment", "model", "shots", "image_size"))
        finals = g.finals()
        sd = f" ± {np.std(finals, ddof=1):.3f}" if len(finals) > 1 else ""
        mark = f" {COLLAPSED}" if any(r.get("flags") for r in g.runs) else ""
        tables.setdefault(key, {}).setdefault(row_label(g), {})[g.label("backend")] = \
            f"{np.mean(finals):.3f}{sd} ({len(finals)}){mark}"
    order = {s: i for i, s in enumerate(ALL_STRATEGIES)}
    out = []
    for (experiment, model, shots, size), by_row in sorted(tables.items(), key=lambda kv: str(kv[0])):
        published = _published(experiment, model)
        body = [[label] + [cells.get(b, "-") for b in backends]
                + ([published[0].get(label.split(" ")[0], "-")] if published else [])
                for label, cells in sorted(by_row.items(), key=lambda kv: (order.get(kv[0].split(" ")[0], 99), kv[0]))]
        title = f"{experiment}: {model}, {shots or 'all'} shots/class, {size} px"
        out.append(("#### " if fmt == "markdown" else "") + title + "\n\n" + tabulate(
            body, headers=["strategy"] + backends + ([f"published ({published[1]})"] if published else []),
            tablefmt=tablefmt(fmt), disable_numparse=True))
    return "\n\n".join(out)


def _published(experiment: str, model: str) -> tuple[dict[str, str], str] | None:
    """What the recipe's source reports per strategy (``Experiment.published``), for its own model."""
    from bench.plan.experiments import EXPERIMENTS
    found = EXPERIMENTS.get(experiment)
    if found is None or not found.published or model not in found.models.values():
        return None
    values, source = found.published
    return {s: f"{v:.4f}" for s, v in values.items()}, source


def gaps(records: list[dict]) -> list[dict]:
    """Fine-tuned minus scratch per configuration pair, seeds paired."""
    out = []
    for ft, sc in pair_groups(group_records(records)):
        ft_runs, sc_runs = paired_finals(ft, sc)
        if not ft_runs:
            continue
        d, ci, how, sd = gap(ft_runs, sc_runs)
        out.append({"experiment": ft.label("experiment"), "model": ft.label("model"), "backend": ft.label("backend"),
                    "strategy": row_label(ft), "scratch_init": sc.label("scratch_init") or "native",
                    "shots": ft.label("shots") or "all", "seeds": len(ft_runs),
                    "finetuned": float(np.mean([r["accuracy"]["final"] for r in ft_runs])),
                    "scratch": float(np.mean([r["accuracy"]["final"] for r in sc_runs])),
                    "gap": d, "ci": ci, "how": how, "verdict": verdict(d, ci, len(ft_runs), sd)})
    return out


def gap_rows(records: list[dict]) -> list[list]:
    return [[g["experiment"], g["model"], g["backend"], g["strategy"], g["scratch_init"], g["shots"],
             f"{g['finetuned']:.3f}", f"{g['scratch']:.3f}",
             f"{g['gap']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]", g["how"], g["verdict"]]
            for g in gaps(records)]


def render_seed_count(records: list[dict], fmt: str = "terminal") -> str:
    """Were there enough seeds? Per experiment: the largest spread of paired differences,
    the smallest gap, and the seeds a paired t interval needs to exclude 0 at them."""
    by_exp: dict[str, list] = {}
    for ft, sc in pair_groups(group_records(records)):
        ft_runs, sc_runs = paired_finals(ft, sc)
        if len(ft_runs) > 1:
            d = np.subtract([r["accuracy"]["final"] for r in ft_runs], [r["accuracy"]["final"] for r in sc_runs])
            by_exp.setdefault(ft.label("experiment"), []).append(
                (len(d), float(np.std(d, ddof=1)), abs(float(d.mean()))))
    rows = []
    for experiment, stats in sorted(by_exp.items()):
        worst_sd, smallest = max(s for _, s, _ in stats), min(g for _, _, g in stats)
        need = seeds_needed(worst_sd, smallest)
        rows.append([experiment, f"{min(n for n, _, _ in stats)}–{max(n for n, _, _ in stats)}", f"{worst_sd:.3f}",
                     f"{smallest:.3f}", need if need else "> 100", sum(1 for n, s, g in stats
                                                                    if seeds_needed(s, g) and seeds_needed(s, g) <= n)])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "seeds per row", "largest paired sd", "smallest gap",
                                   "seeds that spread needs at that gap", "rows resolved by their own spread"],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def render_gaps(records: list[dict], fmt: str = "terminal") -> str:
    rows = gap_rows(records)
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "backend", "strategy", "scratch init", "shots",
                                   "fine-tuned", "scratch", "gap (95% CI)", "interval", "verdict"],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def render_init_effect(records: list[dict], fmt: str = "terminal") -> str:
    """Scratch with the shared canonical init vs each framework's own initialiser, seeds paired."""
    scratch = [g for g in group_records(records, arms=("scratch",))]
    by_task: dict[tuple, dict[str, Group]] = {}
    for g in scratch:
        by_task.setdefault(g.pairing, {})[g.label("scratch_init") or "native"] = g
    rows = []
    for inits in by_task.values():
        if "shared" not in inits or "native" not in inits:
            continue
        shared, native = paired_finals(inits["shared"], inits["native"])
        if not shared:
            continue
        d, ci, how, _ = gap(shared, native)
        g = inits["shared"]
        rows.append([g.label("experiment"), g.label("model"), g.label("backend"),
                     f"{np.mean([r['accuracy']['final'] for r in shared]):.3f}",
                     f"{np.mean([r['accuracy']['final'] for r in native]):.3f}",
                     f"{d:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]", how])
    if not rows:
        return ""
    return tabulate(sorted(rows), headers=["experiment", "model", "backend", "scratch, shared init",
                                           "scratch, native init", "shared − native (95% CI)", "interval"],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def _job_seconds(rec: dict) -> float | None:
    start, end = parse_time(rec.get("created")), parse_time(rec.get("finished"))
    return (end - start).total_seconds() if start and end else None


def render_sweep_time(records: list[dict], fmt: str = "terminal", nodes=(1, 2, 4, 8)) -> str:
    """Summed job wall time per experiment (each record's created -> finished, process start and
    evaluation included), and the wall time the same jobs would take on N nodes running one timed
    job each: the pretrain steps first, then the arms spread evenly (the plan's dependency graph)."""
    rows = []
    for experiment in sorted({r["config"]["experiment"] for r in records}):
        recs = [r for r in records if r["config"]["experiment"] == experiment]
        times = [(r["config"]["arm"], _job_seconds(r)) for r in recs]
        pre = sum(t for arm, t in times if arm == "pretrain" and t)
        arms = sum(t for arm, t in times if arm != "pretrain" and t)
        rows.append([experiment, len(recs), f"{(pre + arms) / 60:.1f}", f"{pre / 60:.1f}"]
                    + [f"{(pre + arms / n) / 60:.1f}" for n in nodes])
    return tabulate(rows, headers=["experiment", "jobs", "job time, min", "of which pretrain, min"]
                    + [f"on {n} node{'s' if n > 1 else ''}, min" for n in nodes],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


PHASES = (("process start", lambda t, c: t["phases_s"].get("startup", 0.0)),
          ("framework import", lambda t, c: t["phases_s"].get("import", 0.0)),
          ("data preparation", lambda t, c: t["phases_s"].get("data", 0.0)),
          ("model and weights", lambda t, c: t["phases_s"].get("model", 0.0)),
          ("compile step", lambda t, c: (t.get("compile_ms") or 0) / 1e3),
          ("train steps", lambda t, c: sum(p["train_s"] for p in c) - (t.get("compile_ms") or 0) / 1e3
           - t["data"].get("total_s", 0.0)),
          ("data wait", lambda t, c: t["data"].get("total_s", 0.0)),
          ("test evaluation", lambda t, c: sum(p.get("eval_s", 0.0) for p in c)),
          ("validation evaluation", lambda t, c: sum(p.get("val_s", 0.0) for p in c)))


def time_breakdown(rec: dict) -> dict[str, float] | None:
    """Seconds per phase of one job, the rest of its wall time as "writing and the rest"."""
    t, curve = rec.get("timing") or {}, rec.get("curve") or []
    if "phases_s" not in t or "wall_s" not in t:
        return None
    out = {name: max(0.0, f(t, curve)) for name, f in PHASES}
    out["writing and the rest"] = max(0.0, t["wall_s"] - sum(v for k, v in out.items() if k != "process start"))
    return out


def render_time_breakdown(records: list[dict], fmt: str = "terminal") -> str:
    """Where a sweep's time went, per experiment: every job's phases summed (trials included)."""
    rows = []
    for experiment in sorted({r["config"]["experiment"] for r in records}):
        parts = [b for b in (time_breakdown(r) for r in records if r["config"]["experiment"] == experiment) if b]
        if not parts:
            continue
        total = {k: sum(p[k] for p in parts) for k in parts[0]}
        whole = sum(total.values())
        rows.append([experiment, len(parts), f"{whole / 60:.1f}"]
                    + [f"{v / 60:.1f} ({100 * v / whole:.0f}%)" for v in total.values()])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "jobs", "total min"] + [f"{k}, min" for k in total],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def render_environments(records: list[dict], fmt: str = "terminal") -> str:
    """Which machines, framework versions and runtime settings the tables were measured on."""
    seen = {}
    for r in records:
        env = r.get("environment") or {}
        if not env:
            continue
        fw = ", ".join(f"{k} {v}" for k, v in sorted(env.get("frameworks", {}).items()))
        isa = Machine.of(env).widest_isa if env.get("cpu_flags") else "?"
        settings = ", ".join(f"{k}={v['value']} ({v['origin'].split(' ')[0]})"
                             for k, v in sorted((env.get("settings") or {}).items()))
        key = (r["config"]["backend"], env.get("cpu"), isa, fw, (env.get("git") or {}).get("commit"))
        seen[key] = (env.get("cpu_count"), ", ".join(env.get("gpu") or []) or "none", settings or "-")
    rows = [[b, cpu, isa, n, gpu, fw, st, (c or "?")[:10]]
            for (b, cpu, isa, fw, c), (n, gpu, st) in sorted(seen.items(), key=str)]
    return tabulate(rows, headers=["backend", "cpu", "widest ISA", "cores", "gpu", "frameworks",
                                   "settings (origin)", "commit"], tablefmt=tablefmt(fmt))


def precision_pairs(records: list[dict]) -> list[tuple[Group, Group]]:
    """(fp32 group, reduced-precision group) of the same configuration in everything but precision."""
    by_key: dict[str, dict[str, Group]] = {}
    for g in group_records(records):
        key = RunConfig.from_json(g.runs[0]["config"]).config_hash(without=("seed", "precision"))
        by_key.setdefault(key, {})[precision_of(g.config)] = g
    return [(p["fp32"], g) for p in by_key.values() if "fp32" in p for name, g in sorted(p.items()) if name != "fp32"]


def _mean_sd(runs: list[dict]) -> tuple[str, float | None]:
    """A column's text (mean ± sd over the runs) and the sd (None for one run)."""
    mean, sd, ci = mean_interval([r["accuracy"]["final"] for r in runs])
    return (f"{mean:.3f} ± {sd:.3f}", sd) if ci else (f"{mean:.3f}", None)


def render_precision(records: list[dict], fmt: str = "terminal") -> str:
    """Reduced precision beside fp32, seeds paired: is the accuracy change inside the seed spread?"""
    rows = []
    for full, low in precision_pairs(records):
        pairs = [(a, b) for a, b in zip(*paired_finals(low, full)) if machine_of(a) == machine_of(b)]
        if not pairs:  # seeds pair only when measured on one machine: kernels differ by CPU
            continue
        lo_runs, fp_runs = [a for a, _ in pairs], [b for _, b in pairs]
        d, ci, how, _ = gap(lo_runs, fp_runs)
        (fp_text, sd), (lo_text, _) = _mean_sd(fp_runs), _mean_sd(lo_runs)
        if ci[0] > 0 or ci[1] < 0:
            said = f"{'higher' if d > 0 else 'lower'} (resolved)"
        else:
            said = "no resolved change" + (f"; {'smaller' if abs(d) < sd else 'not smaller'} than fp32's seed sd "
                                           f"{sd:.3f}" if sd is not None else "")
        rows.append([full.label("experiment"), full.label("model"), full.label("backend"), row_label(Group(full.config)),
                     precision_of(low.config), len(lo_runs), fp_text, lo_text,
                     f"{d:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]", how, said])
    if not rows:
        return ""
    return tabulate(rows, headers=["experiment", "model", "backend", "strategy", "precision", "seeds", "fp32",
                                   "reduced precision", "reduced − fp32 (95% CI)", "interval", "verdict"],
                    tablefmt=tablefmt(fmt), disable_numparse=True)


def report_sections(records: list[dict], fmt: str = "terminal", studies=()) -> list[tuple[str, str, str]]:
    """(id, title, body) of every section of the report, in order; a body may be empty."""
    from .recipes import render_recipes
    from .scale import render_model_scale
    from .studies import render_chosen, render_ranking, render_time_to_target, render_tuning_gains, study_problems
    return [("matrix", "Strategy × backend (top-1, mean ± sd (seeds))", render_strategy_matrix(records, fmt)),
            ("all", "All configurations", render_table(records, fmt)),
            ("gaps", "Fine-tuned minus scratch (top-1)", render_gaps(records, fmt)),
            ("recipes", "Recipes compared: the same task under each recipe (top-1, seeds paired)",
             render_recipes(records, fmt)),
            ("tuning", "What tuning buys: each arm tuned against its recipe (one machine, one starting file, "
             "seeds paired)", render_tuning_gains(records, fmt)),
            ("chosen", "Each tuned: what every backend's study chose", render_chosen(list(studies), fmt, records)),
            ("ranking", "Strategy ranking, each tuned (test top-1)", render_ranking(records, fmt)),
            ("tta", "Time to target, both clocks", render_time_to_target(records, fmt)
             if any(r["config"].get("study") for r in records) else ""),
            ("scale", "Model scale: ImageNet top-1 against transfer (test top-1)", render_model_scale(records, fmt)),
            ("precision", "Reduced precision beside fp32 (top-1, seeds paired)", render_precision(records, fmt)),
            ("init", "Scratch: shared canonical init vs each framework's own", render_init_effect(records, fmt)),
            ("seeds", "Seeds: were there enough?", render_seed_count(records, fmt)),
            ("sweep", "Sweep time (from the records; estimate for N nodes)", render_sweep_time(records, fmt)),
            ("phases", "Where the sweeps' time went (every job's phases, summed)", render_time_breakdown(records, fmt)),
            ("checks", "Study checks", "\n".join(study_problems(list(studies), records))),
            ("machines", "Measured on", render_environments(records, fmt))]


def render_report(records: list[dict], fmt: str = "terminal", sources: str = "", studies=()) -> str:
    md = fmt == "markdown"
    parts = []
    if md:
        parts.append(f"# Results\n\nGenerated by `python -m bench report --format markdown {sources}` from "
                     f"{len(records) + len(studies)} JSON records; do not edit by hand.\n\n{HOW_TO_READ}\n")
    for _, title, body in report_sections(records, fmt, studies):
        if body:
            parts.append((f"## {title}\n\n" if md else f"{title}:\n") + body + "\n")
    return "\n".join(parts)
