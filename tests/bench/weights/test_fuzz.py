import pytest
"""The readers of untrusted files, fuzzed (``tests/fuzz_readers.py``) within a time budget.

``BENCH_FUZZ_SECONDS`` (default 45) and ``BENCH_FUZZ_SEED`` (default: a new one, printed,
so a failure can be replayed) set the budget and the cases."""
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_readers_survive_fuzzing():
    seconds = os.environ.get("BENCH_FUZZ_SECONDS", "45")
    seed = os.environ.get("BENCH_FUZZ_SEED") or str(random.SystemRandom().randrange(10 ** 6))
    r = subprocess.run([sys.executable, "-m", "tests.fuzz_readers", seconds, seed], cwd=ROOT, capture_output=True,
                       text=True, timeout=float(seconds) + 120, env=os.environ | {"PYTHONPATH": str(ROOT)})
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " 0 failures" in r.stdout and "fuzz (seed" in r.stdout
