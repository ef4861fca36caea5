"""MXNet Gluon backend (d2l "Fine-Tuning" style).

Models come from ``mxnet.gluon.model_zoo.vision``; the head is the ``output``
Dense. Freezing sets ``grad_req='null'`` (and ``use_global_stats`` on the
BatchNorms of frozen stages); per-stage learning rates are Gluon ``lr_mult``.
``mode="graph"`` hybridizes (static_alloc/static_shape), ``"pynative"`` runs imperatively.
"""
from __future__ import annotations

import os
import tempfile

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn
from mxnet.gluon.model_zoo import vision

from bench.architectures import arch_table, models_for
from bench.errors import BackendUnavailable, CheckpointError, ConfigError

from .base import Backend, Model, OptimConfig, check_stem
from .mxnet_models import BUILDERS

# --stem cifar: (index of the 7x7 conv, index of the max-pool) in ``net.features``
CIFAR_STEM = {"resnet18": (0, 3), "resnet50": (0, 3), "resnet18_v2": (1, 4), "resnet50_v2": (1, 4)}


def _to_resnet_v1_5(net: nn.HybridBlock) -> None:
    """Make Gluon's zoo ResNet-50 v1 the canonical ResNet-50 (torchvision, MindCV): v1.5.

    Gluon's BottleneckV1 strides in its first 1x1 conv and gives the 1x1 convs a
    bias; v1.5 strides in the 3x3 conv and has no conv biases. Without this the
    same canonical weights would compute different functions on the two backends.
    """
    for stage in net.features._children.values():
        for block in getattr(stage, "_children", {}).values():
            if isinstance(block, vision.BottleneckV1):
                body = block.body._children
                stride = body["0"]._kwargs["stride"]
                mid, out = body["0"]._channels, body["6"]._channels
                body["0"] = nn.Conv2D(mid, 1, use_bias=False)
                body["3"] = nn.Conv2D(mid, 3, stride, 1, use_bias=False)
                body["6"] = nn.Conv2D(out, 1, use_bias=False)


def _context(device: str) -> mx.Context:
    if device == "cpu":
        return mx.cpu()
    if device == "gpu":
        if mx.context.num_gpus() == 0:
            raise BackendUnavailable("--device gpu: MXNet sees no GPU (num_gpus() == 0, or a CPU-only mxnet build)")
        return mx.gpu(0)
    raise BackendUnavailable(f"--device {device}: MXNet has no {device} support; use cpu or gpu")


def _batchnorms(block: nn.Block, prefix: str = ""):
    """Yield (structural prefix, BatchNorm block) for every BatchNorm under ``block``."""
    for name, child in block._children.items():
        path = f"{prefix}{name}."
        if isinstance(child, nn.BatchNorm):
            yield path, child
        yield from _batchnorms(child, path)


