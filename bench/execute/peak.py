"""The machine's peak (``bench.measure.peak``), measured once per CPU, thread setting and
library versions in a child with the PyTorch backend's settings, under the timing lock,
and cached in the suite's cache (``<BENCH_CACHE_DIR>/peak/``): every timed record carries it."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

from backends.settings import child_env
from bench.core.errors import BenchError
from bench.core.files import atomic_path, default_cache_dir
from bench.measure.environment import cpu_flags, cpu_model, cpu_vendor, git_commit
from bench.measure.peak import PEAK_KERNELS, clock_mhz, theoretical
from bench.measure.timing import machine_lock

from .child import run_bench_child


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def peak_key() -> dict:
    env = child_env("torch")
    return {"cpu": cpu_model(), "flags": sorted(cpu_flags()), "threads": env.get("OMP_NUM_THREADS"),
            "torch": _version("torch"), "numpy": _version("numpy"), "kernels": PEAK_KERNELS}


def peak_path(cache_dir: Path | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(peak_key(), sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / "peak" / f"{digest}.json"


def cached_peak(cache_dir: Path | None = None) -> dict | None:
    """The cached peak of this machine and setting, or None (never measures)."""
    path = peak_path(cache_dir)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("kernels"), dict) else None


def ensure_peak(cache_dir: Path | None = None, force: bool = False, seconds: float = 1.0) -> dict:
    """The peak, measured now if not cached (or ``force``); a failed measurement raises."""
    if not force and (peak := cached_peak(cache_dir)) is not None:
        return peak
    from bench.records.store import utc_now
    with tempfile.TemporaryDirectory(prefix="bench-peak-") as tmp, machine_lock():
        out, err = Path(tmp) / "peak.json", Path(tmp) / "stderr.txt"
        with open(err, "w") as f:
            code = run_bench_child(["_peak", str(out), "--seconds", str(seconds)], child_env("torch"), 600, f)
        if code != 0 or not out.exists():
            tail = err.read_text(errors="replace").strip().splitlines()[-1:] or [f"exit {code}"]
            raise BenchError(f"measuring the machine's peak failed: {tail[0]}")
        measured = json.loads(out.read_text())
    peak = {"measured_at": utc_now(), "key": peak_key(), "git": git_commit(), **measured,
            "theoretical": theoretical(cpu_flags(), int(measured.get("threads") or os.cpu_count() or 1), clock_mhz(),
                                      cpu_vendor())}
    path = peak_path(cache_dir)
    with atomic_path(path) as tmp_path:
        tmp_path.write_text(json.dumps(peak, indent=1))
    return peak
