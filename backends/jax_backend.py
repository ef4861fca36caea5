"""JAX backend: Flax (``flax.linen``) networks and Optax optimizers, compiled with ``jax.jit`` (XLA).

Functional state: a model holds its parameters, BatchNorm statistics (Flax's ``batch_stats``) and
optimizer state as pytrees, and one jitted function maps them to the next ones. Parameters are
named canonically (``backends/jax_models.py``), so no architecture spec needs a JAX entry.
A strategy's plan (``backends.base.translate``) becomes Optax's own mechanism: ``multi_transform``
with one label per (lr multiplier, decays?) group and ``set_to_zero`` for the frozen tensors
(XLA then drops their gradients from the compiled step), and a network rebuilt with its frozen
BatchNorm layers named (they normalise with running statistics and never update them). Inputs
come in NCHW like every backend's and are transposed inside the compiled step (Flax is NHWC).
Mixed precision: bf16 or fp16 convolutions and dense layers over fp32 parameters, BatchNorm and
the loss in fp32; fp16 with a fixed loss scale (``LOSS_SCALE``, as MindSpore's harness), the
gradients divided back before Optax sees them.
"""
from __future__ import annotations

import functools
import os
import stat
from importlib import metadata

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, traverse_util
from flax.core import unfreeze

from bench.core.errors import BackendUnavailable, CheckpointError, ConfigError
from bench.core.files import atomic_path

from .base import Backend, Model, OptimConfig, translate, zoo_requested
from .jax_models import DROPOUTS, LEAVES
from .registry import arch_view

MAX_CHECKPOINT_BYTES = 4 << 30   # an untrusted file is read whole: no FIFO, no device, nothing larger
DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16, "fp16": jnp.float16}
LOSS_SCALE = 1024.0
FROZEN = "frozen"
COLLECTIONS = ("params", "batch_stats")   # what a model's variables and its checkpoints hold


def _layout_out(path: tuple, value) -> np.ndarray:
    """A Flax leaf in the canonical layout: HWIO kernels OIHW, (in, out) kernels (out, in)."""
    a = np.asarray(value, dtype=np.float32)
    if path[-1] == "kernel":
        return np.ascontiguousarray(a.transpose(3, 2, 0, 1) if a.ndim == 4 else a.T)
    return a


def _layout_in(path: tuple, value: np.ndarray) -> jnp.ndarray:
    a = np.asarray(value, dtype=np.float32)
    if path[-1] == "kernel":
        a = a.transpose(2, 3, 1, 0) if a.ndim == 4 else a.T
    return jnp.asarray(a)


def canonical_paths(trees: dict[str, dict]) -> dict[str, tuple[str, tuple]]:
    """Canonical name -> (collection, path) of every leaf of ``{"params": ..., "batch_stats": ...}``."""
    out = {}
    for collection in COLLECTIONS:
        for path in traverse_util.flatten_dict(trees.get(collection) or {}):
            leaf = LEAVES.get((collection, path[-1]))
            if leaf is None:
                raise CheckpointError(f"unexpected Flax variable {collection}/{'/'.join(path)}")
            out[".".join(path[:-1] + (leaf,))] = (collection, path)
    return out


def canonical_arrays(trees: dict[str, dict]) -> dict[str, np.ndarray]:
    """Every leaf of ``trees`` by canonical name, in the canonical layout (NumPy, float32)."""
    flat = {c: traverse_util.flatten_dict(trees.get(c) or {}) for c in COLLECTIONS}
    return {name: _layout_out(p, flat[c][p]) for name, (c, p) in canonical_paths(trees).items()}


def _device(device: str):
    if device == "cpu":
        return jax.devices("cpu")[0]
    if device == "gpu":
        try:
            return jax.devices("gpu")[0]
        except RuntimeError:
            raise BackendUnavailable(f"--device gpu: JAX {jax.__version__} sees no GPU "
                                     f"(backends: {jax.default_backend()})") from None
    raise BackendUnavailable(f"--device {device}: the jax backend has no {device} support; use cpu or gpu")


