"""pytest-benchmark gates: one ResNet-18 train step per backend, each in its own process.

Run:   pytest tests/benchmarks -m bench --benchmark-autosave

Do not gate on ``--benchmark-compare-fail``: each benchmark is one process, and processes here
differ in speed by more than the regressions worth catching. Gate with ``bench gate`` over
several processes a side (docs/site-and-gates.md, "Regression gates that know the noise").

Each backend's step is timed in a child process with that backend's own runtime
settings (``bench.speed.overhead.measure_overhead``): importing MindSpore into this process would
set OMP_NUM_THREADS=1 and the oneDNN ISA cap for every backend timed after it.
The shared-pipeline benchmark needs no framework and runs here.
"""
import numpy as np
import pytest

from bench.speed.overhead import measure

from ..backends.installed import BACKENDS
from .conftest import replay

pytestmark = [pytest.mark.bench, pytest.mark.slow]
SIZES = {"default-32px": 32, "112px": 112}
BATCH = 16


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_train_step(benchmark, backend_name, size_name):
    size = SIZES[size_name]
    spec = {"backend": backend_name, "model": "resnet18", "image_size": size, "strategy": "head-lr-x10",
            "loop": "harness", "batch_size": BATCH, "steps": 15, "warmup": 3, "classes": 5, "lr": 0.01,
            "mode": "graph", "device": "cpu"}
    result = measure(spec, {}, timeout=900)
    assert "error" not in result, result.get("error")
    replay(benchmark, result["steps_ms"])
    benchmark.extra_info.update(
        backend=backend_name, batch=BATCH, image_size=size, compile_ms=result["compile_ms"],
        img_per_s=BATCH / (np.median(result["steps_ms"]) / 1e3), contention=result["contention"],
        settings=result["environment"]["settings"], versions=result["environment"]["frameworks"])
    assert not result["contention"].get("busy"), "timed while other processes used the CPU"


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
