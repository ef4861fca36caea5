"""The small protocol every framework backend implements (the registry is ``backends.registry``).

The runner only ever talks to these two classes; frameworks are imported inside
the backend modules, on first use, so a machine without MindSpore still runs
the MXNet backend (and vice versa).

Contract (all arrays are numpy; every method returns only after the framework
has finished the work, so wall-clock timing around a call is honest):

- ``Backend.create_model(arch, num_classes, pretrained, device, seed, image_size, mode, stem)``
  builds a model whose classifier head is freshly Xavier-initialised;
  ``pretrained="zoo"`` loads the framework's own zoo ImageNet weights first.
- ``Model.replace_head(n)`` swaps in a new Xavier-initialised head.
- ``Model.load_weights(path)`` loads a checkpoint, canonical (``.npz``, see
  ``bench/weights/canonical.py``) or the framework's own format; head parameters whose
  shape differs (and optimizer state of the old head) are dropped and reported.
  ``Model.save_weights(path)`` writes canonical weights for an ``.npz`` path.
  Backends implement only ``_read_native``/``_write_native``/``_assign``; the
  checks (which tensors load, which are dropped and why) are shared here.
- ``Model.configure(plan, optim)`` applies a ``bench.plan.strategies.Plan``: the backend
  translates it once with :func:`translate` (frozen parameters, frozen BatchNorm
  statistics, lr multiplier per parameter, from the architecture's stage map) and
  builds its optimizer. Its reference loop (``Backend.native_step``) shares none of this: it
  freezes, sets multipliers and builds the optimizer in the framework's own idiom, reading only
  the strategy's declaration and the spec's stage map, so ``bench overhead`` sees any cost the
  harness's own mechanism adds.
- ``Model.train_step(x, y) -> (mean loss, n correct)``; ``Model.predict(x) -> logits``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from bench.core.errors import CheckpointError, ConfigError
from bench.weights import canonical


def unsupported_precision(framework: str, version: str, device: str, precision: str, why) -> Exception:
    """The one error for a precision a framework cannot run on a device (found by running it)."""
    from bench.core.errors import BackendUnavailable
    reason = str(why).strip().splitlines()[0][:240] if str(why).strip() else type(why).__name__
    return BackendUnavailable(f"--precision {precision}: {framework} {version} cannot train in {precision} on "
                              f"{device} ({type(why).__name__}: {reason})")


@dataclass
class OptimConfig:
    """Optimizer settings and the recipe's elements (``bench.plan.recipe`` defines each); ``lr`` is
    the base rate that per-stage multipliers scale, ``schedule`` (None: constant) its value per step."""

    name: str = "sgd"          # sgd (momentum as given) | momentum | adam
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-3
    nesterov: bool = False
    label_smoothing: float = 0.0
    decay_filter: str = "all"  # all | no-bias-bn
    schedule: object = None    # bench.plan.recipe.LrSchedule, or None for a constant lr

    @classmethod
    def of(cls, config, schedule) -> "OptimConfig":
        """The optimizer a RunConfig names, with its ``bench.plan.recipe.LrSchedule`` (kept only where
        the lr changes)."""
        return cls(config.optimizer, config.lr, config.momentum, config.weight_decay, config.nesterov,
                   config.label_smoothing, config.decay_filter, None if schedule.is_constant else schedule)

    def lr_at(self, step: int) -> float:
        """The base lr of optimizer step ``step`` (0-based)."""
        return self.lr if self.schedule is None else self.schedule.lr_at(step)


@dataclass(frozen=True)
class ParamPlan:
    """A strategy's :class:`~bench.plan.strategies.Plan` in one model's own parameter names:
    what each backend's harness and reference loop apply, translated once (:func:`translate`)."""

    lr_mult: dict[str, float]             # trainable parameter -> lr multiplier (model order)
    frozen: frozenset[str]                # parameters that get no gradient and no update
    frozen_bn: frozenset[str]             # BatchNorm layers (paths) whose running statistics stay fixed
    no_decay: frozenset[str] = frozenset()  # trainable parameters the decay filter exempts

    def groups(self, params: dict) -> list[tuple[float, bool, list]]:
        """(lr multiplier, decays?, the trainable ``params`` (name -> framework object) sharing them),
        in model order: one optimizer parameter group each."""
        out: dict[tuple[float, bool], list] = {}
        for name, mult in self.lr_mult.items():
            out.setdefault((mult, name not in self.no_decay), []).append(params[name])
        return [(mult, decay, ps) for (mult, decay), ps in out.items()]


