"""Identical starting weights across frameworks: round trips and the traps the builders fix.

Logit parity of every architecture on every backend is in test_architectures.py;
here: canonical files round-trip bit-exactly, a file of another architecture is
refused, and each zoo difference the builders correct would break parity if left.
"""
import importlib.util

import numpy as np
import pytest

from backends.registry import get_backend
from bench.core.errors import CheckpointError

from .installed import BACKENDS, BUILDS
from .test_architectures import RTOL, max_rel_diff, random_canonical

needs = lambda *names: pytest.mark.skipif(not all(n in BACKENDS for n in names),  # noqa: E731
                                          reason=f"needs {', '.join(names)}")


@pytest.mark.parametrize("name", BACKENDS)
def test_canonical_round_trip_is_bit_exact(name, tmp_path):
    backend = get_backend(name)
    a = backend.create_model("resnet18", 4, image_size=32, seed=1)
    a.save_weights(str(tmp_path / "a.npz"))
    b = backend.create_model("resnet18", 4, image_size=32, seed=2)
    b.load_weights(str(tmp_path / "a.npz"))
    pa, pb = a.named_parameters(), b.named_parameters()
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[n], pb[n]) for n in pa)


@pytest.mark.parametrize("name", BACKENDS)
def test_canonical_file_of_another_architecture_is_refused(name, tmp_path):
    built = [a for a, b in BUILDS if b == name]
    if len(built) < 2:
        pytest.skip(f"{name} builds one architecture only")
    path = tmp_path / f"{built[0]}.npz"
    get_backend(name).create_model(built[0], 10, image_size=32).save_weights(str(path))
    with pytest.raises(CheckpointError, match=f"canonical weights of '{built[0]}'"):
        get_backend(name).create_model(built[1], 10, image_size=32).load_weights(str(path))


@needs("mxnet", "mindspore")
def test_mindcv_same_padding_max_pool_would_break_parity(tmp_path):
    """MindCV's ResNet pool pads (0, 1) on even inputs, Gluon and torchvision (1, 1)."""
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


@needs("mxnet", "mindspore")
def test_mindcv_same_padding_depthwise_would_break_parity(tmp_path):
    """MindCV's MobileNetV3 pads strided depthwise convs TF-"same" (0, 1); the canonical model (1, 1)."""
    from mindcv.models import create_model

    from backends.mindspore_backend import MindSporeModel
    path = tmp_path / "w.npz"
    random_canonical(path, "mobilenet_v3_small", size=64)
    x = np.random.default_rng(2).normal(0, 1, (2, 3, 64, 64)).astype(np.float32)
    ref = get_backend("mxnet").create_model("mobilenet_v3_small", 10, image_size=64)
    ref.load_weights(str(path))
    from mindspore import nn

    from architectures import get_spec
    from backends.mindspore_models import replace_cells
    net = create_model("mobilenet_v3_small_100", num_classes=10)
    spec = get_spec("mobilenet_v3_small")  # the builder's BatchNorm eps, not its padding fix
    replace_cells(net, lambda c: isinstance(c, nn.BatchNorm2d),
                  lambda c: nn.BatchNorm2d(c.num_features, eps=spec.bn_eps, momentum=spec.bn_momentum))
    raw = MindSporeModel(net, "mobilenet_v3_small", "graph")
    raw.load_weights(str(path))  # same names and shapes: it loads, and computes something else
    fixed = get_backend("mindspore").create_model("mobilenet_v3_small", 10, image_size=64)
    fixed.load_weights(str(path))
    assert max_rel_diff(ref.predict(x), fixed.predict(x)) < RTOL
    assert max_rel_diff(ref.predict(x), raw.predict(x)) > 3 * RTOL


@needs("mxnet")
def test_gluoncv_zoo_mobilenet_is_not_the_canonical_one(tmp_path):
    """GluonCV's own MobileNetV3-small has a 1280-wide pre-logits conv without bias: canonical
    weights (1024 with bias, torchvision's) are refused by it, not silently half-loaded."""
    import mxnet as mx

    from backends.mxnet_backend import GluonModel
    from backends.mxnet_models import gluoncv
    path = tmp_path / "w.npz"
    get_backend("mxnet").create_model("mobilenet_v3_small", 10, image_size=32).save_weights(str(path))
    net = gluoncv().model_zoo.get_model("mobilenetv3_small", classes=10)
    net.initialize(mx.init.Xavier())
    zoo = GluonModel(net, "mobilenet_v3_small", mx.cpu(), 32, hybridize=False)
    with pytest.raises(CheckpointError, match="different architecture|backbone parameters missing"):
        zoo.load_weights(str(path))


@pytest.mark.skipif(not importlib.util.find_spec("gluoncv"), reason="needs gluoncv")
def test_gluoncv_imports_without_torch():
    """GluonCV 0.10.5 refuses torch >= 2 at import and would load torch into MXNet runs."""
    import subprocess
    import sys
    code = ("import sys; from backends.mxnet_models import gluoncv; gluoncv(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-800:]
    assert out.stdout.strip().splitlines()[-1] == "False"
