"""Canonical weight files: the same numbers for every framework.

A canonical file is a NumPy ``.npz`` archive: one float32 array per parameter
(BatchNorm running statistics included) under its canonical name (torchvision's
naming, see ``architectures/``), plus a ``__bench__`` entry holding JSON
metadata (format, architecture, where the numbers came from). It needs no
framework to read, ``np.load(path)`` shows everything, and every backend
converts to and from it with the rename rules of its architecture table.

The suite's pretrain step writes one canonical file; every backend fine-tunes
from it, so a cross-framework accuracy gap cannot be an initialisation artefact.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from bench.core.errors import CheckpointError
from bench.core.files import ZIP_DAMAGE, atomic_path

FORMAT = "bench-canonical/1"
META_KEY = "__bench__"
SUFFIX = ".npz"


def is_canonical_path(path) -> bool:
    return str(path).endswith(SUFFIX)


def to_canonical(table, native: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename a framework's parameters to canonical names (a clash is a spec bug).

    ``table``: an architecture seen from one framework (``architectures.FrameworkView``)."""
    out: dict[str, np.ndarray] = {}
    for name, value in native.items():
        canonical = table.to_canonical(name)
        if canonical in out:
            raise CheckpointError(f"{table.arch} on {table.framework}: two parameters map to canonical "
                                  f"name {canonical!r}; fix its rules in architectures/")
        out[canonical] = value
    return out


def from_canonical(table, canonical: dict[str, np.ndarray],
                   native_names) -> dict[str, np.ndarray]:
    """Rename canonical arrays to the framework names in ``native_names``.

    Canonical names the model does not have are passed through unchanged, so the
    loader reports them as "not in model" instead of silently losing them.
    """
    inverse = {table.to_canonical(n): n for n in native_names}
    return {inverse.get(name, name): value for name, value in canonical.items()}


def write_canonical(path, arch: str, state: dict[str, np.ndarray], source: dict | None = None) -> str:
    """Write ``state`` (canonical names) atomically; returns the file's sha256."""
    path = Path(path)
    if not is_canonical_path(path):
        raise CheckpointError(f"canonical weights need the {SUFFIX} suffix, got {path}")
    meta = {"format": FORMAT, "arch": arch, "source": source or {}, "tensors": len(state)}
    arrays = {name: np.ascontiguousarray(v, dtype=np.float32) for name, v in state.items()}
    arrays[META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return file_sha256(path)


WEIGHT_DTYPES = {np.dtype(t).str for t in (np.float16, np.float32, np.float64)}
MAX_META_BYTES = 1 << 20
MAX_EXPANDED = 1 << 31  # bytes an archive's entries may hold in all (ViT-L in float32: 1.2 GB)


def _member_header(z: zipfile.ZipFile, info: zipfile.ZipInfo, path) -> tuple[tuple, np.dtype]:
    """Shape and dtype of one .npy member, checked against the bytes it holds, read before
    NumPy allocates anything (a crafted header could declare terabytes)."""
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version}")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        header = f.tell()
    name = info.filename[:-4]
    allowed = dtype.str in WEIGHT_DTYPES or (name == META_KEY and dtype.kind == "U" and not shape)
    if not allowed or fortran:
        raise CheckpointError(f"{path}: entry {name!r} has dtype {dtype.str}{' (Fortran order)' if fortran else ''}; "
                              "canonical weights are float arrays")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes != info.file_size - header or (name == META_KEY and nbytes > MAX_META_BYTES):
        raise CheckpointError(f"{path}: entry {name!r} declares shape {shape} ({nbytes} bytes), "
                              f"the archive holds {info.file_size - header}")
    return shape, dtype


def _check_sizes(infos: list[zipfile.ZipInfo], path) -> None:
    """Declared sizes against the bytes the archive really holds, before anything is read."""
    archive = os.path.getsize(path)
    for info in infos:
        stored = info.compress_type == zipfile.ZIP_STORED
        if info.compress_size > archive - info.header_offset or (stored and info.file_size != info.compress_size):
            raise CheckpointError(f"{path}: entry {info.filename!r} declares {info.file_size} bytes "
                                  f"({info.compress_size} in the archive), the file has {archive}")
    expanded = sum(i.file_size for i in infos)
    if expanded > MAX_EXPANDED:
        raise CheckpointError(f"{path}: entries declare {expanded} bytes (limit {MAX_EXPANDED}); refusing to expand")


def _meta(raw, path) -> dict:
    try:
        meta = json.loads(str(raw))
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{path}: entry {META_KEY!r} is not JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        shown = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path}: format {str(shown)[:60]!r}, this bench reads {FORMAT!r}")
    if not isinstance(meta.get("arch"), str) or not isinstance(meta.get("source", {}), dict):
        raise CheckpointError(f"{path}: entry {META_KEY!r} names no architecture (a string 'arch')")
    return meta


def read_canonical(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, canonical name -> array); a clear error for anything else."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            _check_sizes(infos, path)
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise CheckpointError(f"{path}: entry {info.filename!r} is not an array")
                _member_header(z, info, path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, RuntimeError, *ZIP_DAMAGE, EOFError,
            SyntaxError, OverflowError, NotImplementedError) as e:  # not MemoryError: sizes are checked first
        raise CheckpointError(f"cannot read canonical weights {path}: {type(e).__name__}: {str(e)[:200]}") from None
    if META_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz without the {META_KEY!r} entry; "
                              "not a bench canonical weight file")
    meta = _meta(arrays.pop(META_KEY), path)
    return meta, {name: a.astype(np.float32, copy=False) for name, a in arrays.items()}


def digest_path(path) -> Path:
    """Where the digest of a file the suite wrote into its cache is kept: beside it."""
    return Path(path).with_name(Path(path).name + ".sha256")


def write_digest(path, digest: str) -> None:
    """Record ``digest`` as the sha256 ``path`` had when the suite wrote it (``verify_digest``)."""
    with atomic_path(digest_path(path)) as tmp:
        tmp.write_text(digest + "\n")


def verify_digest(path, what: str, fix: str) -> str:
    """The file's sha256, when it is the one recorded when the suite wrote it; CheckpointError naming
    the file, both digests and ``fix`` otherwise (a cache file changed, truncated or replaced since)."""
    recorded = digest_path(path)
    if not recorded.is_file():
        raise CheckpointError(f"{what} {path} has no recorded digest ({recorded.name}): it was not written by this "
                              f"version of the suite or its digest was removed; {fix}")
    expected = recorded.read_text(encoding="utf-8", errors="replace").strip()[:64]
    actual = file_sha256(path)
    if actual != expected:
        raise CheckpointError(f"{what} {path} changed since the suite wrote it (sha256 {actual}, recorded "
                              f"{expected}); {fix}")
    return actual


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
