"""Running tuning studies (``bench run --search N``) with either executor.

Two phases, each an ordinary sweep plan run by the local or the Ray executor (so
``--resume``, the timing lock, isolation and failure records work as for any sweep):

1. every study's trials (and the suite pretrain steps they need);
2. per study, the winner chosen from the trials' records (validation only,
   ``bench.plan.study.select``), written as a ``study`` record, then re-run over the
   seeds: those final runs are the only ones scored on the test split.

A study whose every trial failed has no winner: its record says so and it runs no finals.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from bench.records.kinds import StudyRecord
from bench.records.store import file_stamp, write_json_new
from bench.plan.study import Study, select
from bench.plan.sweep import plan_sweep


def study_record(study: Study, winner: int | None, rows: list[dict], seeds: list[int], records: list[dict]) -> dict:
    """The study's record (``bench.records.kinds.StudyRecord``), measured where its trials ran."""
    return StudyRecord.new(study.to_json(), winner, rows, seeds, records).to_json()


def decided(out: Path) -> dict[str, dict]:
    """The study records already in ``out`` that chose a winner, by study key (the newest of a key)."""
    from bench.records.store import read_records
    found, _ = read_records([out], "study") if Path(out).is_dir() else ([], [])
    return {r["key"]: r for r in sorted(found, key=lambda r: r["created"]) if r.get("winner") is not None}


def run_studies(studies: list[Study], seeds: list[int], opts, run_plan: Callable) -> list[dict]:
    """Trials, then selection, then the winners' seeded runs; returns every run record. With
    ``--resume``, a study whose record already chose a winner keeps it: its trials are not run
    again (a trial that failed the first time and succeeds now would otherwise change the winner
    after its finals began) and its finals resume."""
    before = decided(opts.out) if opts.resume else {}
    for study in studies:
        if study.key in before:
            print(f"study {study.key} ({study.describe()}): decided before (--resume): trial "
                  f"{before[study.key]['winner']}", flush=True)
    todo = [s for s in studies if s.key not in before]
    trials = [c for s in todo for c in s.trial_configs()]
    print(f"studies: {len(studies)}, trials: {len(trials)} (budget {studies[0].trials if studies else 0} each)",
          flush=True)
    records = run_plan(plan_sweep(trials, opts.cache_dir), opts)
    finals = []
    for study in studies:
        if study.key in before:
            finals += study.final_configs(before[study.key]["winner_point"], seeds)
            continue
        winner, rows = select(study, records)
        rec = study_record(study, winner, rows, seeds, records)
        path = write_json_new(Path(opts.out) / f"{file_stamp(rec['created'])}_study_{study.key}.json", rec)
        if winner is None:
            print(f"study {study.key} ({study.describe()}): {rec['error']} -> {path}")
            continue
        point = rows[winner]["point"]
        print(f"study {study.key} ({study.describe()}): trial {winner} "
              f"(lr {point['lr']:.3g}, wd {point['weight_decay']:.3g}, x{point['schedule']}) "
              f"val {rows[winner]['val_acc']:.3f} -> {path}")
        finals += study.final_configs(point, seeds)
    return records + run_plan(plan_sweep(finals, opts.cache_dir), opts)
