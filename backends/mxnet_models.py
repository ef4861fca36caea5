"""Architectures Gluon's model zoo lacks, built with the canonical structure.

Attribute names follow the canonical (lukemelas ``efficientnet_pytorch``) names,
so ``bench/architectures.py`` only renames BatchNorm's gamma/beta.
"""
from __future__ import annotations

from mxnet.gluon import nn

from bench.architectures import EFFICIENTNET_LITE0, mbconv_blocks, same_padding


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


def _bn(eps: float, momentum: float) -> nn.BatchNorm:
    return nn.BatchNorm(epsilon=eps, momentum=momentum)


class MBConv(nn.HybridBlock):
    """Inverted residual without squeeze-excite: [1x1 expand] -> depthwise -> 1x1 project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, in_size: int,
                 eps: float, momentum: float):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2D(mid, 1, use_bias=False, in_channels=cin)
            self._bn0 = _bn(eps, momentum)
        self._depthwise_conv = SameConv2D(mid, kernel, stride, in_size, groups=mid, in_channels=mid)
        self._bn1 = _bn(eps, momentum)
        self._project_conv = nn.Conv2D(cout, 1, use_bias=False, in_channels=mid)
        self._bn2 = _bn(eps, momentum)
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
    def __init__(self, num_classes: int, image_size: int):
        super().__init__()
        cfg = EFFICIENTNET_LITE0
        eps, momentum = cfg["bn_eps"], cfg["bn_momentum"]
        self._conv_stem = SameConv2D(cfg["stem"], 3, 2, image_size, in_channels=3)
        self._bn0 = _bn(eps, momentum)
        self._blocks = nn.HybridSequential()
        size = self._conv_stem.out_size
        for cin, cout, kernel, stride, expand in mbconv_blocks(cfg["stem"], cfg["stages"]):
            block = MBConv(cin, cout, kernel, stride, expand, size, eps, momentum)
            self._blocks.add(block)
            size = block.out_size
        self._conv_head = nn.Conv2D(cfg["head"], 1, use_bias=False, in_channels=cout)
        self._bn1 = _bn(eps, momentum)
        self._dropout = nn.Dropout(cfg["dropout"])
        self._fc = nn.Dense(num_classes, in_units=cfg["head"])

    def hybrid_forward(self, F, x):
        x = F.clip(self._bn0(self._conv_stem(x)), 0, 6)
        x = self._blocks(x)
        x = F.clip(self._bn1(self._conv_head(x)), 0, 6)
        x = F.mean(x, axis=(2, 3))
        return self._fc(self._dropout(x))


BUILDERS = {"efficientnet_lite0": EfficientNetLite0}
