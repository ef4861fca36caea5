"""PNG plots from result records (matplotlib, headless), each showing its uncertainty.

* ``<experiment>-accuracy.png``: eval top-1 per epoch, mean over seeds with a band
  of ±1 sd (one colour per strategy, one line style per backend), integer epochs;
* ``<experiment>-gap.png``: fine-tuned minus scratch per strategy and backend with
  its 95% interval (the report's gap table, drawn);
* ``step-time.png``: median steady-state step time per configuration, error bars
  from the runs' quartiles; contended and packed runs left out;
* ``<experiment>-trials.png``: every tuning trial's validation top-1 against its lr, one
  panel per arm, one colour per backend, one marker per schedule; the winners ringed.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .groups import group_records
from .tables import gaps, timing_marks


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    return plt, MaxNLocator


def accuracy_plot(plt, MaxNLocator, experiment: str, groups, out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    strategies = sorted({g.label("strategy") for g in groups})
    backends = sorted({g.label("backend") for g in groups})
    styles = ["-", "--", ":", "-."]
    for g in groups:
        # a tuned final scores test once, at the end: its curve is the validation split's
        split = "eval" if all("eval_acc" in p for r in g.runs for p in r["curve"]) else "val"
        curves = [[p[f"{split}_acc"] for p in r["curve"]] for r in g.runs]
        n = min(len(c) for c in curves)
        a = np.array([c[:n] for c in curves])
        mean, sd = a.mean(axis=0), a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(n)
        epochs = np.arange(1, n + 1)
        colour = f"C{strategies.index(g.label('strategy')) % 10}"
        init = f" ({g.label('scratch_init')} init)" if g.label("arm") == "scratch" and g.label("scratch_init") else ""
        ax.plot(epochs, mean, marker="o", ms=3, color=colour, ls=styles[backends.index(g.label("backend")) % 4],
                label=f"{g.label('backend')} {g.label('strategy')}{init}"
                      f"{' tuned, validation' if split == 'val' else ''} (n={len(a)})")
        ax.fill_between(epochs, mean - sd, mean + sd, color=colour, alpha=0.12, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 per epoch: eval, or validation for tuned runs (mean over seeds, band ±1 sd)")
    ax.set_title(f"{experiment}: accuracy per epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = out_dir / f"{experiment}-accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def gap_plot(plt, experiment: str, rows: list[dict], out_dir: Path) -> Path:
    labels = [f"{r['backend']} {r['strategy']} vs {r['scratch_init']}-init scratch" for r in rows]
    gaps = np.array([r["gap"] for r in rows])
    lo, hi = np.array([r["ci"][0] for r in rows]), np.array([r["ci"][1] for r in rows])
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.32 * len(labels)))
    y = np.arange(len(labels))
    ax.errorbar(gaps, y, xerr=[gaps - lo, hi - gaps], fmt="o", capsize=3, color="tab:blue")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("fine-tuned minus scratch top-1, 95% interval")
    ax.set_title(f"{experiment}: what transfer buys")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = out_dir / f"{experiment}-gap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def step_time_plot(plt, groups, out_dir: Path) -> Path | None:
    bars = []
    for g in groups:
        if timing_marks(g):  # contended or packed: not a clean speed measurement
            continue
        steady = [r["timing"].get("steady", {}) for r in g.runs if r["timing"].get("steady", {}).get("n")]
        if not steady:
            continue
        med = float(np.median([s["median_ms"] for s in steady]))
        iqr = float(np.median([s["iqr_ms"] for s in steady]))
        c = g.config
        bars.append((f"{c['experiment']} {c['backend']} {c['strategy']} (b{c['batch_size']}, {c['image_size']}px)",
                     med, iqr))
    if not bars:
        return None
    bars.sort()
    fig, ax = plt.subplots(figsize=(7.5, 0.6 + 0.28 * len(bars)))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], xerr=[b[2] / 2 for b in bars], color="tab:blue",
            error_kw={"capsize": 2, "lw": 0.8})
    ax.tick_params(axis="y", labelsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("train step, median ms (steady state; bars: ±IQR/2)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = out_dir / "step-time.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def trials_plot(plt, experiment: str, studies: list[dict], out_dir: Path) -> Path:
    from .studies import arm_label
    arms = sorted({arm_label(s["arm"]) for s in studies})
    backends = sorted({s["arm"]["backend"] for s in studies})
    fig, axes = plt.subplots(1, len(arms), figsize=(3.2 * len(arms) + 1, 3.4), squeeze=False, sharey=True)
    markers = {1: "o", 2: "s", 4: "^"}
    for ax, arm in zip(axes[0], arms):
        for s in (s for s in studies if arm_label(s["arm"]) == arm):
            colour = f"C{backends.index(s['arm']['backend']) % 10}"
            for row in s["trial_results"]:
                if row["val_acc"] is None:
                    continue
                ax.scatter(row["point"]["lr"], row["val_acc"], color=colour, s=22, alpha=0.8,
                           marker=markers.get(row["point"]["schedule"], "x"))
            if s.get("winner") is not None:
                w = s["trial_results"][s["winner"]]
                ax.scatter(w["point"]["lr"], w["val_acc"], facecolors="none", edgecolors=colour, s=110, lw=1.4)
        ax.set_xscale("log")
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("lr (log)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation top-1 (end of schedule)")
    handles = [plt.Line2D([], [], color=f"C{i}", marker="o", ls="", label=b) for i, b in enumerate(backends)]
    handles += [plt.Line2D([], [], color="gray", marker=m, ls="", label=f"schedule x{k}") for k, m in markers.items()]
    fig.legend(handles=handles, fontsize=7, loc="upper right")
    fig.suptitle(f"{experiment}: tuning trials (winners ringed)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    path = out_dir / f"{experiment}-trials.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scale_plot(plt, experiment: str, rows: list[dict], out_dir: Path) -> Path:
    """ImageNet top-1 (published) against transfer top-1 (mean, 95% interval), per backend and strategy."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (backend, row), points in sorted(_by(rows, ("backend", "row")).items()):
        points = sorted(points, key=lambda r: r["imagenet_top1"])
        xs = [p["imagenet_top1"] for p in points]
        ys = [p["mean"] for p in points]
        err = [[p["mean"] - p["ci"][0] if p["ci"] else 0 for p in points],
               [p["ci"][1] - p["mean"] if p["ci"] else 0 for p in points]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"{backend}, {row}")
    for p in rows:
        ax.annotate(p["model"].replace("efficientnet_", ""), (p["imagenet_top1"], p["mean"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("ImageNet top-1 (%, as published)")
    ax.set_ylabel("transfer test top-1 (mean, 95% CI)")
    ax.set_title(f"{experiment}: model scale")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / f"{experiment}-scale.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _by(rows: list[dict], keys: tuple[str, ...]) -> dict:
    out = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys)].append(r)
    return out


def write_plots(records: list[dict], out_dir: Path, studies=()) -> list[Path]:
    """Accuracy and gap figures per experiment, trial plots where studies ran, one step-time
    chart; returns the paths."""
    plt, MaxNLocator = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = group_records(records)
    by_exp = defaultdict(list)
    for g in groups:
        by_exp[g.label("experiment")].append(g)
    paths = [accuracy_plot(plt, MaxNLocator, exp, gs, out_dir) for exp, gs in sorted(by_exp.items())]
    by_gap = defaultdict(list)
    for row in gaps(records):
        by_gap[row["experiment"]].append(row)
    paths += [gap_plot(plt, exp, rows, out_dir) for exp, rows in sorted(by_gap.items())]
    from .studies import latest_studies
    by_study = defaultdict(list)
    for s in latest_studies(list(studies)):
        by_study[s["arm"]["experiment"]].append(s)
    paths += [trials_plot(plt, exp, ss, out_dir) for exp, ss in sorted(by_study.items())]
    from .scale import scale_rows
    paths += [scale_plot(plt, exp, rows, out_dir) for (exp,), rows in sorted(_by(scale_rows(records),
                                                                                ("experiment",)).items())]
    step = step_time_plot(plt, groups, out_dir)
    return paths + ([step] if step else [])
