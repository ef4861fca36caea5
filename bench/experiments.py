"""Named experiments: which data, which pretrained weights, which defaults per arm.

An experiment turns CLI choices into :class:`RunConfig` objects. The runner only
executes configs; to add an experiment, add an :class:`Experiment` to ``EXPERIMENTS``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import RunConfig
from .errors import ConfigError


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    dataset: str                          # target dataset (registered name)
    pretrained: str                       # suite | imagenet | none
    models: dict[str, str]                # backend -> default model
    strategy: str = "head-lr-x10"         # default fine-tuning strategy (d2l)
    common: dict = field(default_factory=dict)        # RunConfig defaults for every arm
    finetune: dict = field(default_factory=dict)      # overrides for fine-tuned arms
    scratch: dict = field(default_factory=dict)       # overrides for the scratch arm
    pretrain: dict | None = None          # the suite's pretrain step, when pretrained == "suite"

    def model_for(self, backend: str) -> str:
        return self.models.get(backend) or self.models["*"]

    def arm_config(self, backend: str, arm: str, strategy: str, **overrides) -> RunConfig:
        fields = dict(backend=backend, experiment=self.name, dataset=self.dataset,
                      model=self.model_for(backend), pretrained=self.pretrained,
                      arm=arm, strategy=strategy)
        fields.update(self.common)
        fields.update(self.scratch if arm == "scratch" else self.finetune)
        fields.update({k: v for k, v in overrides.items() if v is not None})
        if arm == "scratch":
            fields["pretrained"] = "none"
        return RunConfig(**fields)

    def pretrain_config(self, target: RunConfig) -> RunConfig:
        """The source-task run whose weights the fine-tuned arms start from.

        Runs on ``target.pretrain_backend`` whatever the target's backend, and
        depends only on model, image size, stem and device, so every target run
        (backend, strategy, seed, shots) starts from one cached canonical file.
        """
        if self.pretrain is None:
            raise ConfigError(f"experiment {self.name!r} has no suite pretrain step")
        fields = dict(backend=target.pretrain_backend, experiment=self.name, model=target.model,
                      arm="pretrain", strategy="full", pretrained="none",
                      image_size=target.image_size, device=target.device, stem=target.stem,
                      archive=target.archive, archive_checksum=target.archive_checksum, seed=0,
                      pretrain_backend=target.pretrain_backend)
        fields.update(self.pretrain)
        return RunConfig(**fields)


# Digits are not mirror-symmetric: no flips; crops keep most of the glyph.
_DIGITS_AUG = dict(image_size=32, hflip=False, crop_scale=(0.6, 1.0))

CIFAR_SOURCE = ("airplane", "automobile", "bird", "deer", "frog", "horse", "ship", "truck")

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        name="digits-transfer",
        description="offline default: pretrain on digits 0-4, fine-tune few-shot on unseen digits 5-9",
        dataset="digits-target", pretrained="suite", models={"*": "resnet18"}, strategy="full",
        # Both arms get identical hyper-parameters and budget (6 epochs of 10 shots x 5
        # classes = 30 steps): only the initialisation differs.
        common=dict(_DIGITS_AUG, epochs=6, batch_size=10, shots=10, lr=0.01, momentum=0.9,
                    weight_decay=1e-3, target_accuracy=0.7),
        pretrain=dict(_DIGITS_AUG, dataset="digits-source", epochs=3, batch_size=32, lr=0.05,
                      momentum=0.9, weight_decay=1e-4),
    ),
    Experiment(
        name="cifar-transfer",
        description="real photos: pretrain on 8 CIFAR-10 classes, fine-tune few-shot cat vs dog",
        dataset="cifar10", pretrained="suite", models={"*": "resnet18"}, strategy="full",
        common=dict(image_size=32, classes=("cat", "dog"), shots=100, epochs=8, batch_size=32,
                    lr=0.01, momentum=0.9, weight_decay=5e-4, crop_scale=(0.35, 1.0),
                    target_accuracy=0.65),
        # 3 epochs of 20,000 images: ~12 min on 2 cores with MXNet (the <= 15 min budget)
        pretrain=dict(dataset="cifar10", classes=CIFAR_SOURCE, shots=2500, epochs=3, batch_size=32,
                      lr=0.05, momentum=0.9, weight_decay=5e-4, crop_scale=(0.35, 1.0)),
    ),
    Experiment(
        name="hotdog",
        description="d2l Fine-Tuning: ImageNet ResNet-18 -> hotdog (needs network for data and weights)",
        dataset="hotdog", pretrained="imagenet", models={"mxnet": "resnet18_v2", "*": "resnet18"},
        common=dict(image_size=224, epochs=5, batch_size=128, weight_decay=1e-3, momentum=0.0,
                    target_accuracy=0.9),
        finetune=dict(lr=0.01), scratch=dict(lr=0.1),
    ),
    Experiment(
        name="canidae",
        description="MindSpore tutorial: ImageNet ResNet-50 -> dogs vs wolves (needs network)",
        dataset="canidae", pretrained="imagenet", models={"*": "resnet50"},
        common=dict(image_size=224, epochs=5, batch_size=18, optimizer="momentum", momentum=0.9,
                    weight_decay=1e-4, target_accuracy=0.9),
        finetune=dict(lr=0.001), scratch=dict(lr=0.01),
    ),
    Experiment(
        name="folder",
        description="your own image folder (--data-dir PATH with train/ and test/ or --eval-split)",
        dataset="folder", pretrained="imagenet", models={"mxnet": "resnet18_v2", "*": "resnet18"},
        common=dict(image_size=224, epochs=5, batch_size=32, weight_decay=1e-3, momentum=0.9),
        finetune=dict(lr=0.01), scratch=dict(lr=0.1),
    ),
)}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
