"""The harness's cost, measured by the suite: harness/native <= 1.05 for every backend.

Each combination runs ``bench overhead --design interleaved``'s measurement: the harness
step and the framework's own minimal loop in one process, alternating step by step, over
three processes, one at a time (the machine lock); the gate is the median of the three
processes' ratios (a paired measurement: process-to-process speed varies by more than the
5% it must resolve). Run alone on an idle machine:

    pytest tests/benchmarks/test_overhead.py -m bench

``BENCH_OVERHEAD_MODELS`` (comma-separated) narrows the architectures.
"""
import argparse
import os

import pytest

from bench.speed.overhead import run_combination

from ..backends.installed import BACKENDS
from .conftest import replay

pytestmark = [pytest.mark.bench, pytest.mark.slow]
MODELS = os.environ.get("BENCH_OVERHEAD_MODELS", "resnet18,efficientnet_lite0").split(",")
TARGET = 1.05


@pytest.mark.parametrize("strategy", ["full", "linear-probe"])
@pytest.mark.parametrize("size", [32, 112])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_harness_costs_at_most_five_percent(benchmark, backend, model, size, strategy):
    args = argparse.Namespace(batch_size=16, steps=15, warmup=3, rounds=3, timeout=1800, set=[],
                              design="interleaved")
    rec = run_combination(backend, model, size, strategy, args)
    assert "ratio" in rec, rec["native"]["errors"] + rec["harness"]["errors"]
    replay(benchmark, rec["harness"]["round_medians_ms"])  # one round: one harness process's median
    benchmark.extra_info.update(ratio=rec["ratio"], round_ratios=rec["round_ratios"],
                                native_ms=rec["native"]["median_ms"], harness_ms=rec["harness"]["median_ms"])
    assert not (rec["native"]["contended"] or rec["harness"]["contended"]), "timed while the machine was busy"
    assert rec["ratio"] <= TARGET, (f"{backend} {model} {size}px {strategy}: harness/native {rec['ratio']:.3f} "
                                    f"(per round {rec['round_ratios']})")
