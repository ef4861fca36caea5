"""Records for the site tests: two backends, two strategies and scratch over four seeds at two
commits (the second makes mxnet's step 1.5x slower), a tuning study, and an overhead record."""
import json
from pathlib import Path

from bench.plan.study import Study

from .test_report_groups import record

COMMITS = ("a" * 40, "b" * 40)


def run(backend, strategy, seed, commit, acc, ms, **config):
    arm = "scratch" if strategy == "scratch" else "finetune"
    rec = record(seed=seed, acc=acc, arm=arm, strategy=strategy, ms=ms, backend=backend, model="resnet18", **config)
    day = COMMITS.index(commit) + 1
    rec["created"] = rec["finished"] = f"2026-12-0{day}T00:00:{seed:02d}Z"
    rec["environment"] = {"cpu": "Test CPU", "cpu_count": 2, "cpu_flags": ["avx2"], "gpu": [],
                          "git": {"commit": commit, "dirty": False}, "frameworks": {backend: "1.0"}}
    rec["curve"] = [dict(rec["curve"][0], epoch=1, eval_acc=acc - 0.1), dict(rec["curve"][0], epoch=2)]
    return rec


def site_records(out: Path) -> dict[str, list]:
    """Write the records under ``out`` (runs/, history/<machine>/); what was written, by kind."""
    runs, history = [], []
    for backend in ("mxnet", "torch"):
        for strategy, acc in (("full", 0.80), ("linear-probe", 0.70), ("scratch", 0.40)):
            for seed in range(4):  # 4 a side: the fewest a two-sided U test can resolve at 0.05
                for commit in COMMITS:
                    slow = 1.5 if backend == "mxnet" and commit == COMMITS[1] else 1.0
                    rec = run(backend, strategy, seed, commit, acc + 0.01 * seed, (50 + seed) * slow)
                    (runs if commit == COMMITS[1] else history).append(rec)
    # a tuned arm: its study's trials (never rows) and its finals
    base = runs[0]["config"]
    from bench.plan.config import RunConfig
    study = Study(RunConfig.from_json(base).replace(val_shots=5, seed=0), trials=3)
    trials = []
    for i, cfg in enumerate(study.trial_configs()):
        rec = record(seed=0, acc=0.5 + 0.1 * i, **{k: v for k, v in cfg.to_json().items()
                                                      if k not in ("seed", "arm", "strategy", "scratch_init")})
        rec["accuracy"]["val"] = {"acc": 0.5 + 0.1 * i, "loss": 1.0 - 0.1 * i, "n": 10}
        trials.append(rec)
    points = study.points()
    study_rec = {"schema_version": runs[0]["schema_version"], "kind": "study", "created": "2026-12-02T01:00:00Z",
                 **study.to_json(), "winner": 2, "winner_point": points[2],
                 "trial_results": [{"trial": i, "point": p, "val_acc": 0.5 + 0.1 * i, "val_loss": 1.0 - 0.1 * i,
                                    "n_val": 10, "status": "ok", "config_hash": None} for i, p in enumerate(points)]}
    finals = [record(seed=s, acc=0.85, **{k: v for k, v in c.to_json().items()
                                          if k not in ("seed", "arm", "strategy", "scratch_init")})
              for s, c in enumerate(study.final_configs(points[2], [0, 1]))]
    for i, rec in enumerate(runs + trials + finals):
        _write(out / "runs" / f"{i:03d}_{rec['config']['backend']}.json", rec)
    for i, rec in enumerate(history):
        _write(out / "history" / "test-cpu" / f"{i:03d}.json", rec)
    _write(out / "runs" / "study.json", study_rec)
    return {"runs": runs + trials + finals, "history": history, "study": [study_rec]}


def _write(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
