"""A sweep as a plan of jobs: the suite's pretrain steps first, then the arms that need them.

``bench run`` expands the command line into run configurations, then plans them:
the suite's pretrain steps (one per pretrain config hash, however many arms need
it) come first, each arm names the pretrain step it depends on and the canonical
file it reads. An executor (``bench/execute/``: local or Ray) runs the plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.weights.canonical import SUFFIX

from .config import RunConfig, backend_label
from .experiments import get_experiment


@dataclass
class Job:
    config: RunConfig
    needs: str | None = None              # config hash of the pretrain step this arm loads
    weights: Path | None = None           # pretrain: the canonical file it writes; arm: the one it reads
    dependents: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.config.config_hash()

    @property
    def is_pretrain(self) -> bool:
        return self.config.arm == "pretrain"

    def describe(self) -> str:
        c = self.config
        backend = backend_label(c.backend, c.framework_version)
        if self.is_pretrain:
            return f"pretrain {backend} {c.model} on {c.dataset} ({c.epochs} epochs) -> {self.weights}"
        return f"{backend} {c.model} {c.experiment} {c.arm} strategy={c.strategy} seed={c.seed}"


def suite_weights_path(pretrain: RunConfig, cache_dir: Path) -> Path:
    """Where the canonical weights of a pretrain step live: keyed by its config hash."""
    return Path(cache_dir) / "weights" / f"{pretrain.model}-{pretrain.config_hash()}{SUFFIX}"


def plan_sweep(configs: list[RunConfig], cache_dir: Path) -> list[Job]:
    """Pretrain steps (deduplicated by config hash) first, then every configuration."""
    pretrains: dict[str, Job] = {}
    arms = []
    for config in configs:
        job = Job(config)
        if config.arm == "finetune" and config.pretrained == "suite":
            pre = get_experiment(config.experiment).pretrain_config(config)
            step = pretrains.setdefault(pre.config_hash(), Job(pre, weights=suite_weights_path(pre, cache_dir)))
            job.needs, job.weights = step.key, step.weights
            step.dependents.append(job.key)
        arms.append(job)
    return list(pretrains.values()) + arms
