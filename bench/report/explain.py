"""What a finished ``bench run`` measured, in a few generated lines under its table: the settings
each arm ran at, whether any arm was tuned, what the published records say for the same experiment
under the tuned protocol, and the command that tunes every arm alike. A fine-tuned arm against a
scratch arm at the fine-tuned arm's recipe is not "fine-tuning beats scratch": the lines say so."""
from __future__ import annotations

from pathlib import Path

from bench.plan.recipe import recipe_label

from .groups import machine_of, protocol
from .tables import gaps


def _arm_line(config: dict) -> str:
    tuned = "tuned by its study" if config.get("study") else "not tuned: the recipe's settings"
    return (f"- {config['arm']} ({config['strategy']}): {config['optimizer']} lr {config['lr']:g}, wd "
            f"{config['weight_decay']:g}, {config['epochs']} epochs of batch {config['batch_size']}, recipe "
            f"{recipe_label(config)}; {tuned}")


def _published_lines(experiment: str, strategies: set[str], published: list[dict]) -> list[str]:
    tuned = [r for r in published if r.get("config", {}).get("experiment") == experiment
             and protocol(r["config"]) == "tuned"]
    rows = [g for g in gaps(tuned) if g["strategy"].split(" ")[0] in strategies]
    if not rows:
        return [f"- no tuned records of {experiment} ({', '.join(sorted(strategies))}) are published here"]
    machines = sorted({machine_of(r) for r in tuned})
    out = [f"- published, every arm tuned alike (results/runs, measured on {'; '.join(machines)}):"]
    out += [f"  {g['backend']} {g['strategy']}: fine-tuned {g['finetuned']:.3f}, scratch {g['scratch']:.3f}, "
            f"difference {g['gap']:+.3f} [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}] ({g['verdict']})" for g in rows]
    return out


def render_what_was_measured(records: list[dict], published: list[dict], backends: list[str]) -> str:
    """``records``: this run's; ``published``: the records under results/runs (may be empty)."""
    ok = [r for r in records if r.get("status") == "ok" and r["config"]["arm"] in ("finetune", "scratch")]
    if not ok:
        return ""
    seen, lines = set(), ["What this run measured:"]
    for r in ok:
        c = r["config"]
        key = (c["arm"], c["strategy"], c["lr"], recipe_label(c), c.get("study"))
        if key not in seen:
            seen.add(key)
            lines.append(_arm_line(c))
    untuned_scratch = any(r["config"]["arm"] == "scratch" and not r["config"].get("study") for r in ok)
    if untuned_scratch:
        lines.append("- scratch ran at a recipe written for the fine-tuned arm: the gap above is fine-tuning at its "
                     "recipe against scratch at someone else's, not against scratch at its best")
    experiment = ok[0]["config"]["experiment"]
    strategies = sorted({r["config"]["strategy"] for r in ok if r["config"]["arm"] == "finetune"})
    lines += _published_lines(experiment, set(strategies), published)
    lines.append(f"- tune every arm alike: python -m bench run --backend {','.join(backends)} --experiment "
                 f"{experiment} --strategy {','.join(strategies) or 'full'} --search 8 --seeds 3")
    return "\n".join(lines)


def published_records(root: Path) -> list[dict]:
    """The records published under ``root`` (results/runs of the checkout), or none."""
    from bench.records.store import read_records
    if not root.is_dir():
        return []
    return read_records([root])[0]
