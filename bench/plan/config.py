"""The one dataclass that describes a run, and its stable hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from bench.core.errors import ConfigError

from .recipe import DECAY_FILTERS, ELEMENTS, SCHEDULES

ARMS = ("pretrain", "finetune", "scratch")
# Fields added after records were first published: hashed only when not at their default.
ADDED_LATER = {"stem": "imagenet", "bn_stats": "train", "eval_shots": None, "scratch_init": None,
               "val_fraction": None, "val_shots": None, "test_eval": "epoch", "val_eval": "epoch", "study": None,
               "trial": None, "precision": "fp32", "framework_version": None} | ELEMENTS
PRECISIONS = ("fp32", "bf16", "fp16")  # mixed precision: low-precision compute, fp32 master weights
# a framework release as pip names it (PEP 440 release segments and the usual suffixes): 2.12, 2.12.1, 1.9.1.post1
FRAMEWORK_VERSION = re.compile(r"\d+(\.\d+){0,3}((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?")


def check_release(backend: str, framework_version: str) -> None:
    """ConfigError unless ``framework_version`` is spelt as a release (``FRAMEWORK_VERSION``)."""
    if not FRAMEWORK_VERSION.fullmatch(framework_version):
        raise ConfigError(f"backend {backend}@{framework_version}: {framework_version!r} is not a release number "
                          f"(spell it like {backend}@2.12.1: the framework's version as pip names it)")


def backend_label(backend: str, framework_version: str | None) -> str:
    """A backend as commands and tables name it: ``torch``, or ``torch@2.14.1`` for one release run in
    its own environment."""
    return f"{backend}@{framework_version}" if framework_version else backend


def precision_of(spec: dict) -> str:
    """The precision a config or spec (run, overhead, profile) names; records from before
    ``--precision`` existed ran fp32."""
    return spec.get("precision") or "fp32"


TEST_EVALS = ("epoch", "end", "never")  # when the eval (test) split is scored
DEVICES = ("cpu", "gpu", "ascend")
OPTIMIZERS = ("sgd", "momentum", "adam")  # sgd: with the momentum given; momentum: the same, MindSpore's name
SCRATCH_INITS = ("shared", "native")


@dataclass(frozen=True)
class Range:
    """The values a number may take: finite, within [low, high] (ends open as said), an int if ``integer``."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def __str__(self) -> str:
        kind, fmt = ("an integer", "d") if self.integer else ("a number", "g")
        low, high = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        return (f"{kind} in {'(' if self.low_open else '['}{low:{fmt}}, {high:{fmt}}"
                f"{')' if self.high_open else ']'}")

    def holds(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.integer and not isinstance(value, int)):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


SHOTS = Range(1, 1_000_000, integer=True)
# Every number of a run: its sane range (stated in --help, checked on the command line and here).
RANGES = {"epochs": Range(1, 10_000, integer=True), "batch_size": Range(1, 4096, integer=True),
          "image_size": Range(1, 4096, integer=True), "warmup_steps": Range(0, 10_000, integer=True),
          "seed": Range(0, 2 ** 31 - 1, integer=True), "shots": SHOTS, "eval_shots": SHOTS, "val_shots": SHOTS,
          "trial": Range(0, 10_000, integer=True), "lr": Range(0, 10, low_open=True),
          "momentum": Range(0, 1, high_open=True), "weight_decay": Range(0, 1),
          "target_accuracy": Range(0, 1, low_open=True), "val_fraction": Range(0, 1, low_open=True, high_open=True),
          "lr_warmup_epochs": Range(0, 10_000, integer=True), "lr_warmup_steps": Range(0, 10_000_000, integer=True),
          "lr_warmup_factor": Range(0, 1), "lr_gamma": Range(0, 1, low_open=True), "min_lr": Range(0, 10),
          "label_smoothing": Range(0, 1, high_open=True), "color_jitter": Range(0, 10), "re_prob": Range(0, 1),
          "crop_pct": Range(0, 1, low_open=True)}


