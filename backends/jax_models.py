"""Every architecture of the suite in Flax (``flax.linen``), NHWC, from the architecture specs.

Module names are the canonical path segments (torchvision's; lukemelas' for EfficientNet-Lite),
so a parameter's canonical name is its path in the variables joined by dots, with Flax's leaf
names mapped once (``LEAVES``: ``kernel`` -> ``weight`` in the canonical layout, ``scale`` ->
``weight``, the ``batch_stats`` ``mean``/``var`` -> ``running_mean``/``running_var``); the JAX
backend's rename rules are empty, like PyTorch's. Structure, BatchNorm eps and momentum come from
the spec. Builders are ``f(spec, num_classes, *, image_size, stem, dtype, frozen_bn, dropout)``
and return a module called as ``module.apply(variables, x_nhwc, train=...)``.

``BatchNorm`` is the suite's: Flax's ``nn.BatchNorm`` keeps the biased batch variance as its
running variance, where every other backend (and ``bench.parity``'s reference) keeps the unbiased
one; a layer whose path is in ``Ctx.frozen_bn`` normalises with, and never updates, its running
statistics (a strategy's frozen BatchNorm). ``dtype``: what convolutions and dense layers compute
in (bf16 for mixed precision), parameters always float32, BatchNorm always float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
from flax import linen as nn

from architectures.efficientnet import mbconv_blocks, same_padding
from architectures.mobilenetv3 import LAST, PRE_LOGITS, STEM
from architectures.mobilenetv3 import blocks as mobilenet_blocks

# Flax leaf -> (canonical leaf, collection); a 4-D kernel is HWIO here, OIHW canonically; a 2-D one
# (in, out) here, (out, in) canonically
LEAVES = {("params", "kernel"): "weight", ("params", "scale"): "weight", ("params", "bias"): "bias",
          ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}
# dropout layers per family (``Model.disable_dropout`` reports how many it turned off)
DROPOUTS = {"resnet": 0, "densenet": 0, "mobilenet_v3": 1, "efficientnet_lite": 1}


@dataclass(frozen=True)
class Ctx:
    """What every layer of one network reads: the spec's BatchNorm constants, the compute dtype,
    the BatchNorm layers (canonical paths) whose statistics stay fixed, dropout on or off."""

    bn_eps: float
    bn_momentum: float
    dtype: object = jnp.float32
    frozen_bn: frozenset = field(default_factory=frozenset)
    dropout: bool = True


def _ctx(spec, dtype=None, frozen_bn=frozenset(), dropout=True) -> Ctx:
    return Ctx(spec.bn_eps, spec.bn_momentum, dtype or jnp.float32, frozenset(frozen_bn), dropout)


# torch's initialisations, for training from scratch (loaded weights replace them)
KAIMING_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")   # kaiming_normal_(mode="fan_out")
KAIMING_IN = nn.initializers.variance_scaling(2.0, "fan_in", "normal")     # kaiming_normal_()
TORCH_DEFAULT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")  # nn.Conv2d/nn.Linear default


class BatchNorm(nn.Module):
    ctx: Ctx

    @nn.compact
    def __call__(self, x, train: bool):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        mean_v = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        var_v = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        x32 = x.astype(jnp.float32)
        if train and ".".join(self.scope.path) not in self.ctx.frozen_bn:
            mean = x32.mean((0, 1, 2))
            var = jnp.square(x32 - mean).mean((0, 1, 2))
            if not self.is_initializing():
                n, m = x.size // c, self.ctx.bn_momentum
                mean_v.value = m * mean_v.value + (1 - m) * jax.lax.stop_gradient(mean)
                var_v.value = m * var_v.value + (1 - m) * jax.lax.stop_gradient(var) * (n / max(n - 1, 1))
        else:
            mean, var = mean_v.value, var_v.value
        a = scale * jax.lax.rsqrt(var + self.ctx.bn_eps)
        return (x32 * a + (bias - mean * a)).astype(self.ctx.dtype)


def conv(ctx: Ctx, features: int, kernel: int, stride: int = 1, *, groups: int = 1, bias: bool = False,
         padding=None, init=KAIMING_OUT, name: str | None = None) -> nn.Conv:
    p = (kernel - 1) // 2 if padding is None else padding
    pad = ((p, p), (p, p)) if isinstance(p, int) else p
    return nn.Conv(features, (kernel, kernel), (stride, stride), padding=pad, feature_group_count=groups,
                   use_bias=bias, dtype=ctx.dtype, param_dtype=jnp.float32, kernel_init=init, name=name)


def dense(ctx: Ctx, features: int, init=TORCH_DEFAULT, name: str | None = None) -> nn.Dense:
    return nn.Dense(features, dtype=ctx.dtype, param_dtype=jnp.float32, kernel_init=init, name=name)


def head(num_classes: int, name: str) -> nn.Dense:
    """A new classifier: Xavier-uniform weights, zero bias, as on every backend."""
    return nn.Dense(num_classes, param_dtype=jnp.float32, kernel_init=nn.initializers.xavier_uniform(), name=name)


def _items(config: dict, *keys) -> tuple:
    """``config``'s ``keys`` as a hashable tuple of items (lists as tuples)."""
    return tuple((k, tuple(config[k]) if isinstance(config[k], list) else config[k]) for k in keys)


