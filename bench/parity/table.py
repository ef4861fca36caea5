"""What ``bench parity`` prints: per step, each backend's loss beside the reference's, the lr its
framework applied to the head, and the largest update error per stage; then one verdict per backend."""
from __future__ import annotations

from tabulate import tabulate

from architectures import STAGES

from .check import FLOOR, TOLERANCE, worst


def _error(value: float) -> str:
    return "moved" if value == float("inf") else f"{value:.1e}"


def render(results: list[dict]) -> str:
    """``results``: ``run_backend_steps`` outputs (one per backend, the same recipe and batches) or
    failures ``{"backend": name, "error": message}``."""
    ran = [r for r in results if "steps" in r]
    lines = []
    if ran:
        config = ran[0]["config"]
        lines.append(f"{config['model']}, strategy {config['strategy']}, {config['optimizer']} lr {config['lr']:g} "
                     f"(schedule {config['schedule']}, warm-up {config['lr_warmup_epochs']} epochs), nesterov "
                     f"{config['nesterov']}, label smoothing {config['label_smoothing']:g}, decay filter "
                     f"{config['decay_filter']}; {len(ran[0]['steps'])} steps of batch {config['batch_size']} at "
                     f"{config['image_size']} px from one canonical file")
        stages = [s for s in STAGES if any(s in row["stages"] for r in ran for row in r["steps"])]
        rows = []
        for t, _ in enumerate(ran[0]["steps"]):
            for r in ran:
                row = r["steps"][t]
                rows.append([t, r["backend"], f"{row['loss']:.6f}", f"{row['ref_loss']:.6f}",
                             f"{row['lr'].get('head', float('nan')):.6g}"]
                            + [_error(row["stages"][s]["error"]) if s in row["stages"] else "" for s in stages])
        lines.append(tabulate(rows, headers=["step", "backend", "loss", "reference loss", "head lr (applied)"]
                              + [f"{s} error" for s in stages], tablefmt="github"))
        lines.append(f"error: each step's update against the NumPy reference's from the same weights, "
                     f"|dw - dw_ref| / |dw_ref| per tensor (floor {FLOOR:g} of the model's RMS update); "
                     f"a frozen tensor that changes: 'moved'. Each backend trains on from its own weights, so "
                     f"losses part after a few steps wherever fp32 rounding is amplified (in float64 PyTorch "
                     f"equals the reference to 1e-13): the verdict is on each step's update, not the trajectory.")
    lines.append("")
    for r in results:
        if "steps" not in r:
            lines.append(f"{r['backend']}: FAILED to run: {r['error']}")
            continue
        v = worst(r)
        verdict = "PASS" if v["ok"] else "FAIL"
        running = max((c["error"] for row in r["steps"] for c in row["running_stats"].values()), default=0.0)
        lines.append(f"{r['backend']}: {verdict}: largest update error {_error(v['error'])} (tolerance "
                     f"{TOLERANCE:g}) at step {v['step']}, {v['stage']} ({v['tensor']}); BatchNorm running "
                     f"statistics differ by up to {_error(running)} (not part of the update)")
    return "\n".join(lines)
