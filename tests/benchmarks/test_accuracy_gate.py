"""Accuracy gate: a short fixed-seed run of the default experiment must land within
the seed-to-seed spread measured in the published records (results/runs).

Tolerance = 3 sample standard deviations of the published seeds of the same
configuration (never a guessed number); skipped when fewer than 3 are published.

Run:  pytest tests/benchmarks/test_accuracy_gate.py -m bench
"""
from pathlib import Path

import numpy as np
import pytest

from bench.plan.experiments import get_experiment
from tests.records import load_records
from bench.execute.local import RunOptions, run_local
from bench.plan.sweep import plan_sweep

from ..backends.installed import BACKENDS

pytestmark = [pytest.mark.bench, pytest.mark.slow]

PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "runs"  # the published folder only


def published_finals(config) -> list[float]:
    if not PUBLISHED.is_dir():
        return []
    finals = []
    for rec in load_records([PUBLISHED]):
        c = rec["config"]
        if rec["status"] == "ok" and c["backend"] == config.backend and \
                config.replace(seed=c["seed"]).config_hash() == rec["config_hash"]:
            finals.append(rec["accuracy"]["final"])
    return finals


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_finetune_accuracy_within_published_spread(benchmark, backend, tmp_path):
    exp = get_experiment("digits-transfer")
    config = exp.arm_config(backend, "finetune", exp.strategy, seed=0)
    finals = published_finals(config)
    if len(finals) < 3:
        pytest.skip(f"fewer than 3 published seeds for {backend} {config.strategy}")
    mean, sd = float(np.mean(finals)), float(np.std(finals, ddof=1))
    opts = RunOptions(out=tmp_path / "out", cache_dir=tmp_path / "cache", data_root=tmp_path / "data",
                      progress=False)
    records = benchmark.pedantic(run_local, args=(plan_sweep([config], opts.cache_dir), opts), rounds=1,
                                 iterations=1)  # each job in its own process, with its backend's settings
    (rec,) = [r for r in records if r["config"]["arm"] == "finetune"]
    assert rec["status"] == "ok", rec["error"]
    got = rec["accuracy"]["final"]
    benchmark.extra_info.update(top1=got, published_mean=mean, published_sd=sd, n_published=len(finals),
                                train_s=rec["curve"][-1]["cum_train_s"],
                                step_median_ms=rec["timing"]["steady"].get("median_ms"))
    assert abs(got - mean) <= 3 * sd, (
        f"{backend}: top-1 {got:.3f} outside published {mean:.3f} ± 3×{sd:.3f} (n={len(finals)})")
