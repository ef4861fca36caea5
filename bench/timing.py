"""Step timing: first-call (compile) time, warm-up and steady state kept apart.

All times are wall-clock milliseconds measured with ``time.perf_counter``
around calls that return only after the framework has synchronised.
"""
from __future__ import annotations

import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / (1024.0 * 1024.0)


def summarize_ms(samples: list[float]) -> dict:
    """Median, p90, mean, IQR, min, max of a list of ms; empty -> n=0 only."""
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    q1, med, q3, p90 = np.percentile(a, [25, 50, 75, 90])
    return {"n": int(a.size), "median_ms": float(med), "p90_ms": float(p90), "mean_ms": float(a.mean()),
            "iqr_ms": float(q3 - q1), "min_ms": float(a.min()), "max_ms": float(a.max())}


@dataclass
class StepTimer:
    """Collects per-step compute and data-wait times for one run.

    The very first step is the compile step (graph build / hybridization / kernel
    selection); the next ``warmup`` steps are warm-up; the rest are steady state.
    """

    warmup: int = 3
    batch_size: int = 1
    compile_ms: float | None = None
    warmup_ms: list[float] = field(default_factory=list)
    steady_ms: list[float] = field(default_factory=list)
    data_ms: list[float] = field(default_factory=list)

    def add_step(self, ms: float) -> None:
        if self.compile_ms is None:
            self.compile_ms = ms
        elif len(self.warmup_ms) < self.warmup:
            self.warmup_ms.append(ms)
        else:
            self.steady_ms.append(ms)

    @contextmanager
    def step(self):
        t = time.perf_counter()
        yield
        self.add_step((time.perf_counter() - t) * 1e3)

    @contextmanager
    def data(self):
        t = time.perf_counter()
        yield
        self.data_ms.append((time.perf_counter() - t) * 1e3)

    def summary(self) -> dict:
        steady = summarize_ms(self.steady_ms)
        if steady["n"]:
            steady["img_per_s"] = self.batch_size * steady["n"] / (sum(self.steady_ms) / 1e3)
            steady["img_per_s_median"] = self.batch_size / (steady["median_ms"] / 1e3)
        return {
            "batch_size": self.batch_size,
            "compile_ms": self.compile_ms,
            "warmup": {"n": len(self.warmup_ms), "total_ms": float(sum(self.warmup_ms))},
            "steady": steady,
            "data": summarize_ms(self.data_ms) | {"total_s": float(sum(self.data_ms) / 1e3)},
            "peak_rss_mb": peak_rss_mb(),
        }
