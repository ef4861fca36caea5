"""Shared fixtures: tiny image folders written by the tests, the fake backend."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import architectures
from backends import registry

from .fake_backend import FAKE_INFO, FAKE_SPEC

pytest_plugins = ["pytester"]  # tests/bench/report/test_pytest_gate.py runs pytest sessions of its own

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def write_image_folder(root: Path, splits=("train", "test"), classes=("a", "b"), per_class=6,
                       size=(16, 12), seed=0) -> Path:
    """root/split/class/NN.png with class-dependent colour (so a model can learn it)."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for k, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                base_colour = np.array([200 if k == 0 else 40, 100, 40 if k == 0 else 200])
                noise = rng.integers(-30, 30, (size[1], size[0], 3))
                arr = np.clip(base_colour + noise, 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(d / f"{i:02d}.png")
    return root


@pytest.fixture(scope="session", autouse=True)
def no_child_left_behind():
    """The test run leaves no ``bench _exec``/``bench _step`` process alive of its own; a sweep running
    beside the tests (a user's, not started by them) is never touched."""
    from .processes import SESSION, wait_for_none
    os.environ[SESSION] = str(os.getpid())  # inherited by every process the tests start
    yield
    left = wait_for_none("", 15, session_only=True)
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"the tests left bench children running: {left}"


@pytest.fixture(autouse=True)
def private_timing_lock(request, tmp_path_factory, monkeypatch):
    """Tests time nothing they publish: they never wait for (or block) a real sweep's
    machine lock. The benchmark gates (-m bench) keep the real one."""
    if request.node.get_closest_marker("bench") is None:
        monkeypatch.setenv("BENCH_TIMING_LOCK", str(tmp_path_factory.getbasetemp() / "timing.lock"))


@pytest.fixture(autouse=True)
def no_user_environments(tmp_path_factory, monkeypatch):
    """Backends run in the test run's interpreter: a user's per-backend environments (bench env create,
    under ~/.cache/bench/envs) never change which interpreter a test's jobs get; tests that want one
    set BENCH_ENV_ROOT themselves."""
    monkeypatch.setenv("BENCH_ENV_ROOT", str(tmp_path_factory.getbasetemp() / "no-envs"))


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "imgs")


@pytest.fixture
def tiny_transfer(fake_backend, tmp_path, monkeypatch):
    """A tiny suite-pretrain experiment on the fake backend: source has 3 classes, target 2.
    Call it with the number of epochs; it registers ``tiny-transfer`` and returns it."""
    from bench.plan import experiments

    def make(epochs: int = 2):
        source = write_image_folder(tmp_path / "source", classes=("a", "b", "c"))
        target = write_image_folder(tmp_path / "target")
        exp = experiments.Experiment(
            name="tiny-transfer", description="", dataset="folder", pretrained="suite", models={"*": "fake_mlp"},
            strategy="full", common=dict(image_size=8, batch_size=4, epochs=epochs, data_dir=str(target)),
            pretrain=dict(dataset="folder", data_dir=str(source), epochs=epochs, batch_size=4, lr=0.5))
        monkeypatch.setitem(experiments.EXPERIMENTS, "tiny-transfer", exp)
        return exp
    return make


@pytest.fixture
def fake_backend(monkeypatch):
    monkeypatch.setitem(registry.REGISTRY, "fake", FAKE_INFO)
    monkeypatch.setenv("BENCH_BACKENDS", "fake=tests.fake_backend:FakeBackend")  # for child processes
    monkeypatch.setenv("BENCH_ARCHITECTURES", "tests.fake_backend")  # ... and parents of their own
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    monkeypatch.setitem(architectures._REGISTRY, "fake_mlp", FAKE_SPEC)
    return "fake"
