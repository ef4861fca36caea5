"""The embedded offline dataset: scikit-learn's 1,797 real handwritten digits.

The images ship inside the scikit-learn wheel (UCI optdigits, 43 writers,
8x8 grey levels 0..16), so this works on a machine with no network. We write
them once as image folders (upsampled to 32x32 RGB PNG) so every loader, the
shared one and the frameworks' native ones, reads the same files:

    <data_root>/digits-transfer/source/{train,test}/{0..4}_r{000,090,180,270}/   pretraining
    <data_root>/digits-transfer/target/{train,test}/{5..9}/                      transfer task

Source and target share no class: the target digits are never seen in pretraining.
The source task asks for digit *and* rotation (20 classes, in the spirit of
RotNet, Gidaris et al. 2018): with only ~900 source images, a 5-way digit task
lets the features collapse onto 5 directions, while digit x rotation forces
stroke- and orientation-aware features that transfer better (compare the
linear-probe rows of results/README.md).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

LAYOUT_VERSION = 2
ROTATIONS = (0, 1, 2, 3)  # multiples of 90 degrees, source task only
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
SOURCE_TEST_FRACTION = 0.2
TARGET_TEST_FRACTION = 0.6   # large target test set: tighter accuracy intervals
UPSAMPLED = 32


def _write_split(base: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                 rotations=(0,)) -> None:
    for i in indices:
        for r in rotations:
            name = str(int(labels[i])) if rotations == (0,) else f"{int(labels[i])}_r{90 * r:03d}"
            d = base / name
            d.mkdir(parents=True, exist_ok=True)
            grey = (np.rot90(images[i], r) * (255.0 / 16.0)).round().astype(np.uint8)
            img = Image.fromarray(grey, mode="L").resize((UPSAMPLED, UPSAMPLED), Image.BICUBIC)
            img.convert("RGB").save(d / f"{int(i):04d}.png")


def _split(labels: np.ndarray, classes, test_fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    train, test = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(train), np.sort(test)


def prepare_digits(data_root: str | os.PathLike) -> Path:
    """Materialise the digits image folders (once) and return their root."""
    root = Path(data_root) / "digits-transfer"
    stamp = root / "layout.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("version") == LAYOUT_VERSION:
        return root
    from sklearn.datasets import load_digits  # the data is inside the wheel: no download

    digits = load_digits()
    images, labels = digits.images, digits.target
    rng = np.random.default_rng(0)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="digits-transfer.", dir=root.parent))
    counts = {}
    for task, classes, frac, rots in (("source", SOURCE_CLASSES, SOURCE_TEST_FRACTION, ROTATIONS),
                                      ("target", TARGET_CLASSES, TARGET_TEST_FRACTION, (0,))):
        train, test = _split(labels, classes, frac, rng)
        _write_split(tmp / task / "train", images, labels, train, rots)
        _write_split(tmp / task / "test", images, labels, test, rots)
        counts[task] = {"train": len(train), "test": len(test)}
    (tmp / "layout.json").write_text(json.dumps({"version": LAYOUT_VERSION, "counts": counts}))
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)
    return root