def _transform(optim: OptimConfig, mult: float, decays: bool) -> optax.GradientTransformation:
    """Optax's optimizer for one group: its lr (a schedule of the optimizer's own step count where the
    recipe has one), L2 weight decay added to the gradient before the update, as torch's SGD and Adam do."""
    lr = optim.lr * mult
    if optim.schedule is not None:
        factors = jnp.asarray([optim.schedule.factor_at(s) for s in range(max(optim.schedule.total_steps, 1))],
                              jnp.float32)
        last = factors.shape[0] - 1
        lr = (lambda base: lambda count: base * factors[jnp.minimum(count, last)])(lr)
    if optim.name == "adam":
        inner = optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=0.9, b2=0.999, eps=1e-8)
    else:
        inner = optax.inject_hyperparams(optax.sgd)(learning_rate=lr, momentum=optim.momentum or None,
                                                    nesterov=optim.nesterov)
    return optax.chain(optax.add_decayed_weights(optim.weight_decay), inner) if decays and optim.weight_decay \
        else inner


@functools.lru_cache(maxsize=16)
def _initializer(module, image_size: int):
    """The compiled ``module.init`` (a key -> variables), one per network and size in a process: a second
    model of the same architecture initialises without compiling again."""
    x = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
    return jax.jit(lambda key: module.init(key, x, train=False))


def _hyperparams(state) -> dict:
    """The ``inject_hyperparams`` values inside one group's optimizer state (the lr its last update used)."""
    found = [s for s in jax.tree_util.tree_leaves(state, is_leaf=lambda s: hasattr(s, "hyperparams"))
             if hasattr(s, "hyperparams")]
    return found[0].hyperparams if found else {}


