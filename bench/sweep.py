"""A sweep as a plan of jobs, and the local executor that runs it.

``bench run`` expands the command line into run configurations, then plans them:
the suite's pretrain steps (one per pretrain config hash, however many arms need
it) come first, each arm names the pretrain step it depends on. An executor runs
the plan: the local one (here) runs one job at a time, each in its own
subprocess; ``bench/ray_executor.py`` submits the same plan to a Ray cluster.

A job whose pretrain step failed is recorded as failed with that reason and
never started; the rest of the sweep goes on. ``--resume`` skips jobs that
already have an ok record, and pretrain steps whose canonical file is cached.
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig
from .experiments import get_experiment
from .results import read_records, utc_now, write_record
from .weights import SUFFIX


@dataclass
class RunOptions:
    """How to run a plan (everything but the configurations themselves)."""

    out: Path
    cache_dir: Path
    data_root: Path
    timeout: float | None = None          # seconds per job
    progress: bool = True
    skip_bad_images: bool = False
    in_process: bool = False
    resume: bool = False
    packed: bool = False                  # jobs may share a machine: step times are marked, not published


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
        if self.is_pretrain:
            return f"pretrain {c.backend} {c.model} on {c.dataset} ({c.epochs} epochs) -> {self.weights}"
        return f"{c.backend} {c.model} {c.experiment} {c.arm} strategy={c.strategy} seed={c.seed}"


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


def failed_record(config: RunConfig, reason: str, out: Path) -> dict:
    """A failed record for a job that never ran (its pretrain step failed)."""
    from .runner import new_record
    record = new_record(config)
    record.update(status="failed", error=reason, finished=utc_now())
    record["path"] = str(write_record(record, out))
    return record


def finished_records(out: Path) -> dict[str, dict]:
    """config hash -> an ok record already in ``out`` (unreadable files are skipped)."""
    records, _ = read_records([out]) if Path(out).is_dir() else ([], [])
    return {r["config_hash"]: r for r in records if r.get("status") == "ok"}


def run_job(job: Job, opts: RunOptions) -> dict:
    """One job, alone on this machine unless packed (``bench.timing.machine_lock``)."""
    from .isolate import execute_isolated
    from .runner import execute
    from .timing import machine_lock

    with nullcontext() if opts.packed else machine_lock():
        if opts.in_process:
            return execute(job.config, opts.out, cache_dir=opts.cache_dir, data_root=opts.data_root,
                           save_weights=job.weights if job.is_pretrain else None,
                           suite_weights=None if job.is_pretrain else job.weights, progress=opts.progress,
                           skip_bad_images=opts.skip_bad_images, packed=opts.packed)
        return execute_isolated(job, opts)


def run_local(plan: list[Job], opts: RunOptions) -> list[dict]:
    """Run the plan here, one job at a time; returns every record of the sweep."""
    done = finished_records(opts.out) if opts.resume else {}
    failed: dict[str, str] = {}
    records = []
    for i, job in enumerate(plan, 1):
        head = f"[{i}/{len(plan)}]"
        if job.is_pretrain and job.weights.exists():
            print(f"{head} pretrain cached: {job.weights}")
            continue
        if job.needs in failed:
            rec = failed_record(job.config, f"not run: its pretrain step {job.needs} failed ({failed[job.needs]})",
                                opts.out)
            print(f"{head} {job.describe()}\n  failed: {rec['error']}", file=sys.stderr)
            records.append(rec)
            continue
        if job.key in done:
            print(f"{head} skip (--resume): ok record {done[job.key]['run_id']}")
            records.append(done[job.key])
            continue
        print(f"{head} {job.describe()}", flush=True)
        rec = run_job(job, opts)
        report_outcome(rec)
        if job.is_pretrain and rec["status"] != "ok":
            failed[job.key] = rec["error"]
        records.append(rec)
    return records


def report_outcome(rec: dict) -> None:
    if rec["status"] != "ok":
        print(f"  {rec['status']}: {rec['error']}", file=sys.stderr)
    elif rec["config"]["arm"] == "pretrain":
        print(f"  source top-1 {rec['accuracy']['final']:.3f} -> {rec['path']}")
    else:
        print(f"  top-1 {rec['accuracy']['final']:.3f} -> {rec['path']}")
