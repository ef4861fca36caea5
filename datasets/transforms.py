"""Recipe transforms on PIL images -> float32 CHW arrays normalised with ImageNet mean/std
(or the ``mean``/``std`` an architecture's weights expect, see ``architectures.input_norm``).

Train: RandomResizedCrop(size, scale, ratio 3/4..4/3) + horizontal flip, then the recipe's
augmentations where set (``datasets/augment.py``: ColorJitter, RandAugment, then after
normalisation RandomErasing), MindCV's order.
Eval: resize the shorter side to size*256/224 (or ``floor(size / crop_pct)``, MindCV's
``crop_pct``) (aspect kept: torchvision/MindSpore
semantics, *not* Gluon's ``Resize(int)`` which squares), then center crop; computed as
one resize of the crop's region (PIL's ``box``), so a thin image never grows in memory
(the same pixels within 1/255 of resize-then-crop, measured on CIFAR and photos).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

from .augment import RandAugment, color_jitter, random_erasing

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_normalized_chw(img: Image.Image, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def random_resized_crop_box(width: int, height: int, rng: np.random.Generator,
                            scale: tuple[float, float], ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision's algorithm: 10 tries at a random area/aspect, else a center crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            x = int(rng.integers(0, width - w + 1))
            y = int(rng.integers(0, height - h + 1))
            return x, y, x + w, y + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    x, y = (width - w) // 2, (height - h) // 2
    return x, y, x + w, y + h


@dataclass(frozen=True)
class TrainTransform:
    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    hflip: bool = True
    mean: tuple[float, ...] = tuple(IMAGENET_MEAN.tolist())
    std: tuple[float, ...] = tuple(IMAGENET_STD.tolist())
    color_jitter: float = 0.0
    rand_augment: str | None = None       # a timm/MindCV config string, e.g. randaug-m7-mstd0.5
    re_prob: float = 0.0                  # RandomErasing's probability

    @cached_property
    def _rand_augment(self) -> RandAugment | None:
        """The config string parsed once per transform, not once per image."""
        return RandAugment.parse(self.rand_augment) if self.rand_augment else None

    @cached_property
    def _fill(self) -> tuple[int, ...]:
        return tuple(min(255, round(255 * m)) for m in self.mean)  # MindCV's img_mean

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> np.ndarray:
        box = random_resized_crop_box(img.width, img.height, rng, self.scale)
        img = img.resize((self.size, self.size), Image.BILINEAR, box=box)
        if self.hflip and rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if self.color_jitter:
            img = color_jitter(img, self.color_jitter, rng)
        if self._rand_augment is not None:
            img = self._rand_augment(img, rng, self._fill)
        out = to_normalized_chw(img, self.mean, self.std)
        return random_erasing(out, rng) if self.re_prob and rng.random() < self.re_prob else out


@dataclass(frozen=True)
class EvalTransform:
    size: int
    mean: tuple[float, ...] = tuple(IMAGENET_MEAN.tolist())
    std: tuple[float, ...] = tuple(IMAGENET_STD.tolist())
    crop_pct: float | None = None         # MindCV/timm: resize to floor(size / crop_pct); None: 256/224

    @property
    def resize_to(self) -> int:
        if self.crop_pct is not None:
            return int(math.floor(self.size / self.crop_pct))
        return int(round(self.size * 256 / 224))

    def box(self, w: int, h: int) -> tuple[float, float, float, float]:
        """The region of a ``w`` x ``h`` image that resize-shorter-side-then-center-crop keeps."""
        short = self.resize_to
        if w <= h:
            nw, nh = short, max(short, int(round(h * short / w)))
        else:
            nw, nh = max(short, int(round(w * short / h))), short
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        sx, sy = w / nw, h / nh
        return left * sx, top * sy, (left + self.size) * sx, (top + self.size) * sy

    def __call__(self, img: Image.Image, rng: np.random.Generator | None = None) -> np.ndarray:
        img = img.resize((self.size, self.size), Image.BILINEAR, box=self.box(*img.size))
        return to_normalized_chw(img, self.mean, self.std)
