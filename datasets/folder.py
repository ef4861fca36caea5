"""Image folders laid out ``root/split/class/image``; classes sorted by name, label = index."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from bench.core.errors import DatasetError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}
SHOTS_SEED = 0  # the few-shot subset is part of the dataset, not of the run seed
VAL_SEED = 1    # so is the validation split carved from train
MAX_PIXELS = 64_000_000   # an image larger than this is a bad image (a decompression bomb, or not a photo)
MAX_ASPECT = 50           # nor is one whose long side is more than 50 times its short side
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses to decode beyond it (DecompressionBombError at 2x)


class BadImage(ValueError):
    """An image the suite will not decode: over the pixel budget or the aspect-ratio cap."""


def decode(path) -> Image.Image:
    """An image as 8-bit RGB, upright (EXIF orientation applied), within the pixel budget and the
    aspect cap; 16-bit images scaled to 8 bits, not clipped."""
    with Image.open(path) as img:
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise BadImage(f"{w}x{h} pixels, more than the limit of {MAX_PIXELS}")
        if max(w, h) > MAX_ASPECT * max(1, min(w, h)):
            raise BadImage(f"{w}x{h} pixels: aspect ratio beyond {MAX_ASPECT}:1")
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            a = np.asarray(img, dtype=np.int64)
            bits16 = img.mode != "I" or a.max(initial=0) > 255
            img = Image.fromarray((np.clip(a, 0, 65535) >> 8 if bits16 else a).astype(np.uint8), "L")
        return img.convert("RGB")


@dataclass
class ImageFolder:
    """A list of (path, label) with the class names; decoding happens in :meth:`load`."""

    root: Path
    split: str
    classes: list[str]
    samples: list[tuple[Path, int]]
    skip_bad_images: bool = False
    skipped: list[dict] = field(default_factory=list)   # {"path", "why"} of each image skipped

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        return np.array([y for _, y in self.samples], dtype=np.int64)

    def load(self, index: int) -> Image.Image | None:
        """Decode one image as RGB; a corrupt file raises DatasetError naming it
        (or returns None and is remembered when ``skip_bad_images``)."""
        path = self.samples[index][0]
        try:
            return decode(path)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            if self.skip_bad_images:
                self.skipped.append({"path": str(path), "why": f"{type(e).__name__}: {str(e)[:200]}"})
                return None
            raise DatasetError(
                f"cannot decode image {path}: {e.__class__.__name__}: {e} "
                "(fix or remove the file, or pass --skip-bad-images)"
            ) from None

    def verify(self) -> None:
        """Decode every image once; fails on (or, with skip_bad_images, drops) bad files."""
        good = []
        for i, sample in enumerate(self.samples):
            if self.load(i) is not None:
                good.append(sample)
        self.samples = good

    def select(self, classes) -> "ImageFolder":
        """Only ``classes`` (in the given order, relabelled 0..k-1)."""
        unknown = [c for c in classes if c not in self.classes]
        if unknown:
            raise DatasetError(f"classes {unknown} not in {self.root / self.split} "
                               f"(has: {', '.join(self.classes)})")
        new = {self.classes.index(c): i for i, c in enumerate(classes)}
        kept = [(p, new[y]) for p, y in self.samples if y in new]
        return ImageFolder(self.root, self.split, list(classes), kept, self.skip_bad_images, self.skipped)

    def _by_class(self) -> dict[int, list[tuple[Path, int]]]:
        by_class: dict[int, list[tuple[Path, int]]] = {}
        for s in self.samples:
            by_class.setdefault(s[1], []).append(s)
        return by_class

    def _with(self, samples, split: str | None = None) -> "ImageFolder":
        """A subset; it shares the list of skipped images with this folder (one list per split)."""
        return ImageFolder(self.root, split or self.split, self.classes, samples, self.skip_bad_images, self.skipped)

    def subsample(self, shots: int) -> "ImageFolder":
        """Keep ``shots`` images per class, chosen by a fixed seed (same subset every run)."""
        return self.shots_and_validation(shots, 0)[0]

    def shots_and_validation(self, shots: int | None, val_shots: int) -> tuple["ImageFolder", "ImageFolder"]:
        """(``shots`` images per class, ``val_shots`` others per class as a validation split), from one
        fixed-seed permutation per class: the training images are those ``subsample(shots)`` keeps,
        the validation images are never among them (``shots`` None: every image not held out trains)."""
        rng = np.random.default_rng(SHOTS_SEED)
        kept, held = [], []
        for label, items in sorted(self._by_class().items()):
            need = (shots or 0) + val_shots + (0 if shots else 1)
            if len(items) < need:
                asked = " + ".join(([f"--shots {shots}"] if shots else ["1 to train"])
                                   + ([f"--val-shots {val_shots}"] if val_shots else []))
                raise DatasetError(f"class {self.classes[label]!r} in {self.root / self.split} has "
                                   f"{len(items)} images, fewer than {asked}")
            order = rng.permutation(len(items))
            train_idx = order[:shots] if shots else order[val_shots:]
            val_idx = order[shots:shots + val_shots] if shots else order[:val_shots]
            kept.extend(items[i] for i in sorted(train_idx))
            held.extend(items[i] for i in sorted(val_idx))
        return self._with(kept), self._with(held, f"{self.split} (validation, {val_shots} per class)")

    def split_off(self, fraction: float) -> tuple["ImageFolder", "ImageFolder"]:
        """(rest, held out): ``fraction`` of every class held out (at least one image, at
        least one kept), chosen by a fixed seed, so every run of a dataset shares the split."""
        rng = np.random.default_rng(VAL_SEED)
        rest, held = [], []
        for label, items in sorted(self._by_class().items()):
            if len(items) < 2:
                raise DatasetError(f"class {self.classes[label]!r} in {self.root / self.split} has "
                                   f"{len(items)} image(s): too few to carve a validation split")
            k = min(max(1, round(fraction * len(items))), len(items) - 1)
            order = rng.permutation(len(items))
            held.extend(items[i] for i in sorted(order[:k]))
            rest.extend(items[i] for i in sorted(order[k:]))
        return self._with(rest), self._with(held, f"{self.split} (validation {fraction:g})")


def read_image_folder(root: str | os.PathLike, split: str, *, skip_bad_images: bool = False) -> ImageFolder:
    """Scan ``root/split/<class>/*``; errors name the path and what was expected."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data directory {root} does not exist")
    split_dir = root / split
    if not split_dir.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(
            f"split {split!r} not found: expected directory {split_dir} "
            f"(layout root/split/class/image; splits present: {', '.join(have) or 'none'})"
        )
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{split_dir} has no class directories (expected {split_dir}/<class>/<image>)")
    stray = sorted(p.name for p in split_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if stray:
        raise DatasetError(f"{split_dir} holds files outside class directories: {', '.join(stray[:5])}")
    samples: list[tuple[Path, int]] = []
    skipped: list[dict] = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (split_dir / name).iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DatasetError(f"class {name!r} is empty: no images in {split_dir / name}")
        for p in files:
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                if skip_bad_images:
                    skipped.append({"path": str(p), "why": f"not an image (extension {p.suffix or 'none'})"})
                    continue
                raise DatasetError(
                    f"{p} is not an image (extension {p.suffix or 'none'}; expected one of "
                    f"{', '.join(sorted(IMAGE_EXTENSIONS))}); remove it or pass --skip-bad-images"
                )
            if p.stat().st_size == 0:
                if not skip_bad_images:
                    raise DatasetError(f"{p} is empty (0 bytes); remove it or pass --skip-bad-images")
                skipped.append({"path": str(p), "why": "empty (0 bytes)"})
                continue
            samples.append((p, label))
    return ImageFolder(root, split, classes, samples, skip_bad_images, skipped)


def check_same_classes(train: ImageFolder, evaluation: ImageFolder) -> None:
    """Train and eval splits must name the same classes in the same order."""
    if train.classes != evaluation.classes:
        only_train = sorted(set(train.classes) - set(evaluation.classes))
        only_eval = sorted(set(evaluation.classes) - set(train.classes))
        raise DatasetError(
            f"classes differ between {train.root / train.split} and "
            f"{evaluation.root / evaluation.split}: only in {train.split}: {only_train or '-'}; "
            f"only in {evaluation.split}: {only_eval or '-'}"
        )
