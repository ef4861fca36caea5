"""PyTorch-specific behaviour: devices, optimizer read-back, frozen BatchNorm stays in eval mode."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.base import OptimConfig
from backends.registry import get_backend  # noqa: E402
from bench.core.errors import BackendUnavailable  # noqa: E402
from bench.plan.strategies import make_plan  # noqa: E402

from . import protocol_checks as pc  # noqa: E402


@pytest.fixture(scope="module")
def backend():
    return get_backend("torch")


def test_absent_devices_are_clear(backend):
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="CUDA"):
            backend.create_model("resnet18", 3, device="gpu")
    with pytest.raises(BackendUnavailable, match="ascend"):
        backend.create_model("resnet18", 3, device="ascend")


def test_zoo_weights_offline_say_what_works_instead(backend, monkeypatch):
    """--pretrained zoo on PyTorch downloads torchvision's file through torch.hub; offline, one
    clear error that names the file and the local-copy alternative."""
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(BackendUnavailable, match=r"resnet18-.*\.pth could not be downloaded.*--pretrained PATH"):
        backend.create_model("resnet18", 3, pretrained="zoo")


def test_frozen_stage_batchnorm_stays_in_eval_mode_across_predict(backend):
    m = backend.create_model("resnet18", 3, image_size=pc.SIZE)
    m.configure(make_plan("freeze-2"), OptimConfig(lr=0.01))
    x, y = pc.batch()
    m.train_step(x, y)
    m.predict(x)      # switches the model to eval ...
    m.train_step(x, y)  # ... and back: frozen stages must stay in eval mode
    assert not m.net.bn1.training and not m.net.layer1[0].bn1.training and m.net.layer3[0].bn1.training


def test_optimizer_groups_are_read_back(backend):
    m = backend.create_model("resnet18", 3, image_size=pc.SIZE)
    m.configure(make_plan("layerwise"), OptimConfig(lr=1.0, weight_decay=5e-4))
    lrs = {float(lr) for lr in m.param_groups()}
    assert lrs == {1.0, 1.05, 1.1, 1.15, 1.2}
    assert list(m.weight_decay_groups()) == ["0.0005"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_train_step_and_record(tmp_path, image_folder):
    """On a CUDA machine: the default experiment's machinery on the GPU, synchronised, GPU named."""
    from bench.plan.experiments import get_experiment
    from bench.execute.runner import execute
    cfg = get_experiment("folder").arm_config("torch", "scratch", "scratch", model="resnet18",
                                              data_dir=str(image_folder), image_size=32, epochs=2, batch_size=4,
                                              device="gpu", scratch_init="shared")
    rec = execute(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    assert rec["status"] == "ok", rec["error"]
    assert rec["environment"]["frameworks"]["gpu"] == torch.cuda.get_device_name(0)
    assert np.isfinite(rec["curve"][-1]["train_loss"])