@dataclass
class RunConfig:
    """Everything that determines one training run (one record).

    Units: learning rates are absolute; ``image_size`` in pixels; ``target_accuracy``
    a fraction in [0, 1]; ``timeout_s`` seconds.
    """

    backend: str = "mxnet"
    framework_version: str | None = None  # the backend's framework at this release, in its own environment
    experiment: str = "digits-transfer"
    arm: str = "finetune"                 # pretrain | finetune | scratch
    strategy: str = "head-lr-x10"         # see bench.plan.strategies
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
    precision: str = "fp32"               # fp32 | bf16 | fp16 (mixed: fp32 master weights)
    loader: str = "shared"                # shared numpy pipeline | native framework pipeline
    warmup_steps: int = 3                 # steps left out of the step-time statistics (not the lr warm-up)
    # the recipe's elements (bench.plan.recipe defines each; every backend translates it)
    schedule: str = "constant"            # constant | step | cosine: the lr of every step
    lr_warmup_epochs: int = 0             # linear lr warm-up, in epochs ...
    lr_warmup_steps: int = 0              # ... or in steps (one of the two)
    lr_warmup_factor: float = 0.0         # the first step's lr as a fraction of lr (MindCV's warmup_factor)
    milestones: tuple[int, ...] = ()      # step schedule: epochs (from the start) where lr *= lr_gamma
    lr_gamma: float = 0.1
    min_lr: float = 0.0                   # cosine schedule: the last step's lr
    nesterov: bool = False                # Nesterov momentum (sgd/momentum optimizers)
    label_smoothing: float = 0.0          # soft targets (1 - eps) onehot + eps / K
    decay_filter: str = "all"             # all | no-bias-bn: weight decay on which trained tensors
    color_jitter: float = 0.0             # brightness/contrast/saturation strength (datasets/augment.py)
    rand_augment: str | None = None       # timm/MindCV RandAugment config, e.g. randaug-m7-mstd0.5
    re_prob: float = 0.0                  # RandomErasing probability
    crop_pct: float | None = None         # eval: resize to floor(image_size / crop_pct), then center crop
    target_accuracy: float | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # a config from a file: each text and switch of its type
            value = getattr(self, f.name)
            kinds = {"str": (str,), "str | None": (str, type(None)), "bool": (bool,)}.get(f.type)
            if kinds and not isinstance(value, kinds):
                raise ConfigError(f"{f.name} is {str(value)[:40]!r}, expected "
                                  f"{'true or false' if f.type == 'bool' else 'a string'}")
        self.crop_scale = tuple(self.crop_scale)
        self.milestones = tuple(self.milestones)
        if self.classes is not None:
            self.classes = tuple(self.classes)
        for name, valid in (("arm", ARMS), ("device", DEVICES), ("optimizer", OPTIMIZERS),
                            ("mode", ("graph", "pynative")), ("test_eval", TEST_EVALS),
                            ("val_eval", TEST_EVALS[:2]),
                            ("precision", PRECISIONS),
                            ("bn_stats", ("train", "frozen")), ("loader", ("shared", "native")),
                            ("schedule", SCHEDULES), ("decay_filter", DECAY_FILTERS)):
            if getattr(self, name) not in valid:
                option = f" (--{name.replace('_', '-')})" if name in ("schedule", "decay_filter") else ""
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}{option}; valid: {', '.join(valid)}")
        if self.framework_version is not None:  # a string: the field types are checked above
            check_release(self.backend, self.framework_version)
        if self.scratch_init is not None and (self.arm != "scratch" or self.scratch_init not in SCRATCH_INITS):
            raise ConfigError(f"--scratch-init {self.scratch_init!r}: valid for the scratch arm only, "
                              f"one of {', '.join(SCRATCH_INITS)}")
        self.validate_numbers()

    def validate_numbers(self) -> None:
        """Every number in range, with a message naming the option, the value and the range."""
        for name, valid in RANGES.items():
            value = getattr(self, name)
            if value is not None and not valid.holds(value):
                raise ConfigError(f"--{name.replace('_', '-')} must be {valid}, got {value!r}")
        if self.val_fraction is not None and self.val_shots is not None:
            raise ConfigError("--val-fraction and --val-shots both carve a validation split: choose one")
        if self.test_eval == "never" and self.trial is None:
            raise ConfigError("test_eval 'never' is for a study's trials only (their selection never reads test)")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"crop scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        self.validate_recipe()

    def validate_recipe(self) -> None:
        """The schedule fits the run, and each element is used where it means something."""
        if self.lr_warmup_epochs and self.lr_warmup_steps:
            raise ConfigError("--lr-warmup-epochs and --lr-warmup-steps both set the warm-up: choose one")
        if self.lr_warmup_epochs >= self.epochs and self.lr_warmup_epochs:
            raise ConfigError(f"--lr-warmup-epochs {self.lr_warmup_epochs} is not shorter than the run "
                              f"({self.epochs} epochs): nothing would follow the warm-up")
        steps = self.planned_steps()
        if self.lr_warmup_steps and steps is not None and self.lr_warmup_steps >= steps:
            raise ConfigError(f"--lr-warmup-steps {self.lr_warmup_steps} is not shorter than the run "
                              f"({steps} steps: {self.epochs} epochs of {steps // self.epochs})")
        if self.milestones and self.schedule != "step":
            raise ConfigError(f"--milestones is for --schedule step, not {self.schedule}")
        if self.schedule == "step":
            ms = self.milestones
            if not ms:
                raise ConfigError("--schedule step needs --milestones (epochs where the lr is multiplied by "
                                  "--lr-gamma), e.g. --milestones 30,60")
            if any(isinstance(m, bool) or not isinstance(m, int) for m in ms) or list(ms) != sorted(set(ms)) \
                    or not 0 < ms[0] or not ms[-1] < self.epochs:
                raise ConfigError(f"--milestones {','.join(map(str, ms))}: expected increasing whole epochs, "
                                  f"each in 1..{self.epochs - 1} (the run has {self.epochs} epochs)")
        if self.schedule == "cosine" and self.min_lr > self.lr:
            raise ConfigError(f"--min-lr {self.min_lr:g} is above --lr {self.lr:g}: a cosine schedule decays")
        if self.rand_augment is not None:
            from datasets.augment import RandAugment
            RandAugment.parse(self.rand_augment)
        augmented = [f"--{n.replace('_', '-')}" for n in ("color_jitter", "rand_augment", "re_prob", "crop_pct")
                     if getattr(self, n) not in (None, 0.0)]
        if self.loader == "native" and augmented:
            raise ConfigError(f"{', '.join(augmented)}: augmentations run in the shared pipeline only, so every "
                              "backend sees the same pixels; use --loader shared")
        if self.nesterov and (self.optimizer == "adam" or self.momentum == 0):
            raise ConfigError(f"--nesterov needs momentum (optimizer sgd or momentum with --momentum > 0), "
                              f"got optimizer {self.optimizer} with momentum {self.momentum:g}")

    def planned_steps(self) -> int | None:
        """Optimizer steps of the run where the train split's size is known from the config
        (``shots`` x ``classes``), else None (the runner knows it once the data is read)."""
        if not (self.shots and self.classes):
            return None
        return self.epochs * max(self.shots * len(self.classes) // min(self.batch_size, self.shots * len(self.classes)), 1)

    def default_timeout_s(self) -> float:
        """How long a job of this configuration may run unless --timeout says otherwise: 10 minutes
        to start, read data and compile, 5 s per training step and 50 ms per image scored, from the
        budget the configuration declares (a dataset of unknown size counts as 50,000 train and
        10,000 eval images); at most 24 hours. A hung job ends; a slow one is not cut short."""
        classes = len(self.classes) if self.classes else 10
        train = self.shots * classes if self.shots else 50_000
        scored = (self.eval_shots * classes if self.eval_shots else 10_000) * (
            self.epochs if self.test_eval == "epoch" else 1) + (self.val_shots or 0) * classes * self.epochs
        steps = self.epochs * math.ceil(train / self.batch_size)
        return float(min(600 + 5 * steps + 0.05 * scored, 24 * 3600))

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        d["milestones"] = list(self.milestones)
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
