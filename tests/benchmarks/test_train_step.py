"""pytest-benchmark gates: one ResNet-18 train step per backend, each measured in its own processes.

Run, then gate a later run against it (docs/site-and-gates.md):

    pytest tests/benchmarks -m bench --benchmark-autosave
    pytest tests/benchmarks -m bench --benchmark-autosave --benchmark-gate=0001

Each benchmark runs ``--benchmark-processes`` (default 5) measuring processes, one after the
other: pytest-benchmark times each process (one round: start to exit: import, build, compile,
warm-up and steady steps), and the gate's samples are each process's median steady step and its
peak resident memory (``extra_info``), because processes here differ in speed by more than the
regressions worth catching while steps within one agree.

Each backend's step is timed in a child process with that backend's own runtime
settings (``bench.speed.step.measure``): importing MindSpore into this process would
set OMP_NUM_THREADS=1 and the oneDNN ISA cap for every backend timed after it.
The shared-pipeline benchmark needs no framework and runs here (not gated: one process).
"""
import numpy as np
import pytest

from bench.report.pytest_gate import time_processes
from bench.speed.step import measure

from ..backends.installed import BACKENDS

pytestmark = [pytest.mark.bench, pytest.mark.slow]
SIZES = {"default-32px": 32, "112px": 112}
BATCH = 16


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_train_step(benchmark, benchmark_processes, backend_name, size_name):
    size = SIZES[size_name]
    spec = {"backend": backend_name, "model": "resnet18", "image_size": size, "strategy": "head-lr-x10",
            "loop": "harness", "batch_size": BATCH, "steps": 15, "warmup": 3, "classes": 5, "lr": 0.01,
            "mode": "graph", "device": "cpu"}
    benchmark.group = f"train step, {size} px: one round is one measuring process"
    results = time_processes(benchmark, lambda: measure(spec, {}, timeout=900), benchmark_processes)
    medians = [r["stats"]["median_ms"] for r in results]
    benchmark.extra_info.update(
        backend=backend_name, batch=BATCH, image_size=size, compile_ms=[r["compile_ms"] for r in results],
        img_per_s=BATCH / (np.median(medians) / 1e3), import_rss_mb=[r["memory"]["import_rss_mb"] for r in results],
        settings=results[0]["environment"]["settings"], versions=results[0]["environment"]["frameworks"])


def test_shared_pipeline_batch(benchmark, tmp_path):
    """Decode + augment one batch of 16 with the shared loader (backend-independent)."""
    from datasets.folder import read_image_folder
    from datasets.loader import BatchLoader
    from datasets.transforms import TrainTransform

    from ..conftest import write_image_folder

    root = write_image_folder(tmp_path / "imgs", per_class=16, size=(64, 48))
    loader = BatchLoader(read_image_folder(root, "train"), TrainTransform(32), BATCH, train=True)
    x, _ = benchmark(lambda: next(iter(loader)))
    assert x.shape == (BATCH, 3, 32, 32)