def _pool(x):
    return x.mean((1, 2))


# --- ResNet (torchvision v1.5) -----------------------------------------------------------

class Downsample(nn.Module):
    ctx: Ctx
    features: int
    stride: int

    @nn.compact
    def __call__(self, x, train):
        return BatchNorm(self.ctx, name="1")(conv(self.ctx, self.features, 1, self.stride, name="0")(x), train)


class BasicBlock(nn.Module):
    ctx: Ctx
    planes: int
    stride: int

    @nn.compact
    def __call__(self, x, train):
        c = self.ctx
        out = nn.relu(BatchNorm(c, name="bn1")(conv(c, self.planes, 3, self.stride, name="conv1")(x), train))
        out = BatchNorm(c, name="bn2")(conv(c, self.planes, 3, name="conv2")(out), train)
        if self.stride != 1 or x.shape[-1] != self.planes:
            x = Downsample(c, self.planes, self.stride, name="downsample")(x, train)
        return nn.relu(out + x)


class Bottleneck(nn.Module):
    ctx: Ctx
    planes: int
    stride: int

    @nn.compact
    def __call__(self, x, train):
        c, out_ch = self.ctx, self.planes * 4
        out = nn.relu(BatchNorm(c, name="bn1")(conv(c, self.planes, 1, name="conv1")(x), train))
        out = nn.relu(BatchNorm(c, name="bn2")(conv(c, self.planes, 3, self.stride, name="conv2")(out), train))
        out = BatchNorm(c, name="bn3")(conv(c, out_ch, 1, name="conv3")(out), train)
        if self.stride != 1 or x.shape[-1] != out_ch:
            x = Downsample(c, out_ch, self.stride, name="downsample")(x, train)
        return nn.relu(out + x)


class Stage(nn.Module):
    """``layer<i>``: its blocks named ``0``, ``1``, ..."""

    ctx: Ctx
    block: str
    planes: int
    count: int
    stride: int

    @nn.compact
    def __call__(self, x, train):
        cls = BasicBlock if self.block == "basic" else Bottleneck
        for j in range(self.count):
            x = cls(self.ctx, self.planes, self.stride if j == 0 else 1, name=str(j))(x, train)
        return x


class ResNet(nn.Module):
    ctx: Ctx
    config: tuple  # the spec's config items (hashable: a module is a cache key for its compiled init)
    num_classes: int
    stem: str

    @nn.compact
    def __call__(self, x, train: bool = False):
        c, cfg = self.ctx, dict(self.config)
        if self.stem == "cifar":
            x = nn.relu(BatchNorm(c, name="bn1")(conv(c, 64, 3, name="conv1")(x), train))
        else:
            x = nn.relu(BatchNorm(c, name="bn1")(conv(c, 64, 7, 2, padding=3, name="conv1")(x), train))
            x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), cfg["layers"])):
            x = Stage(c, cfg["block"], planes, n, 1 if i == 0 else 2, name=f"layer{i + 1}")(x, train)
        return head(self.num_classes, "fc")(_pool(x).astype(jnp.float32))


def build_resnet(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet", dtype=None,
                 frozen_bn=frozenset(), dropout: bool = True) -> nn.Module:
    return ResNet(_ctx(spec, dtype, frozen_bn, dropout), _items(spec.config, "block", "layers"), num_classes, stem)


# --- DenseNet --------------------------------------------------------------------------

class DenseLayer(nn.Module):
    ctx: Ctx
    growth: int
    bn_size: int

    @nn.compact
    def __call__(self, x, train):
        c = self.ctx
        h = conv(c, self.bn_size * self.growth, 1, init=KAIMING_IN, name="conv1")(
            nn.relu(BatchNorm(c, name="norm1")(x, train)))
        return conv(c, self.growth, 3, init=KAIMING_IN, name="conv2")(nn.relu(BatchNorm(c, name="norm2")(h, train)))