class GluonModel(Model):
    def __init__(self, net: nn.HybridBlock, arch: str, ctx: mx.Context, image_size: int, hybridize: bool):
        self.net = net
        self.arch = arch
        self.table = arch_table(arch, "mxnet")
        self.ctx = ctx
        self.image_size = image_size
        self.hybridize = hybridize
        self.trainer: gluon.Trainer | None = None
        self.optim: OptimConfig | None = None
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self._materialize()

    def _materialize(self) -> None:
        """Run one forward so deferred shapes become concrete."""
        self.net(nd.zeros((1, 3, self.image_size, self.image_size), ctx=self.ctx))

    def _params(self) -> dict[str, gluon.Parameter]:
        return self.net._collect_params_with_prefix()

    def replace_head(self, num_classes: int) -> None:
        head = nn.Dense(num_classes)
        head.initialize(mx.init.Xavier(), ctx=self.ctx)
        setattr(self.net, self.table.head_prefixes[0].rstrip("."), head)
        self._materialize()

    optimizer_state_prefixes = ("moments.", "optimizer.")

    def _read_native(self, path: str) -> dict[str, np.ndarray]:
        try:
            saved = nd.load(str(path))
        except mx.base.MXNetError as e:
            raise CheckpointError(f"cannot read MXNet weights {path}: {str(e).splitlines()[0]}") from None
        if not isinstance(saved, dict):
            raise CheckpointError(f"{path} holds no named parameters")
        return {name: value.asnumpy() for name, value in saved.items()}

    def _assign(self, values: dict[str, np.ndarray]) -> None:
        params = self._params()
        for name, value in values.items():
            params[name].set_data(nd.array(value, ctx=self.ctx, dtype=params[name].dtype))

    def _write_native(self, path: str) -> None:
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        os.close(fd)
        self.net.save_parameters(tmp)
        os.replace(tmp, path)

    def configure(self, plan, optim: OptimConfig) -> None:
        for name, param in self._params().items():
            stage = self.table.stage_of(name)
            if plan.is_frozen(stage):
                param.grad_req = "null"
            param.lr_mult = plan.lr_mult[stage]
        for prefix, bn in _batchnorms(self.net):
            bn._kwargs["use_global_stats"] = plan.bn_frozen(self.table.stage_of(prefix + "gamma"))
        trainable = {n: p for n, p in self._params().items() if p.grad_req != "null"}
        opts = {"learning_rate": optim.lr, "wd": optim.weight_decay}
        if optim.name in ("sgd", "momentum"):
            opts["momentum"] = optim.momentum
            kind = "sgd"
        elif optim.name == "adam":
            kind = "adam"
        else:
            raise ConfigError(f"unknown optimizer {optim.name!r}; valid: sgd, momentum, adam")
        self.trainer = gluon.Trainer(list(trainable.values()), kind, opts)
        self.optim = optim
        if self.hybridize:
            self.net.hybridize(static_alloc=True, static_shape=True)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        xb = nd.array(x, ctx=self.ctx)
        yb = nd.array(y, ctx=self.ctx)
        with autograd.record():
            out = self.net(xb)
            loss = self.loss_fn(out, yb).mean()
        loss.backward()
        self.trainer.step(1)  # loss is already a mean over the batch
        correct = (out.argmax(axis=1) == yb.astype(out.dtype)).sum()
        # Wait for *all* queued work (backward, updates, BN statistics), not just the
        # loss: step times stay honest and a following save sees the updated values.
        mx.nd.waitall()
        return float(loss.asscalar()), int(correct.asscalar())

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.net(nd.array(x, ctx=self.ctx)).asnumpy()

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {n: p.data().asnumpy() for n, p in self._params().items()}

    def trainable_names(self) -> list[str]:
        return [n for n, p in self._params().items() if p.grad_req != "null"]

    def _trainable_by(self, value) -> dict[str, list[str]]:
        """``f"{value(param):.6g}"`` -> names of the trainable parameters with that value."""
        groups: dict[str, list[str]] = {}
        for n, p in self._params().items():
            if p.grad_req != "null":
                groups.setdefault(f"{value(p):.6g}", []).append(n)
        return groups

    def param_groups(self) -> dict[str, list[str]]:
        base = self.optim.lr if self.optim else 1.0
        return self._trainable_by(lambda p: base * p.lr_mult)

    def weight_decay_groups(self) -> dict[str, list[str]]:
        wd = self.optim.weight_decay if self.optim else 0.0
        return self._trainable_by(lambda p: wd * p.wd_mult)


class GluonBackend(Backend):
    name = "mxnet"

    def versions(self) -> dict[str, str]:
        return {"mxnet": mx.__version__, "numpy": np.__version__}

    def models(self) -> list[str]:
        return models_for("mxnet")

    def runtime_settings(self) -> dict:
        return {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE") if k in os.environ}

    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> GluonModel:
        table = arch_table(arch, "mxnet")
        check_stem(stem, pretrained, arch, CIFAR_STEM)
        ctx = _context(device)
        mx.random.seed(seed)
        np.random.seed(seed)
        if arch in BUILDERS:  # defined here, not in Gluon's zoo
            if pretrained == "zoo":
                raise ConfigError(f"Gluon's model zoo has no {arch}; ImageNet weights for it come "
                                  "from a canonical file (--pretrained imagenet resolves it)")
            net = BUILDERS[arch](num_classes, image_size)
            net.initialize(mx.init.Xavier(), ctx=ctx)
            return GluonModel(net, arch, ctx, image_size, mode == "graph")
        if pretrained == "zoo":
            # resnet50: Gluon's ImageNet weights are for v1 (stride in the 1x1 conv), so the
            # zoo model stays v1; canonical weights (v1.5) do not load into it.
            net = vision.get_model(table.native_name, pretrained=True, ctx=ctx)
            model = GluonModel(net, arch, ctx, image_size, mode == "graph")
            model.replace_head(num_classes)
            return model
        net = vision.get_model(table.native_name, classes=num_classes)
        if arch == "resnet50":
            _to_resnet_v1_5(net)
        if stem == "cifar":
            conv, pool = CIFAR_STEM[arch]
            net.features._children[str(conv)] = nn.Conv2D(64, 3, 1, 1, use_bias=False, in_channels=3)
            net.features._children[str(pool)] = nn.HybridLambda(lambda F, x: x)
        net.initialize(mx.init.Xavier(), ctx=ctx)
        return GluonModel(net, arch, ctx, image_size, mode == "graph")
