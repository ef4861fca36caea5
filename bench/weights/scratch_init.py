"""Shared scratch initialisation: one canonical random-init file, the same numbers on every backend.

Each framework initialises differently (Gluon: Xavier everywhere; MindCV: He
normal and per-model rules; torchvision: He normal fan-out), so "fine-tuned
minus scratch" would differ between backends partly by initialisation. The
scratch arm therefore loads, by default (``--scratch-init shared``), a canonical
file made once per (architecture, structure, seed) with one initialiser:

* convolution weights, canonical shape (out, in/groups, kh, kw): He normal in
  fan-out mode, N(0, 2 / (out * kh * kw)) (torchvision's ResNet and MobileNet);
* dense weights (out, in): Xavier uniform, U(+-sqrt(6 / (in + out))) (the suite's head);
* BatchNorm: weight 1, bias 0, running mean 0, running variance 1; other biases 0.

Values are drawn in sorted canonical-name order from NumPy's PCG64 seeded with
(seed, crc32(architecture)). ``--scratch-init native`` keeps each framework's own.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from . import canonical

INITIALISER = "he-normal-fan-out conv, xavier-uniform dense, BN 1/0 (v1)"


def shared_init(arch: str, shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """canonical name -> float32 array, for the canonical names and shapes of one model."""
    rng = np.random.default_rng([seed, zlib.crc32(arch.encode())])
    out = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            value = np.ones(shape)
        elif len(shape) == 4:
            value = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[2] * shape[3])), shape)
        elif len(shape) == 2:
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            value = rng.uniform(-limit, limit, shape)
        else:  # biases, BatchNorm shifts, running means
            value = np.zeros(shape)
        out[name] = value.astype(np.float32)
    return out


def shared_init_file(arch: str, shapes: dict[str, tuple[int, ...]], seed: int, cache_dir: Path) -> Path:
    """The canonical init file for this structure and seed (written once, atomically)."""
    key = json.dumps([arch, sorted((n, list(s)) for n, s in shapes.items()), seed, INITIALISER])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = Path(cache_dir) / "weights" / f"{arch}-init-s{seed}-{digest}{canonical.SUFFIX}"
    if not path.exists():
        canonical.write_canonical(path, arch, shared_init(arch, shapes, seed),
                                  {"initialiser": INITIALISER, "seed": seed})
    return path
