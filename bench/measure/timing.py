"""Step timing: first-call (compile) time, warm-up and steady state kept apart.

All times are wall-clock milliseconds measured with ``time.perf_counter``
around calls that return only after the framework has synchronised.
"""
from __future__ import annotations

import fcntl
import os
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / (1024.0 * 1024.0)


def current_rss_mb() -> float | None:
    """Resident set size of this process now, MiB (Linux ``/proc/self/statm``; None elsewhere)."""
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def summarize_ms(samples: list[float]) -> dict:
    """Median, p90, mean, IQR, min, max of a list of ms; empty -> n=0 only."""
    if not samples:
        return {"n": 0}
    a = np.asarray(samples, dtype=np.float64)
    q1, med, q3, p90 = np.percentile(a, [25, 50, 75, 90])
    return {"n": int(a.size), "median_ms": float(med), "p90_ms": float(p90), "mean_ms": float(a.mean()),
            "iqr_ms": float(q3 - q1), "min_ms": float(a.min()), "max_ms": float(a.max())}


class Phases:
    """Wall seconds per phase of a run (``with phases("data"): ...`` adds up), and the time from
    the parent's spawn of this process to its first phase (``BENCH_SPAWNED_AT``, set by
    ``bench.execute.child``): interpreter start and the suite's imports."""

    SPAWNED_AT = "BENCH_SPAWNED_AT"

    def __init__(self):
        self.seconds: dict[str, float] = {}
        spawned = os.environ.pop(self.SPAWNED_AT, "")  # once: a later run in this process was not spawned
        if spawned.replace(".", "", 1).isdigit():
            self.seconds["startup"] = max(0.0, time.time() - float(spawned))

    @contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t


@dataclass
class StepTimer:
    """Collects per-step compute and data-wait times for one run.

    The very first step is the compile step (graph build / hybridization / kernel
    selection); the next ``warmup`` steps are warm-up; the rest are steady state.
    """

    warmup: int = 3
    batch_size: int = 1
    packed: bool = False                  # the run may have shared its machine (bench run --pack)
    contention: dict = field(default_factory=dict)
    phases: Phases = field(default_factory=Phases)
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
            "packed": self.packed,
            "contention": self.contention,
            "phases_s": dict(self.phases.seconds),
        }


BUSY_SHARE = 0.10  # other processes using more than this share of the machine's CPU: contended


def _machine_cpu_s() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [float(v) for v in open("/proc/stat").readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0.0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _process_cpu_s() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


class ContentionProbe:
    """Was anything else running while we timed? Machine CPU time minus our own.

    Records the load average before and after, this process's CPU time, the CPU
    time every other process used over the same wall time (``other_share``: as a
    share of the machine's capacity) and the hypervisor's steal; ``busy`` when
    other processes used more than ``BUSY_SHARE`` of the machine.
    """

    def start(self) -> "ContentionProbe":
        self.load0, self.wall0 = os.getloadavg(), time.perf_counter()
        self.machine0, self.me0 = _machine_cpu_s(), _process_cpu_s()
        return self

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall0
        me = _process_cpu_s() - self.me0
        out = {"loadavg_before": list(self.load0), "loadavg_after": list(os.getloadavg()),
               "wall_s": wall, "process_cpu_s": me, "cpus": os.cpu_count()}
        machine1 = _machine_cpu_s()
        if self.machine0 and machine1 and wall > 0:
            other = max(0.0, machine1[0] - self.machine0[0] - me)
            share = other / (wall * (os.cpu_count() or 1))
            out.update(other_cpu_s=other, steal_s=machine1[1] - self.machine0[1], other_share=share,
                       busy=share > BUSY_SHARE)
        return out


def lock_path() -> Path:
    return Path(os.environ.get("BENCH_TIMING_LOCK") or Path(tempfile.gettempdir()) / "bench-timing.lock")


@contextmanager
def machine_lock(path: Path | None = None):
    """Hold the machine-wide timing lock: two timed runs never overlap on one machine,
    even from two ``bench run`` commands. A second one waits, and says for whom."""
    path = Path(path or lock_path())
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            print(f"waiting: another bench run (pid {holder}) is timing on this machine ({path})",
                  file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
