"""A tuning study: every arm and every strategy at its own best, under one declared budget.

For one (backend, model, arm, strategy) a :class:`Study` declares a search space and
a budget of ``trials`` points, drawn quasi-randomly (scrambled Halton, ``scipy.stats.qmc``;
AlgoPerf's protocol, Bousquet et al. 2017) from the same sampler seed for every arm and
backend, so every arm gets the same number of trials and every backend the same points.
Each trial is an ordinary run with its own record, scored on a validation split carved
from train (``val_shots`` per class, disjoint from the training shots) and never on the
eval (test) split, which trials do not score at all. The winner (highest validation
accuracy at the end of its schedule; ties: lower validation loss, then the earlier trial)
re-runs over the requested seeds and only those runs are scored on test.

Why quasi-random points and not a model-based sampler: at 6-16 trials per arm a model
has too little to fit (Optuna's TPE starts with 10 random trials), quasi-random points
cover the space evenly with no state beyond the seed, and each trial is a plain record
that the local and Ray executors run, resume and lose exactly as they do any job.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from bench.core.errors import ConfigError

from .config import RunConfig

DECADES = 3                      # the lr range: 3 decades, centred (geometrically) on the recipe's lr
WEIGHT_DECAY = (1e-5, 1e-2)      # log-uniform
SCHEDULES = (1, 2, 4)            # epochs x multiplier: a longer schedule is a point of the space, its cost counted
SELECTION = ("validation top-1 at the end of the trial's schedule; ties: lower validation loss, "
             "then the earlier trial")


@dataclass(frozen=True)
class Dimension:
    name: str                    # a RunConfig field, or "schedule" (epochs multiplier)
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()          # categorical: one of these

    def value(self, u: float):
        """The point at ``u`` in [0, 1): log-uniform between low and high, or a choice."""
        if self.choices:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))

    def to_json(self) -> dict:
        if self.choices:
            return {"name": self.name, "choices": list(self.choices)}
        return {"name": self.name, "low": self.low, "high": self.high, "scale": "log"}


def default_space(base: RunConfig) -> tuple[Dimension, ...]:
    """lr log-uniform over ``DECADES`` decades around the arm's recipe lr, weight decay
    log-uniform over ``WEIGHT_DECAY``, schedule one of ``SCHEDULES`` (epochs x m); the same
    shape for every arm."""
    half = 10 ** (DECADES / 2)
    return (Dimension("lr", base.lr / half, base.lr * half), Dimension("weight_decay", *WEIGHT_DECAY),
            Dimension("schedule", choices=SCHEDULES))


def quasi_random(n: int, d: int, seed: int) -> list[list[float]]:
    """``n`` points of a scrambled Halton sequence in [0, 1)^d (SciPy)."""
    from scipy.stats import qmc
    return qmc.Halton(d=d, scramble=True, seed=seed).random(n).tolist()


@dataclass(frozen=True)
class Study:
    base: RunConfig              # the arm as its recipe sets it (seed 0), with its validation split
    trials: int
    sampler_seed: int = 0

    def __post_init__(self):
        if self.trials < 1:
            raise ConfigError(f"--search must be at least 1 trial, got {self.trials}")
        if not self.base.val_shots and not self.base.val_fraction:
            raise ConfigError("a study selects on a validation split: set --val-shots (or --val-fraction)")

    @property
    def space(self) -> tuple[Dimension, ...]:
        return default_space(self.base)

    @property
    def key(self) -> str:
        """What defines the study: its arm's configuration, its space, budget and sampler seed."""
        base = self.base.replace(seed=0, study=None, trial=None, test_eval="epoch", val_eval="epoch")
        blob = json.dumps([base.config_hash(), [d.to_json() for d in self.space], self.trials, self.sampler_seed],
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def points(self) -> list[dict]:
        dims = self.space
        return [{d.name: d.value(u) for d, u in zip(dims, row)}
                for row in quasi_random(self.trials, len(dims), self.sampler_seed)]

    def apply(self, point: dict, **changes) -> RunConfig:
        fields = {k: v for k, v in point.items() if k != "schedule"}
        return self.base.replace(epochs=self.base.epochs * point["schedule"], study=self.key, **fields, **changes)

    def trial_configs(self) -> list[RunConfig]:
        return [self.apply(p, trial=i, seed=0, test_eval="never", val_eval="end")
                for i, p in enumerate(self.points())]

    def final_configs(self, point: dict, seeds: list[int]) -> list[RunConfig]:
        return [self.apply(point, trial=None, seed=s, test_eval="end") for s in seeds]

    def describe(self) -> str:
        b = self.base
        return f"{b.backend} {b.model} {b.experiment} {b.arm} {b.strategy}"

    def to_json(self) -> dict:
        return {"key": self.key, "arm": self.base.to_json(), "space": [d.to_json() for d in self.space],
                "trials": self.trials, "sampler": "scipy.stats.qmc.Halton(scramble=True)",
                "sampler_seed": self.sampler_seed, "selection": SELECTION,
                "validation": {"val_shots": self.base.val_shots, "val_fraction": self.base.val_fraction}}


def trial_score(record: dict) -> tuple | None:
    """The selection key of one trial's record (higher is better), from its validation split only."""
    if record.get("status") != "ok":
        return None
    val = (record.get("accuracy") or {}).get("val")
    if not val:
        return None
    return (val["acc"], -val["loss"], -record["config"]["trial"])


def select(study: Study, records: list[dict]) -> tuple[int | None, list[dict]]:
    """(winning trial, one row per trial) from the trials' records; reads validation only."""
    points = study.points()
    by_trial: dict[int, list[dict]] = {}
    for r in records:
        if r["config"].get("study") == study.key and r["config"].get("trial") is not None:
            by_trial.setdefault(r["config"]["trial"], []).append(r)
    rows, best = [], None
    for i, point in enumerate(points):
        tried = by_trial.get(i, [])
        ok = [r for r in tried if r.get("status") == "ok"]
        if len({trial_score(r) for r in ok}) > 1:  # two scores for one trial: which counts is not the study's guess
            raise ConfigError(f"study {study.key} ({study.describe()}): trial {i} has {len(ok)} ok records with "
                              f"different validation scores (run ids {', '.join(r.get('run_id', '?') for r in ok)}); "
                              "keep one and run again")  # (a retried job that finished twice scores alike)
        rec = ok[0] if ok else (tried[-1] if tried else None)
        score = trial_score(rec) if rec else None
        rows.append({"trial": i, "point": point, "config_hash": rec["config_hash"] if rec else None,
                     "status": rec["status"] if rec else "missing",
                     "val_acc": score[0] if score else None, "val_loss": -score[1] if score else None,
                     "n_val": rec["accuracy"]["val"]["n"] if score else None})
        if score and (best is None or score > best[0]):
            best = (score, i)
    return (best[1] if best else None), rows
