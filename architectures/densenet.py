"""DenseNet-121 (the MindCV Canidae fine-tuning tutorial). Canonical names: torchvision's."""
from __future__ import annotations

from . import GLUON_BN, MINDSPORE_BN, ArchSpec, DownloadedWeights, FrameworkNames, Recipe, register

BLOCKS = (6, 12, 24, 16)


def _gluon_rules() -> tuple[tuple[str, str], ...]:
    # GluonCV (= Gluon zoo) densenet121: features.0 conv0, .1 norm0, then dense blocks at
    # 4, 6, 8, 10 and transitions at 5, 7, 9 (norm .0, conv .2), features.11 norm5. A dense
    # layer is HybridConcurrent(identity, body): body .0 norm1, .2 conv1, .3 norm2, .5 conv2.
    rules = [(r"^features\.0\.", "features.conv0."), (r"^features\.1\.", "features.norm0."),
             (r"^features\.11\.", "features.norm5."), (r"^output\.", "classifier.")]
    for b in range(4):
        rules.append((rf"^features\.{4 + 2 * b}\.(\d+)\.1\.", rf"features.denseblock{b + 1}.layer\1."))
        if b < 3:
            rules += [(rf"^features\.{5 + 2 * b}\.0\.", f"features.transition{b + 1}.norm."),
                      (rf"^features\.{5 + 2 * b}\.2\.", f"features.transition{b + 1}.conv.")]
    rules += [(r"\.layer(\d+)\.0\.", r".layer\1.norm1."), (r"\.layer(\d+)\.2\.", r".layer\1.conv1."),
              (r"\.layer(\d+)\.3\.", r".layer\1.norm2."), (r"\.layer(\d+)\.5\.", r".layer\1.conv2.")]
    rules.append((r"\.layer(\d+)\.", lambda m: f".denselayer{int(m.group(1)) + 1}."))
    return tuple(rules) + GLUON_BN


def _mindcv_rules() -> tuple[tuple[str, str], ...]:
    # MindCV: denseblockN.cell_list.<i> (0-based), transitionN.features.{norm,conv}
    return ((r"\.cell_list\.(\d+)\.", lambda m: f".denselayer{int(m.group(1)) + 1}."),
            (r"(\.transition\d)\.features\.", r"\1.")) + MINDSPORE_BN


register(ArchSpec(
    name="densenet121", description="DenseNet-121 (MindCV Canidae fine-tuning tutorial)", family="densenet",
    stages={"stem": ("features.conv0.", "features.norm0."),
            "stage1": ("features.denseblock1.", "features.transition1."),
            "stage2": ("features.denseblock2.", "features.transition2."),
            "stage3": ("features.denseblock3.", "features.transition3."),
            "stage4": ("features.denseblock4.", "features.norm5."),
            "head": ("classifier.",)},
    frameworks={
        "mxnet": FrameworkNames("backends.mxnet_models:build_densenet", "output", _gluon_rules(),
                                zoo="densenet121"),
        "mindspore": FrameworkNames("backends.mindspore_models:build_densenet", "classifier",
                                    _mindcv_rules(), zoo="densenet121"),
    },
    # torchvision's DenseNet file predates its module names ("norm.1" for "norm1")
    imagenet=DownloadedWeights(
        "https://download.pytorch.org/models/densenet121-a639ec97.pth",
        note="torchvision's ImageNet weights (densenet121-a639ec97.pth, IMAGENET1K_V1)",
        sha256="a639ec97d7c33b07ae66f0b5fb7d0192f95a3b11b7576c66c0126c2a727c4395", size=32_342_954,
        rules=((r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$",
                r"\1\2"),)),
    recipe=Recipe(source="MindCV DenseNet-121 Canidae fine-tune: Adam 1e-4 (backbone trains), "
                         "1e-3 (frozen backbone)",
                  optimizer="adam", lr=1e-4, weight_decay=1e-4, scratch_lr=1e-3,
                  per_strategy={"linear-probe": {"lr": 1e-3}}),
    num_features=1024, config={"blocks": BLOCKS, "growth": 32, "init": 64, "bn_size": 4},
))
