"""PNG plots from result records (matplotlib, headless), each showing its uncertainty.

* ``<experiment>-accuracy.png``: eval top-1 per epoch, mean over seeds with a band
  of ±1 sd (one colour per strategy, one line style per backend), integer epochs;
* ``<experiment>-gap.png``: fine-tuned minus scratch per strategy and backend with
  its 95% interval (the report's gap table, drawn);
* ``step-time.png``: median steady-state step time per configuration, error bars
  from the runs' quartiles; contended and packed runs left out.
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
        curves = [[p["eval_acc"] for p in r["curve"]] for r in g.runs]
        n = min(len(c) for c in curves)
        a = np.array([c[:n] for c in curves])
        mean, sd = a.mean(axis=0), a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(n)
        epochs = np.arange(1, n + 1)
        colour = f"C{strategies.index(g.label('strategy')) % 10}"
        init = f" ({g.label('scratch_init')} init)" if g.label("arm") == "scratch" and g.label("scratch_init") else ""
        ax.plot(epochs, mean, marker="o", ms=3, color=colour, ls=styles[backends.index(g.label("backend")) % 4],
                label=f"{g.label('backend')} {g.label('strategy')}{init} (n={len(a)})")
        ax.fill_between(epochs, mean - sd, mean + sd, color=colour, alpha=0.12, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("eval top-1 (mean over seeds, band ±1 sd)")
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


def write_plots(records: list[dict], out_dir: Path) -> list[Path]:
    """Accuracy and gap figures per experiment, one step-time chart; returns the paths."""
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
    step = step_time_plot(plt, groups, out_dir)
    return paths + ([step] if step else [])
