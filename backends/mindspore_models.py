"""Architectures MindCV lacks, built with the canonical structure.

Cell names follow the canonical (lukemelas ``efficientnet_pytorch``) names, so
``bench/architectures.py`` only renames BatchNorm's gamma/beta/moving_*.
MindSpore's ``pad_mode="same"`` is TensorFlow's "same" (odd pixel after), so no
fixed input size is needed here.
"""
from __future__ import annotations

from mindspore import nn, ops

from bench.architectures import EFFICIENTNET_LITE0, mbconv_blocks


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, pad_mode="same", group=groups, has_bias=False,
                     weight_init="HeUniform")


def _bn(channels: int, eps: float, momentum: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


class MBConv(nn.Cell):
    """Inverted residual without squeeze-excite: [1x1 expand] -> depthwise -> 1x1 project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int,
                 eps: float, momentum: float):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid, eps, momentum)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid, eps, momentum)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout, eps, momentum)
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
    def __init__(self, num_classes: int):
        super().__init__()
        cfg = EFFICIENTNET_LITE0
        eps, momentum = cfg["bn_eps"], cfg["bn_momentum"]
        self._conv_stem = _conv(3, cfg["stem"], 3, 2)
        self._bn0 = _bn(cfg["stem"], eps, momentum)
        blocks = mbconv_blocks(cfg["stem"], cfg["stages"])
        self._blocks = nn.CellList([MBConv(cin, cout, k, s, e, eps, momentum)
                                    for cin, cout, k, s, e in blocks])
        self._conv_head = _conv(blocks[-1][1], cfg["head"], 1)
        self._bn1 = _bn(cfg["head"], eps, momentum)
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


BUILDERS = {"efficientnet_lite0": lambda num_classes, image_size: EfficientNetLite0(num_classes)}
