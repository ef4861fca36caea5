"""The harness's cost, measured by the suite: harness/native <= 1.05 for every backend.

Each combination runs ``bench overhead --design interleaved``'s measurement: the harness
step and the framework's own minimal loop in one process, alternating step by step, over
``--benchmark-processes`` processes (default 5), one at a time (the machine lock); the test is the
median of the processes' ratios (a paired measurement: process-to-process speed varies by more than the
5% it must resolve). Run alone on an idle machine:

    pytest tests/benchmarks/test_overhead.py -m bench

``BENCH_OVERHEAD_MODELS`` (comma-separated) narrows the architectures.
"""
import argparse
import itertools
import os
import statistics

import pytest

from bench.report.pytest_gate import time_processes
from bench.speed.step import measure, step_spec

from ..backends.installed import BACKENDS

pytestmark = [pytest.mark.bench, pytest.mark.slow]
MODELS = os.environ.get("BENCH_OVERHEAD_MODELS", "resnet18,efficientnet_lite0").split(",")
TARGET = 1.05


@pytest.mark.parametrize("strategy", ["full", "linear-probe"])
@pytest.mark.parametrize("size", [32, 112])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_harness_costs_at_most_five_percent(benchmark, benchmark_processes, backend, model, size, strategy):
    args = argparse.Namespace(batch_size=16, steps=15, warmup=3)
    orders = itertools.cycle(["native+harness", "harness+native"])  # who steps first alternates per process

    def one_process() -> dict:
        got = measure(step_spec(backend, model, size, strategy, next(orders), args), {}, timeout=1800)
        if "loops" not in got:
            return got
        harness, native = got["loops"]["harness"], got["loops"]["native"]
        return harness | {"ratio": harness["stats"]["median_ms"] / native["stats"]["median_ms"]}

    benchmark.group = "harness step, interleaved with the framework's own loop: one round is one process"
    results = time_processes(benchmark, one_process, benchmark_processes)
    ratios = [r["ratio"] for r in results]
    ratio = statistics.median(ratios)
    benchmark.extra_info.update(ratio=ratio, round_ratios=ratios)
    assert not any(r["contention"].get("busy") for r in results), "timed while the machine was busy"
    assert ratio <= TARGET, f"{backend} {model} {size}px {strategy}: harness/native {ratio:.3f} (per process {ratios})"
