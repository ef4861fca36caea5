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
is capped at AVX2 *before MindSpore is imported* (README, "MindSpore on CPU").
The parent of a sweep puts that cap into this backend's child environment only
(``bench/settings.py``); imported in-process, this module applies the same defaults.
"""
from __future__ import annotations

import os

from .settings import apply_in_process

apply_in_process("mindspore")  # before the framework is imported: ONEDNN_MAX_CPU_ISA on AVX-512

import mindspore as ms  # noqa: E402  (after the oneDNN cap)
import numpy as np  # noqa: E402
from mindspore import nn, ops  # noqa: E402
from mindspore.common.initializer import XavierUniform, Zero  # noqa: E402

from bench.core.errors import BackendUnavailable, ConfigError  # noqa: E402
from bench.core.files import atomic_path  # noqa: E402
from bench.weights.checkpoints import read_mindspore_ckpt  # noqa: E402
from bench.weights.imagenet import unreachable  # noqa: E402

from .base import Backend, Model, OptimConfig, ParamPlan, translate, zoo_requested  # noqa: E402
from .registry import arch_view  # noqa: E402

DEVICE_TARGETS = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
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


def _batchnorms(net: nn.Cell):
    for name, cell in net.cells_and_names():
        if isinstance(cell, (nn.BatchNorm2d, nn.BatchNorm1d)):
            yield name, cell


def param_plan(net: nn.Cell, view, plan) -> ParamPlan:
    """The one translation of a strategy for a MindSpore network (harness and reference loop)."""
    layers = {path: f"{path}.{next(bn.parameters_and_names())[0]}" for path, bn in _batchnorms(net)}
    learnable = [n for n, p in net.parameters_and_names() if p.requires_grad]  # BN statistics are not
    return translate(plan, view, learnable, layers)


def apply_plan(net: nn.Cell, pp: ParamPlan) -> dict[str, ms.Parameter]:
    """Freeze what ``pp`` says (before an optimizer is built); returns the trainable parameters."""
    params = dict(net.parameters_and_names())
    for name in pp.frozen:
        params[name].requires_grad = False
    for path, bn in _batchnorms(net):
        if path in pp.frozen_bn:
            bn.use_batch_statistics = False
    return {n: params[n] for n in pp.lr_mult}


def make_optimizer(groups: list[dict], optim: OptimConfig) -> nn.Optimizer:
    """The MindSpore optimizer of ``optim`` over parameter ``groups`` (``sgd``: Momentum)."""
    if optim.name == "adam":
        return nn.Adam(groups, learning_rate=optim.lr, weight_decay=optim.weight_decay)
    return nn.Momentum(groups, learning_rate=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)


class TrainStep(nn.Cell):
    """One optimizer step as one graph, returning what the runner needs: (mean loss, n correct).

    A cell over ``value_and_grad`` compiles like ``nn.TrainOneStepCell`` (same step
    time, measured); ``mindspore.jit`` over a Python function ran 2.5-3x slower.
    """

    def __init__(self, net: nn.Cell, optimizer: nn.Optimizer):
        super().__init__(auto_prefix=False)
        self.net, self.optimizer = net, optimizer
        self.loss_fn = nn.CrossEntropyLoss(reduction="mean")
        self.grad_fn = ms.value_and_grad(self.forward, None, optimizer.parameters, has_aux=True)

    def forward(self, x, y):
        logits = self.net(x)
        return self.loss_fn(logits, y), logits

    def construct(self, x, y):
        (loss, logits), grads = self.grad_fn(x, y)
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
        self._training: bool | None = None  # set_train walks every cell: only on a change of mode
        self._sync_names()

    def _sync_names(self) -> None:
        """Make every Parameter.name its structural path, so checkpoints use stable names."""
        for name, p in self.net.parameters_and_names():
            if p.name != name:
                p.name = name

    def _params(self) -> dict[str, ms.Parameter]:
        return dict(self.net.parameters_and_names())

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

    def configure(self, plan, optim: OptimConfig) -> None:
        pp = param_plan(self.net, self.table, plan)
        trainable = apply_plan(self.net, pp)
        groups = [{"params": ps, "lr": lr} for lr, ps in pp.by_lr(trainable, optim.lr).items()]
        groups.append({"order_params": list(trainable.values())})
        self.optimizer = make_optimizer(groups, optim)
        self.optim = optim
        self._step = self._build_step()

    def _set_training(self, training: bool) -> None:
        if self._training is not training:
            self.net.set_train(training)
            self._training = training

    def _build_step(self):
        step = TrainStep(self.net, self.optimizer)
        step.set_train(True)  # the network too
        self._training = True
        return step

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self._set_training(True)
        loss, correct = self._step(ms.Tensor(x), ms.Tensor(y.astype(np.int32)))
        return float(loss.asnumpy()), int(correct.asnumpy())  # asnumpy synchronises

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._set_training(False)
        return self.net(ms.Tensor(x)).asnumpy()

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {n: p.asnumpy().copy() for n, p in self._params().items()}  # asnumpy may alias

    def trainable_names(self) -> list[str]:
        return [n for n, p in self._params().items() if p.requires_grad]

    def param_groups(self) -> dict[str, list[str]]:
        if self.optimizer is None:
            return {}
        # the lr the optimizer actually holds for each parameter: read back, not recomputed
        opt = self.optimizer
        lrs = opt.learning_rate if opt.is_group_lr else [opt.learning_rate] * len(opt.parameters)
        groups: dict[str, list[str]] = {}
        for p, lr in zip(opt.parameters, lrs):
            groups.setdefault(f"{float(lr.asnumpy()):.6g}", []).append(p.name)
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

    def versions(self) -> dict[str, str]:
        import mindcv
        return {"mindspore": ms.__version__, "mindcv": mindcv.__version__, "numpy": np.__version__}

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
        model = MindSporeModel(net, arch, mode)
        model.replace_head(num_classes)  # Xavier head, as on every backend
        return model


def native_step(arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu"):
    """The reference MindSpore loop: the same network driven by ``nn.TrainOneStepCell`` over
    ``nn.WithLossCell`` (the fastest documented way measured, see README "Fair speed"), an
    ungrouped ``nn.Momentum``; inputs already tensors. Returns one step (synchronised)."""
    from bench.plan.strategies import make_plan
    model = MindSporeBackend().create_model(arch, num_classes, seed=seed, image_size=image_size, mode=mode,
                                            device=device)
    net = model.net
    apply_plan(net, param_plan(net, model.table, make_plan(strategy)))
    opt = nn.Momentum(net.trainable_params(), learning_rate=optim.lr, momentum=optim.momentum,
                      weight_decay=optim.weight_decay)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.CrossEntropyLoss()), opt)
    train.set_train(True)
    rng = np.random.default_rng(seed)
    x = ms.Tensor(rng.normal(0, 1, (batch, 3, image_size, image_size)).astype(np.float32))
    y = ms.Tensor((np.arange(batch) % num_classes).astype(np.int32))

    def step() -> None:
        train(x, y).asnumpy()
    return step
