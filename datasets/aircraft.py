"""FGVC-Aircraft 2013b (the MindCV custom-dataset guide's data), read from its own annotation files.

The archive (``fgvc-aircraft-2013b.tar.gz``) holds ``fgvc-aircraft-2013b/data/`` with
``images/<id>.jpg``, ``variants.txt`` (the 100 variants, one a line) and one annotation file per
split, ``images_variant_<split>.txt``: lines ``<image id> <variant>``. Variant names contain
spaces and slashes (``F/A-18``), so they are never turned into folder names: the files are read
as MindCV's guide reads them, and labels are the variants' order in ``variants.txt``.
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.core.errors import DatasetError

from .folder import ImageFolder

SPLITS = ("trainval", "test", "train", "val")
LAYOUT = ("fgvc-aircraft-2013b/data/ with variants.txt, images_variant_<split>.txt (lines '<image id> "
          "<variant>') and images/<id>.jpg")


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing; FGVC-Aircraft's layout is {LAYOUT}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def variants(root: Path) -> list[str]:
    path = Path(root) / "data" / "variants.txt"
    names = [line for _, line in _lines(path)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes or not names:
        raise DatasetError(f"{path}: expected distinct variant names, one a line; "
                           + (f"repeated: {', '.join(dupes[:3])}" if dupes else "it is empty"))
    return names


def read_aircraft(root: Path, split: str, skip_bad_images: bool = False) -> ImageFolder:
    """One split as an :class:`ImageFolder`; a missing or malformed annotation file, an unknown
    variant or an image the annotations name but the archive lacks is a DatasetError naming the
    file and line."""
    if split not in SPLITS:
        raise DatasetError(f"FGVC-Aircraft has the splits {', '.join(SPLITS)}, not {split!r}")
    data = Path(root) / "data"
    classes = variants(root)
    index = {name: i for i, name in enumerate(classes)}
    annotations = data / f"images_variant_{split}.txt"
    samples = []
    for n, line in _lines(annotations):
        image_id, _, variant = line.partition(" ")
        if not re.fullmatch(r"[0-9]{1,12}", image_id) or not variant:
            raise DatasetError(f"{annotations}:{n}: expected '<image id> <variant>', got {line[:80]!r}")
        if variant not in index:
            raise DatasetError(f"{annotations}:{n}: variant {variant[:80]!r} is not in {data / 'variants.txt'}")
        image = data / "images" / f"{image_id}.jpg"
        if not image.is_file():
            raise DatasetError(f"{annotations}:{n}: names image {image}, which is missing")
        samples.append((image, index[variant]))
    if not samples:
        raise DatasetError(f"{annotations}: names no image")
    return ImageFolder(Path(root), split, classes, samples, skip_bad_images)
