"""MindSpore 2.9 + MindCV 0.3 backend.

Models come from ``backends/mindspore_models.py`` (MindCV's zoo brought into line
with the canonical architectures). A strategy's plan (``backends.base.translate``)
becomes ``requires_grad=False`` before the optimizer is built,
``use_batch_statistics=False`` on the BatchNorms whose statistics stay fixed, and
parameter groups (with ``order_params``) per learning rate.
``mode="graph"`` runs the train step as one GRAPH_MODE cell (``TrainStep``: 2.5-3x
faster than ``mindspore.jit`` over a function, measured); ``"pynative"`` eagerly.

CPU speed: on CPUs with AVX-512, the oneDNN inside MindSpore 2.9 picks a
reference convolution (``jit_uni_ncsp:conv+ref:any``, ~1 GFLOP/s) unless the ISA
is capped at AVX2 *before MindSpore is imported* (docs/speed.md, "MindSpore on CPU").
The parent of a sweep puts that cap into this backend's child environment only
(``backends/settings.py``); imported in-process, this module applies the same defaults.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile

from .settings import apply_in_process

apply_in_process("mindspore")  # before the framework is imported: ONEDNN_MAX_CPU_ISA on AVX-512
# MindSpore writes into the working directory (measured): a failed compile's graph dump
# (rank_0/om/analyze_fail.ir) and mixed precision's rewritten network sources
# (rewritten_network/*.py). Both go to this process's own scratch directory instead.
SCRATCH = tempfile.mkdtemp(prefix="bench-mindspore-")
atexit.register(shutil.rmtree, SCRATCH, True)


def in_scratch(skip: bool = False):
    """Run in the scratch directory (the compile's dumps land there), unless ``skip``."""
    return contextlib.nullcontext() if skip else contextlib.chdir(SCRATCH)

import mindspore as ms  # noqa: E402  (after the oneDNN cap)
import numpy as np  # noqa: E402
from mindspore import nn, ops  # noqa: E402
from mindspore.common.initializer import XavierUniform, Zero  # noqa: E402

from bench.core.errors import BackendUnavailable, ConfigError  # noqa: E402
from bench.core.files import atomic_path  # noqa: E402
from bench.weights.checkpoints import read_mindspore_ckpt  # noqa: E402
from bench.weights.imagenet import unreachable  # noqa: E402

from .base import (Backend, Model, OptimConfig, ParamPlan, translate, unsupported_precision,  # noqa: E402
                   zoo_requested)
from .mindspore_models import SeededDropout, replace_cells, seed_dropouts  # noqa: E402
from .registry import arch_view  # noqa: E402

DEVICE_TARGETS = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
AMP_DTYPES = {"bf16": ms.bfloat16, "fp16": ms.float16}
LOSS_SCALE = 1024.0
OPTIMIZER_STATE_PREFIXES = ("moments.", "accum.", "adam_m.", "adam_v.", "moment1.", "moment2.")
OPTIMIZER_SCALARS = ("learning_rate", "global_step", "momentum", "beta1_power", "beta2_power")
_configured: dict = {}
# Tuning knobs (bench tune): MindSpore's CPU thread pool and graph compile level.
_RUNTIME_THREADS = os.environ.get("BENCH_MS_RUNTIME_THREADS")
_JIT_LEVEL = os.environ.get("BENCH_MS_JIT_LEVEL")


def _set_context(device: str, mode: str) -> None:
    """Select device target and execution mode (once per process; a change is refused)."""
    target = DEVICE_TARGETS[device]
    want = (target, mode)
    if _configured.get("ctx") == want:
        return
    if not ms.hal.is_available(target):
        raise BackendUnavailable(
            f"--device {device}: MindSpore cannot use {target} here "
            f"(this mindspore {ms.__version__} build or machine has no {target}); use --device cpu"
        )
    if _configured.get("ctx"):
        raise ConfigError(f"MindSpore context already set to {_configured['ctx']}; "
                          f"run {want} in a separate process")
    ms.set_device(target)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if _RUNTIME_THREADS:
        ms.set_context(runtime_num_threads=int(_RUNTIME_THREADS))
    if _JIT_LEVEL:
        ms.set_context(jit_config={"jit_level": _JIT_LEVEL})
    _configured["ctx"] = want


# mixed precision (O2) wraps each cell it keeps in fp32 (BatchNorm) in a cast cell that holds the
# original as ``_backbone``: 'bn1.gamma' becomes 'bn1._backbone.gamma' (measured, MindSpore 2.9)
AMP_WRAPPER = "_backbone"


def _structural(path: str) -> str:
    """A parameter's or cell's path without the cast cells mixed precision inserts."""
    return ".".join(part for part in path.split(".") if part != AMP_WRAPPER)


def named_params(net: nn.Cell) -> dict[str, ms.Parameter]:
    """Structural path -> parameter, the same names in fp32 and under mixed precision."""
    return {_structural(n): p for n, p in net.parameters_and_names()}


def _batchnorms(net: nn.Cell):
    for name, cell in net.cells_and_names():
        if isinstance(cell, (nn.BatchNorm2d, nn.BatchNorm1d)):
            yield _structural(name), cell


def param_plan(net: nn.Cell, view, plan, decay_filter: str = "all") -> ParamPlan:
    """The harness's one translation of a strategy for a MindSpore network (the reference loop has its own)."""
    layers = {path: f"{path}.{next(bn.parameters_and_names())[0]}" for path, bn in _batchnorms(net)}
    learnable = {n: tuple(p.shape) for n, p in named_params(net).items() if p.requires_grad}  # BN statistics are not
    return translate(plan, view, learnable, layers, decay_filter)


def apply_plan(net: nn.Cell, pp: ParamPlan) -> dict[str, ms.Parameter]:
    """Freeze what ``pp`` says (before an optimizer is built); returns the trainable parameters."""
    params = named_params(net)
    for name in pp.frozen:
        params[name].requires_grad = False
    for path, bn in _batchnorms(net):
        if path in pp.frozen_bn:
            bn.use_batch_statistics = False
    return {n: params[n] for n in pp.lr_mult}


_nesterov = ops.MultitypeFuncGraph("nesterov")


@_nesterov.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _nesterov_update(momentum, lr, gradient, weight, moment):
    """``a = m * a + g'``; ``w -= lr * (g' + m * a)`` for one parameter."""
    moment_new = momentum * moment + gradient
    done = ops.assign(moment, moment_new)
    return ops.depend(ops.depend(True, done), ops.assign(weight, weight - lr * (gradient + momentum * moment_new)))


class NesterovMomentum(nn.Optimizer):
    """Nesterov momentum in the protocol's form (``bench.plan.recipe``), written as ``nn.Momentum``
    is (weight decay, loss scale, group and per-step lrs from ``nn.Optimizer``). MindSpore 2.9's CPU
    ``ApplyMomentum(use_nesterov=True)`` computes plain momentum (measured: ``nn.Momentum`` and the
    raw operator, graph and PyNative mode, give the plain update), so Nesterov cannot go through it."""

    def __init__(self, params, learning_rate, momentum: float, weight_decay=0.0, loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.momentum = ms.Parameter(ms.Tensor(momentum, ms.float32), name="momentum")
        self.moments = self._parameters.clone(prefix="moments", init="zeros")

    def construct(self, gradients):
        gradients = self.scale_grad(self.gradients_centralization(self.decay_weight(gradients)))
        lr = self.get_lr()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        if self.is_group_lr:
            return self.hyper_map_reverse(ops.partial(_nesterov, self.momentum), lr, gradients,
                                          self._parameters, self.moments)
        return self.hyper_map_reverse(ops.partial(_nesterov, self.momentum, lr), gradients, self._parameters,
                                      self.moments)


def make_optimizer(groups: list[dict], optim: OptimConfig, loss_scale: float = 1.0) -> nn.Optimizer:
    """The MindSpore optimizer of ``optim`` over parameter ``groups`` (``sgd``: Momentum). A
    ``loss_scale`` other than 1: the gradients it gets are scaled by it, and it divides them back
    (MindSpore multiplies the weight decay by the scale to match: the update is the unscaled one)."""
    if optim.name == "adam":
        return nn.Adam(groups, learning_rate=optim.lr, weight_decay=optim.weight_decay, loss_scale=loss_scale)
    if optim.nesterov:
        return NesterovMomentum(groups, learning_rate=optim.lr, momentum=optim.momentum,
                                weight_decay=optim.weight_decay, loss_scale=loss_scale)
    return nn.Momentum(groups, learning_rate=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                       loss_scale=loss_scale)


def optimizer_groups(pp: ParamPlan, trainable: dict, optim: OptimConfig) -> list[dict]:
    """One MindSpore parameter group per (lr multiplier, decays?) of the plan; a schedule becomes
    each group's per-step lr list (MindCV's ``create_scheduler`` list, multiplied per stage as its
    fine-tuning guide does), which the optimizer indexes with its ``global_step``."""
    steps = optim.schedule.values() if optim.schedule is not None else None
    groups = [{"params": ps, "lr": [mult * v for v in steps] if steps else optim.lr * mult,
               "weight_decay": optim.weight_decay if decay else 0.0} for mult, decay, ps in pp.groups(trainable)]
    return groups + [{"order_params": list(trainable.values())}]


class TrainStep(nn.Cell):
    """One optimizer step as one graph, returning what the runner needs: (mean loss, n correct).

    A cell over ``value_and_grad`` compiles like ``nn.TrainOneStepCell`` (same step
    time, measured); ``mindspore.jit`` over a Python function ran 2.5-3x slower.
    """

    def __init__(self, net: nn.Cell, optimizer: nn.Optimizer, label_smoothing: float = 0.0):
        super().__init__(auto_prefix=False)
        self.net, self.optimizer = net, optimizer
        self.loss_fn = nn.CrossEntropyLoss(reduction="mean", label_smoothing=label_smoothing)
        self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.parameters, has_aux=True)
        # static loss scaling (fp16): the loss is scaled by the optimizer's loss_scale, so are the
        # gradients, and the optimizer divides them back inside its update (MindSpore's own pairing,
        # as in amp.build_train_network), with no extra division per gradient here
        self.scale = optimizer.loss_scale

    def forward(self, x, y):
        logits = self.net(x).astype(ms.float32)
        return self.loss_fn(logits, y) * self.scale, logits

    def construct(self, x, y):
        (loss, logits), grads = self.grad_fn(x, y)
        if self.scale != 1.0:
            loss = loss / self.scale
        loss = ops.depend(loss, self.optimizer(grads))
        correct = (ops.argmax(logits, 1).astype(ms.int32) == y).astype(ms.int32).sum()
        return loss, correct


class MindSporeModel(Model):
    def __init__(self, net: nn.Cell, arch: str, mode: str):
        self.net = net
        self.arch = arch
        self.table = arch_view(arch, "mindspore")
        self.mode = mode
        self.optimizer = None
        self.optim: OptimConfig | None = None
        self._step = None
        self._compiled: set[str] = set()  # graphs compiled
        self._training: bool | None = None  # set_train walks every cell: only on a change of mode
        self.precision = "fp32"
        self._forward = net  # what trains and predicts (mixed precision: the O2-wrapped network)
        self._sync_names()

    def _sync_names(self) -> None:
        """Make every Parameter.name its structural path, so checkpoints use stable names."""
        for name, p in named_params(self.net).items():
            if p.name != name:
                p.name = name

    def _params(self) -> dict[str, ms.Parameter]:
        return named_params(self.net)

    def _head_cell(self) -> tuple[nn.Cell, str]:
        *parents, leaf = self.table.head_path
        owner = self.net
        for p in parents:
            owner = owner[int(p)] if p.isdigit() else getattr(owner, p)
        return owner, leaf

    def replace_head(self, num_classes: int) -> None:
        owner, leaf = self._head_cell()
        old = owner[int(leaf)] if leaf.isdigit() else getattr(owner, leaf)
        head = nn.Dense(old.in_channels, num_classes, weight_init=XavierUniform(), bias_init=Zero())
        if leaf.isdigit():
            owner[int(leaf)] = head
        else:
            setattr(owner, leaf, head)
        self._sync_names()

    optimizer_state_prefixes = OPTIMIZER_STATE_PREFIXES
    optimizer_state_names = OPTIMIZER_SCALARS

    def _read_native(self, path: str) -> dict[str, np.ndarray]:
        return read_mindspore_ckpt(path)  # NumPy only: MindSpore's parser never sees untrusted bytes

    def _assign(self, values: dict[str, np.ndarray]) -> None:
        params = self._params()
        for name, value in values.items():
            params[name].set_data(ms.Tensor(value, dtype=params[name].dtype))

    def _write_native(self, path: str) -> None:
        with atomic_path(path, suffix=".ckpt") as tmp:  # MindSpore wants the suffix
            ms.save_checkpoint(self.net, str(tmp))

    def configure(self, plan, optim: OptimConfig, precision: str = "fp32") -> None:
        self.precision = precision
        if precision != "fp32":  # MindSpore's O2: the cells cast to low precision, BatchNorm kept fp32;
            # it wraps the network (outputs cast to fp32), whose parameters keep their names
            with in_scratch():  # its rewrite writes and imports source files in the cwd
                self._forward = ms.amp.auto_mixed_precision(self.net, amp_level="O2", dtype=AMP_DTYPES[precision])
        pp = param_plan(self.net, self.table, plan, optim.decay_filter)
        trainable = apply_plan(self.net, pp)
        self.optimizer = make_optimizer(optimizer_groups(pp, trainable, optim), optim,
                                        LOSS_SCALE if precision == "fp16" else 1.0)
        self._stage_param = {}
        for name, p in trainable.items():
            self._stage_param.setdefault(self.table.stage_of(name), p)
        self.optim = optim
        self._step = self._build_step()

    def _set_training(self, training: bool) -> None:
        if self._training is not training:
            self._forward.set_train(training)
            self._training = training

    def _build_step(self):
        step = TrainStep(self._forward, self.optimizer, self.optim.label_smoothing)
        step.set_train(True)  # the network too
        self._training = True
        self._compiled: set[str] = set()  # graphs compiled
        return step

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self._set_training(True)
        with self._compiling("train"):
            loss, correct = self._step(ms.Tensor(x), ms.Tensor(y.astype(np.int32)))
        return float(loss.asnumpy()), int(correct.asnumpy())  # asnumpy synchronises

    @contextlib.contextmanager
    def _compiling(self, graph: str):
        """Around a call that compiles ``graph`` the first time: in the scratch directory (a failed
        compile dumps its graph in the cwd), and a dtype the compiler refuses is the precision error."""
        try:
            with in_scratch(graph in self._compiled):
                yield
            self._compiled.add(graph)
        except (TypeError, RuntimeError, ValueError) as e:
            if self.precision == "fp32":
                raise
            # graph compilation refuses an operator in this dtype (measured: bf16 max-pool on CPU)
            raise unsupported_precision("MindSpore", ms.__version__, ms.get_context("device_target"),
                                        self.precision, e) from None

    def precision_report(self) -> dict:
        """Cells by the dtype their outputs are cast to under O2 (``to_float``), BatchNorm kept fp32."""
        ops: dict[str, dict[str, int]] = {}
        if self.precision != "fp32":
            for _, cell in self.net.cells_and_names():
                if cell._cells:
                    continue
                dtype = "float32" if isinstance(cell, (nn.BatchNorm2d, nn.BatchNorm1d)) else str(AMP_DTYPES[self.precision])
                ops.setdefault(dtype.lower().replace("mindspore.", ""), {}).setdefault(type(cell).__name__, 0)
                ops[dtype.lower().replace("mindspore.", "")][type(cell).__name__] += 1
        return {"requested": self.precision, "ops": ops, "master_weights": "float32",
                "loss_scaling": f"static x{LOSS_SCALE:g}" if self.precision == "fp16" else None,
                "how": "mindspore.amp.auto_mixed_precision(amp_level='O2'); leaf cells, BatchNorm kept fp32"}

    def disable_dropout(self) -> int:
        return replace_cells(self.net, lambda c: isinstance(c, (nn.Dropout, SeededDropout)),
                             lambda _cell: nn.Identity())

    def applied_lr(self) -> dict[str, float]:
        """Each trained stage's lr at the last step: its lr parameter (a per-step list under a
        schedule) at the optimizer's ``global_step`` minus one, read from the optimizer."""
        opt = self.optimizer
        taken = max(int(opt.global_step.asnumpy().reshape(-1)[0]) - 1, 0)
        out = {}
        for stage, p in self._stage_param.items():
            lr = np.asarray(opt.get_lr_parameter(p).asnumpy()).reshape(-1)
            out[stage] = float(lr[min(taken, len(lr) - 1)])
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._set_training(False)
        with self._compiling("eval"):
            return self._forward(ms.Tensor(x)).asnumpy().astype(np.float32)

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {n: p.asnumpy().copy() for n, p in self._params().items()}  # asnumpy may alias

    def trainable_names(self) -> list[str]:
        return [n for n, p in self._params().items() if p.requires_grad]

    def param_groups(self) -> dict[str, list[str]]:
        if self.optimizer is None:
            return {}
        # the lr the optimizer actually holds for each parameter: read back, not recomputed
        opt = self.optimizer
        groups: dict[str, list[str]] = {}
        for p in opt.parameters:  # a per-step list (a schedule): its peak
            groups.setdefault(f"{float(np.max(opt.get_lr_parameter(p).asnumpy())):.6g}", []).append(p.name)
        return groups

    def weight_decay_groups(self) -> dict[str, list[str]]:
        if self.optimizer is None:
            return {}
        opt = self.optimizer
        groups: dict[str, list[str]] = {}
        for p, on, wd in zip(opt.parameters, opt.decay_flags, opt.weight_decay):
            groups.setdefault(f"{float(wd.asnumpy()) if on else 0.0:.6g}", []).append(p.name)
        return groups


class NativeLoader:
    """``mindspore.dataset`` pipeline (MindSpore tutorials' transforms, C++ decode and ops)
    over the suite's file list, so --shots and --classes select the same images."""

    def __init__(self, dataset, *, train: bool, image_size: int, batch_size: int, seed: int,
                 crop_scale, hflip: bool, mean=None, std=None):
        self.dataset = dataset
        self.train = train
        self.batch_size = min(batch_size, len(dataset)) if train else batch_size
        self.epoch = 0
        self.seed = seed
        self.image_size = image_size
        self.crop_scale = tuple(crop_scale)
        self.hflip = hflip
        self.mean, self.std = mean, std

    def _pipeline(self):
        import mindspore.dataset as mds
        import mindspore.dataset.vision as vision
        from datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform

        mean = np.asarray(self.mean if self.mean is not None else IMAGENET_MEAN)
        std = np.asarray(self.std if self.std is not None else IMAGENET_STD)

        samples = self.dataset.samples

        def read():
            for path, label in samples:
                yield np.fromfile(path, dtype=np.uint8), np.int32(label)

        mds.config.set_seed(self.seed * 1000 + self.epoch)
        data = mds.GeneratorDataset(read, column_names=["image", "label"], shuffle=self.train,
                                    num_parallel_workers=1)
        if self.train:
            ops = [vision.Decode(), vision.RandomResizedCrop(self.image_size, scale=self.crop_scale,
                                                             ratio=(3 / 4, 4 / 3))]
            if self.hflip:
                ops.append(vision.RandomHorizontalFlip())
        else:
            ops = [vision.Decode(), vision.Resize(EvalTransform(self.image_size).resize_to),
                   vision.CenterCrop(self.image_size)]
        ops += [vision.Normalize(mean=(mean * 255).tolist(), std=(std * 255).tolist()),
                vision.HWC2CHW()]
        data = data.map(operations=ops, input_columns="image", num_parallel_workers=2)
        return data.batch(self.batch_size, drop_remainder=self.train)

    def __iter__(self):
        pipeline = self._pipeline()
        self.epoch += 1
        for x, y in pipeline.create_tuple_iterator(output_numpy=True, num_epochs=1):
            yield x.astype(np.float32), y.astype(np.int32)


class MindSporeBackend(Backend):
    name = "mindspore"

    def native_step(self, arch, num_classes, **opts):
        return native_step(arch, num_classes, **opts)

    def profile(self, step, steps: int, scratch: str) -> dict[str, float]:
        """MindSpore's ``Profiler`` (CPU): the per-operator-type table its analysis writes."""
        import csv
        from pathlib import Path
        profiler = ms.Profiler(output_path=scratch)
        for _ in range(steps):
            step()
        profiler.stop()
        profiler.analyse()
        out: dict[str, float] = {}
        tables = sorted(Path(scratch).rglob("*op_type*.csv")) or sorted(Path(scratch).rglob("*op_statistic*.csv"))
        if tables:
            with open(tables[0], newline="") as f:
                for row in csv.DictReader(f):
                    name = next((row[k] for k in row if k and "type" in k.lower()), None)
                    time_key = next((k for k in row if k and "time" in k.lower() and "avg" not in k.lower()), None)
                    if name and time_key:
                        out[name] = out.get(name, 0.0) + float(row[time_key] or 0)
            return out
        traces = sorted(Path(scratch).rglob("*trace*.json"))  # a Chrome trace: complete events, µs
        if not traces:
            raise ConfigError(f"MindSpore's profiler wrote no operator table or trace under {scratch}: "
                              f"{sorted(p.name for p in Path(scratch).rglob('*') if p.is_file())[:12]}")
        import json
        events = json.loads(traces[0].read_text())
        for e in events.get("traceEvents", []) if isinstance(events, dict) else events:
            if isinstance(e, dict) and e.get("ph") == "X" and "dur" in e:
                name = str(e.get("name", "?")).split("-op")[0]
                out[name] = out.get(name, 0.0) + float(e["dur"]) / 1e3
        return out

    def versions(self) -> dict[str, str]:
        import mindcv
        return {"mindspore": ms.__version__, "mindcv": mindcv.__version__, "numpy": np.__version__}

    def determinism(self, device: str) -> dict:
        if device != "cpu":
            return super().determinism(device)
        return {"reproducible": True, "how": "mindspore.set_seed; dropout through the backend's SeededDropout "
                "(ops.UniformReal with explicit seeds), because MindSpore 2.9's CPU Dropout kernel draws "
                "different masks from one seed in different processes (mindspore.set_deterministic does not change it)"}

    def runtime_settings(self) -> dict:
        return {"runtime_num_threads": ms.get_context("runtime_num_threads"),
                "jit_level": _JIT_LEVEL or "default", "mode": _configured.get("ctx", ("", ""))[1]}

    def native_loader(self, dataset, *, train: bool, image_size: int, batch_size: int, seed: int,
                      crop_scale=(0.08, 1.0), hflip: bool = True, mean=None, std=None) -> NativeLoader:
        return NativeLoader(dataset, train=train, image_size=image_size, batch_size=batch_size,
                            seed=seed, crop_scale=crop_scale, hflip=hflip, mean=mean, std=std)

    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> MindSporeModel:
        view = arch_view(arch, "mindspore")
        zoo = zoo_requested(view, stem, pretrained, "MindCV's zoo")
        _set_context(device, mode)
        ms.set_seed(seed)
        np.random.seed(seed)
        try:
            net = view.build(num_classes, image_size=image_size, stem=stem, zoo=zoo)
        except OSError as e:  # urllib's URLError included: the zoo download failed
            raise unreachable(arch, f"MindCV's model zoo ({view.names.zoo})", e) from None
        seed_dropouts(net, seed)  # MindSpore's own Dropout does not reproduce for a seed (DETERMINISM)
        model = MindSporeModel(net, arch, mode)
        model.replace_head(num_classes)  # Xavier head, as on every backend
        return model


def native_step(arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu", precision: str = "fp32"):
    """The reference MindSpore loop, in MindSpore's own idiom and sharing no code with the harness:
    the network from MindCV's own constructor (``create_model``; EfficientNet-Lite0, in no zoo, from the
    architecture's builder; a ResNet's stem pool set to the symmetric padding every framework's network
    has, where MindCV pads with "same"), frozen stages by ``requires_grad = False``, frozen BatchNorm statistics by
    ``use_batch_statistics = False``, all in its own lines; ``nn.TrainOneStepCell`` over
    ``nn.WithLossCell`` and the optimizer the configuration names (``nn.Momentum`` or ``nn.Adam``
    over MindSpore's parameter groups: one per weight decay, and per lr multiplier where they
    differ), or for mixed precision ``amp.build_train_network(level="O2")`` (fp16: a fixed loss
    scale); inputs already tensors. Which stage freezes or gets which multiplier is read from the
    strategy's declaration and the spec's stage map, never from the harness's plan functions.
    Returns one step (synchronised)."""
    from mindcv.models import create_model

    from bench.plan.strategies import make_plan
    ms.set_device(DEVICE_TARGETS[device])
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    ms.set_seed(seed)
    view, plan = arch_view(arch, "mindspore"), make_plan(strategy)
    if view.names.zoo:
        net = create_model(view.names.zoo, num_classes=num_classes)
        if hasattr(net, "max_pool"):
            # MindCV's ResNets pool their stem with pad_mode="same", padding (0, 1); the network every
            # framework computes (torchvision's, Gluon's, the harness's) pads (1, 1). The reference computes
            # that same network, or harness/native would compare two networks: one line of MindSpore.
            net.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
    else:
        net = view.build(num_classes, image_size=image_size, stem="imagenet", zoo=False)
    groups: dict[tuple[float, bool], list] = {}
    for name, p in net.parameters_and_names():
        if not p.requires_grad:  # BatchNorm's moving statistics
            continue
        stage = view.stage_of(name)
        if plan.is_frozen(stage):
            p.requires_grad = False
        else:  # weight decay on every tensor, or (no-bias-bn) on weights only
            groups.setdefault((plan.lr_mult[stage], optim.decay_filter == "all" or len(p.shape) > 1), []).append(p)
    for name, cell in net.cells_and_names():
        if isinstance(cell, (nn.BatchNorm2d, nn.BatchNorm1d)) and plan.bn_frozen(view.stage_of(f"{name}.gamma")):
            cell.use_batch_statistics = False
    # MindSpore's documented parameter groups, each with its weight decay (an ungrouped optimizer
    # decays no tensor named gamma or beta: another update than the configuration's), and its lr
    # where the multipliers differ
    lrs = {mult for mult, _ in groups}
    params = [{"params": ps, "weight_decay": optim.weight_decay if decays else 0.0}
              | ({"lr": optim.lr * mult} if len(lrs) > 1 else {}) for (mult, decays), ps in groups.items()]
    # fp16: TrainOneStepCell's sens scales the gradients by LOSS_SCALE, and the optimizer's own
    # loss_scale divides them back (MindSpore's documented pairing for a FixedLossScaleManager
    # that does not drop overflowing updates)
    scale = LOSS_SCALE if precision == "fp16" else 1.0
    if optim.name == "adam":
        opt = nn.Adam(params, learning_rate=optim.lr, weight_decay=optim.weight_decay, loss_scale=scale)
    else:
        opt = nn.Momentum(params, learning_rate=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                          loss_scale=scale)
    if precision == "fp32":
        train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.CrossEntropyLoss()), opt)
    else:
        manager = ms.amp.FixedLossScaleManager(LOSS_SCALE, drop_overflow_update=False) if precision == "fp16" else None
        try:
            with in_scratch():
                train = ms.amp.build_train_network(net, opt, nn.CrossEntropyLoss(), level="O2",
                                                   loss_scale_manager=manager, keep_batchnorm_fp32=True,
                                                   cast_model_type=AMP_DTYPES[precision])
        except (TypeError, ValueError) as e:  # measured: bf16 is not a cast type MindSpore 2.9's O2 accepts
            raise unsupported_precision("MindSpore", ms.__version__, DEVICE_TARGETS[device], precision, e) from None
    train.set_train(True)
    rng = np.random.default_rng(seed)
    x = ms.Tensor(rng.normal(0, 1, (batch, 3, image_size, image_size)).astype(np.float32))
    y = ms.Tensor((np.arange(batch) % num_classes).astype(np.int32))

    def step() -> None:
        out = train(x, y)
        (out[0] if isinstance(out, tuple) else out).asnumpy()
    named = {id(p): name for name, p in net.parameters_and_names()}
    step.lr_of = {named[id(p)]: optim.lr * mult for (mult, _), ps in groups.items() for p in ps}
    # the weight decay the optimizer applies to each parameter, read back from it
    step.wd_of = {named[id(p)]: float(wd.asnumpy()) if on else 0.0
                  for p, on, wd in zip(opt.parameters, opt.decay_flags, opt.weight_decay)}
    return step
