"""PNG plots from result records (matplotlib, headless): accuracy curves and step time."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_plots(records: list[dict], out_dir: Path) -> list[Path]:
    """One accuracy-per-epoch figure per experiment, one step-time bar chart; returns the paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = [r for r in records if r.get("status") == "ok" and r["config"]["arm"] != "pretrain"]
    paths = []
    by_exp: dict[str, list[dict]] = defaultdict(list)
    for r in ok:
        by_exp[r["config"]["experiment"]].append(r)
    for exp, recs in sorted(by_exp.items()):
        curves: dict[tuple, list[list[float]]] = defaultdict(list)
        for r in recs:
            c = r["config"]
            curves[(c["backend"], c["strategy"])].append([p["eval_acc"] for p in r["curve"]])
        fig, ax = plt.subplots(figsize=(7, 4.5))
        strategies = sorted({s for _, s in curves})
        backends = sorted({b for b, _ in curves})
        styles = ["-", "--", ":", "-."]
        for (backend, strategy), runs in sorted(curves.items()):
            n = min(len(x) for x in runs)
            mean = np.mean([x[:n] for x in runs], axis=0)
            ax.plot(range(1, n + 1), mean, marker="o", color=f"C{strategies.index(strategy) % 10}",
                    ls=styles[backends.index(backend) % len(styles)],
                    label=f"{backend} {strategy} (n={len(runs)})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("eval top-1 (mean over seeds)")
        ax.set_title(f"{exp}: accuracy per epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        path = out_dir / f"{exp}-accuracy.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    steps: dict[tuple, list[float]] = defaultdict(list)
    for r in ok:
        s = r["timing"].get("steady", {})
        if s.get("median_ms"):
            c = r["config"]
            steps[(c["experiment"], c["backend"], c["batch_size"], c["image_size"])].append(s["median_ms"])
    if steps:
        fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(steps)))
        labels = [f"{e} {b} (batch {bs}, {px}px)" for e, b, bs, px in steps]
        ax.barh(labels, [float(np.median(v)) for v in steps.values()], color="tab:blue")
        ax.set_xlabel("train step, median ms (steady state)")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path = out_dir / "step-time.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
