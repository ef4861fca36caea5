"""Identical starting weights across frameworks: canonical files and logit parity.

The same canonical weights and the same input must give the same logits on every
backend (eval mode, within 1e-4 relative to the largest logit). BatchNorm
statistics and affine terms are randomised first, so a mix-up of running mean
and variance, or of gamma and beta, cannot pass unnoticed.
"""
import importlib.util

import numpy as np
import pytest

from backends.base import get_backend
from bench.errors import CheckpointError
from bench.weights import read_canonical, write_canonical

pytestmark = pytest.mark.skipif(
    not (importlib.util.find_spec("mxnet") and importlib.util.find_spec("mindcv")),
    reason="parity needs both the mxnet and the mindspore extras")

BACKENDS = ("mxnet", "mindspore")
RTOL = 1e-4


def random_canonical(path, arch, num_classes=10, size=32, stem="imagenet", seed=0):
    """Canonical weights with He-scaled convs and non-trivial BatchNorm everywhere."""
    src = get_backend("mxnet").create_model(arch, num_classes, image_size=size, stem=stem, seed=seed)
    src.save_weights(str(path))
    _, state = read_canonical(path)
    rng = np.random.default_rng(seed)
    for name, v in state.items():
        if name.endswith("running_var"):
            state[name] = rng.uniform(0.5, 2.0, v.shape)
        elif name.endswith(("running_mean", "bn1.bias", "bn2.bias", "bn3.bias")):
            state[name] = rng.normal(0, 0.1, v.shape)
        elif name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
            state[name] = rng.uniform(0.5, 1.5, v.shape)
    write_canonical(path, arch, state, {"test": "random"})
    return state


def max_rel_diff(a, b):
    return float(np.abs(a - b).max() / np.abs(a).max())


@pytest.mark.parametrize("arch,size,stem", [
    ("resnet18", 224, "imagenet"), ("resnet18", 32, "cifar"), ("resnet50", 64, "imagenet"),
])
def test_same_canonical_weights_give_the_same_logits(arch, size, stem, tmp_path):
    path = tmp_path / f"{arch}.npz"
    random_canonical(path, arch, size=size, stem=stem)
    x = np.random.default_rng(1).normal(0, 1, (2, 3, size, size)).astype(np.float32)
    logits = {}
    for i, name in enumerate(BACKENDS):
        model = get_backend(name).create_model(arch, 10, image_size=size, stem=stem, seed=10 + i)
        report = model.load_weights(str(path))
        assert not report.dropped and not report.missing, (name, report)
        logits[name] = model.predict(x)
    assert np.abs(logits["mxnet"]).max() > 0.1  # not a degenerate all-zero output
    assert max_rel_diff(logits["mxnet"], logits["mindspore"]) < RTOL


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_canonical_names_and_shapes_agree_across_backends(arch, tmp_path):
    names = {}
    for name in BACKENDS:
        path = tmp_path / f"{name}.npz"
        get_backend(name).create_model(arch, 10, image_size=32).save_weights(str(path))
        meta, state = read_canonical(path)
        assert meta["arch"] == arch
        names[name] = {n: v.shape for n, v in state.items()}
    assert names["mxnet"] == names["mindspore"]
    canonical = names["mxnet"]
    for expected in ("conv1.weight", "bn1.running_var", "layer1.0.bn1.weight", "layer2.0.downsample.0.weight",
                     "layer4.1.conv2.weight", "fc.weight", "fc.bias"):  # torchvision's names
        assert expected in canonical
    assert canonical["fc.weight"] == (10, 512 if arch == "resnet18" else 2048)
    assert not any(n.endswith(".bias") and ".conv" in n for n in canonical)  # v1.5: no conv biases


@pytest.mark.parametrize("name", BACKENDS)
def test_canonical_round_trip_is_bit_exact(name, tmp_path):
    backend = get_backend(name)
    a = backend.create_model("resnet18", 4, image_size=32, seed=1)
    a.save_weights(str(tmp_path / "a.npz"))
    b = backend.create_model("resnet18", 4, image_size=32, seed=2)
    b.load_weights(str(tmp_path / "a.npz"))
    pa, pb = a.named_parameters(), b.named_parameters()
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[n], pb[n]) for n in pa)


def test_mindcv_same_padding_max_pool_would_break_parity(tmp_path):
    """The trap the backend fixes: MindCV's own pool pads (0, 1), Gluon and torchvision (1, 1)."""
    from mindspore import nn
    path = tmp_path / "w.npz"
    random_canonical(path, "resnet18", size=64)
    x = np.random.default_rng(2).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)
    ref = get_backend("mxnet").create_model("resnet18", 10, image_size=64)
    ref.load_weights(str(path))
    ms_model = get_backend("mindspore").create_model("resnet18", 10, image_size=64)
    ms_model.load_weights(str(path))
    ms_model.net.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
    assert max_rel_diff(ref.predict(x), ms_model.predict(x)) > 100 * RTOL


def test_gluon_v1_resnet50_refuses_canonical_weights(tmp_path):
    """Gluon's zoo ResNet-50 v1 (stride in the 1x1 conv, conv biases) is not the canonical v1.5."""
    from mxnet.gluon.model_zoo import vision

    from backends.mxnet_backend import GluonModel
    path = tmp_path / "w.npz"
    get_backend("mindspore").create_model("resnet50", 10, image_size=32).save_weights(str(path))
    import mxnet as mx
    net = vision.get_model("resnet50_v1", classes=10)
    net.initialize(mx.init.Xavier())
    v1 = GluonModel(net, "resnet50", mx.cpu(), 32, hybridize=False)
    with pytest.raises(CheckpointError, match="backbone parameters missing"):
        v1.load_weights(str(path))


def test_canonical_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r18.npz"
    get_backend("mxnet").create_model("resnet18", 10, image_size=32).save_weights(str(path))
    with pytest.raises(CheckpointError, match="canonical weights of 'resnet18'"):
        get_backend("mindspore").create_model("resnet50", 10, image_size=32).load_weights(str(path))


@pytest.mark.parametrize("arch", ["resnet18", "efficientnet_lite0"])
def test_strategies_mean_the_same_on_every_backend(arch):
    """Per strategy: the same canonical parameters train, at the same lr and weight decay."""
    from backends.base import OptimConfig
    from bench.architectures import arch_table
    from bench.strategies import ALL_STRATEGIES, make_plan

    for strategy in ALL_STRATEGIES:
        seen = {}
        for name in BACKENDS:
            model = get_backend(name).create_model(arch, 3, image_size=32)
            model.configure(make_plan(strategy), OptimConfig(lr=0.01, weight_decay=1e-4))
            rename = arch_table(arch, name).to_canonical
            lrs = {rename(n): lr for lr, names in model.param_groups().items() for n in names}
            wds = {rename(n): wd for wd, names in model.weight_decay_groups().items() for n in names}
            seen[name] = (lrs, wds, model.param_counts())
        assert seen["mxnet"] == seen["mindspore"], strategy
