"""ResNet-18 and ResNet-50 (v1.5: torchvision / MindCV / GluonCV ``*_v1b`` layout).

Canonical names are torchvision's. Two recipes use them: d2l "Fine-Tuning"
(ResNet-18, hotdog) and MindSpore's ResNet-50 transfer tutorial (Canidae).
``resnet18_v2`` is the d2l recipe's own Gluon zoo model, on MXNet only.
"""
from __future__ import annotations

from . import GLUON_BN, MINDSPORE_BN, ArchSpec, DownloadedWeights, FrameworkNames, Recipe, register

STAGES = {"stem": ("conv1.", "bn1."), "stage1": ("layer1.",), "stage2": ("layer2.",),
          "stage3": ("layer3.",), "stage4": ("layer4.",), "head": ("fc.",)}
# --stem cifar: a 3x3 stride-1 first conv and no max-pool (total stride 8, not 32)
STEMS = {"imagenet": 32, "cifar": 8}
TORCHVISION = "https://download.pytorch.org/models/"

D2L = Recipe(source="d2l Fine-Tuning (hotdog): SGD lr 0.01, wd 1e-3, new head; scratch lr 0.1",
             optimizer="sgd", lr=0.01, momentum=0.0, weight_decay=1e-3, scratch_lr=0.1)
MINDSPORE_CANIDAE = Recipe(source="MindSpore ResNet-50 transfer tutorial (Canidae): Momentum 0.9, lr 0.001",
                           optimizer="momentum", lr=1e-3, momentum=0.9, weight_decay=1e-4, scratch_lr=0.01)


def _frameworks(depth: int) -> dict[str, FrameworkNames]:
    return {
        # GluonCV's ResNetV1b already uses torchvision's structure and names.
        "mxnet": FrameworkNames("backends.mxnet_models:build_resnet", "fc", GLUON_BN,
                                zoo=f"resnet{depth}_v1b"),
        "mindspore": FrameworkNames(
            "backends.mindspore_models:build_resnet", "classifier",
            ((r"^classifier\.", "fc."), (r"\.down_sample\.", ".downsample.")) + MINDSPORE_BN,
            zoo=f"resnet{depth}"),
    }


def _torchvision(file: str, sha256: str, size: int) -> DownloadedWeights:
    return DownloadedWeights(TORCHVISION + file, note=f"torchvision's ImageNet weights ({file}, IMAGENET1K_V1)",
                             sha256=sha256, size=size)


register(ArchSpec(
    name="resnet18", description="ResNet-18 (d2l hotdog recipe)", family="resnet", stages=STAGES, stems=STEMS,
    frameworks=_frameworks(18), recipe=D2L, num_features=512, imagenet=_torchvision(
        "resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", 46_830_571),
    config={"block": "basic", "layers": (2, 2, 2, 2)},
))

register(ArchSpec(
    name="resnet50", description="ResNet-50 v1.5 (MindSpore Canidae tutorial)", family="resnet", stages=STAGES,
    stems=STEMS, frameworks=_frameworks(50), recipe=MINDSPORE_CANIDAE, num_features=2048,
    imagenet=_torchvision(
        "resnet50-0676ba61.pth", "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a", 102_530_333),
    config={"block": "bottleneck", "layers": (3, 4, 6, 3)},
))

# d2l's own model: Gluon zoo ResNet-18 v2 (pre-activation). features.0 is the un-learned
# input BatchNorm, features.9 the final pre-activation BN. Its canonical names are
# Gluon's with BatchNorm renamed: no other framework defines it.
register(ArchSpec(
    name="resnet18_v2", description="Gluon zoo ResNet-18 v2 (the d2l hotdog recipe's model; MXNet only)",
    family="resnet_v2",
    stages={"stem": ("features.0.", "features.1.", "features.2."), "stage1": ("features.5.",),
            "stage2": ("features.6.",), "stage3": ("features.7.",),
            "stage4": ("features.8.", "features.9."), "head": ("output.",)},
    frameworks={"mxnet": FrameworkNames("backends.mxnet_models:build_gluon_zoo", "output", GLUON_BN,
                                        zoo="resnet18_v2")},
    recipe=D2L, num_features=512, every_backend=False,
))
