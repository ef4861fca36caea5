"""The pytest route to the gate: pytest-benchmark saves per-process samples, ``--benchmark-gate`` fails the
session on a planted slowdown and passes unchanged code, through pytest-benchmark's own storage."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]

BENCHMARKS = '''
import os
import random

import pytest

from bench.report.pytest_gate import time_processes

PLANTED = float(os.environ.get("PLANTED", "1"))  # the step of benchmark "a" this much slower
MEMORY = float(os.environ.get("MEMORY", "1"))    # its peak memory this much larger
ENV = {"cpu": "Test CPU", "cpu_count": 2, "cpu_flags": ["avx2"], "frameworks": {"x": "1.0"}}


@pytest.mark.parametrize("name", ["a", "b"])
def test_step(benchmark, benchmark_processes, name):
    rng = random.Random(f"{os.environ['SEED']}{name}")  # each session its own draws, the same on every run

    def one_process():
        speed = rng.uniform(0.95, 1.05)  # processes differ in speed
        slow, big = (PLANTED, MEMORY) if name == "a" else (1.0, 1.0)
        return {"stats": {"median_ms": 40.0 * speed * slow}, "memory": {"peak_rss_mb": (600 + rng.random()) * big},
                "contention": {"busy": False}, "environment": ENV}

    time_processes(benchmark, one_process, benchmark_processes)
'''


SESSIONS = iter(range(10**6))


def run_with(pytester, monkeypatch, *args, **env):
    for key in ("PLANTED", "MEMORY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SEED", str(next(SESSIONS)))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_unchanged_passes_and_a_planted_slowdown_fails_three_times_each(pytester, monkeypatch):
    pytester.makepyfile(test_bench=BENCHMARKS)
    base = run_with(pytester, monkeypatch, "--benchmark-autosave")
    assert base.ret == 0
    saved = sorted((pytester.path / ".benchmarks").glob("*/0001_*.json"))
    assert len(saved) == 1
    for _ in range(3):
        same = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate=0001")
        assert same.ret == 0, same.stdout.str()
        assert "no regression" in same.stdout.str()
        slow = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate=0001", PLANTED="1.2")
        assert slow.ret == 1, slow.stdout.str()
        out = slow.stdout.str()
        assert re.search(r"1 regression\(s\): test_bench.py::test_step\[a\] step ms 1\.\d\dx", out), out
        assert "test_step[b]" not in out.split("regression(s):")[1].splitlines()[0]


def test_memory_has_its_own_factor(pytester, monkeypatch):
    pytester.makepyfile(test_bench=BENCHMARKS)
    assert run_with(pytester, monkeypatch, "--benchmark-autosave").ret == 0
    grown = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate", MEMORY="1.08")
    assert grown.ret == 1 and "test_step[a] peak RSS MiB 1.08x" in grown.stdout.str()
    allowed = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate=0001",
                       "--benchmark-gate-memory-factor=1.10", MEMORY="1.08")
    assert allowed.ret == 0, allowed.stdout.str()


def test_what_the_gate_cannot_see_or_resolve_fails(pytester, monkeypatch):
    pytester.makepyfile(test_bench=BENCHMARKS)
    assert run_with(pytester, monkeypatch, "--benchmark-autosave").ret == 0
    missing = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate=0001", "test_bench.py::test_step[b]")
    assert missing.ret == 1 and "measured in the baseline only: test_bench.py::test_step[a]" in missing.stdout.str()
    few = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate=0001", "--benchmark-processes=1")
    assert few.ret == 1 and "cannot be resolved with so few processes" in few.stdout.str()


def test_bad_gate_options_are_usage_errors(pytester, monkeypatch):
    pytester.makepyfile(test_bench=BENCHMARKS)
    unsaved = run_with(pytester, monkeypatch, "--benchmark-gate")
    assert unsaved.ret == pytest.ExitCode.USAGE_ERROR
    assert "--benchmark-gate compares this run's saved results: add --benchmark-autosave" in unsaved.stderr.str()
    nothing = run_with(pytester, monkeypatch, "--benchmark-autosave", "--benchmark-gate=0007")
    assert nothing.ret == pytest.ExitCode.USAGE_ERROR and "no saved run(s) match" in nothing.stderr.str()


def test_bench_gate_reads_pytest_benchmark_json(pytester, monkeypatch):
    import subprocess
    import sys
    pytester.makepyfile(test_bench=BENCHMARKS)
    assert run_with(pytester, monkeypatch, "--benchmark-json=base.json").ret == 0
    assert run_with(pytester, monkeypatch, "--benchmark-json=slow.json", PLANTED="1.3").ret == 0
    gate = subprocess.run([sys.executable, "-m", "bench", "gate", str(pytester.path / "base.json"),
                           str(pytester.path / "slow.json")], capture_output=True, text=True, cwd=ROOT)
    assert gate.returncode == 1 and "test_step[a] step ms 1." in gate.stdout, gate.stdout + gate.stderr
    doc = (pytester.path / "slow.json").read_text().replace('"step_ms": [', '"step_ms": ["99999", ', 1)
    (pytester.path / "bad.json").write_text(doc)
    bad = subprocess.run([sys.executable, "-m", "bench", "gate", str(pytester.path / "base.json"),
                          str(pytester.path / "bad.json")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "bad.json" in bad.stderr and "step_ms is '99999', expected a finite number" \
        in bad.stderr, bad.stderr


def test_no_private_pytest_benchmark_api():
    """The plugin and the benchmarks reach pytest-benchmark through its fixture's public methods, its
    options and its hooks only (issue 36: an earlier version overwrote ``benchmark._timer``)."""
    sources = [ROOT / "bench" / "report" / "pytest_gate.py", *sorted((ROOT / "tests" / "benchmarks").glob("*.py"))]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"\b(benchmark|config|session)\._\w", text), path
        assert "_benchmarksession" not in text and "pytest_benchmark." not in text, path


def test_the_published_check_regates_to_its_verdicts():
    """results/gate-check: the baseline, three unchanged and three planted runs of the pytest route;
    `bench gate` on the saved files gives each run's verdict again (and names only PyTorch's benchmarks)."""
    import subprocess
    import sys
    folder = ROOT / "results" / "gate-check"
    runs = sorted(folder.glob("0*.json"))
    assert len(runs) == 7
    for run in runs[1:]:
        gate = subprocess.run([sys.executable, "-m", "bench", "gate", str(runs[0]), str(run)], capture_output=True,
                              text=True, cwd=ROOT)
        planted = "uncommitted-changes" in run.name
        assert gate.returncode == (1 if planted else 0), gate.stdout + gate.stderr
        moved = [line for line in gate.stdout.splitlines() if line.endswith("REGRESSION")]
        assert all("torch" in line and "step ms" in line for line in moved) and len(moved) == (2 if planted else 0)