class DenseBlock(nn.Module):
    ctx: Ctx
    layers: int
    growth: int
    bn_size: int

    @nn.compact
    def __call__(self, x, train):
        features = [x]
        for i in range(self.layers):
            features.append(DenseLayer(self.ctx, self.growth, self.bn_size, name=f"denselayer{i + 1}")(
                jnp.concatenate(features, -1), train))
        return jnp.concatenate(features, -1)


class Transition(nn.Module):
    ctx: Ctx
    features: int

    @nn.compact
    def __call__(self, x, train):
        x = conv(self.ctx, self.features, 1, init=KAIMING_IN, name="conv")(
            nn.relu(BatchNorm(self.ctx, name="norm")(x, train)))
        return nn.avg_pool(x, (2, 2), (2, 2))


class DenseFeatures(nn.Module):
    ctx: Ctx
    config: tuple

    @nn.compact
    def __call__(self, x, train):
        c, cfg = self.ctx, dict(self.config)
        growth, n = cfg["growth"], cfg["init"]
        x = nn.relu(BatchNorm(c, name="norm0")(conv(c, n, 7, 2, padding=3, init=KAIMING_IN, name="conv0")(x), train))
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for b, layers in enumerate(cfg["blocks"]):
            x = DenseBlock(c, layers, growth, cfg["bn_size"], name=f"denseblock{b + 1}")(x, train)
            n += layers * growth
            if b < len(cfg["blocks"]) - 1:
                n //= 2
                x = Transition(c, n, name=f"transition{b + 1}")(x, train)
        return BatchNorm(c, name="norm5")(x, train)


class DenseNet(nn.Module):
    ctx: Ctx
    config: tuple
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(DenseFeatures(self.ctx, self.config, name="features")(x, train))
        return head(self.num_classes, "classifier")(_pool(x).astype(jnp.float32))


def build_densenet(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet", dtype=None,
                   frozen_bn=frozenset(), dropout: bool = True) -> nn.Module:
    return DenseNet(_ctx(spec, dtype, frozen_bn, dropout), _items(spec.config, "growth", "init", "blocks", "bn_size"),
                    num_classes)


# --- MobileNetV3-small -----------------------------------------------------------------

def _act(kind):
    return {"hswish": nn.hard_swish, "relu": nn.relu, None: lambda x: x}[kind]


class ConvBNAct(nn.Module):
    """torchvision's Conv2dNormActivation: conv ``0``, BatchNorm ``1``, then the activation."""

    ctx: Ctx
    features: int
    kernel: int
    stride: int
    act: str | None
    groups: int = 1

    @nn.compact
    def __call__(self, x, train):
        h = conv(self.ctx, self.features, self.kernel, self.stride, groups=self.groups, name="0")(x)
        return _act(self.act)(BatchNorm(self.ctx, name="1")(h, train))


class SqueezeExcitation(nn.Module):
    ctx: Ctx
    channels: int
    squeeze: int

    @nn.compact
    def __call__(self, x):
        s = x.mean((1, 2), keepdims=True)
        s = nn.relu(conv(self.ctx, self.squeeze, 1, bias=True, name="fc1")(s))
        return x * nn.hard_sigmoid(conv(self.ctx, self.channels, 1, bias=True, name="fc2")(s))


class InvertedBlock(nn.Module):
    """``block``: torchvision's Sequential of the parts, each at its index."""

    ctx: Ctx
    b: tuple  # the block's dict from architectures.mobilenetv3.blocks, as sorted items

    @nn.compact
    def __call__(self, x, train):
        b, c = dict(self.b), self.ctx
        if b["expand"] is not None:
            x = ConvBNAct(c, b["exp"], 1, 1, b["act"], name=str(b["expand"]))(x, train)
        x = ConvBNAct(c, b["exp"], b["kernel"], b["stride"], b["act"], groups=b["exp"], name=str(b["dw"]))(x, train)
        if b["se"] is not None:
            x = SqueezeExcitation(c, b["exp"], b["se"], name=str(b["se_index"]))(x)
        return ConvBNAct(c, b["cout"], 1, 1, None, name=str(b["project"]))(x, train)


class InvertedResidual(nn.Module):
    ctx: Ctx
    b: tuple

    @nn.compact
    def __call__(self, x, train):
        b = dict(self.b)
        out = InvertedBlock(self.ctx, self.b, name="block")(x, train)
        return x + out if b["stride"] == 1 and b["cin"] == b["cout"] else out


class MobileFeatures(nn.Module):
    ctx: Ctx

    @nn.compact
    def __call__(self, x, train):
        specs = mobilenet_blocks()
        x = ConvBNAct(self.ctx, STEM, 3, 2, "hswish", name="0")(x, train)
        for i, b in enumerate(specs):
            x = InvertedResidual(self.ctx, tuple(sorted(b.items())), name=str(i + 1))(x, train)
        return ConvBNAct(self.ctx, LAST, 1, 1, "hswish", name=str(len(specs) + 1))(x, train)


