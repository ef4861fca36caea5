"""Update parity, asserted: K steps of the all-elements recipe on every backend, each step's update
within ``TOLERANCE`` of the NumPy reference (``bench/parity``), on ResNet-18 and MobileNetV3-small;
and the check's twins, which plant one wrong translation each and must fail."""
import numpy as np
import pytest

from backends.registry import get_backend
from bench.parity.check import TOLERANCE, run_backend_steps, worst
from bench.plan.config import RunConfig

from .installed import BACKENDS, building
from .test_architectures import random_canonical

# Frozen stem (its BatchNorm statistics fixed), per-stage multipliers, Nesterov, linear warm-up over
# the first epoch into a cosine decay, label smoothing, no decay on biases and BatchNorm: 3 epochs of
# 2 steps, so the 6 steps cross the end of the warm-up.
ALL_ELEMENTS = dict(strategy="freeze-1+layerwise", optimizer="momentum", lr=0.01, momentum=0.9, weight_decay=5e-3,
                    nesterov=True, schedule="cosine", lr_warmup_epochs=1, lr_warmup_factor=0.1, min_lr=1e-4,
                    label_smoothing=0.1, decay_filter="no-bias-bn", epochs=3, batch_size=4, image_size=32)
ARCHS = ("resnet18", "mobilenet_v3_small")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    out = {}
    for arch in ARCHS:
        out[arch] = folder / f"{arch}.npz"
        random_canonical(out[arch], arch, num_classes=5, size=32, seed=3)
    return out


def _run(backend, arch, weights, **change):
    return run_backend_steps(RunConfig(backend=backend, model=arch, **(ALL_ELEMENTS | change)), 2, str(weights[arch]))


@pytest.mark.parametrize("arch", ["resnet18", pytest.param("mobilenet_v3_small", marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_step_updates_as_the_numpy_reference(backend, arch, weights):
    if backend not in building(arch):
        pytest.skip(f"{backend} does not build {arch}")
    result = _run(backend, arch, weights)
    verdict = worst(result)
    assert verdict["ok"], verdict
    assert len(result["steps"]) == 6
    for row in result["steps"]:  # the lr the framework applied is the schedule's, per stage
        assert row["lr"].keys() == row["protocol_lr"].keys() and "stem" not in row["lr"]
        for stage, lr in row["lr"].items():
            assert lr == pytest.approx(row["protocol_lr"][stage], rel=1e-6), (row["step"], stage)
        assert abs(row["loss"] - row["ref_loss"]) < 1e-4 * max(1.0, abs(row["ref_loss"]))
    assert result["steps"][0]["lr"]["head"] == pytest.approx(0.01 * 0.1 * 1.2)  # warm-up's first step
    for row in result["steps"]:  # the frozen stem's BatchNorm statistics never move
        assert row["running_stats"]["stem"]["error"] == 0.0


def _needs(backend):
    if backend not in BACKENDS:
        pytest.skip(f"needs {backend}")


def test_can_fail_gluon_momentum_form_under_a_changing_lr(weights, monkeypatch):
    """MXNet's stock ``nag`` (the lr inside its buffer) in place of the protocol's form: right while
    the lr is constant, wrong as soon as the warm-up changes it."""
    _needs("mxnet")
    from mxnet import gluon

    import backends.mxnet_backend as mb
    monkeypatch.setattr(mb, "make_trainer", lambda params, o: gluon.Trainer(
        params, "nag", {"learning_rate": o.lr, "wd": o.weight_decay, "momentum": o.momentum}))
    result = _run("mxnet", "resnet18", weights)
    assert result["steps"][0]["stages"]["head"]["error"] <= TOLERANCE  # the first step is the same
    assert worst(result)["error"] > 5 * TOLERANCE


def test_can_fail_decay_on_batchnorm(weights, monkeypatch):
    """PyTorch with weight decay on every tensor while the recipe says no-bias-bn."""
    _needs("torch")
    import backends.torch_backend as tb
    real = tb.optimizer_groups
    monkeypatch.setattr(tb, "optimizer_groups", lambda pp, trainable, o: [
        dict(g, weight_decay=o.weight_decay) for g in real(pp, trainable, o)])
    verdict = worst(_run("torch", "resnet18", weights, weight_decay=5e-2))
    assert not verdict["ok"] and verdict["tensor"].split(".")[-1] in ("weight", "bias"), verdict


def test_can_fail_mindspore_own_nesterov_flag(weights, monkeypatch):
    """MindSpore 2.9's ``nn.Momentum(use_nesterov=True)`` on CPU: the update is plain momentum's."""
    _needs("mindspore")
    from mindspore import nn

    import backends.mindspore_backend as msb
    monkeypatch.setattr(msb, "make_optimizer", lambda groups, o, loss_scale=1.0: nn.Momentum(
        groups, learning_rate=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, use_nesterov=True))
    verdict = worst(_run("mindspore", "resnet18", weights))
    assert verdict["error"] > 5 * TOLERANCE, verdict


def test_the_reference_is_pytorch_in_float64():
    """The NumPy reference against PyTorch's own SGD in float64 (Nesterov, weight decay, label
    smoothing), from PyTorch's initialisation: equal to 1e-8 after 6 free-running steps (measured
    1e-13: the reference's formulas, not their fp32 shadow)."""
    _needs("torch")
    import torch
    import torch.nn.functional as F

    from architectures import get_spec
    from backends.base import OptimConfig
    from bench.parity.check import fixed_batches
    from bench.parity.reference import RUNNING, ReferenceTrainer
    from bench.plan.strategies import make_plan
    model = get_backend("torch").create_model("resnet18", 5, image_size=32, seed=3, stem="cifar")
    net = model.net.double().train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-3, nesterov=True)
    start = {n: v.detach().numpy().copy() for n, v in list(net.named_parameters()) + list(net.named_buffers())
             if not n.endswith("num_batches_tracked")}
    ref = ReferenceTrainer(get_spec("resnet18"), make_plan("full"),
                           OptimConfig("momentum", 0.01, 0.9, 5e-3, nesterov=True, label_smoothing=0.1), start, "cifar")
    for x, y in fixed_batches(0, 6, 4, 32, 5):
        loss = F.cross_entropy(net(torch.from_numpy(x).double()), torch.from_numpy(y).long(), label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert ref.step(x, y) == pytest.approx(loss.item(), rel=1e-9)
    for n, p in net.named_parameters():
        assert np.allclose(p.detach().numpy(), ref.params[n], rtol=0, atol=1e-8), n
    assert all(np.allclose(b.numpy(), ref.params[n], atol=1e-8) for n, b in net.named_buffers() if n.endswith(RUNNING))
