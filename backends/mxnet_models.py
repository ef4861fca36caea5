"""MXNet builders: GluonCV's model zoo, brought into line with the canonical architectures.

GluonCV is what MXNet users fine-tune with. Its ``resnet*_v1b`` already has the
canonical (torchvision v1.5) structure and names. Where a GluonCV model differs
from its canonical architecture, the builder changes it, and only when no zoo
ImageNet weights are loaded (those were trained for GluonCV's own model):

* DenseNet-121 pools with ``AvgPool2D(7)``, right at 224 px only: global pooling here;
* MobileNetV3-small's pre-logits layer is a 1280-wide 1x1 conv without bias:
  a 1024-wide Dense with bias here (torchvision, MindCV), and BatchNorm eps 1e-3.

EfficientNet-Lite0 is in no Gluon zoo and is defined below. Builders are
``f(spec, num_classes, *, image_size, stem, ctx, zoo) -> HybridBlock``.
"""
from __future__ import annotations

import sys

from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from architectures.efficientnet import mbconv_blocks, same_padding

_HIDDEN = object()


def gluoncv():
    """Import GluonCV 0.10.5 without letting it import torch.

    Its ``__init__`` imports torch when installed and raises RuntimeError for
    torch >= 2; it would also load torch (and its thread pools) into every MXNet
    run. While it imports, torch is hidden (``sys.modules["torch"] = None``).
    """
    if "gluoncv" in sys.modules:
        return sys.modules["gluoncv"]
    saved = sys.modules.get("torch", _HIDDEN)
    sys.modules["torch"] = None
    try:
        import gluoncv as module
    finally:
        if saved is _HIDDEN:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
    return module


def replace_child(parent: nn.Block, name: str, block: nn.Block) -> None:
    """Swap a child block for one of another type (Gluon's ``__setattr__`` refuses that)."""
    if name.isdigit():  # a HybridSequential's child
        parent._children[name] = block
        return
    parent._children[name] = block
    object.__setattr__(parent, name, block)


def set_batchnorm(net: nn.Block, eps: float, momentum: float) -> None:
    """Every BatchNorm gets the architecture's eps and momentum (before hybridizing)."""
    for child in net._children.values():
        if isinstance(child, nn.BatchNorm):
            child._kwargs["eps"], child._kwargs["momentum"] = eps, momentum
        set_batchnorm(child, eps, momentum)


def _zoo(name: str, num_classes: int, ctx, zoo: bool):
    get_model = gluoncv().model_zoo.get_model
    return get_model(name, pretrained=True, ctx=ctx) if zoo else get_model(name, classes=num_classes)


def build_resnet(spec, num_classes: int, *, image_size: int, stem: str, ctx, zoo: bool) -> nn.HybridBlock:
    net = _zoo(spec.frameworks["mxnet"].zoo, num_classes, ctx, zoo)
    if stem == "cifar":
        net.conv1 = nn.Conv2D(64, 3, 1, 1, use_bias=False, in_channels=3)
        net.maxpool = nn.MaxPool2D(pool_size=1, strides=1)  # identity
    return net


def build_densenet(spec, num_classes: int, *, image_size: int, stem: str, ctx, zoo: bool) -> nn.HybridBlock:
    net = _zoo(spec.frameworks["mxnet"].zoo, num_classes, ctx, zoo)
    pool = [k for k, b in net.features._children.items() if isinstance(b, nn.AvgPool2D)][-1]
    replace_child(net.features, pool, nn.GlobalAvgPool2D())  # same as AvgPool2D(7) at 224 px
    return net


def build_mobilenet_v3(spec, num_classes: int, *, image_size: int, stem: str, ctx,
                       zoo: bool) -> nn.HybridBlock:
    from architectures.mobilenetv3 import LAST, PRE_LOGITS
    net = _zoo(spec.frameworks["mxnet"].zoo, num_classes, ctx, zoo)
    if not zoo:
        pre_logits = [k for k, b in net.features._children.items() if isinstance(b, nn.Conv2D)][-1]
        replace_child(net.features, pre_logits, nn.Dense(PRE_LOGITS, in_units=LAST))
        replace_child(net, "output", nn.Dense(num_classes, in_units=PRE_LOGITS))
        set_batchnorm(net, spec.bn_eps, spec.bn_momentum)
    return net


