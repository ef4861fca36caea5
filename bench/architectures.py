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


# canonical architecture name -> framework -> table
ARCHITECTURES: dict[str, dict[str, ArchTable]] = {
    "resnet18_v2": {"mxnet": _gluon_resnet_v2(18)},
    "resnet50_v2": {"mxnet": _gluon_resnet_v2(50)},
    "resnet18": {"mxnet": _gluon_resnet_v1(18), "mindspore": _mindcv_resnet("resnet18")},
    "resnet50": {"mxnet": _gluon_resnet_v1(50), "mindspore": _mindcv_resnet("resnet50")},
    "densenet121": {"mindspore": _mindcv_densenet121()},
    "mobilenet_v3_small_100": {"mindspore": _mindcv_mobilenet_v3_small()},
}


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
