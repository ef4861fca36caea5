"""pytest-benchmark gates: one ResNet-18 train step per backend.

Run:   pytest tests/benchmarks -m bench --benchmark-autosave
Gate:  pytest tests/benchmarks -m bench --benchmark-compare --benchmark-compare-fail=median:25%

MXNet is parametrised first on purpose: importing the MindSpore backend may set
ONEDNN_MAX_CPU_ISA (on AVX-512 CPUs), which must not leak into MXNet's timing.
"""
import importlib.util

import numpy as np
import pytest

from backends.base import OptimConfig, get_backend
from bench.strategies import make_plan

pytestmark = pytest.mark.bench

BACKENDS = [b for b in ("mxnet", "mindspore") if importlib.util.find_spec(b)]
SIZES = {"default-32px": 32, "112px": 112}
BATCH = 16


@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_train_step(benchmark, backend_name, size_name):
    size = SIZES[size_name]
    backend = get_backend(backend_name)
    model = backend.create_model("resnet18", 5, image_size=size, mode="graph")
    model.configure(make_plan("head-lr-x10"), OptimConfig(lr=0.01, momentum=0.9))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (BATCH, 3, size, size)).astype(np.float32)
    y = (np.arange(BATCH) % 5).astype(np.int32)
    model.train_step(x, y)  # compile step, outside the statistics
    loss, _ = benchmark.pedantic(model.train_step, args=(x, y), rounds=15, warmup_rounds=3, iterations=1)
    benchmark.extra_info.update(
        backend=backend_name, batch=BATCH, image_size=size, loss=loss,
        img_per_s=BATCH / benchmark.stats.stats.median,
        runtime=backend.runtime_settings(), versions=backend.versions())
    assert np.isfinite(loss)


@pytest.mark.parametrize("backend_name", BACKENDS[:1])
def test_shared_pipeline_batch(benchmark, backend_name, tmp_path):
    """Decode + augment one batch of 16 with the shared loader (backend-independent)."""
    from datasets.folder import read_image_folder
    from datasets.loader import BatchLoader
    from datasets.transforms import TrainTransform

    from ..conftest import write_image_folder

    root = write_image_folder(tmp_path / "imgs", per_class=16, size=(64, 48))
    loader = BatchLoader(read_image_folder(root, "train"), TrainTransform(32), BATCH, train=True)
    x, _ = benchmark(lambda: next(iter(loader)))
    assert x.shape == (BATCH, 3, 32, 32)
