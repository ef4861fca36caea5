"""MindSpore 2.9 + MindCV 0.3 backend.

Models come from ``mindcv.models.create_model``; the head is MindCV's
``classifier`` Dense. Freezing sets ``requires_grad=False`` before the optimizer
is built (and ``use_batch_statistics=False`` on the BatchNorms of frozen stages);
per-stage learning rates are MindSpore parameter groups with ``order_params``.
``mode="graph"`` compiles the train step with ``mindspore.jit`` (GRAPH_MODE);
``"pynative"`` runs it eagerly.

CPU speed: on CPUs with AVX-512, the oneDNN inside MindSpore 2.9 picks a
reference convolution (``jit_uni_ncsp:conv+ref:any``, ~1 GFLOP/s). Capping the
ISA at AVX2 *before MindSpore is imported* makes it pick ``gemm:jit`` instead;
see README "MindSpore on CPU". The cap is applied only on such CPUs, only here,
and recorded in every result (``environment.runtime``).
"""
from __future__ import annotations

import os

from bench.environment import cpu_flags

ISA_ENV = "ONEDNN_MAX_CPU_ISA"
_ISA_SET_BY_BENCH = False
if ISA_ENV not in os.environ and os.environ.get("BENCH_MINDSPORE_ISA_CAP", "auto") == "auto":
    if "avx512f" in cpu_flags():
        os.environ[ISA_ENV] = "AVX2"
        _ISA_SET_BY_BENCH = True

import mindspore as ms  # noqa: E402  (after the oneDNN cap)
import numpy as np  # noqa: E402
from mindspore import nn  # noqa: E402
from mindspore.common.initializer import XavierUniform, Zero  # noqa: E402

from bench.architectures import arch_table, models_for  # noqa: E402
from bench.errors import BackendUnavailable, CheckpointError, ConfigError  # noqa: E402

from .base import Backend, Model, OptimConfig, check_stem  # noqa: E402
from .mindspore_models import BUILDERS  # noqa: E402

DEVICE_TARGETS = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
OPTIMIZER_STATE_PREFIXES = ("moments.", "accum.", "adam_m.", "adam_v.", "moment1.", "moment2.")
OPTIMIZER_SCALARS = ("learning_rate", "global_step", "momentum", "beta1_power", "beta2_power")
_configured: dict = {}


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
    _configured["ctx"] = want


def _head_path(arch: str) -> list[str]:
    """Attribute path of the head cell, from the stage table ('classifier.3.' -> ['classifier', '3'])."""
    return arch_table(arch, "mindspore").head_prefixes[0].rstrip(".").split(".")


def _batchnorms(net: nn.Cell):
    for name, cell in net.cells_and_names():
        if isinstance(cell, (nn.BatchNorm2d, nn.BatchNorm1d)):
            yield name + ".", cell