def translate(plan, view, params: dict[str, tuple], batchnorms: dict[str, str],
              decay_filter: str = "all") -> ParamPlan:
    """``plan`` for a model of ``view`` (an ``architectures.FrameworkView``): ``params``, every
    learnable parameter's name in the framework -> its shape; ``batchnorms``, each BatchNorm
    layer's path -> the name of one of its parameters, whose canonical stage is the layer's (the
    spec's stage map decides, never a name suffix); ``decay_filter``: ``bench.plan.recipe.decays``."""
    from bench.plan.recipe import decays
    lr_mult, frozen, no_decay = {}, set(), set()
    for name, shape in params.items():
        stage = view.stage_of(name)
        if plan.is_frozen(stage):
            frozen.add(name)
        else:
            lr_mult[name] = plan.lr_mult[stage]
            if not decays(decay_filter, tuple(shape)):
                no_decay.add(name)
    frozen_bn = {layer for layer, param in batchnorms.items() if plan.bn_frozen(view.stage_of(param))}
    return ParamPlan(lr_mult, frozenset(frozen), frozenset(frozen_bn), frozenset(no_decay))


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
    def configure(self, plan, optim: OptimConfig, precision: str = "fp32") -> None:
        """Apply the plan, build the optimizer, and set the precision the steps compute in
        (``PRECISIONS``; fp32 master weights always; loss scaling where fp16)."""

    def precision_report(self) -> dict:
        """What the framework actually computes in after ``configure``: the precision asked for,
        the layer or operator kinds per dtype, the master weights' dtype, any loss scaling."""
        return {"requested": "fp32", "ops": {}, "master_weights": "float32", "loss_scaling": None}

    @abc.abstractmethod
    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]: ...

    def disable_dropout(self) -> int:
        """Make every dropout layer the identity (before ``configure``); returns how many there were.
        Step-by-step parity needs it: each framework draws its own dropout masks."""
        raise ConfigError(f"{type(self).__name__} cannot disable dropout")

    def applied_lr(self) -> dict[str, float]:
        """The lr the framework applied at the last step, per canonical stage that trains, read
        back from its optimizer (or schedule) state, not from ``bench.plan.recipe``."""
        return {}

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
    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> Model:
        """``stem="cifar"``: 3x3 stride-1 first conv and no max-pool (ResNets), for 32 px inputs."""

    def runtime_settings(self) -> dict:
        """Environment knobs the backend set (threads, ISA caps), for the record."""
        return {}

    def peak_device_memory_mb(self, device: str) -> float | None:
        """Peak memory the framework allocated on an accelerator in this process, MiB; None on the CPU,
        where the process's resident set (``bench.measure.timing.peak_rss_mb``) is the measure."""
        return None

    def determinism(self, device: str) -> dict:
        """Whether one seed gives one result on ``device`` (each run in its own process, as every
        executor runs it), and what makes it so, for the record. ``reproducible``: True where
        ``tests/backends/test_determinism.py`` asserts it, None where it was never measured."""
        return {"reproducible": None, "how": f"not measured on {device}"}

    def native_step(self, arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                    optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu",
                    precision: str = "fp32"):
        """The framework's own fastest idiomatic train loop over the architecture, built from the
        framework's own constructors (its zoo's model where it has one), as a zero-argument
        callable that runs (and synchronises) one step: the reference ``bench overhead`` times
        ``Model.train_step`` against."""
        raise ConfigError(f"backend {self.name!r} has no native reference loop")

    def profile(self, step, steps: int, scratch: str) -> dict[str, float]:
        """Run ``step`` ``steps`` times under the framework's own profiler; milliseconds of self
        time per operator kind (``bench profile``). ``scratch``: a directory for its files."""
        raise ConfigError(f"backend {self.name!r} has no profiler hook")

    def native_loader(self, dataset, *, train: bool, image_size: int, batch_size: int, seed: int,
                      crop_scale=(0.08, 1.0), hflip: bool = True, mean=None, std=None):
        """The framework's own input pipeline over ``dataset`` (an ImageFolder), yielding
        numpy ``(x, y)`` batches like ``datasets.loader.BatchLoader``."""
        raise ConfigError(f"backend {self.name!r} has no native loader; use --loader shared")
