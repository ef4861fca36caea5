"""The local executor: a sweep's plan (``bench.plan.sweep``) run here, one job at a time.

Each job runs in its own subprocess (``bench/execute/isolate.py``) under the machine's
timing lock. A job that fails — a user error found in the child, a crash, a kill, a
time-out — is a failed record and the sweep goes on; so is a job whose pretrain step
failed, which is never started. ``--resume`` skips jobs that already have an ok
record, and pretrain steps whose canonical file is cached. ``bench/execute/ray_executor.py``
runs the same plan on a Ray cluster and treats every failure the same way.
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import DiskFull
from bench.records.store import failed_record, read_records, save_record
from bench.measure.timing import machine_lock
from bench.plan.sweep import Job


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


def finished_records(out: Path) -> dict[str, dict]:
    """config hash -> an ok record already in ``out`` (unreadable files are skipped)."""
    records, _ = read_records([out]) if Path(out).is_dir() else ([], [])
    return {r["config_hash"]: r for r in records if r.get("status") == "ok"}


def not_run(job: Job, pretrain_error: str) -> str:
    return f"not run: its pretrain step {job.needs} failed ({pretrain_error})"


def run_job(job: Job, opts: RunOptions) -> dict:
    """One job, alone on this machine unless packed (``bench.measure.timing.machine_lock``)."""
    from .isolate import execute_isolated
    from .runner import execute

    with nullcontext() if opts.packed else machine_lock():
        if opts.in_process:
            return execute(job.config, opts.out, cache_dir=opts.cache_dir, data_root=opts.data_root,
                           save_weights=job.weights if job.is_pretrain else None,
                           suite_weights=None if job.is_pretrain else job.weights, progress=opts.progress,
                           skip_bad_images=opts.skip_bad_images, packed=opts.packed)
        return execute_isolated(job, opts)


def stopped(error: DiskFull, not_run: int, total: int) -> DiskFull:
    """The one line a sweep ends with when its output disk is full."""
    return DiskFull(f"{error}; the sweep stopped: {not_run} of {total} jobs not run or not recorded. Free space "
                    "and run the same command again with --resume (finished jobs are kept and skipped)")


def run_local(plan: list[Job], opts: RunOptions) -> list[dict]:
    """Run the plan here, one job at a time; returns every record of the sweep. A full disk
    under --out ends the sweep with one line saying how many jobs did not run."""
    records: list[dict] = []
    handled = [0]  # jobs recorded, skipped or cached so far
    try:
        _run_all(plan, opts, records, handled)
    except DiskFull as e:
        raise stopped(e, len(plan) - handled[0], len(plan)) from None
    return records


def pretrain_cached(job: Job) -> bool:
    """Whether a pretrain step's canonical file is cached and is what the suite wrote (its recorded
    sha256); a file without one (an older suite's) or changed since is pretrained again, said on stderr."""
    from bench.core.errors import CheckpointError
    from bench.weights.canonical import verify_digest
    if not job.weights.exists():
        return False
    try:
        verify_digest(job.weights, "the cached pretrain file", "pretraining it again")
    except CheckpointError as e:
        print(f"bench: {e}", file=sys.stderr)
        return False
    return True


def _run_all(plan: list[Job], opts: RunOptions, records: list[dict], handled: list[int]) -> None:
    done = finished_records(opts.out) if opts.resume else {}
    failed: dict[str, str] = {}
    for i, job in enumerate(plan, 1):
        handled[0] = i - 1
        head = f"[{i}/{len(plan)}]"
        if job.is_pretrain and pretrain_cached(job):
            print(f"{head} pretrain cached: {job.weights}")
            continue
        if job.needs in failed:
            rec = save_record(failed_record(job.config, not_run(job, failed[job.needs])), opts.out)
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


def report_outcome(rec: dict) -> None:
    acc = rec.get("accuracy") or {}
    if rec["status"] != "ok":
        print(f"  {rec['status']}: {rec['error']}", file=sys.stderr)
    elif acc.get("final") is None:
        print(f"  validation top-1 {acc['val']['acc']:.3f} -> {rec['path']}")
    else:
        source = "source " if rec["config"]["arm"] == "pretrain" else ""
        print(f"  {source}top-1 {acc['final']:.3f} -> {rec['path']}")
