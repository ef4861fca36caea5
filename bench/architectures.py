"""Per-architecture tables: where each canonical stage lives in every framework.

Strategies speak in canonical stages (``stem``, ``stage1`` .. ``stage4``, ``head``);
each backend asks this module which of its parameter names belong to which stage.
Adding an architecture or a framework means adding one entry here, nothing else.
Names are the structural parameter paths of each framework (Gluon's
``_collect_params_with_prefix`` keys, MindSpore's ``Parameter.name``).

Each table also maps its framework's names to the *canonical* names of the
suite's weight files (``bench/weights.py``): torchvision's names (``conv1.weight``,
``layer1.0.bn1.running_mean``, ``layer2.0.downsample.0.weight``, ``fc.bias``), the
names most ported checkpoints already use. Converting a framework's weights
into canonical form is a rename, never a reshape: every framework here stores
convolutions as (out, in, kh, kw) and Dense weights as (out, in).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ConfigError

STAGES = ("stem", "stage1", "stage2", "stage3", "stage4", "head")
BACKBONE_STAGES = STAGES[:-1]


@dataclass(frozen=True)
class ArchTable:
    """Stage name -> parameter-name prefixes, for one architecture in one framework."""

    native_name: str  # the framework's own model name
    prefixes: dict[str, tuple[str, ...]]
    # (regex, replacement) applied in order: framework name -> canonical name
    canonical_rules: tuple[tuple[str, str], ...] = field(default=())

    @property
    def head_prefixes(self) -> tuple[str, ...]:
        return self.prefixes["head"]

    def stage_of(self, param_name: str) -> str:
        for stage in STAGES:
            if any(param_name.startswith(p) for p in self.prefixes[stage]):
                return stage
        raise ConfigError(
            f"parameter {param_name!r} of {self.native_name} belongs to no stage; "
            "extend bench/architectures.py"
        )

    def to_canonical(self, param_name: str) -> str:
        for pattern, replacement in self.canonical_rules:
            param_name = re.sub(pattern, replacement, param_name)
        return param_name


# BatchNorm tensors: framework suffix -> canonical suffix
GLUON_BN = ((r"\.gamma$", ".weight"), (r"\.beta$", ".bias"))
MINDSPORE_BN = ((r"\.gamma$", ".weight"), (r"\.beta$", ".bias"),
                (r"\.moving_mean$", ".running_mean"), (r"\.moving_variance$", ".running_var"))


def _gluon_resnet_v1(depth: int) -> ArchTable:
    # BasicBlockV1 body: conv, BN, relu, conv, BN; BottleneckV1 adds relu, conv, BN.
    body = tuple((rf"\.body\.{i}\.", f".{name}.") for i, name in
                 ((0, "conv1"), (1, "bn1"), (3, "conv2"), (4, "bn2"), (6, "conv3"), (7, "bn3")))
    layers = tuple((rf"^features\.{i + 4}\.", f"layer{i + 1}.") for i in range(4))
    return ArchTable(f"resnet{depth}_v1", {
        "stem": ("features.0.", "features.1."),
        "stage1": ("features.4.",), "stage2": ("features.5.",),
        "stage3": ("features.6.",), "stage4": ("features.7.",),
        "head": ("output.",),
    }, ((r"^features\.0\.", "conv1."), (r"^features\.1\.", "bn1."), (r"^output\.", "fc."))
       + layers + body + GLUON_BN)


def _gluon_resnet_v2(depth: int) -> ArchTable:
    # features.0 is the un-learned input BatchNorm, features.9 the final pre-activation BN.
    return ArchTable(f"resnet{depth}_v2", {
        "stem": ("features.0.", "features.1.", "features.2."),
        "stage1": ("features.5.",), "stage2": ("features.6.",),
        "stage3": ("features.7.",), "stage4": ("features.8.", "features.9."),
        "head": ("output.",),
    }, GLUON_BN)


def _mindcv_resnet(name: str) -> ArchTable:
    return ArchTable(name, {
        "stem": ("conv1.", "bn1."),
        "stage1": ("layer1.",), "stage2": ("layer2.",),
        "stage3": ("layer3.",), "stage4": ("layer4.",),
        "head": ("classifier.",),
    }, ((r"^classifier\.", "fc."), (r"\.down_sample\.", ".downsample.")) + MINDSPORE_BN)


def _mindcv_densenet121() -> ArchTable:
    return ArchTable("densenet121", {
        "stem": ("features.conv0.", "features.norm0."),
        "stage1": ("features.denseblock1.", "features.transition1."),
        "stage2": ("features.denseblock2.", "features.transition2."),
        "stage3": ("features.denseblock3.", "features.transition3."),
        "stage4": ("features.denseblock4.", "features.norm5."),
        "head": ("classifier.",),
    }, MINDSPORE_BN)


def _mindcv_mobilenet_v3_small() -> ArchTable:
    # features.0 = stem conv; blocks grouped by output stride; classifier.0 is the
    # 1024-wide pre-logits Dense (part of the backbone), classifier.3 the head.
    return ArchTable("mobilenet_v3_small_100", {
        "stem": ("features.0.",),
        "stage1": ("features.1.",),
        "stage2": ("features.2.", "features.3."),
        "stage3": tuple(f"features.{i}." for i in range(4, 9)),
        "stage4": tuple(f"features.{i}." for i in range(9, 16)) + ("classifier.0.",),
        "head": ("classifier.3.",),
    }, MINDSPORE_BN)


@dataclass(frozen=True)
class MBConvSpec:
    """One stage of MBConv blocks (EfficientNet): the first block strides, the rest don't."""

    kernel: int
    stride: int
    expand: int
    out: int
    repeats: int


