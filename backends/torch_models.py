"""Every architecture of the suite in plain ``torch.nn`` (no torchvision CPU build exists here).

Module and parameter names are the canonical ones (torchvision's; lukemelas'
for EfficientNet-Lite0), so the torch backend's rename rules are empty. Structure,
BatchNorm eps and momentum come from the architecture spec (``architectures/``).
Builders are ``f(spec, num_classes, *, image_size, stem) -> nn.Module``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from architectures.efficientnet import mbconv_blocks, same_padding
from architectures.mobilenetv3 import blocks as mobilenet_blocks

# NHWC memory format per architecture family, where bench tune measured it faster on our CPU:
# DenseNet-121 0.66x and MobileNetV3-small 0.76x the NCHW step at 64 px, EfficientNet-Lite
# 0.57-0.85x at 32-112 px (results/tuning.md); ResNets stay NCHW (1.28x slower at 32 px).
CHANNELS_LAST = {"densenet": True, "mobilenet_v3": True, "efficientnet_lite": True}


def _bn(channels: int, spec) -> nn.BatchNorm2d:
    # torch's momentum weighs the *batch*: running = (1 - m) running + m batch
    return nn.BatchNorm2d(channels, eps=spec.bn_eps, momentum=1.0 - spec.bn_momentum)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=bias)


# --- ResNet (torchvision v1.5) -----------------------------------------------------------

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, spec):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride), _bn(planes, spec)
        self.conv2, self.bn2 = _conv(planes, planes, 3), _bn(planes, spec)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, planes, stride, spec)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, spec):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 1), _bn(planes, spec)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), _bn(planes, spec)
        self.conv3, self.bn3 = _conv(planes, planes * 4, 1), _bn(planes * 4, spec)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, planes * 4, stride, spec)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


def _downsample(cin: int, cout: int, stride: int, spec):
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(cin, cout, 1, stride), _bn(cout, spec))


class ResNet(nn.Module):
    def __init__(self, spec, num_classes: int, stem: str):
        super().__init__()
        block = BasicBlock if spec.config["block"] == "basic" else Bottleneck
        if stem == "cifar":
            self.conv1, self.maxpool = _conv(3, 64, 3), nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1, self.relu = _bn(64, spec), nn.ReLU(inplace=True)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), spec.config["layers"])):
            layers = []
            for j in range(n):
                layers.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1, spec))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_resnet(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet") -> nn.Module:
    return ResNet(spec, num_classes, stem)


# --- DenseNet --------------------------------------------------------------------------

class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int, spec):
        super().__init__()
        self.norm1, self.conv1 = _bn(cin, spec), _conv(cin, bn_size * growth, 1)
        self.norm2, self.conv2 = _bn(bn_size * growth, spec), _conv(bn_size * growth, growth, 3)

    def forward(self, x):
        return self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))


class _DenseBlock(nn.ModuleDict):
    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    def __init__(self, spec, num_classes: int):
        super().__init__()
        cfg = spec.config
        growth, n = cfg["growth"], cfg["init"]
        parts = OrderedDict(conv0=nn.Conv2d(3, n, 7, 2, 3, bias=False), norm0=_bn(n, spec),
                            relu0=nn.ReLU(inplace=True), pool0=nn.MaxPool2d(3, 2, 1))
        for b, layers in enumerate(cfg["blocks"]):
            parts[f"denseblock{b + 1}"] = _DenseBlock(
                {f"denselayer{i + 1}": _DenseLayer(n + i * growth, growth, cfg["bn_size"], spec)
                 for i in range(layers)})
            n += layers * growth
            if b < len(cfg["blocks"]) - 1:
                parts[f"transition{b + 1}"] = nn.Sequential(OrderedDict(
                    norm=_bn(n, spec), relu=nn.ReLU(inplace=True), conv=_conv(n, n // 2, 1),
                    pool=nn.AvgPool2d(2, 2)))
                n //= 2
        parts["norm5"] = _bn(n, spec)
        self.features = nn.Sequential(parts)
        self.classifier = nn.Linear(n, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_densenet(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet") -> nn.Module:
    return DenseNet(spec, num_classes)


# --- MobileNetV3-small -----------------------------------------------------------------

def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int, spec, act, groups: int = 1) -> nn.Sequential:
    layers = [_conv(cin, cout, kernel, stride, groups), _bn(cout, spec)]
    return nn.Sequential(*layers, act(inplace=True)) if act else nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * F.hardsigmoid(s)


class InvertedResidual(nn.Module):
    def __init__(self, b: dict, spec):
        super().__init__()
        act = nn.Hardswish if b["act"] == "hswish" else nn.ReLU
        layers = []
        if b["expand"] is not None:
            layers.append(_conv_bn_act(b["cin"], b["exp"], 1, 1, spec, act))
        layers.append(_conv_bn_act(b["exp"], b["exp"], b["kernel"], b["stride"], spec, act, groups=b["exp"]))
        if b["se"] is not None:
            layers.append(SqueezeExcitation(b["exp"], b["se"]))
        layers.append(_conv_bn_act(b["exp"], b["cout"], 1, 1, spec, None))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = b["stride"] == 1 and b["cin"] == b["cout"]

    def forward(self, x):
        out = self.block(x)
        return x + out if self.use_res_connect else out


class MobileNetV3Small(nn.Module):
    def __init__(self, spec, num_classes: int):
        super().__init__()
        from architectures.mobilenetv3 import LAST, PRE_LOGITS, STEM
        specs = mobilenet_blocks()
        self.features = nn.Sequential(
            _conv_bn_act(3, STEM, 3, 2, spec, nn.Hardswish),
            *[InvertedResidual(b, spec) for b in specs],
            _conv_bn_act(specs[-1]["cout"], LAST, 1, 1, spec, nn.Hardswish))
        self.classifier = nn.Sequential(nn.Linear(LAST, PRE_LOGITS), nn.Hardswish(inplace=True),
                                        nn.Dropout(spec.config["dropout"]), nn.Linear(PRE_LOGITS, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def build_mobilenet_v3(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet") -> nn.Module:
    return MobileNetV3Small(spec, num_classes)


# --- EfficientNet-Lite0 ----------------------------------------------------------------

class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding, computed from the input size (odd pixel after)."""

    def forward(self, x):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_padding(x.shape[-2], kh, sh)
        left, right = same_padding(x.shape[-1], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite: [1x1 expand] -> depthwise -> 1x1 project."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, spec):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv, self._bn0 = nn.Conv2d(cin, mid, 1, bias=False), _bn(mid, spec)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid, spec)
        self._project_conv, self._bn2 = nn.Conv2d(mid, cout, 1, bias=False), _bn(cout, spec)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    def __init__(self, spec, num_classes: int):
        super().__init__()
        cfg = spec.config
        self._conv_stem = SameConv2d(3, cfg["stem"], 3, 2, bias=False)
        self._bn0 = _bn(cfg["stem"], spec)
        blocks = mbconv_blocks(cfg["stem"], cfg["stages"])
        self._blocks = nn.ModuleList([MBConv(cin, cout, k, s, e, spec) for cin, cout, k, s, e in blocks])
        self._conv_head = nn.Conv2d(blocks[-1][1], cfg["head"], 1, bias=False)
        self._bn1 = _bn(cfg["head"], spec)
        self._dropout = nn.Dropout(cfg["dropout"])
        self._fc = nn.Linear(cfg["head"], num_classes)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(x.mean((2, 3))))


def build_efficientnet_lite(spec, num_classes: int, *, image_size: int = 224,
                             stem: str = "imagenet") -> nn.Module:
    return EfficientNetLite0(spec, num_classes)
