"""A NumPy-only backend for runner, report and CLI tests (no framework needed).

A two-layer MLP on 4x4 average-pooled pixels: ``stem.w`` (48 -> 16, tanh) and
``head.w``/``head.b``. It honours freezing and per-stage lr multipliers so the
runner's plumbing is exercised for real.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

import architectures
from architectures import ArchSpec, FrameworkNames, Recipe
from backends.base import Backend, Model, OptimConfig
from backends.registry import BackendInfo

FAKE_SPEC = ArchSpec(
    name="fake_mlp", description="NumPy MLP for tests", family="fake_mlp",
    stages={"stem": ("stem.",), "stage1": ("stage1.",), "stage2": ("stage2.",),
            "stage3": ("stage3.",), "stage4": ("stage4.",), "head": ("head.",)},
    frameworks={name: FrameworkNames("tests.fake_backend:build", "head") for name in ("fake", "fake2")},
    recipe=Recipe(source="tests"), num_features=16, stems={"imagenet": 4}, every_backend=False)
FAKE_TABLE = FAKE_SPEC.on("fake")
FAKE_INFO = BackendInfo("tests.fake_backend:FakeBackend", "none", ("numpy",))


# Fault injection for the isolation tests (read in the child process):
# FAKE_FAULT=crash|kill|killparent|hang|nan|slow|filldisk, FAKE_FAULT_STEP=N (default 2),
# FAKE_FAULT_CLASSES=K: only in models with K classes (e.g. only the pretrain step).
FAULT = os.environ.get("FAKE_FAULT")
FAULT_STEP = int(os.environ.get("FAKE_FAULT_STEP", "2"))
FAULT_CLASSES = int(os.environ.get("FAKE_FAULT_CLASSES", "0"))
FAULT_SEED = os.environ.get("FAKE_FAULT_SEED")  # only in runs of this seed


def _pool(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, 4, h // 4, 4, w // 4).mean(axis=(3, 5)).reshape(n, -1)


class FakeModel(Model):
    arch = "fake_mlp"
    table = FAKE_TABLE

    def __init__(self, num_classes: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.params = {"stem.w": self.rng.normal(0, 0.3, (48, 16)).astype(np.float32)}
        self.replace_head(num_classes)
        self.frozen: set[str] = set()
        self.mult = {n: 1.0 for n in self.params}
        self.optim = OptimConfig()
        self.diverge_after: int | None = None
        self.steps = 0

    def replace_head(self, num_classes: int) -> None:
        limit = np.sqrt(6 / (16 + num_classes))
        self.params["head.w"] = self.rng.uniform(-limit, limit, (16, num_classes)).astype(np.float32)
        self.params["head.b"] = np.zeros(num_classes, np.float32)

    def _read_native(self, path: str):
        if str(path).endswith(".pth"):  # as the torch backend reads them: no pickle runs code
            from bench.weights.pth import read_state_dict
            return read_state_dict(path)
        return dict(np.load(path, allow_pickle=False))

    def _write_native(self, path: str) -> None:
        with open(path, "wb") as f:
            np.savez(f, **self.params)

    def _assign(self, values) -> None:
        self.params.update({n: v.astype(np.float32) for n, v in values.items()})

    def configure(self, plan, optim: OptimConfig, precision: str = "fp32") -> None:
        if precision != "fp32":  # NumPy computes in float32 only
            from backends.base import unsupported_precision
            raise unsupported_precision("the fake backend", np.__version__, "cpu", precision, "NumPy float32 only")
        self.optim = optim
        for name in self.params:
            stage = FAKE_TABLE.stage_of(name)
            if plan.is_frozen(stage):
                self.frozen.add(name)
            self.mult[name] = plan.lr_mult[stage]

    def _forward(self, x):
        h = np.tanh(_pool(x) @ self.params["stem.w"])
        return h, h @ self.params["head.w"] + self.params["head.b"]

    def train_step(self, x, y):
        self.steps += 1
        if FAULT and self.steps == FAULT_STEP and FAULT_CLASSES in (0, self.params["head.b"].size) \
                and FAULT_SEED in (None, str(self.seed)):
            if FAULT == "crash":
                os._exit(3)
            if FAULT == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if FAULT == "killparent":  # the process that started this run (a Ray worker)
                os.kill(os.getppid(), signal.SIGKILL)
                time.sleep(3600)
            if FAULT == "hang":
                time.sleep(3600)
            if FAULT == "slow":  # a run long enough to be caught mid-flight
                time.sleep(float(os.environ.get("FAKE_FAULT_SLEEP", "2")))
            if FAULT == "filldisk":  # fill the filesystem of FAKE_FAULT_FILL (a test's small tmpfs)
                with open(os.environ["FAKE_FAULT_FILL"], "wb") as f:
                    try:
                        while True:
                            f.write(b"\0" * (1 << 20))
                    except OSError:
                        pass
            if FAULT == "nan":
                self.diverge_after = 0
        h, logits = self._forward(x)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
        if self.diverge_after is not None and self.steps > self.diverge_after:
            loss = float("nan")
        d = p.copy()
        d[np.arange(len(y)), y] -= 1
        d /= len(y)
        grads = {"head.w": h.T @ d, "head.b": d.sum(0),
                 "stem.w": _pool(x).T @ ((d @ self.params["head.w"].T) * (1 - h ** 2))}
        for name, g in grads.items():
            if name not in self.frozen:
                self.params[name] -= self.optim.lr * self.mult[name] * g.astype(np.float32)
        return loss, int((logits.argmax(1) == y).sum())

    def predict(self, x):
        return self._forward(x)[1]

    def named_parameters(self):
        return {k: v.copy() for k, v in self.params.items()}

    def trainable_names(self):
        return [n for n in self.params if n not in self.frozen]

    def param_groups(self):
        groups = {}
        for n in self.trainable_names():
            groups.setdefault(f"{self.optim.lr * self.mult[n]:.6g}", []).append(n)
        return groups


    def weight_decay_groups(self):
        return {f"{self.optim.weight_decay:.6g}": self.trainable_names()}


class FakeBackend(Backend):
    name = "fake"
    last_model: FakeModel | None = None

    def native_step(self, arch, num_classes, *, image_size, batch, strategy, optim, seed=0, mode="graph",
                    device="cpu", precision="fp32"):
        """The fake's "own loop": the same update, minus the harness's bookkeeping."""
        model = FakeModel(num_classes, seed)
        model.optim = optim
        x = np.random.default_rng(seed).normal(0, 1, (batch, 3, image_size, image_size)).astype(np.float32)
        y = (np.arange(batch) % num_classes).astype(np.int32)
        return lambda: model.train_step(x, y)

    def versions(self):
        return {"numpy": np.__version__}

    def create_model(self, arch, num_classes, *, pretrained=None, device="cpu", seed=0,
                     image_size=224, mode="graph", stem="imagenet"):
        FakeBackend.last_model = FakeModel(num_classes, seed)
        return FakeBackend.last_model


if FAKE_SPEC.name not in {s.name for s in architectures.all_specs()}:
    architectures.register(FAKE_SPEC)


def build(spec, num_classes: int, **opts) -> FakeModel:
    return FakeModel(num_classes, 0)