class MobileClassifier(nn.Module):
    ctx: Ctx
    num_classes: int
    rate: float

    @nn.compact
    def __call__(self, x, train):
        x = nn.hard_swish(dense(self.ctx, PRE_LOGITS, init=nn.initializers.normal(0.01), name="0")(x))
        x = nn.Dropout(self.rate if self.ctx.dropout else 0.0, deterministic=not train)(x)
        return head(self.num_classes, "3")(x.astype(jnp.float32))


class MobileNetV3Small(nn.Module):
    ctx: Ctx
    num_classes: int
    rate: float

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = _pool(MobileFeatures(self.ctx, name="features")(x, train))
        return MobileClassifier(self.ctx, self.num_classes, self.rate, name="classifier")(x, train)


def build_mobilenet_v3(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet", dtype=None,
                       frozen_bn=frozenset(), dropout: bool = True) -> nn.Module:
    return MobileNetV3Small(_ctx(spec, dtype, frozen_bn, dropout), num_classes, float(spec.config["dropout"]))


# --- EfficientNet-Lite -----------------------------------------------------------------

class SameConv(nn.Module):
    """TensorFlow "same" padding, from the input's size (the odd pixel after); its kernel is its own
    parameter (``<name>.kernel``, HWIO), as ``nn.Conv``'s would be one level further down."""

    ctx: Ctx
    features: int
    kernel: int
    stride: int
    groups: int = 1

    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", TORCH_DEFAULT, (self.kernel, self.kernel, x.shape[-1] // self.groups, self.features),
                       jnp.float32)
        pad = tuple(same_padding(x.shape[axis], self.kernel, self.stride) for axis in (1, 2))
        dtype = self.ctx.dtype
        return jax.lax.conv_general_dilated(x.astype(dtype), k.astype(dtype), (self.stride, self.stride), pad,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            feature_group_count=self.groups)


class MBConv(nn.Module):
    ctx: Ctx
    cin: int
    cout: int
    kernel: int
    stride: int
    expand: int

    @nn.compact
    def __call__(self, x, train):
        c, mid = self.ctx, self.cin * self.expand
        h = x
        if self.expand != 1:
            h = jax.nn.relu6(BatchNorm(c, name="_bn0")(conv(c, mid, 1, init=TORCH_DEFAULT, name="_expand_conv")(h),
                                                        train))
        h = SameConv(c, mid, self.kernel, self.stride, mid, name="_depthwise_conv")(h)
        h = jax.nn.relu6(BatchNorm(c, name="_bn1")(h, train))
        h = BatchNorm(c, name="_bn2")(conv(c, self.cout, 1, init=TORCH_DEFAULT, name="_project_conv")(h), train)
        return h + x if self.stride == 1 and self.cin == self.cout else h


class MBBlocks(nn.Module):
    ctx: Ctx
    blocks: tuple

    @nn.compact
    def __call__(self, x, train):
        for i, (cin, cout, k, s, e) in enumerate(self.blocks):
            x = MBConv(self.ctx, cin, cout, k, s, e, name=str(i))(x, train)
        return x


class EfficientNetLite(nn.Module):
    ctx: Ctx
    stem_width: int
    head_width: int
    blocks: tuple
    num_classes: int
    rate: float

    @nn.compact
    def __call__(self, x, train: bool = False):
        c = self.ctx
        x = jax.nn.relu6(BatchNorm(c, name="_bn0")(SameConv(c, self.stem_width, 3, 2, name="_conv_stem")(x), train))
        x = MBBlocks(c, self.blocks, name="_blocks")(x, train)
        x = jax.nn.relu6(BatchNorm(c, name="_bn1")(conv(c, self.head_width, 1, init=TORCH_DEFAULT,
                                                         name="_conv_head")(x), train))
        x = nn.Dropout(self.rate if c.dropout else 0.0, deterministic=not train)(_pool(x))
        return head(self.num_classes, "_fc")(x.astype(jnp.float32))


def build_efficientnet_lite(spec, num_classes: int, *, image_size: int = 224, stem: str = "imagenet", dtype=None,
                            frozen_bn=frozenset(), dropout: bool = True) -> nn.Module:
    cfg = spec.config
    blocks = tuple(tuple(b) for b in mbconv_blocks(cfg["stem"], cfg["stages"]))
    return EfficientNetLite(_ctx(spec, dtype, frozen_bn, dropout), cfg["stem"], cfg["head"], blocks, num_classes,
                            float(cfg["dropout"]))
