"""Canonical weight files: the same numbers for every framework.

A canonical file is a NumPy ``.npz`` archive: one float32 array per parameter
(BatchNorm running statistics included) under its canonical name (torchvision's
naming, see ``bench/architectures.py``), plus a ``__bench__`` entry holding JSON
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
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .architectures import ArchTable
from .errors import CheckpointError

FORMAT = "bench-canonical/1"
META_KEY = "__bench__"
SUFFIX = ".npz"


def is_canonical_path(path) -> bool:
    return str(path).endswith(SUFFIX)


def to_canonical(table: ArchTable, native: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename a framework's parameters to canonical names (a clash is a table bug)."""
    out: dict[str, np.ndarray] = {}
    for name, value in native.items():
        canonical = table.to_canonical(name)
        if canonical in out:
            raise CheckpointError(f"{table.native_name}: two parameters map to canonical name "
                                  f"{canonical!r}; fix its rules in bench/architectures.py")
        out[canonical] = value
    return out


def from_canonical(table: ArchTable, canonical: dict[str, np.ndarray],
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file_sha256(path)


def read_canonical(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, canonical name -> array); a clear error for anything else."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"cannot read canonical weights {path}: {e}") from None
    if META_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz without the {META_KEY!r} entry; "
                              "not a bench canonical weight file")
    meta = json.loads(str(arrays.pop(META_KEY)))
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, this bench reads {FORMAT!r}")
    return meta, arrays


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
