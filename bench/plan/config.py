"""The one dataclass that describes a run, and its stable hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from bench.core.errors import ConfigError

ARMS = ("pretrain", "finetune", "scratch")
# Fields added after records were first published: hashed only when not at their default.
ADDED_LATER = {"stem": "imagenet", "bn_stats": "train", "eval_shots": None, "scratch_init": None,
               "val_fraction": None, "val_shots": None, "test_eval": "epoch", "val_eval": "epoch", "study": None,
               "trial": None}
TEST_EVALS = ("epoch", "end", "never")  # when the eval (test) split is scored
DEVICES = ("cpu", "gpu", "ascend")
OPTIMIZERS = ("sgd", "momentum", "adam")  # sgd: with the momentum given; momentum: the same, MindSpore's name
SCRATCH_INITS = ("shared", "native")


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
    scratch_init: str | None = None       # scratch arm: shared (one canonical init file) | native
    val_fraction: float | None = None     # carve this share of train for choosing the best epoch
    val_shots: int | None = None          # validation images per class from train, disjoint from the shots
    test_eval: str = "epoch"              # epoch | end | never: when the eval split is scored
    val_eval: str = "epoch"               # epoch | end: when the validation split is scored
    study: str | None = None              # the tuning study this run belongs to (bench.plan.study)
    trial: int | None = None              # its trial number; None for the study's final (seeded) runs
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
        for name, valid in (("arm", ARMS), ("device", DEVICES), ("optimizer", OPTIMIZERS),
                            ("mode", ("graph", "pynative")), ("test_eval", TEST_EVALS),
                            ("val_eval", TEST_EVALS[:2]),
                            ("bn_stats", ("train", "frozen")), ("loader", ("shared", "native"))):
            if getattr(self, name) not in valid:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.scratch_init is not None and (self.arm != "scratch" or self.scratch_init not in SCRATCH_INITS):
            raise ConfigError(f"--scratch-init {self.scratch_init!r}: valid for the scratch arm only, "
                              f"one of {', '.join(SCRATCH_INITS)}")
        self.validate_numbers()

    def validate_numbers(self) -> None:
        """Every number in range, with a message naming the option, the value and the range."""
        checks = [("epochs", 1, None), ("batch_size", 1, None), ("image_size", 1, None), ("warmup_steps", 0, None),
                  ("seed", 0, None), ("shots", 1, None), ("eval_shots", 1, None), ("val_shots", 1, None),
                  ("trial", 0, None)]
        for name, low, _ in checks:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"--momentum must be in [0, 1), got {self.momentum!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay!r}")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ConfigError(f"--target-accuracy is a fraction in (0, 1], got {self.target_accuracy!r}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val-fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.val_fraction is not None and self.val_shots is not None:
            raise ConfigError("--val-fraction and --val-shots both carve a validation split: choose one")
        if self.test_eval == "never" and self.trial is None:
            raise ConfigError("test_eval 'never' is for a study's trials only (their selection never reads test)")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"crop scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        d["classes"] = list(self.classes) if self.classes is not None else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def check_model(self) -> None:
        """The architecture exists, has this stem, and ``image_size`` is at least its minimum."""
        from architectures import get_spec
        spec = get_spec(self.model)
        if self.stem not in spec.stems:
            raise ConfigError(f"--stem {self.stem} is not defined for {self.model}; it has: {', '.join(spec.stems)}")
        low = spec.min_size(self.stem)
        if self.image_size < low:
            hint = "; --stem cifar allows 8 px" if "cifar" in spec.stems and self.stem != "cifar" else ""
            raise ConfigError(f"--image-size {self.image_size} is below {self.model}'s minimum of {low} px with "
                              f"the {self.stem} stem (its total stride){hint}")

    def config_hash(self, without: tuple[str, ...] = ()) -> str:
        """Hash of every field that changes the result (notes excluded), 12 hex chars."""
        d = self.to_json()
        d.pop("notes", None)
        for name in without:
            d.pop(name, None)
        for name, default in ADDED_LATER.items():  # keep hashes of earlier records stable
            if d.get(name) == default:
                d.pop(name)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def group_hash(self) -> str:
        """Hash of everything but the seed: one configuration, whatever its seed. A report
        row is one group: runs that differ in any other field never share a row."""
        return self.config_hash(without=("seed",))

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)
