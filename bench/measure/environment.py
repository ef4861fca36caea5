"""What a result was measured on: python, CPU, GPU, framework versions, git commit."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_PATHS = ("architectures", "backends", "bench", "datasets", "pyproject.toml")


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` of /proc/cpuinfo, or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """``GenuineIntel``, ``AuthenticAMD``, ... ('' where unknown)."""
    return _cpuinfo("vendor_id") or ""


def cpu_flags() -> set[str]:
    return set((_cpuinfo("flags") or "").split())


def gpu_names() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return [l.strip() for l in out.stdout.splitlines() if l.strip()] if out.returncode == 0 else []
    except (OSError, subprocess.SubprocessError):
        return []


def git_commit() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        # dirty: the *code* differs from the commit (docs and published results don't change a run)
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS).stdout.strip() != ""
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def installed_packages() -> dict[str, str]:
    """Every distribution of this interpreter and its version (what ``pip freeze`` lists)."""
    import importlib.metadata
    return dict(sorted((d.metadata["Name"].lower(), d.version) for d in importlib.metadata.distributions()
                       if d.metadata["Name"]))


def capture_environment(frameworks: dict[str, str], runtime: dict | None = None,
                        settings: dict | None = None, peak: dict | None = None) -> dict:
    """``runtime``: what the framework reports (threads, modes); ``settings``: every environment
    setting of the backend with its origin (``backends.settings.effective_settings``); ``peak``: the
    machine's measured and theoretical peak (``bench peak``), None where not measured yet."""
    return {
        "peak": peak,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_flags": sorted(cpu_flags()),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_names(),
        "frameworks": frameworks,
        # the interpreter the process ran in (a backend's own environment: bench env create) and the
        # exact version of every package it holds
        "interpreter": sys.executable,
        "packages": installed_packages(),
        "runtime": runtime or {},
        "settings": settings or {},
        "git": git_commit(),
    }
