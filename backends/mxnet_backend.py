"""MXNet Gluon backend (d2l "Fine-Tuning" style), models from GluonCV.

Models come from ``backends/mxnet_models.py`` (GluonCV's zoo brought into line
with the canonical architectures). A strategy's plan (``backends.base.translate``)
becomes ``grad_req='null'`` on frozen parameters, ``use_global_stats`` on the
BatchNorms whose statistics stay fixed, and Gluon ``lr_mult`` per parameter. ``mode="graph"`` hybridizes (static_alloc/static_shape),
``"pynative"`` runs imperatively.
"""
from __future__ import annotations

import os

import json

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.contrib import amp
from mxnet.gluon import nn

from bench.core.errors import BackendUnavailable
from bench.core.files import atomic_path
from bench.weights.checkpoints import read_mxnet_params
from bench.weights.imagenet import unreachable

from .base import Backend, Model, OptimConfig, ParamPlan, translate, unsupported_precision, zoo_requested
from .mxnet_models import replace_child
from .registry import arch_view


AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def _context(device: str) -> mx.Context:
    if device == "cpu":
        return mx.cpu()
    if device == "gpu":
        if mx.context.num_gpus() == 0:
            raise BackendUnavailable("--device gpu: MXNet sees no GPU (num_gpus() == 0, or a CPU-only mxnet build)")
        return mx.gpu(0)
    raise BackendUnavailable(f"--device {device}: MXNet has no {device} support; use cpu or gpu")


def _blocks(block: nn.Block, kind, prefix: str = ""):
    """Yield (structural path, block) for every block of type ``kind`` under ``block``."""
    for name, child in block._children.items():
        path = f"{prefix}{name}"
        if isinstance(child, kind):
            yield path, child
        yield from _blocks(child, kind, path + ".")


def param_plan(net: nn.Block, view, plan, decay_filter: str = "all") -> ParamPlan:
    """The harness's one translation of a strategy for a Gluon network (the reference loop has its own)."""
    params = net._collect_params_with_prefix()
    layers = {path: f"{path}.{next(iter(bn._collect_params_with_prefix()))}" for path, bn in _blocks(net, nn.BatchNorm)}
    return translate(plan, view, {n: p.shape for n, p in params.items() if p.grad_req != "null"}, layers,
                     decay_filter)


def apply_plan(net: nn.Block, pp: ParamPlan) -> dict[str, gluon.Parameter]:
    """Freeze what ``pp`` says, set each parameter's ``lr_mult`` and (decay filter) ``wd_mult``;
    returns the trainable parameters."""
    params = net._collect_params_with_prefix()
    for name in pp.frozen:
        params[name].grad_req = "null"
    for name, mult in pp.lr_mult.items():
        params[name].lr_mult = mult
        params[name].wd_mult = 0.0 if name in pp.no_decay else 1.0
    for path, bn in _blocks(net, nn.BatchNorm):
        bn._kwargs["use_global_stats"] = path in pp.frozen_bn
    return {n: params[n] for n in pp.lr_mult}


def amp_convert(net: nn.HybridBlock, precision: str, ctx, image_size: int):
    """MXNet AMP (``amp.convert_hybrid_block``): the network's graph with low-precision casts
    before the operators AMP lists for the dtype (convolutions, dense layers), fp32 parameters
    kept. The converted block holds its own Parameters: returns it and structural name -> its
    Parameter, carrying the plan's grad_req, lr_mult and wd_mult (apply the plan first)."""
    original = net._collect_params_with_prefix()
    try:
        net.hybridize()
        net(nd.zeros((1, 3, image_size, image_size), ctx=ctx))
        converted = amp.convert_hybrid_block(net, target_dtype=AMP_DTYPES[precision], ctx=ctx)
        converted(nd.zeros((1, 3, image_size, image_size), ctx=ctx)).wait_to_read()
    except mx.base.MXNetError as e:
        raise unsupported_precision("MXNet", mx.__version__, str(ctx), precision, e) from None
    by_name = converted.collect_params()
    mapping = {}
    for name, p in original.items():
        q = by_name[p.name]
        q.grad_req, q.lr_mult, q.wd_mult = p.grad_req, p.lr_mult, p.wd_mult
        mapping[name] = q
    mx.nd.waitall()
    return converted, mapping


