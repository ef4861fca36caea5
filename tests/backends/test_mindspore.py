import numpy as np
import pytest

pytest.importorskip("mindspore")
pytest.importorskip("mindcv")

from backends.base import OptimConfig
from backends.registry import get_backend  # noqa: E402
from bench.core.errors import BackendUnavailable  # noqa: E402
from bench.plan.strategies import make_plan  # noqa: E402

from . import protocol_checks as pc  # noqa: E402

ARCH = "resnet18"


@pytest.fixture(scope="module")
def backend():
    return get_backend("mindspore")


def test_old_head_optimizer_moments_are_dropped(backend, tmp_path):
    """MindCV once kept the old head's momentum buffers; they must not reach the new model."""
    import mindspore as ms
    src = backend.create_model(ARCH, 5, image_size=pc.SIZE)
    src.configure(make_plan("full"), OptimConfig(lr=0.01))
    src.train_step(*pc.batch(classes=5))
    path = str(tmp_path / "with_optim.ckpt")
    params = [{"name": p.name, "data": p} for p in src.net.get_parameters()]
    params += [{"name": m.name, "data": m} for m in src.optimizer.moments]
    ms.save_checkpoint(params, path)
    assert any(k.startswith("moments.classifier") for k in ms.load_checkpoint(path))
    dst = backend.create_model(ARCH, 3, image_size=pc.SIZE)
    report = dst.load_weights(path)
    dropped = [d.split(" ")[0] for d in report.dropped]
    assert "moments.classifier.weight" in dropped and "classifier.weight" in dropped
    assert not any(n.startswith("moments.") for n in dst.named_parameters())


@pytest.mark.parametrize("arch", ["mobilenet_v3_small"])
def test_other_architectures_build_and_freeze(backend, arch):
    m = backend.create_model(arch, 4, image_size=pc.SIZE)
    m.configure(make_plan("linear-probe"), OptimConfig(lr=0.01))
    assert m.predict(pc.batch()[0]).shape == (8, 4)
    assert m.param_counts()["trainable"] == 1024 * 4 + 4


def test_absent_devices_are_clear(backend):
    import mindspore as ms
    for dev, target in (("gpu", "GPU"), ("ascend", "Ascend")):
        if ms.hal.is_available(target):
            continue
        with pytest.raises(BackendUnavailable, match=target):
            from backends.mindspore_backend import _set_context
            _set_context(dev, "graph")


def test_native_loader_matches_shared_shapes_and_labels(backend, image_folder):
    from datasets.folder import read_image_folder
    from datasets.loader import BatchLoader
    from datasets.transforms import EvalTransform

    ds = read_image_folder(image_folder, "test")
    native = backend.native_loader(ds, train=False, image_size=8, batch_size=5, seed=0)
    shared = BatchLoader(ds, EvalTransform(8), 5, train=False)
    nb, sb = list(native), list(shared)
    assert [len(y) for _, y in nb] == [len(y) for _, y in sb] == [5, 5, 2]
    for (xn, yn), (xs, ys) in zip(nb, sb):
        assert xn.shape == xs.shape and xn.dtype == np.float32
        np.testing.assert_array_equal(yn, ys)
        assert np.abs(xn - xs).mean() < 0.15  # same images; resize kernels differ slightly
    train = list(backend.native_loader(read_image_folder(image_folder, "train"), train=True,
                                       image_size=8, batch_size=5, seed=0))
    assert len(train) == 2 and train[0][0].shape == (5, 3, 8, 8)


@pytest.mark.parametrize("arch,features", [("resnet50", 2048), ("densenet121", 1024)])
def test_larger_architectures_linear_probe_counts(backend, arch, features):
    m = backend.create_model(arch, 2, image_size=pc.SIZE)
    m.configure(make_plan("linear-probe"), OptimConfig(lr=0.01))
    assert m.param_counts()["trainable"] == features * 2 + 2
    assert m.predict(pc.batch(n=2)[0]).shape == (2, 2)


@pytest.mark.slow
def test_pynative_mode_runs_through_the_cli(image_folder, tmp_path):
    """PyNative needs its own process (MindSpore's mode is per process): run the CLI."""
    import json
    import subprocess
    import sys
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "bench", "run", "--backend", "mindspore", "--mode", "pynative",
                        "--data-dir", str(image_folder), "--pretrained", "none", "--arms", "scratch",
                        "--epochs", "2", "--batch-size", "4", "--image-size", "32", "--out", str(out),
                        "--no-progress"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert rec["status"] == "ok" and rec["config"]["mode"] == "pynative"
    assert rec["environment"]["frameworks"]["mindspore"] == "2.9.0"


def test_cifar_stem(backend):
    m = backend.create_model(ARCH, 3, image_size=pc.SIZE, stem="cifar")
    assert m.named_parameters()["conv1.weight"].shape == (64, 3, 3, 3)
    m.configure(make_plan("full"), OptimConfig(lr=0.01))
    assert np.isfinite(m.train_step(*pc.batch())[0])


def test_mindspore_own_nesterov_flag_is_plain_momentum_on_cpu_and_ours_is_nesterov():
    """MindSpore 2.9 on CPU: ``nn.Momentum(use_nesterov=True)`` takes the plain momentum step (two steps
    from w = 1 with g = 0.5, lr 0.1, m 0.9 end at 0.855, as without the flag), which is why Nesterov
    goes through the backend's ``NesterovMomentum`` (0.7695, PyTorch's and the protocol's value). When
    a MindSpore release fixes the flag, the first assertion says so."""
    import mindspore as ms
    from mindspore import nn

    from backends.mindspore_backend import NesterovMomentum

    def two_steps(make):
        w = ms.Parameter(ms.Tensor(np.array([1.0], np.float32)), name="w")
        opt = make([w])
        for _ in range(2):
            opt((ms.Tensor(np.array([0.5], np.float32)),))
        return float(w.asnumpy()[0])
    assert two_steps(lambda p: nn.Momentum(p, 0.1, 0.9, use_nesterov=True)) == pytest.approx(0.855)
    assert two_steps(lambda p: NesterovMomentum(p, 0.1, 0.9)) == pytest.approx(0.7695)
