"""The one dataclass that describes a run, and its stable hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .errors import ConfigError

ARMS = ("pretrain", "finetune", "scratch")
# Fields added after records were first published: hashed only when not at their default.
ADDED_LATER = {"stem": "imagenet", "bn_stats": "train", "eval_shots": None}
DEVICES = ("cpu", "gpu", "ascend")


@dataclass
class RunConfig:
    """Everything that determines one training run (one record).

    Units: learning rates are absolute; ``image_size`` in pixels; ``target_accuracy``
    a fraction in [0, 1]; ``timeout_s`` seconds.
    """

    backend: str = "mxnet"
    experiment: str = "digits-transfer"
    arm: str = "finetune"                 # pretrain | finetune | scratch
    strategy: str = "head-lr-x10"         # see bench.strategies
    model: str = "resnet18_v2"
    dataset: str = "digits-target"        # registered name, or "folder" for --data-dir
    data_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "test"
    shots: int | None = None              # images per class kept in the train split
    eval_shots: int | None = None         # images per class kept in the eval split (None: all)
    classes: tuple[str, ...] | None = None  # keep only these classes (both splits)
    archive: str | None = None            # cifar10: image-folder archive path or URL
    archive_checksum: str | None = None   # "sha256:<hex>" of --archive
    pretrained: str = "suite"             # suite | imagenet | none | path to weights
    pretrain_backend: str = "mxnet"       # the one backend that runs the suite's pretrain step
    epochs: int = 5
    batch_size: int = 32
    optimizer: str = "sgd"                # sgd | momentum | adam
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-3
    image_size: int = 32
    stem: str = "imagenet"                # imagenet (zoo default) | cifar (3x3/1 conv, no max-pool)
    bn_stats: str = "train"               # train | frozen (running statistics fixed in every stage)
    crop_scale: tuple[float, float] = (0.08, 1.0)
    hflip: bool = True
    device: str = "cpu"
    seed: int = 0
    mode: str = "graph"                   # MindSpore: graph | pynative
    loader: str = "shared"                # shared numpy pipeline | native framework pipeline
    warmup_steps: int = 3
    target_accuracy: float | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.crop_scale = tuple(self.crop_scale)
        if self.classes is not None:
            self.classes = tuple(self.classes)
        if self.arm not in ARMS:
            raise ConfigError(f"unknown arm {self.arm!r}; valid: {', '.join(ARMS)}")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        if self.mode not in ("graph", "pynative"):
            raise ConfigError(f"unknown mode {self.mode!r}; valid: graph, pynative")
        if self.bn_stats not in ("train", "frozen"):
            raise ConfigError(f"unknown bn_stats {self.bn_stats!r}; valid: train, frozen")
        if self.loader not in ("shared", "native"):
            raise ConfigError(f"unknown loader {self.loader!r}; valid: shared, native")
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        d["classes"] = list(self.classes) if self.classes is not None else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def config_hash(self) -> str:
        """Hash of every field that changes the result (notes excluded), 12 hex chars."""
        d = self.to_json()
        d.pop("notes", None)
        for name, default in ADDED_LATER.items():  # keep hashes of earlier records stable
            if d.get(name) == default:
                d.pop(name)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)
