"""MindSpore builders: MindCV's models, brought into line with the canonical architectures.

Where a MindCV model differs from its canonical architecture, the builder changes
it, and only when no zoo ImageNet weights are loaded (those were trained for
MindCV's own model):

* ResNets max-pool with ``pad_mode="same"``, i.e. padding (0, 1) on even inputs;
  torchvision and Gluon pad (1, 1): a symmetric pool here (logits differed by ~1e-1);
* MobileNetV3's strided depthwise convs pad TF-"same" (0, 1) too: symmetric here,
  and BatchNorm eps 1e-3 (torchvision's).

EfficientNet-Lite0 is in no zoo and is defined below (``pad_mode="same"`` *is*
TensorFlow's "same", so no input size is needed). Builders are
``f(spec, num_classes, *, image_size, stem, zoo) -> nn.Cell``.
"""
from __future__ import annotations

import math

from mindspore import nn, ops
from mindspore.common.initializer import Normal

from architectures.efficientnet import mbconv_blocks


def _create(spec, num_classes: int, zoo: bool) -> nn.Cell:
    from mindcv.models import create_model
    name = spec.frameworks["mindspore"].zoo
    return create_model(name, pretrained=True) if zoo else create_model(name, num_classes=num_classes)


def replace_cells(net: nn.Cell, match, make) -> int:
    """Replace every sub-cell for which ``match(cell)`` holds by ``make(cell)``; returns the count."""
    count = 0
    for name, child in list(net.name_cells().items()):
        if match(child):
            new = make(child)
            if isinstance(net, (nn.SequentialCell, nn.CellList)):
                net[int(name)] = new
            else:
                setattr(net, name, new)
            count += 1
        else:
            count += replace_cells(child, match, make)
    return count


class SeededDropout(nn.Cell):
    """Inverted dropout (``nn.Dropout``'s meaning: zero with probability ``p``, scale the rest by
    1/(1-p), identity in eval mode) whose masks reproduce for a fixed seed.

    MindSpore 2.9's CPU ``ops.Dropout`` (behind ``nn.Dropout``) does not: with one seed, two
    processes draw the same masks for a few calls and then different ones (measured; in the
    one-thread pool and with ``mindspore.set_deterministic(True)`` too), so a seeded run did not
    reproduce. ``ops.UniformReal`` with explicit seeds does; the mask is drawn from it."""

    def __init__(self, p: float, seed: int, seed2: int):
        super().__init__()
        self.p = float(p)
        self.uniform = ops.UniformReal(seed=seed, seed2=seed2)

    def construct(self, x):
        if not self.training or self.p == 0:
            return x
        keep = (self.uniform(x.shape) >= self.p).astype(x.dtype)
        return x * keep / (1.0 - self.p)


def seed_dropouts(net: nn.Cell, seed: int) -> int:
    """Replace every ``nn.Dropout`` of ``net`` by a :class:`SeededDropout` drawing from ``seed`` (the
    run's) and its own index; returns the count."""
    index = iter(range(1, 1 << 30))
    return replace_cells(net, lambda c: isinstance(c, nn.Dropout),
                         lambda c: SeededDropout(c.p if c.p is not None else 1.0 - c.keep_prob, seed + 1, next(index)))


def build_resnet(spec, num_classes: int, *, image_size: int, stem: str, zoo: bool) -> nn.Cell:
    net = _create(spec, num_classes, zoo)
    if not zoo:
        net.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
    if stem == "cifar":
        net.conv1 = nn.Conv2d(3, 64, 3, stride=1, pad_mode="pad", padding=1, weight_init="HeNormal")
        net.max_pool = nn.Identity()
    return net


def build_densenet(spec, num_classes: int, *, image_size: int, stem: str, zoo: bool) -> nn.Cell:
    return _create(spec, num_classes, zoo)


def _symmetric_depthwise(conv: nn.Conv2d) -> nn.Conv2d:
    k = conv.kernel_size[0]
    return nn.Conv2d(conv.in_channels, conv.out_channels, k, conv.stride, pad_mode="pad",
                     padding=(k - 1) // 2, group=conv.group, has_bias=False,
                     weight_init=Normal(sigma=math.sqrt(2.0 / (k * k * conv.out_channels))))


def build_mobilenet_v3(spec, num_classes: int, *, image_size: int, stem: str, zoo: bool) -> nn.Cell:
    net = _create(spec, num_classes, zoo)
    if not zoo:
        replace_cells(net, lambda c: isinstance(c, nn.Conv2d) and c.pad_mode == "same" and c.group > 1
                      and c.stride[0] > 1, _symmetric_depthwise)
        replace_cells(net, lambda c: isinstance(c, nn.BatchNorm2d),
                      lambda c: nn.BatchNorm2d(c.num_features, eps=spec.bn_eps, momentum=spec.bn_momentum))
    return net


# --- EfficientNet-Lite0 ----------------------------------------------------------------

def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, pad_mode="same", group=groups, has_bias=False,
                     weight_init="HeUniform")


def _bn(channels: int, spec) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=spec.bn_eps, momentum=spec.bn_momentum)


class MBConv(nn.Cell):
    """Inverted residual without squeeze-excite: [1x1 expand] -> depthwise -> 1x1 project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, spec):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid, spec)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid, spec)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout, spec)
        self.relu6 = nn.ReLU6()
        self.skip = stride == 1 and cin == cout

    def construct(self, x):
        h = x
        if self.expand:
            h = self.relu6(self._bn0(self._expand_conv(h)))
        h = self.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        if self.skip:
            h = h + x
        return h


class EfficientNetLite0(nn.Cell):
    def __init__(self, spec, num_classes: int):
        super().__init__()
        cfg = spec.config
        self._conv_stem = _conv(3, cfg["stem"], 3, 2)
        self._bn0 = _bn(cfg["stem"], spec)
        blocks = mbconv_blocks(cfg["stem"], cfg["stages"])
        self._blocks = nn.CellList([MBConv(cin, cout, k, s, e, spec) for cin, cout, k, s, e in blocks])
        self._conv_head = _conv(blocks[-1][1], cfg["head"], 1)
        self._bn1 = _bn(cfg["head"], spec)
        self.relu6 = nn.ReLU6()
        self._dropout = nn.Dropout(p=cfg["dropout"])
        self._fc = nn.Dense(cfg["head"], num_classes)

    def construct(self, x):
        x = self.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.relu6(self._bn1(self._conv_head(x)))
        x = ops.mean(x, (2, 3))
        return self._fc(self._dropout(x))


def build_efficientnet_lite(spec, num_classes: int, *, image_size: int, stem: str, zoo: bool) -> nn.Cell:
    return EfficientNetLite0(spec, num_classes)