# EfficientNet-Lite0 (TF reference): no squeeze-excite, ReLU6, stem/head widths not
# scaled, BatchNorm eps 1e-3, TensorFlow "same" padding, dropout 0.2 before the
# classifier. BatchNorm momentum is 0.9 (running = 0.9 running + 0.1 batch), the
# frameworks' default, not the reference's 0.99 for long ImageNet training: in a
# fine-tune of a few dozen steps 0.99 leaves the running statistics at ImageNet's
# (or at 0/1 from scratch) and eval accuracy at chance, as we measured.
EFFICIENTNET_LITE0 = dict(
    stem=32, head=1280, bn_eps=1e-3, bn_momentum=0.9, dropout=0.2,
    stages=(MBConvSpec(3, 1, 1, 16, 1), MBConvSpec(3, 2, 6, 24, 2), MBConvSpec(5, 2, 6, 40, 2),
            MBConvSpec(3, 2, 6, 80, 3), MBConvSpec(5, 1, 6, 112, 3), MBConvSpec(5, 2, 6, 192, 4),
            MBConvSpec(3, 1, 6, 320, 1)),
)


def mbconv_blocks(stem: int, stages) -> list[tuple[int, int, int, int, int]]:
    """Flatten stages into (in, out, kernel, stride, expand) per block."""
    blocks, cin = [], stem
    for s in stages:
        for r in range(s.repeats):
            blocks.append((cin, s.out, s.kernel, s.stride if r == 0 else 1, s.expand))
            cin = s.out
    return blocks


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) of one spatial axis; the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _efficientnet_lite0(framework: str) -> ArchTable:
    # Canonical names are those of the lukemelas ``efficientnet_pytorch`` state_dict
    # the ImageNet weights ship in; the backends define the model with the same
    # structure. Blocks grouped by output stride: /4 (0-2), /8 (3-4), /16 (5-10), /32.
    blocks = lambda lo, hi: tuple(f"_blocks.{i}." for i in range(lo, hi))  # noqa: E731
    return ArchTable("efficientnet_lite0", {
        "stem": ("_conv_stem.", "_bn0."),
        "stage1": blocks(0, 3), "stage2": blocks(3, 5), "stage3": blocks(5, 11),
        "stage4": blocks(11, 16) + ("_conv_head.", "_bn1."),
        "head": ("_fc.",),
    }, GLUON_BN if framework == "mxnet" else MINDSPORE_BN)


# canonical architecture name -> framework -> table
ARCHITECTURES: dict[str, dict[str, ArchTable]] = {
    "resnet18_v2": {"mxnet": _gluon_resnet_v2(18)},
    "resnet50_v2": {"mxnet": _gluon_resnet_v2(50)},
    "resnet18": {"mxnet": _gluon_resnet_v1(18), "mindspore": _mindcv_resnet("resnet18")},
    "resnet50": {"mxnet": _gluon_resnet_v1(50), "mindspore": _mindcv_resnet("resnet50")},
    "densenet121": {"mindspore": _mindcv_densenet121()},
    "mobilenet_v3_small_100": {"mindspore": _mindcv_mobilenet_v3_small()},
    "efficientnet_lite0": {"mxnet": _efficientnet_lite0("mxnet"),
                           "mindspore": _efficientnet_lite0("mindspore")},
}

# Input normalisation (mean, std of the [0, 1] pixels) an architecture's weights expect.
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INPUT_NORM = {"efficientnet_lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}  # TF-Lite models: [-1, 1]


# Fine-tuning settings an architecture's pretrained weights need, whatever the experiment
# (a CLI option still wins): with batch statistics the ImageNet EfficientNet-Lite0
# misclassifies everything (README, "Real ImageNet weights offline").
FINETUNE_DEFAULTS = {"efficientnet_lite0": {"bn_stats": "frozen"}}


def input_norm(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return INPUT_NORM.get(arch, IMAGENET_NORM)


def arch_table(arch: str, framework: str) -> ArchTable:
    """The stage table of ``arch`` in ``framework``, or a ConfigError listing what exists."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    tables = ARCHITECTURES[arch]
    if framework not in tables:
        have = sorted(a for a, t in ARCHITECTURES.items() if framework in t)
        raise ConfigError(
            f"model {arch!r} is not available on backend {framework!r}; "
            f"that backend has: {', '.join(have)}"
        )
    return tables[framework]


def models_for(framework: str) -> list[str]:
    return sorted(a for a, t in ARCHITECTURES.items() if framework in t)
