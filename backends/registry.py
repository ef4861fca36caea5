"""The lazy registry of backends: what the suite knows about each *without importing its framework*.

Adding a backend: its two modules (``backends/<name>_backend.py`` with the ``Backend`` and
``Model`` classes and its reference loop, ``backends/<name>_models.py`` with its builders),
one ``BackendInfo`` line in ``REGISTRY`` below, and its pip extra in ``pyproject.toml``.
The runner, the CLI (``bench list`` included), ``bench tune`` and the parametrised tests
read this registry; nothing else names a backend. Out-of-tree backends join through
``BENCH_BACKENDS="name=module:Class,..."``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Callable

from architectures import FrameworkView, all_specs, get_spec
from bench.core.errors import BackendUnavailable, ConfigError


@dataclass(frozen=True)
class BackendInfo:
    """One backend, as the parent of a sweep sees it.

    ``probe``: importable names whose presence means the framework is installed
    (checked with ``importlib.util.find_spec``, never imported: the parent of a
    sweep imports no framework). ``settings``: environment variables that tune
    this framework, each with the values ``bench tune`` tries (empty: recorded,
    not tuned); a child gets them from the user or from ``defaults`` (the measured
    best on this CPU), never from another backend (``backends/settings.py``).
    ``canonical_models``: for a backend whose parameter names are the canonical ones,
    the module whose ``build_<family>`` builds every architecture defined on every
    backend (no entry in the architecture specs needed), or only those of ``families``
    where it builds some; None where each spec names the backend's builder and rename
    rules. ``suffix``: its own checkpoint format.
    """

    target: str                           # "module:Class"
    extra: str                            # the pip extra that installs its framework
    probe: tuple[str, ...] = ()
    settings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: Callable[[set], dict] | None = None  # cpu flags -> {variable: value}
    canonical_models: str | None = None
    families: tuple[str, ...] | None = None   # with canonical_models: the families it builds (None: all)
    suffix: str = ".npz"
    zoo: str | None = None                # the framework's own model zoo (--pretrained zoo)

    def default_settings(self, cpu_flags: set) -> dict[str, str]:
        return dict(self.defaults(cpu_flags)) if self.defaults else {}

    def _canonical_for(self, spec) -> str | None:
        if self.families is not None and spec.family not in self.families:
            return None
        return self.canonical_models

    def view(self, name: str, arch: str) -> FrameworkView:
        """Architecture ``arch`` as this backend (registered as ``name``) builds and names it."""
        spec = get_spec(arch)
        if not self.builds(name, arch):
            have = ", ".join(s.name for s in all_specs() if self.builds(name, s.name))
            raise ConfigError(f"model {arch!r} is not available on backend {name!r}; that backend has: {have}")
        return spec.on(name, self._canonical_for(spec))

    def builds(self, name: str, arch: str) -> bool:
        spec = get_spec(arch)
        return name in spec.frameworks or bool(self._canonical_for(spec) and spec.every_backend)


def _mxnet_defaults(flags: set) -> dict[str, str]:
    # Measured with bench tune (docs/speed.md, "Fair speed"): MXNet 1.9 with OMP_NUM_THREADS unset used
    # ~1 of 2 cores (ResNet-18 train step 70-108 ms at 32 px, 290 ms at 112 px); one OpenMP thread
    # per core and the synchronous engine: 46 and 155 ms.
    return {"OMP_NUM_THREADS": str(os.cpu_count() or 1), "MXNET_ENGINE_TYPE": "NaiveEngine"}


def _mindspore_defaults(flags: set) -> dict[str, str]:
    # On AVX-512 CPUs MindSpore 2.9's oneDNN picks a reference 3x3 convolution
    # (~21 s per ResNet-18 step); capped at AVX2 it picks gemm:jit (docs/speed.md, "MindSpore on CPU").
    return {"ONEDNN_MAX_CPU_ISA": "AVX2"} if "avx512f" in flags else {}


def _torch_defaults(flags: set) -> dict[str, str]:
    # PyTorch's CPU tensors come from glibc's malloc, whose mmap threshold moves with the sizes freed:
    # blocks above it are mapped and unmapped on every step (page faults), those below reuse the heap.
    # Which side of it a step's buffers fall on then differs from process to process; measured here
    # (AMD EPYC, ResNet-18 bf16, harness and reference interleaved in one process): harness/native
    # 0.91-1.13 at 32 px and 1.05-1.06 at 112 px from one process to the next, 1.00-1.015 with the
    # threshold fixed at glibc's largest dynamic value and the heap never trimmed below 4 GiB, both
    # loops as fast or faster. One setting for every torch process, the reference's included.
    return {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}


THREADS = ("1", "2")   # thread counts bench tune tries on our 2-core machines
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_AFFINITY", "KMP_BLOCKTIME", "OMP_PROC_BIND")
# glibc's allocator, read at process start: recorded for every backend (PyTorch sets two by default)
ALLOCATOR_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")


def _settings(tuned: dict[str, tuple[str, ...]], *recorded: str) -> dict[str, tuple[str, ...]]:
    """The knobs ``bench tune`` tries (in its order), then the names only recorded: the
    threading variables every framework reads, glibc's allocator's, and ``recorded``."""
    return tuned | {name: () for name in THREAD_VARIABLES + ALLOCATOR_VARIABLES + recorded if name not in tuned}


REGISTRY: dict[str, BackendInfo] = {
    "mxnet": BackendInfo(
        "backends.mxnet_backend:GluonBackend", "mxnet", ("mxnet", "gluoncv"),
        _settings({"OMP_NUM_THREADS": THREADS, "MXNET_ENGINE_TYPE": ("NaiveEngine", "ThreadedEngine"),
                   "MXNET_CPU_WORKER_NTHREADS": ("2",), "MXNET_EXEC_BULK_EXEC_TRAIN": ("0",),
                   "MXNET_MKLDNN_ENABLED": ("0",), "KMP_AFFINITY": ("granularity=fine,compact,1,0",)},
                  "MXNET_USE_OPERATOR_TUNING", "MXNET_SUBGRAPH_BACKEND"),
        _mxnet_defaults, suffix=".params", zoo="GluonCV"),
    "mindspore": BackendInfo(
        "backends.mindspore_backend:MindSporeBackend", "mindspore", ("mindspore", "mindcv"),
        _settings({"ONEDNN_MAX_CPU_ISA": ("ALL", "AVX512_CORE", "AVX2"), "OMP_NUM_THREADS": THREADS,
                   "BENCH_MS_RUNTIME_THREADS": THREADS, "BENCH_MS_JIT_LEVEL": ("O0", "O1")}),
        _mindspore_defaults, suffix=".ckpt", zoo="MindCV"),
    "torch": BackendInfo(
        "backends.torch_backend:TorchBackend", "torch", ("torch",),
        _settings({"BENCH_TORCH_THREADS": THREADS, "OMP_NUM_THREADS": THREADS,
                   "BENCH_TORCH_CHANNELS_LAST": ("0", "1"), "BENCH_TORCH_COMPILE": ("1",),
                   "MALLOC_MMAP_THRESHOLD_": ("131072",), "MALLOC_TRIM_THRESHOLD_": ("131072",)}),
        _torch_defaults, canonical_models="backends.torch_models", suffix=".pth", zoo="torchvision"),
    "jax": BackendInfo(
        "backends.jax_backend:JaxBackend", "jax", ("jax", "flax", "optax"),
        # XLA's CPU compiler reads its options from XLA_FLAGS: its older runtime, XNNPACK or oneDNN for the
        # convolutions and matrix products, and Eigen on one thread; fast math is never tried (it changes
        # the numbers, not only the time)
        _settings({"XLA_FLAGS": ("--xla_cpu_use_thunk_runtime=false", "--xla_cpu_use_xnnpack=true",
                                 "--xla_cpu_use_onednn=true", "--xla_cpu_multi_thread_eigen=false")},
                  "JAX_PLATFORMS"),
        canonical_models="backends.jax_models", suffix=".msgpack"),
}


def registry() -> dict[str, BackendInfo]:
    """REGISTRY plus out-of-tree backends from ``BENCH_BACKENDS="name=module:Class,..."``."""
    extra = {}
    for item in filter(None, os.environ.get("BENCH_BACKENDS", "").split(",")):
        name, _, target = item.partition("=")
        extra[name.strip()] = BackendInfo(target.strip(), name.strip(), (target.split(":")[0].strip(),))
    return {**REGISTRY, **extra}


def backend_names() -> list[str]:
    return sorted(registry())


def backend_info(name: str) -> BackendInfo:
    backends = registry()
    if name not in backends:
        raise ConfigError(f"unknown backend {name!r}; valid: {', '.join(backend_names())}")
    return backends[name]


def missing_modules(name: str) -> list[str]:
    """The probe modules of ``name`` that are not installed (asked without importing them)."""
    return [m for m in backend_info(name).probe if importlib.util.find_spec(m) is None]


def check_installed(name: str) -> BackendInfo:
    """Is ``name``'s framework installed? Asked without importing it (a sweep's parent
    process must stay framework-free: importing MindSpore alone changes the C environment)."""
    info = backend_info(name)
    missing = missing_modules(name)
    if missing:
        raise BackendUnavailable(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed here; give it an "
            f"environment of its own: python -m bench env create {name} (or install it here: "
            f"pip install -e \".[{info.extra}]\", where its pins agree with this environment's)")
    return info


def installed_backends() -> list[str]:
    return [name for name in backend_names() if not missing_modules(name)]


def arch_view(arch: str, backend: str) -> FrameworkView:
    """``arch`` seen from ``backend``: its builder, parameter names and head (ConfigError if it has none)."""
    return backend_info(backend).view(backend, arch)


def models_for(backend: str) -> list[str]:
    info = backend_info(backend)
    return [s.name for s in all_specs() if info.builds(backend, s.name)]


def get_backend(name: str):
    """Import and instantiate a backend by name; clear errors for unknown or uninstalled."""
    info = backend_info(name)
    module_name, cls_name = info.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BackendUnavailable(
            f"backend {name!r} needs its framework, which is not importable ({e}); "
            f"install it with: pip install -e \".[{info.extra}]\""
        ) from None
    return getattr(module, cls_name)()
