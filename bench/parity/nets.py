"""The canonical architectures as NumPy layer lists (``bench.parity.layers``), from the architecture
spec: structure from ``spec.config`` (or the family's block table), names canonical, BatchNorm eps
and momentum the spec's, BatchNorm statistics frozen where the plan freezes them. Dropout is left
out: each framework draws its own masks, so the parity protocol runs without it on every side."""
from __future__ import annotations

from bench.core.errors import ConfigError

from .layers import (Act, BatchNorm2d, Conv2d, GlobalPool, Linear, MaxPool, Residual, Sequence,
                     SqueezeExcite)


class Builder:
    def __init__(self, spec, plan, params: dict, grads: dict):
        self.spec, self.plan, self.p, self.g = spec, plan, params, grads

    def conv(self, name: str, stride: int = 1, pad: int | None = None, depthwise: bool = False) -> Conv2d:
        return Conv2d(self.p, self.g, name, stride, pad, depthwise)

    def bn(self, name: str) -> BatchNorm2d:
        stage = self.spec.stage_of_canonical(f"{name}.weight")
        return BatchNorm2d(self.p, self.g, name, self.spec.bn_eps, self.spec.bn_momentum, self.plan.bn_frozen(stage))


def _resnet(b: Builder, stem: str) -> Sequence:
    cfg = b.spec.config
    if stem == "cifar":
        layers = [b.conv("conv1", 1, 1), b.bn("bn1"), Act("relu")]
    else:
        layers = [b.conv("conv1", 2, 3), b.bn("bn1"), Act("relu"), MaxPool()]
    cin, bottleneck = 64, cfg["block"] != "basic"
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), cfg["layers"])):
        for j in range(n):
            stride, name = (2 if (j == 0 and i > 0) else 1), f"layer{i + 1}.{j}"
            cout = planes * (4 if bottleneck else 1)
            if bottleneck:
                body = [b.conv(f"{name}.conv1"), b.bn(f"{name}.bn1"), Act("relu"), b.conv(f"{name}.conv2", stride),
                        b.bn(f"{name}.bn2"), Act("relu"), b.conv(f"{name}.conv3"), b.bn(f"{name}.bn3")]
            else:
                body = [b.conv(f"{name}.conv1", stride), b.bn(f"{name}.bn1"), Act("relu"), b.conv(f"{name}.conv2"),
                        b.bn(f"{name}.bn2")]
            shortcut = (Sequence([b.conv(f"{name}.downsample.0", stride, 0), b.bn(f"{name}.downsample.1")])
                        if stride != 1 or cin != cout else None)
            layers.append(Residual(Sequence(body), shortcut, Act("relu")))
            cin = cout
    return Sequence(layers + [GlobalPool(), Linear(b.p, b.g, "fc")])


def _conv_bn(b: Builder, name: str, stride: int = 1, act: str | None = None, depthwise: bool = False) -> list:
    return [b.conv(f"{name}.0", stride, depthwise=depthwise), b.bn(f"{name}.1")] + ([Act(act)] if act else [])


def _mobilenet_v3(b: Builder, stem: str) -> Sequence:
    from architectures.mobilenetv3 import blocks
    layers = _conv_bn(b, "features.0", 2, "hswish")
    for i, blk in enumerate(blocks()):
        name = f"features.{1 + i}.block"
        body = []
        if blk["expand"] is not None:
            body += _conv_bn(b, f"{name}.{blk['expand']}", 1, blk["act"])
        body += _conv_bn(b, f"{name}.{blk['dw']}", blk["stride"], blk["act"], depthwise=True)
        if blk["se"] is not None:
            body.append(SqueezeExcite(b.p, b.g, f"{name}.{blk['se_index']}"))
        body += _conv_bn(b, f"{name}.{blk['project']}")
        residual = blk["stride"] == 1 and blk["cin"] == blk["cout"]
        layers.append(Residual(Sequence(body)) if residual else Sequence(body))
    layers += _conv_bn(b, "features.12", 1, "hswish")
    return Sequence(layers + [GlobalPool(), Linear(b.p, b.g, "classifier.0"), Act("hswish"),
                              Linear(b.p, b.g, "classifier.3")])


FAMILIES = {"resnet": _resnet, "mobilenet_v3": _mobilenet_v3}


def build(spec, plan, params: dict, grads: dict, stem: str = "imagenet") -> Sequence:
    """The NumPy network of ``spec`` over ``params`` (canonical name -> float64 array)."""
    if spec.family not in FAMILIES:
        raise ConfigError(f"the NumPy parity reference has no {spec.name} ({spec.family}); it defines: "
                          f"{', '.join(FAMILIES)}")
    return FAMILIES[spec.family](Builder(spec, plan, params, grads), stem)