class JaxModel(Model):
    optimizer_state_prefixes = ("opt_state.",)

    def __init__(self, view, num_classes: int, *, image_size: int, stem: str, seed: int, mode: str, device):
        self.arch, self.table, self.image_size, self.stem = view.arch, view, image_size, stem
        self.num_classes, self.mode, self.device = num_classes, mode, device
        self.precision, self._frozen_bn, self._dropout = "fp32", frozenset(), True
        self._key = jax.random.PRNGKey(seed)
        self.optim: OptimConfig | None = None
        self.opt_state = None
        self._groups: dict[str, tuple[float, bool]] = {}    # label -> (lr multiplier, decays?)
        self._labels: dict[str, str] = {}                   # canonical name -> label
        self._step = None
        self._set_module()
        with jax.default_device(device):
            variables = unfreeze(_initializer(self.module, image_size)(self._next_key()))
        self.params, self.batch_stats = variables["params"], variables.get("batch_stats", {})

    def _next_key(self):
        self._key, key = jax.random.split(self._key)
        return key

    def _set_module(self) -> None:
        """(Re)build the Flax module for the current head, precision, frozen BatchNorm and dropout; the
        compiled functions follow it."""
        self.module = self.table.build(self.num_classes, image_size=self.image_size, stem=self.stem,
                                       dtype=DTYPES[self.precision], frozen_bn=self._frozen_bn, dropout=self._dropout)
        jit = jax.jit if self.mode == "graph" else (lambda f, **_: f)
        module = self.module

        def predict(params, stats, x):
            return module.apply({"params": params, "batch_stats": stats}, jnp.transpose(x, (0, 2, 3, 1)),
                                train=False).astype(jnp.float32)
        self._predict = jit(predict)
        self._jit = jit

    # --- weights ------------------------------------------------------------------------

    def _trees(self) -> dict[str, dict]:
        return {"params": self.params, "batch_stats": self.batch_stats}

    def replace_head(self, num_classes: int) -> None:
        *parents, leaf = self.table.head_path
        owner = self.params
        for p in parents:
            owner = owner[p]
        fan_in = owner[leaf]["kernel"].shape[0]
        owner[leaf] = {"kernel": jax.nn.initializers.xavier_uniform()(self._next_key(), (fan_in, num_classes),
                                                                      jnp.float32),
                       "bias": jnp.zeros((num_classes,), jnp.float32)}
        self.num_classes = num_classes
        self._set_module()
        self._step = None

    def _read_native(self, path: str) -> dict[str, np.ndarray]:
        """Flax's msgpack checkpoint (``flax.serialization``: data only, no code), canonical names."""
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{path}: not a Flax checkpoint (a regular file of at most "
                                      f"{MAX_CHECKPOINT_BYTES >> 30} GiB expected)")
            with open(path, "rb") as f:
                trees = serialization.msgpack_restore(f.read())
        except (OSError, ValueError, TypeError, RecursionError) as e:
            raise CheckpointError(f"{path}: not a Flax msgpack checkpoint ({type(e).__name__}: {e})") from None
        if not isinstance(trees, dict) or not isinstance(trees.get("params"), dict):
            raise CheckpointError(f"{path}: a Flax checkpoint holds {{'params': ..., 'batch_stats': ...}}")
        for collection in COLLECTIONS:
            for p, value in traverse_util.flatten_dict(trees.get(collection) or {}).items():
                if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                    raise CheckpointError(f"{path}: {collection}/{'/'.join(p)} is not a floating-point array")
        try:
            return canonical_arrays(trees)
        except CheckpointError as e:  # a variable this suite's networks never have
            raise CheckpointError(f"{path}: {e}") from None

    def _write_native(self, path: str) -> None:
        data = serialization.msgpack_serialize(jax.tree_util.tree_map(np.asarray, self._trees()))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)

    def _assign(self, values: dict[str, np.ndarray]) -> None:
        paths = canonical_paths(self._trees())
        flat = {c: traverse_util.flatten_dict(t) for c, t in self._trees().items()}
        for name, value in values.items():
            collection, p = paths[name]
            flat[collection][p] = _layout_in(p, value)
        self.params = traverse_util.unflatten_dict(flat["params"])
        self.batch_stats = traverse_util.unflatten_dict(flat["batch_stats"])
        if self.opt_state is not None and self.optim is not None:  # an optimizer follows the weights it holds
            self.opt_state = self._tx.init(self.params)

    def named_parameters(self) -> dict[str, np.ndarray]:
        return canonical_arrays(self._trees())

    # --- training -----------------------------------------------------------------------

    def configure(self, plan, optim: OptimConfig, precision: str = "fp32") -> None:
        self.precision, self.optim = precision, optim
        paths = canonical_paths({"params": self.params})
        shapes = {n: v.shape for n, v in canonical_arrays({"params": self.params}).items()}
        bns = {".".join(p[:-1]): n for n, (_, p) in paths.items() if p[-1] == "scale"}
        pp = translate(plan, self.table, shapes, bns, optim.decay_filter)
        self._frozen_bn = pp.frozen_bn
        self._set_module()
        labels, self._groups, self._labels = {}, {}, {}
        for name, (_, p) in paths.items():
            if name in pp.frozen:
                label = FROZEN
            else:
                mult, decays = pp.lr_mult[name], name not in pp.no_decay
                label = f"lr x{mult:g}, {'decay' if decays else 'no decay'}"
                self._groups[label] = (mult, decays)
            labels[p], self._labels[name] = label, label
        transforms = {label: _transform(optim, mult, decays) for label, (mult, decays) in self._groups.items()}
        transforms[FROZEN] = optax.set_to_zero()
        self._tx = optax.multi_transform(transforms, traverse_util.unflatten_dict(labels))
        self.opt_state = self._tx.init(self.params)
        self._stage_of_label = {}
        for name, label in self._labels.items():
            self._stage_of_label.setdefault(label, set()).add(self.table.stage_of(name))
        self._build_step()

    def _build_step(self) -> None:
        module, tx, smoothing, classes = self.module, self._tx, self.optim.label_smoothing, self.num_classes
        scale = LOSS_SCALE if self.precision == "fp16" else 1.0

        def step(params, stats, opt_state, key, x, y):
            key, dropout = jax.random.split(key)
            x = jnp.transpose(x, (0, 2, 3, 1))

            def loss_fn(p):
                logits, new = module.apply({"params": p, "batch_stats": stats}, x, train=True,
                                           mutable=["batch_stats"], rngs={"dropout": dropout})
                logits = logits.astype(jnp.float32)
                target = jax.nn.one_hot(y, classes)
                if smoothing:
                    target = optax.smooth_labels(target, smoothing)
                loss = optax.softmax_cross_entropy(logits, target).mean()
                return loss * scale, (loss, logits, new["batch_stats"])
            (_, (loss, logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            if scale != 1.0:  # fp16: the scaled loss's gradients, back to the loss's
                grads = jax.tree_util.tree_map(lambda g: g / scale, grads)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return params, stats, opt_state, key, loss, jnp.sum(jnp.argmax(logits, -1) == y)
        # no buffer donation (donate_argnums): measured on XLA's CPU backend here, donating the parameters,
        # statistics and optimizer state made ResNet-18's step at 32 px about a tenth slower, not faster
        self._step = self._jit(step)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        if self._step is None:
            raise ConfigError("configure the model before training it")
        self.params, self.batch_stats, self.opt_state, self._key, loss, correct = self._step(
            self.params, self.batch_stats, self.opt_state, self._key, x, y.astype(np.int32))
        return float(loss), int(correct)  # both synchronise

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(self.params, self.batch_stats, x))

    def disable_dropout(self) -> int:
        self._dropout = False
        self._set_module()
        return DROPOUTS[self.table.spec.family]

    def applied_lr(self) -> dict[str, float]:
        if self.opt_state is None:
            return {}
        out: dict[str, float] = {}
        for label, state in self.opt_state.inner_states.items():
            lr = _hyperparams(state).get("learning_rate")
            if label != FROZEN and lr is not None:
                for stage in self._stage_of_label.get(label, ()):
                    out.setdefault(stage, float(lr))
        return out

    def trainable_names(self) -> list[str]:
        names = list(canonical_paths({"params": self.params}))
        return [n for n in names if self._labels.get(n) != FROZEN]

    def _by(self, value) -> dict[str, list[str]]:
        """``value(lr multiplier, decays?)`` of each trained parameter's group -> their names."""
        out: dict[str, list[str]] = {}
        for name, label in self._labels.items():
            if label != FROZEN:
                out.setdefault(f"{value(*self._groups[label]):.6g}", []).append(name)
        return out

    def param_groups(self) -> dict[str, list[str]]:
        return self._by(lambda mult, _: self.optim.lr * mult)  # a schedule's peak

    def weight_decay_groups(self) -> dict[str, list[str]]:
        return self._by(lambda _, decays: self.optim.weight_decay if decays else 0.0)

    def precision_report(self) -> dict:
        """Layers by the dtype of their outputs, from one abstract forward (``jax.eval_shape``)."""
        x = jax.ShapeDtypeStruct((1, self.image_size, self.image_size, 3), jnp.float32)
        _, state = jax.eval_shape(lambda v, x: self.module.apply(v, x, train=False, capture_intermediates=True,
                                                                 mutable=["intermediates"]), self._trees(), x)
        flat = traverse_util.flatten_dict(self.params)
        kinds = {}
        for p in flat:
            layer = p[:-1]
            if p[-1] == "scale":
                kinds[layer] = "BatchNorm"
            elif p[-1] == "kernel":
                kinds[layer] = "Conv" if flat[p].ndim == 4 else "Dense"
        ops: dict[str, dict[str, int]] = {}
        for path, value in traverse_util.flatten_dict(unfreeze(state["intermediates"])).items():
            layer = path[:-1]
            if path[-1] == "__call__" and layer in kinds:
                dtype = str(jax.tree_util.tree_leaves(value)[0].dtype)
                ops.setdefault(dtype, {}).setdefault(kinds[layer], 0)
                ops[dtype][kinds[layer]] += 1
        return {"requested": self.precision, "ops": ops, "master_weights": "float32",
                "loss_scaling": f"static x{LOSS_SCALE:g}" if self.precision == "fp16" else None,
                "how": "Flax modules' dtype (parameters float32; BatchNorm computes in float32 and hands on the "
                       "compute dtype; the new head and the loss in float32); layers by output dtype in one "
                       "abstract forward"}

    def describe(self) -> dict:
        return {"layout": "NHWC", "jit": self.mode == "graph", "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


class JaxBackend(Backend):
    name = "jax"

    def versions(self) -> dict[str, str]:
        out = {}
        for dist in ("jax", "jaxlib", "flax", "optax", "numpy"):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return out

    def runtime_settings(self) -> dict:
        return {"jax.default_backend": jax.default_backend(), "jax.devices": [str(d) for d in jax.devices()],
                "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), "jax_enable_x64": bool(jax.config.jax_enable_x64)}

    def determinism(self, device: str) -> dict:
        if device != "cpu":
            return super().determinism(device)
        return {"reproducible": True, "how": "explicit PRNG keys from the seed (initialisation, new head, "
                "dropout); XLA's CPU kernels used here are deterministic"}

    def create_model(self, arch: str, num_classes: int, *, pretrained: str | None = None,
                     device: str = "cpu", seed: int = 0, image_size: int = 224,
                     mode: str = "graph", stem: str = "imagenet") -> JaxModel:
        view = arch_view(arch, "jax")
        zoo_requested(view, stem, pretrained, "Flax")  # JAX has no zoo: --pretrained imagenet or a file
        model = JaxModel(view, num_classes, image_size=image_size, stem=stem, seed=seed, mode=mode,
                         device=_device(device))
        model.replace_head(num_classes)  # Xavier head, as on every backend
        return model

    def native_step(self, arch, num_classes, **opts):
        return native_step(arch, num_classes, **opts)

    def profile(self, step, steps: int, scratch: str) -> dict[str, float]:
        """JAX's profiler (``jax.profiler.trace``), its XSpace read back with ``jax.profiler.ProfileData``:
        milliseconds per XLA operation kind (a fusion's or kernel's name without its number), summed over
        the events of XLA's CPU worker threads."""
        import glob
        import re
        with jax.profiler.trace(scratch):
            for _ in range(steps):
                step()
        files = sorted(glob.glob(os.path.join(scratch, "**", "*.xplane.pb"), recursive=True))
        if not files:
            raise ConfigError(f"JAX's profiler wrote no trace under {scratch}")
        data = jax.profiler.ProfileData.from_file(files[-1])
        out: dict[str, float] = {}
        for plane in data.planes:
            for line in plane.lines:
                if not line.name.startswith("tf_XLA"):  # XLA's worker threads; not Python's
                    continue
                for event in line.events:
                    if event.name.startswith(RUNTIME_EVENTS):
                        continue
                    kind = re.sub(r"(\.\d+)+$", "", event.name)  # fusion.36 -> fusion
                    out[kind] = out.get(kind, 0.0) + event.duration_ns / 1e6
        if not out:
            raise ConfigError(f"JAX's profiler trace under {scratch} holds no XLA operation")
        return out


# the XLA CPU runtime's own spans around the operations (they would count each operation twice)
RUNTIME_EVENTS = ("ThreadpoolListener", "ThunkExecutor", "SlinkyThreadPool", "end: ")


def native_step(arch: str, num_classes: int, *, image_size: int, batch: int, strategy: str,
                optim: OptimConfig, seed: int = 0, mode: str = "graph", device: str = "cpu", precision: str = "fp32"):
    """The reference JAX loop, in Flax's and Optax's own idiom and sharing no code with the harness: the
    network from the architecture's builder (Flax has no model zoo; the builder is the one constructor
    there is), ``flax.training.train_state.TrainState`` holding parameters and Optax state, frozen
    stages by ``optax.multi_transform`` with ``set_to_zero`` over labels made in its own lines, weight
    decay by ``optax.add_decayed_weights`` on the tensors the configuration decays, frozen BatchNorm
    statistics by naming those layers to the builder, one ``jax.jit`` step over NHWC inputs already
    on the device. Which stage freezes or gets which multiplier is read from the strategy's
    declaration and the spec's stage map, never from the harness's plan functions. Returns one step."""
    from flax.training import train_state

    from bench.plan.strategies import make_plan
    view, plan = arch_view(arch, "jax"), make_plan(strategy)
    key = jax.random.PRNGKey(seed)
    x = jax.random.normal(key, (batch, image_size, image_size, 3), jnp.float32)
    y = jnp.arange(batch) % num_classes
    probe = view.build(num_classes, image_size=image_size)
    params = probe.init(key, x[:1], train=False)["params"]
    flat = traverse_util.flatten_dict(params, sep=".")
    # a parameter's stage from the spec's stage map (its module path is the canonical prefix)
    stage = {k: view.stage_of(k.rsplit(".", 1)[0] + ".weight") for k in flat}
    fixed = {k.rsplit(".", 1)[0] for k in flat if k.endswith(".scale") and plan.bn_frozen(stage[k])}
    net = view.build(num_classes, image_size=image_size, frozen_bn=fixed,
                     dtype={"bf16": jnp.bfloat16, "fp16": jnp.float16}.get(precision))
    loss_scale = 1024.0 if precision == "fp16" else 1.0  # fp16: a fixed loss scale
    variables = net.init(key, x[:1], train=False)
    labels, lr_of, wd_of = {}, {}, {}
    for k, v in flat.items():
        if plan.is_frozen(stage[k]):
            labels[k] = "frozen"
            continue
        decay = optim.weight_decay if optim.decay_filter == "all" or v.ndim > 1 else 0.0
        labels[k] = f"{plan.lr_mult[stage[k]]}/{decay}"
        canonical = k.rsplit(".", 1)[0] + "." + {"kernel": "weight", "scale": "weight"}.get(k.rsplit(".", 1)[1],
                                                                                          k.rsplit(".", 1)[1])
        lr_of[canonical], wd_of[canonical] = optim.lr * plan.lr_mult[stage[k]], decay

    def group(label: str) -> optax.GradientTransformation:
        mult, decay = (float(v) for v in label.split("/"))
        if optim.name == "adam":
            update = optax.adam(optim.lr * mult)
        else:
            update = optax.sgd(optim.lr * mult, momentum=optim.momentum or None, nesterov=optim.nesterov)
        return optax.chain(optax.add_decayed_weights(decay), update) if decay else update
    tx = optax.multi_transform({lb: optax.set_to_zero() if lb == "frozen" else group(lb) for lb in set(labels.values())},
                               traverse_util.unflatten_dict(labels, sep="."))
    state = train_state.TrainState.create(apply_fn=net.apply, params=variables["params"], tx=tx)
    stats = variables["batch_stats"]

    @jax.jit
    def train(state, stats, key):
        key, dropout = jax.random.split(key)

        def loss_fn(params):
            logits, new = state.apply_fn({"params": params, "batch_stats": stats}, x, train=True,
                                         mutable=["batch_stats"], rngs={"dropout": dropout})
            loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), y).mean()
            return loss * loss_scale, (loss, new)
        (_, (loss, new)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grads = jax.tree_util.tree_map(lambda g: g / loss_scale, grads)
        return state.apply_gradients(grads=grads), new["batch_stats"], key, loss
    carry = [state, stats, key]

    def step() -> None:
        carry[0], carry[1], carry[2], loss = train(*carry)
        loss.block_until_ready()
    step.lr_of, step.wd_of = lr_of, wd_of
    return step
