"""MobileNetV3-small (the MindCV custom-dataset guide: FGVC-Aircraft). Canonical: torchvision's.

torchvision's structure and names: ``features.0`` stem (conv, BN, hard-swish),
``features.1``..``features.11`` inverted residuals (``block.<k>``: [expand], depthwise,
[squeeze-excite ``fc1``/``fc2``], project), ``features.12`` 1x1 conv to 576, global
pool, ``classifier.0`` Dense 576 -> 1024 (with bias), hard-swish, dropout,
``classifier.3`` the head. BatchNorm eps 1e-3 (torchvision's). Each framework's
model differs in details the builders bring into line (see backends/*_models.py):
MindCV pads strided depthwise convs TF-"same" (0, 1); GluonCV's pre-logits layer
is a 1280-wide 1x1 conv without bias.
"""
from __future__ import annotations

from . import GLUON_BN, MINDSPORE_BN, ArchSpec, DownloadedWeights, FrameworkNames, Recipe, register

# kernel, expanded channels, out channels, squeeze-excite, activation, stride
BLOCKS = ((3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
          (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
          (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
          (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1))
STEM, LAST, PRE_LOGITS = 16, 576, 1024


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's / MindCV's channel rounding (never more than 10% down)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def blocks() -> list[dict]:
    """Per block: in/exp/out channels, kernel, stride, activation, SE width, and the
    torchvision indices of its parts inside ``block`` (None where absent)."""
    out, cin = [], STEM
    for k, exp, cout, se, act, stride in BLOCKS:
        expand = exp != cin
        dw = 1 if expand else 0
        out.append(dict(cin=cin, exp=exp, cout=cout, kernel=k, stride=stride, act=act,
                        se=make_divisible(exp // 4) if se else None,
                        expand=0 if expand else None, dw=dw, se_index=dw + 1 if se else None,
                        project=dw + 1 + (1 if se else 0)))
        cin = cout
    return out


def _mindcv_rules() -> tuple[tuple[str, str], ...]:
    # MindCV: features.0/1 stem conv/BN, features.3.. bottlenecks as flat ``layers.<j>``
    # lists ([conv, bn, act] per conv, the SE cell in between), features.14/15 last conv/BN.
    rules = [(r"^features\.0\.", "features.0.0."), (r"^features\.1\.", "features.0.1."),
             (r"^features\.14\.", "features.12.0."), (r"^features\.15\.", "features.12.1.")]
    for i, b in enumerate(blocks()):
        flat, j = [], 0
        for part in ("expand", "dw", "se_index", "project"):
            if b[part] is None:
                continue
            if part == "se_index":
                flat.append((j, None, b[part]))
                j += 1
            else:
                flat += [(j, 0, b[part]), (j + 1, 1, b[part])]
                j += 2 if part == "project" else 3
        for j, sub, k in flat:
            src = rf"^features\.{3 + i}\.layers\.{j}\."
            rules.append((src, f"features.{1 + i}.block.{k}.{sub}." if sub is not None
                          else f"features.{1 + i}.block.{k}."))
    rules += [(r"\.conv_reduce\.", ".fc1."), (r"\.conv_expand\.", ".fc2.")]
    return tuple(rules) + MINDSPORE_BN


def _gluon_rules() -> tuple[tuple[str, str], ...]:
    # GluonCV: features.0/1 stem, features.3.. _ResUnit (expand/conv1/se/conv2 with .conv/.bn),
    # features.14/15 last conv/BN, features.18 the pre-logits layer, output the head.
    rules = [(r"^features\.0\.", "features.0.0."), (r"^features\.1\.", "features.0.1."),
             (r"^features\.14\.", "features.12.0."), (r"^features\.15\.", "features.12.1."),
             (r"^features\.18\.", "classifier.0."), (r"^output\.", "classifier.3.")]
    for i, b in enumerate(blocks()):
        unit = rf"^features\.{3 + i}\."
        dst = f"features.{1 + i}.block."
        if b["expand"] is not None:
            rules += [(unit + r"expand\.conv\.", dst + f"{b['expand']}.0."),
                      (unit + r"expand\.bn\.", dst + f"{b['expand']}.1.")]
        rules += [(unit + r"conv1\.conv\.", dst + f"{b['dw']}.0."), (unit + r"conv1\.bn\.", dst + f"{b['dw']}.1."),
                  (unit + r"conv2\.conv\.", dst + f"{b['project']}.0."),
                  (unit + r"conv2\.bn\.", dst + f"{b['project']}.1.")]
        if b["se"] is not None:
            rules += [(unit + r"se\.conv1\.", dst + f"{b['se_index']}.fc1."),
                      (unit + r"se\.conv2\.", dst + f"{b['se_index']}.fc2.")]
    return tuple(rules) + GLUON_BN


register(ArchSpec(
    name="mobilenet_v3_small", description="MobileNetV3-small (MindCV custom-dataset guide, FGVC-Aircraft)",
    family="mobilenet_v3",
    stages={"stem": ("features.0.",), "stage1": ("features.1.",),
            "stage2": ("features.2.", "features.3."),
            "stage3": tuple(f"features.{i}." for i in range(4, 9)),
            "stage4": tuple(f"features.{i}." for i in range(9, 13)) + ("classifier.0.",),
            "head": ("classifier.3.",)},
    frameworks={
        "mxnet": FrameworkNames("backends.mxnet_models:build_mobilenet_v3", "output", _gluon_rules(),
                                zoo="mobilenetv3_small"),
        "mindspore": FrameworkNames("backends.mindspore_models:build_mobilenet_v3", "classifier.3",
                                    _mindcv_rules(), zoo="mobilenet_v3_small_100"),
    },
    imagenet=DownloadedWeights("https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth",
                               note="torchvision's ImageNet weights (mobilenet_v3_small-047dcff4.pth, "
                                    "IMAGENET1K_V1)",
                               sha256="047dcff4addef86ea5bc2eff13c9614dc11f47ab1160d0a71a25e7db994f4e1f",
                               size=10_306_551),
    recipe=Recipe(source="MindCV custom-dataset guide (Aircraft): Momentum 0.9, lr 0.002 "
                         "(configs/mobilenetv3 wd 2e-5)",
                  optimizer="momentum", lr=2e-3, momentum=0.9, weight_decay=2e-5, scratch_lr=2e-2),
    num_features=PRE_LOGITS, bn_eps=1e-3, config={"dropout": 0.2},  # before the last Dense, as torchvision's
))