class MindSporeModel(Model):
    def __init__(self, net: nn.Cell, arch: str, mode: str):
        self.net = net
        self.arch = arch
        self.table = arch_table(arch, "mindspore")
        self.mode = mode
        self.optimizer = None
        self.optim: OptimConfig | None = None
        self._step = None
        self._sync_names()

    def _sync_names(self) -> None:
        """Make every Parameter.name its structural path, so checkpoints use stable names."""
        for name, p in self.net.parameters_and_names():
            if p.name != name:
                p.name = name

    def _params(self) -> dict[str, ms.Parameter]:
        return dict(self.net.parameters_and_names())

    def _head_cell(self) -> tuple[nn.Cell, str]:
        *parents, leaf = _head_path(self.arch)
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
        try:
            saved = ms.load_checkpoint(str(path))
        except (ValueError, RuntimeError, OSError) as e:
            raise CheckpointError(f"cannot read MindSpore checkpoint {path}: {str(e).splitlines()[0]}") from None
        return {name: value.asnumpy() for name, value in saved.items()}

    def _assign(self, values: dict[str, np.ndarray]) -> None:
        params = self._params()
        for name, value in values.items():
            params[name].set_data(ms.Tensor(value, dtype=params[name].dtype))

    def _write_native(self, path: str) -> None:
        tmp = f"{path}.tmp.ckpt"
        ms.save_checkpoint(self.net, tmp)
        os.replace(tmp, path)

    def configure(self, plan, optim: OptimConfig) -> None:
        params = self._params()
        for name, p in params.items():
            stage = self.table.stage_of(name)
            if plan.is_frozen(stage) and p.requires_grad:
                p.requires_grad = False
        for prefix, bn in _batchnorms(self.net):
            if plan.bn_frozen(self.table.stage_of(prefix + "gamma")):
                bn.use_batch_statistics = False
        trainable = [p for p in params.values() if p.requires_grad]
        by_lr: dict[float, list] = {}
        for name, p in params.items():
            if p.requires_grad:
                by_lr.setdefault(optim.lr * plan.lr_mult[self.table.stage_of(name)], []).append(p)
        groups = [{"params": ps, "lr": lr} for lr, ps in by_lr.items()]
        groups.append({"order_params": trainable})
        if optim.name in ("sgd", "momentum"):
            self.optimizer = nn.Momentum(groups, learning_rate=optim.lr, momentum=optim.momentum,
                                         weight_decay=optim.weight_decay)
        elif optim.name == "adam":
            self.optimizer = nn.Adam(groups, learning_rate=optim.lr, weight_decay=optim.weight_decay)
        else:
            raise ConfigError(f"unknown optimizer {optim.name!r}; valid: sgd, momentum, adam")
        self.optim = optim
        self._step = self._build_step()

    def _build_step(self):
        loss_fn = nn.CrossEntropyLoss(reduction="mean")
        net, optimizer = self.net, self.optimizer

        def forward(x, y):
            logits = net(x)
            return loss_fn(logits, y), logits

        grad_fn = ms.value_and_grad(forward, None, optimizer.parameters, has_aux=True)

        def step(x, y):
            (loss, logits), grads = grad_fn(x, y)
            optimizer(grads)
            return loss, logits

        return ms.jit(step) if self.mode == "graph" else step

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self.net.set_train(True)
        loss, logits = self._step(ms.Tensor(x), ms.Tensor(y.astype(np.int32)))
        logits = logits.asnumpy()  # synchronises
        return float(loss.asnumpy()), int((logits.argmax(axis=1) == y).sum())

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.net.set_train(False)
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

    def versions(self) -> dict[str, str]:
        import mindcv
        return {"mindspore": ms.__version__, "mindcv": mindcv.__version__, "numpy": np.__version__}

    def models(self) -> list[str]:
        return models_for("mindspore")

    def runtime_settings(self) -> dict:
        out = {ISA_ENV: os.environ.get(ISA_ENV, "unset (oneDNN default)")}
        if _ISA_SET_BY_BENCH:
            out["isa_cap"] = "set by bench: AVX-512 CPU (see README, MindSpore on CPU)"
        for k in ("OMP_NUM_THREADS",):
            if k in os.environ:
                out[k] = os.environ[k]
        return out

    def native_loader(self, dataset, *, train: bool, image_size: int, batch_size: int, seed: int,
                      crop_scale=(0.08, 1.0), hflip: bool = True, mean=None, std=None) -> NativeLoader:
        return NativeLoader(dataset, train=train, image_size=image_size, batch_size=batch_size,
                            seed=seed, crop_scale=crop_scale, hflip=hflip, mean=mean, std=std)

    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> MindSporeModel:
        from mindcv.models import create_model

        table = arch_table(arch, "mindspore")
        check_stem(stem, pretrained, arch, ("resnet18", "resnet50"))
        _set_context(device, mode)
        ms.set_seed(seed)
        np.random.seed(seed)
        if arch in BUILDERS:  # defined here, not in MindCV
            if pretrained == "zoo":
                raise ConfigError(f"MindCV has no {arch}; ImageNet weights for it come from a "
                                  "canonical file (--pretrained imagenet resolves it)")
            model = MindSporeModel(BUILDERS[arch](num_classes, image_size), arch, mode)
            model.replace_head(num_classes)  # Xavier head, as on every backend
            return model
        if pretrained == "zoo":
            net = create_model(table.native_name, pretrained=True)
            model = MindSporeModel(net, arch, mode)
            model.replace_head(num_classes)
            return model
        net = create_model(table.native_name, num_classes=num_classes, pretrained=False)
        if arch.startswith("resnet"):
            # MindCV pools with pad_mode="same": padding (0, 1) on 112 px, so the window
            # sits one pixel off Gluon's and torchvision's symmetric padding of 1 and the
            # same canonical weights give different logits. Pool as the canonical ResNet does.
            net.max_pool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
        if stem == "cifar":
            net.conv1 = nn.Conv2d(3, 64, 3, stride=1, pad_mode="pad", padding=1, weight_init="HeNormal")
            net.max_pool = nn.Identity()
        model = MindSporeModel(net, arch, mode)
        model.replace_head(num_classes)  # Xavier head, as on every backend
        return model