@mx.optimizer.register
class ProtocolSGD(mx.optimizer.Optimizer):
    """SGD with the lr outside the momentum buffer, ``a = m * a + g'``, ``w -= lr * a`` (Nesterov:
    ``w -= lr * (g' + m * a)``), registered through MXNet's own optimizer API. Gluon's ``sgd`` and
    ``nag`` keep the lr inside the buffer (``v = m * v - lr * g'``): the same update while the lr is
    constant, another one under a schedule (``bench.plan.recipe``; measured: ``nag_mom_update`` at
    lr 0.1 then 0.2 moves a weight to 0.6745, this form to 0.634)."""

    def __init__(self, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def create_state(self, index, weight):
        return nd.zeros(weight.shape, weight.context, dtype=weight.dtype) if self.momentum else None

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        g = grad * self.rescale_grad + wd * weight
        if state is None:
            weight[:] -= lr * g
            return
        state[:] = self.momentum * state + g
        weight[:] -= lr * (g + self.momentum * state if self.nesterov else state)


def make_trainer(params, optim: OptimConfig) -> gluon.Trainer:
    """The Gluon optimizer of ``optim`` (``sgd`` and ``momentum``: SGD with momentum; ``nag`` for
    Nesterov; under a changing lr with momentum, :class:`ProtocolSGD`) over ``params``: the network's
    own ``ParameterDict`` (Gluon's documented form; frozen parameters, ``grad_req='null'``, are passed
    over at each step). A list of the trainable parameters instead cost ~20% of a ResNet-18 step at
    32 px for bit-identical updates (measured, docs/speed.md)."""
    if optim.name == "adam":
        return gluon.Trainer(params, "adam", {"learning_rate": optim.lr, "wd": optim.weight_decay})
    if optim.schedule is not None and optim.momentum:
        return gluon.Trainer(params, "protocolsgd", {"learning_rate": optim.lr, "wd": optim.weight_decay,
                                                     "momentum": optim.momentum, "nesterov": optim.nesterov})
    return gluon.Trainer(params, "nag" if optim.nesterov else "sgd",
                         {"learning_rate": optim.lr, "wd": optim.weight_decay, "momentum": optim.momentum})


class SmoothedCrossEntropy(nn.HybridBlock):
    """Cross-entropy against ``(1 - eps) * onehot + eps / K`` per sample (GluonCV's ``smooth``
    targets, written without K): ``(1 - eps) * -log p[y] + eps * mean_k(-log p[k])``."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def hybrid_forward(self, F, out, y):
        logp = F.log_softmax(out, axis=-1)
        return -(1.0 - self.eps) * F.pick(logp, y, axis=-1) - self.eps * F.mean(logp, axis=-1)


def loss_block(optim: OptimConfig | None):
    eps = optim.label_smoothing if optim else 0.0
    return SmoothedCrossEntropy(eps) if eps else gluon.loss.SoftmaxCrossEntropyLoss()


class _LossAndCorrect(nn.HybridBlock):
    """A train step's forward as one graph: the mean loss (Gluon's idiom with ``trainer.step(1)``)
    and the number correct (separate imperative ops cost ~10% of a 10 ms step, measured)."""

    def __init__(self, net: nn.HybridBlock, loss_fn):
        super().__init__()
        self.net, self.loss_fn = net, loss_fn

    def hybrid_forward(self, F, x, y):
        out = self.net(x)
        return self.loss_fn(out, y).mean(), F.sum(F.argmax(out, axis=1) == y)


class GluonModel(Model):
    def __init__(self, net: nn.HybridBlock, arch: str, ctx: mx.Context, image_size: int, hybridize: bool):
        self.net = net
        self.arch = arch
        self.table = arch_view(arch, "mxnet")
        self.ctx = ctx
        self.image_size = image_size
        self.hybridize = hybridize
        self.trainer: gluon.Trainer | None = None
        self.optim: OptimConfig | None = None
        self._step = _LossAndCorrect(net, gluon.loss.SoftmaxCrossEntropyLoss())
        self._batch: tuple | None = None
        self._forward = net                 # the block that trains and predicts (AMP: its converted copy)
        self._param_map: dict[str, gluon.Parameter] | None = None
        self.precision = "fp32"
        self._materialize()

    def _materialize(self) -> None:
        """Run one forward so deferred shapes become concrete (and wait for all of it: see ``predict``)."""
        self.net(nd.zeros((1, 3, self.image_size, self.image_size), ctx=self.ctx))
        mx.nd.waitall()

    def _params(self) -> dict[str, gluon.Parameter]:
        """Structural name -> the Parameter that trains (after AMP conversion: the converted block's)."""
        return self._param_map or self.net._collect_params_with_prefix()

    def replace_head(self, num_classes: int) -> None:
        head = nn.Dense(num_classes)
        head.initialize(mx.init.Xavier(), ctx=self.ctx)
        *parents, leaf = self.table.head_path
        owner = self.net
        for name in parents:
            owner = getattr(owner, name)
        replace_child(owner, leaf, head)
        self._materialize()

    optimizer_state_prefixes = ("moments.", "optimizer.")

    def _read_native(self, path: str) -> dict[str, np.ndarray]:
        return read_mxnet_params(path)  # NumPy only: MXNet's C++ loader never sees untrusted bytes

    def _assign(self, values: dict[str, np.ndarray]) -> None:
        mx.nd.waitall()  # no pending in-place weight reorder may land after these writes (see predict)
        params = self._params()
        for name, value in values.items():
            params[name].set_data(nd.array(value, ctx=self.ctx, dtype=params[name].dtype))
        mx.nd.waitall()

    def _write_native(self, path: str) -> None:
        with atomic_path(path) as tmp:
            self.net.save_parameters(str(tmp))

    def configure(self, plan, optim: OptimConfig, precision: str = "fp32") -> None:
        trainable = apply_plan(self.net, param_plan(self.net, self.table, plan, optim.decay_filter))
        self.precision = precision
        self.optim = optim
        self._step = _LossAndCorrect(self.net, loss_block(optim))
        if precision != "fp32":
            trainable = self._convert(precision)
        self.trainer = make_trainer(self._forward.collect_params(), optim)
        self._stage_lr_mult = {}
        for name, p in trainable.items():
            self._stage_lr_mult.setdefault(self.table.stage_of(name), p.lr_mult)
        self._updates = 0
        if precision == "fp16":
            amp.init_trainer(self.trainer)  # dynamic loss scaling
        if self.hybridize:
            self._forward.hybridize(static_alloc=True, static_shape=True)
            self._step.hybridize(static_alloc=True, static_shape=True)

    def _convert(self, precision: str) -> dict[str, gluon.Parameter]:
        """Train and predict through the AMP-converted graph (``amp_convert``); its Parameters take
        over by structural name. Returns the trainable ones."""
        converted, self._param_map = amp_convert(self.net, precision, self.ctx, self.image_size)
        self._forward = self._amp_graph = converted
        self._step = _LossAndCorrect(converted, loss_block(self.optim))
        return {n: q for n, q in self._param_map.items() if q.grad_req != "null"}

    def precision_report(self) -> dict:
        if self.precision == "fp32":
            return {"requested": "fp32", "ops": {}, "master_weights": "float32", "loss_scaling": None}
        from mxnet.contrib.amp.lists import symbol_bf16, symbol_fp16
        lists = symbol_bf16 if self.precision == "bf16" else symbol_fp16
        low = set(getattr(lists, "BF16_FUNCS" if self.precision == "bf16" else "FP16_FUNCS"))
        graph = json.loads(self._amp_graph._cached_graph[1].tojson())
        ops: dict[str, dict[str, int]] = {}
        for node in graph["nodes"]:
            if node["op"] in ("null", "amp_cast", "amp_multicast"):
                continue
            dtype = AMP_DTYPES[self.precision] if node["op"] in low else "float32"
            ops.setdefault(dtype, {}).setdefault(node["op"], 0)
            ops[dtype][node["op"]] += 1
        return {"requested": self.precision, "ops": ops, "master_weights": "float32",
                "loss_scaling": "dynamic (amp.init_trainer)" if self.precision == "fp16" else None,
                "how": "mxnet.contrib.amp.convert_hybrid_block; graph operators by AMP's lists"}

    def _inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[nd.NDArray, nd.NDArray]:
        """Copy a batch into arrays allocated once per shape (the loader's shapes are fixed)."""
        if self._batch is None or self._batch[0].shape != x.shape:
            self._batch = (nd.zeros(x.shape, ctx=self.ctx), nd.zeros(y.shape, ctx=self.ctx))
        self._batch[0][:] = x
        self._batch[1][:] = y
        return self._batch

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        xb, yb = self._inputs(x, y)
        with autograd.record():
            loss, correct = self._step(xb, yb)
        if self.precision == "fp16":
            with amp.scale_loss(loss, self.trainer) as scaled:
                autograd.backward(scaled)
        else:
            loss.backward()
        if self.optim.schedule is not None:  # the schedule's value for this step: the base every lr_mult scales
            self.trainer.set_learning_rate(self.optim.schedule.lr_at(self._updates))
        self.trainer.step(1)  # the loss is already the batch mean
        self._updates += 1
        # Wait for *all* queued work (backward, updates, BN statistics), not just the
        # loss: step times stay honest and a following save sees the updated values.
        mx.nd.waitall()
        return float(loss.asscalar()), int(correct.asscalar())

    def disable_dropout(self) -> int:
        dropouts = [block for _, block in _blocks(self.net, nn.Dropout)]
        for block in dropouts:
            block._rate = 0.0  # Gluon's Dropout is the identity at rate 0
        return len(dropouts)

    def applied_lr(self) -> dict[str, float]:
        """Each trained stage's lr at the last step: the Trainer's learning rate x the stage's
        ``lr_mult``, read from MXNet's objects."""
        return {stage: float(self.trainer.learning_rate * mult) for stage, mult in self._stage_lr_mult.items()}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """An inference forward with oneDNN (MKLDNN) reorders convolution weights to its own layout
        in place, in an engine operation of its own that the output does not wait for; under
        ``ThreadedEngine`` a later write to those weights (loading weights, an optimizer step) could
        run before it and be overwritten by the old values (2-3 of 24 canonical round trips lost a
        conv weight, measured; none with MKLDNN off or NaiveEngine). So all work is waited for."""
        out = self._forward(nd.array(x, ctx=self.ctx)).astype("float32").asnumpy()
        mx.nd.waitall()
        return out

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

    def native_step(self, arch, num_classes, **opts):
        return native_step(arch, num_classes, **opts)

    def profile(self, step, steps: int, scratch: str) -> dict[str, float]:
        """MXNet's profiler with aggregate statistics: total time per operator."""
        import json
        mx.nd.waitall()
        mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=f"{scratch}/mxnet-profile.json")
        mx.profiler.set_state("run")
        for _ in range(steps):
            step()
        mx.nd.waitall()
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(reset=True, format="json"))
        out: dict[str, float] = {}
        for domain, ops in (stats.get("Time") or {}).items():
            if "operator" not in domain.lower():
                continue
            for name, row in ops.items():
                out[name] = out.get(name, 0.0) + float(row.get("Total", 0.0))
        return out

    def versions(self) -> dict[str, str]:
        return {"mxnet": mx.__version__, "numpy": np.__version__}

    def determinism(self, device: str) -> dict:
        if device != "cpu":
            return super().determinism(device)
        return {"reproducible": True, "how": "mx.random.seed and numpy's seed; MXNet's CPU operators used here are "
                "deterministic (MXNET_ENFORCE_DETERMINISM concerns GPU kernels)"}

    def runtime_settings(self) -> dict:
        return {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MXNET_ENGINE_TYPE") if k in os.environ}

    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> GluonModel:
        view = arch_view(arch, "mxnet")
        zoo = zoo_requested(view, stem, pretrained, "GluonCV's zoo")
        ctx = _context(device)
        mx.random.seed(seed)
        np.random.seed(seed)
        try:
            net = view.build(num_classes, image_size=image_size, stem=stem, ctx=ctx, zoo=zoo)
        except OSError as e:  # requests' ConnectionError included: the zoo download failed
            raise unreachable(arch, f"GluonCV's model zoo ({view.names.zoo})", e) from None
        if not zoo:
            net.initialize(mx.init.Xavier(), ctx=ctx)
        model = GluonModel(net, arch, ctx, image_size, mode == "graph")
        if zoo:
            model.replace_head(num_classes)
        return model


def native_step(arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu", precision: str = "fp32"):
    """The reference Gluon loop, in Gluon's own idiom and sharing no code with the harness: the
    network from GluonCV's own constructor (``model_zoo.get_model``; EfficientNet-Lite0, in no zoo,
    from the architecture's builder), Xavier init, frozen stages by ``grad_req = 'null'``, lr
    multipliers by ``lr_mult``, frozen BatchNorm statistics by ``use_global_stats``, all in its own
    lines; ``hybridize(static_alloc, static_shape)``; a ``gluon.Trainer`` over ``net.collect_params()``
    (Gluon's documented form) with the optimizer the configuration names; a scalar mean loss,
    ``trainer.step(1)`` and ``loss.asscalar()`` to synchronise; AMP by ``amp.convert_hybrid_block``.
    Which stage freezes or gets which multiplier is read from the strategy's declaration and the
    spec's stage map, never from the harness's plan functions. Returns one step as a callable."""
    from bench.plan.strategies import make_plan
    from .mxnet_models import gluoncv
    ctx = mx.gpu(0) if device == "gpu" else mx.cpu()
    mx.random.seed(seed)
    view, plan = arch_view(arch, "mxnet"), make_plan(strategy)
    if view.names.zoo:
        net = gluoncv().model_zoo.get_model(view.names.zoo, classes=num_classes)
    else:
        net = view.build(num_classes, image_size=image_size, stem="imagenet", ctx=ctx, zoo=False)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    x = nd.array(np.random.default_rng(seed).normal(0, 1, (batch, 3, image_size, image_size)), ctx=ctx)
    y = nd.array(np.arange(batch) % num_classes, ctx=ctx)
    net(x)
    structural = net._collect_params_with_prefix()
    stage_of = {p.name: view.stage_of(name) for name, p in structural.items()}
    for p in net.collect_params().values():
        if plan.is_frozen(stage_of[p.name]):
            p.grad_req = "null"
        else:
            p.lr_mult = plan.lr_mult[stage_of[p.name]]
            if optim.decay_filter != "all" and len(p.shape) <= 1:  # no-bias-bn: weights only decay
                p.wd_mult = 0.0
    pending = [net]
    while pending:  # every BatchNorm whose stage keeps its statistics
        block = pending.pop()
        pending.extend(block._children.values())
        if isinstance(block, nn.BatchNorm) and plan.bn_frozen(stage_of[block.gamma.name]):
            block._kwargs["use_global_stats"] = True
    if precision != "fp32":
        try:
            net.hybridize()
            net(x)
            amped = amp.convert_hybrid_block(net, target_dtype=AMP_DTYPES[precision], ctx=ctx)
        except mx.base.MXNetError as e:
            raise unsupported_precision("MXNet", mx.__version__, str(ctx), precision, e) from None
        before = {p.name: p for p in net.collect_params().values()}
        for p in amped.collect_params().values():  # the converted block's own Parameters, same names
            if p.name in before:  # as set above (BatchNorm's running statistics stay without a gradient)
                p.grad_req, p.lr_mult, p.wd_mult = before[p.name].grad_req, before[p.name].lr_mult, \
                    before[p.name].wd_mult
        net = amped
    if mode == "graph":
        net.hybridize(static_alloc=True, static_shape=True)
    settings = {"learning_rate": optim.lr, "wd": optim.weight_decay}
    trainer = gluon.Trainer(net.collect_params(), "adam" if optim.name == "adam" else "nag" if optim.nesterov
                            else "sgd", settings if optim.name == "adam" else settings | {"momentum": optim.momentum})
    if precision == "fp16":
        try:
            amp.init_trainer(trainer)
        except AssertionError as e:  # Gluon's loss scaling wants amp.init(), which patches every operator
            raise unsupported_precision("MXNet", mx.__version__, str(ctx), precision, e) from None
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

    def step() -> None:
        with autograd.record():
            loss = loss_fn(net(x), y).mean()
        if precision == "fp16":
            with amp.scale_loss(loss, trainer) as scaled:
                autograd.backward(scaled)
        else:
            loss.backward()
        trainer.step(1)
        loss.asscalar()
    step.lr_of = {n: optim.lr * p.lr_mult for n, p in structural.items() if p.grad_req != "null"}
    step.wd_of = {n: optim.weight_decay * p.wd_mult for n, p in structural.items() if p.grad_req != "null"}
    return step