def build_gluon_zoo(spec, num_classes: int, *, image_size: int, stem: str, ctx, zoo: bool) -> nn.HybridBlock:
    """A model of MXNet's own Gluon zoo, unchanged (the d2l recipe's resnet18_v2)."""
    name = spec.frameworks["mxnet"].zoo
    return vision.get_model(name, pretrained=True, ctx=ctx) if zoo else vision.get_model(name, classes=num_classes)


# --- EfficientNet-Lite0 ----------------------------------------------------------------

class SameConv2D(nn.Conv2D):
    """Conv2D with TensorFlow "same" padding for a fixed input size (no bias).

    Gluon pads symmetrically only; where "same" is asymmetric (a stride-2 conv on
    an even size pads one more pixel after) the input is zero-padded first.
    """

    def __init__(self, channels: int, kernel: int, stride: int, in_size: int, groups: int = 1,
                 in_channels: int = 0):
        before, after = same_padding(in_size, kernel, stride)
        symmetric = before == after
        super().__init__(channels, kernel, stride, before if symmetric else 0, groups=groups,
                         use_bias=False, in_channels=in_channels)
        self.out_size = -(-in_size // stride)
        self._prepad = None if symmetric else (0, 0, 0, 0, before, after, before, after)

    def hybrid_forward(self, F, x, weight, bias=None):
        if self._prepad:
            x = F.pad(x, mode="constant", pad_width=self._prepad, constant_value=0)
        return super().hybrid_forward(F, x, weight, bias)


class MBConv(nn.HybridBlock):
    """Inverted residual without squeeze-excite: [1x1 expand] -> depthwise -> 1x1 project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, in_size: int,
                 eps: float, momentum: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2D(mid, 1, use_bias=False, in_channels=cin)
            self._bn0 = nn.BatchNorm(epsilon=eps, momentum=momentum)
        self._depthwise_conv = SameConv2D(mid, kernel, stride, in_size, groups=mid, in_channels=mid)
        self._bn1 = nn.BatchNorm(epsilon=eps, momentum=momentum)
        self._project_conv = nn.Conv2D(cout, 1, use_bias=False, in_channels=mid)
        self._bn2 = nn.BatchNorm(epsilon=eps, momentum=momentum)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout
        self.out_size = self._depthwise_conv.out_size

    def hybrid_forward(self, F, x):
        h = x
        if self.expand:
            h = F.clip(self._bn0(self._expand_conv(h)), 0, 6)
        h = F.clip(self._bn1(self._depthwise_conv(h)), 0, 6)
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.HybridBlock):
    def __init__(self, spec, num_classes: int, image_size: int):
        super().__init__()
        cfg, eps, momentum = spec.config, spec.bn_eps, spec.bn_momentum
        self._conv_stem = SameConv2D(cfg["stem"], 3, 2, image_size, in_channels=3)
        self._bn0 = nn.BatchNorm(epsilon=eps, momentum=momentum)
        self._blocks = nn.HybridSequential()
        size = self._conv_stem.out_size
        for cin, cout, kernel, stride, expand in mbconv_blocks(cfg["stem"], cfg["stages"]):
            block = MBConv(cin, cout, kernel, stride, expand, size, eps, momentum)
            self._blocks.add(block)
            size = block.out_size
        self._conv_head = nn.Conv2D(cfg["head"], 1, use_bias=False, in_channels=cout)
        self._bn1 = nn.BatchNorm(epsilon=eps, momentum=momentum)
        self._dropout = nn.Dropout(cfg["dropout"])
        self._fc = nn.Dense(num_classes, in_units=cfg["head"])

    def hybrid_forward(self, F, x):
        x = F.clip(self._bn0(self._conv_stem(x)), 0, 6)
        x = self._blocks(x)
        x = F.clip(self._bn1(self._conv_head(x)), 0, 6)
        x = F.mean(x, axis=(2, 3))
        return self._fc(self._dropout(x))


def build_efficientnet_lite(spec, num_classes: int, *, image_size: int, stem: str, ctx,
                             zoo: bool) -> nn.HybridBlock:
    return EfficientNetLite0(spec, num_classes, image_size)
