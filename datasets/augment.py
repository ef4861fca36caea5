"""The seeds' augmentations in the shared pipeline (PIL and NumPy): every backend sees the same pixels.

Semantics are timm's, which MindCV 0.3 ports (``mindcv/data/auto_augment.py``,
``transforms_factory.py``); written here because timm, torchvision and kornia import torch, and
MindCV's copy runs on ``mindspore.dataset``: none may enter another framework's process. Every
random draw comes from the per-sample generator (``datasets.loader``), never from ``random``.

* :class:`ColorJitter` ``b``: brightness, contrast and saturation factors uniform in
  ``[max(0, 1 - b), 1 + b]``, applied in a random order (torchvision's ``ColorJitter(b, b, b)``,
  MindCV's ``RandomColorAdjust``).
* :class:`RandAugment` from a timm/MindCV config string ``randaug-m7-mstd0.5[-n2][-mmax10]``: ``n``
  ops drawn without replacement from timm's 14 (``_RAND_TRANSFORMS``), each applied with
  probability 0.5 at a magnitude drawn from N(m, mstd) and clipped to [0, mmax]; geometric ops fill
  with the dataset mean (MindCV's ``img_mean``) and resample bilinearly (MindCV's default).
* :class:`RandomErasing` (``re_prob``): on the normalised CHW array, a rectangle of area
  0.02-0.33 and aspect 0.3-3.3 set to 0 (MindCV's ``re_value=0``), 10 attempts.

MindCV's ``create_transforms`` applies ColorJitter only when no auto-augment policy is set; here
each element applies when it is set (an experiment reproducing MindCV leaves ColorJitter out).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bench.core.errors import ConfigError

LEVEL_MAX = 10.0  # timm's _LEVEL_DENOM: magnitudes are on a 0..10 scale
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
       "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY")


def _negate(value: float, rng: np.random.Generator) -> float:
    return -value if rng.random() > 0.5 else value


def _enhance(kind):
    return lambda img, level, rng, fill: getattr(ImageEnhance, kind)(img).enhance(level / LEVEL_MAX * 1.8 + 0.1)


def _affine(img: Image.Image, matrix: tuple, fill) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, matrix, resample=Image.BILINEAR, fillcolor=fill)


def _posterize(img, level, rng, fill):
    bits = int(level / LEVEL_MAX * 4)  # timm: keep 0..4 most significant bits
    return img if bits >= 8 else ImageOps.posterize(img, bits)


def _translate(axis: int):
    def op(img, level, rng, fill):
        pixels = _negate(level / LEVEL_MAX * 0.45, rng) * img.size[axis]
        return _affine(img, (1, 0, pixels, 0, 1, 0) if axis == 0 else (1, 0, 0, 0, 1, pixels), fill)
    return op


def _shear(axis: int):
    def op(img, level, rng, fill):
        v = _negate(level / LEVEL_MAX * 0.3, rng)
        return _affine(img, (1, v, 0, 0, 1, 0) if axis == 0 else (1, 0, 0, v, 1, 0), fill)
    return op


APPLY = {
    "AutoContrast": lambda img, level, rng, fill: ImageOps.autocontrast(img),
    "Equalize": lambda img, level, rng, fill: ImageOps.equalize(img),
    "Invert": lambda img, level, rng, fill: ImageOps.invert(img),
    "Rotate": lambda img, level, rng, fill: img.rotate(_negate(level / LEVEL_MAX * 30.0, rng),
                                                       resample=Image.BILINEAR, fillcolor=fill),
    "Posterize": _posterize,
    "Solarize": lambda img, level, rng, fill: ImageOps.solarize(img, int(level / LEVEL_MAX * 255)),
    "Color": _enhance("Color"), "Contrast": _enhance("Contrast"), "Brightness": _enhance("Brightness"),
    "Sharpness": _enhance("Sharpness"),
    "ShearX": _shear(0), "ShearY": _shear(1), "TranslateX": _translate(0), "TranslateY": _translate(1),
}


@dataclass(frozen=True)
class RandAugment:
    magnitude: float = 10.0
    num_ops: int = 2
    magnitude_std: float = 0.5
    magnitude_max: float = LEVEL_MAX
    prob: float = 0.5

    @classmethod
    def parse(cls, spec: str) -> "RandAugment":
        """A timm/MindCV config string: ``randaug`` then ``-m<magnitude>``, ``-n<ops>``, ``-mstd<std>``
        (``inf``: uniform in [0, m]) and ``-mmax<upper>``, in any order (defaults m10 n2 mstd0.5)."""
        parts = spec.split("-")
        if parts[0] != "randaug":
            raise ConfigError(f"--rand-augment {spec!r}: expected 'randaug-m<0..10>[-n<ops>][-mstd<std>]', "
                              "e.g. randaug-m7-mstd0.5 (timm/MindCV)")
        fields = {}
        for part in parts[1:]:
            found = re.fullmatch(r"(mstd|mmax|m|n)(inf|\d+(?:\.\d+)?)", part)
            if not found:
                raise ConfigError(f"--rand-augment {spec!r}: unknown part {part!r}; valid: m<magnitude>, "
                                  "n<ops>, mstd<std>, mmax<upper>")
            key, value = found.groups()
            fields[key] = float(value)
        made = cls(magnitude=fields.get("m", 10.0), num_ops=int(fields.get("n", 2)),
                   magnitude_std=fields.get("mstd", 0.5), magnitude_max=fields.get("mmax", LEVEL_MAX))
        if not 0 <= made.magnitude <= made.magnitude_max or made.magnitude_max > LEVEL_MAX:
            raise ConfigError(f"--rand-augment {spec!r}: magnitude m must be in [0, {made.magnitude_max:g}] "
                              f"(timm's scale tops out at {LEVEL_MAX:g}), got {made.magnitude:g}")
        if not 1 <= made.num_ops <= len(OPS) or fields.get("n", 2) != made.num_ops:
            raise ConfigError(f"--rand-augment {spec!r}: n must be a whole number of ops in 1..{len(OPS)}")
        return made

    def __call__(self, img: Image.Image, rng: np.random.Generator, fill: tuple[int, ...]) -> Image.Image:
        for name in rng.choice(OPS, self.num_ops, replace=False):
            if rng.random() > self.prob:
                continue
            level = self.magnitude
            if self.magnitude_std == math.inf:
                level = rng.uniform(0, level)
            elif self.magnitude_std > 0:
                level = rng.normal(level, self.magnitude_std)
            img = APPLY[name](img, max(0.0, min(level, self.magnitude_max)), rng, fill)
        return img


def color_jitter(img: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast and saturation, each by a factor uniform in [max(0, 1 - s), 1 + s],
    in a random order."""
    low, high = max(0.0, 1.0 - strength), 1.0 + strength
    for kind in rng.permutation(["Brightness", "Contrast", "Color"]):
        img = getattr(ImageEnhance, kind)(img).enhance(rng.uniform(low, high))
    return img


def random_erasing(chw: np.ndarray, rng: np.random.Generator, scale=(0.02, 0.33), ratio=(0.3, 3.3),
                   attempts: int = 10) -> np.ndarray:
    """Zero one random rectangle of the normalised image (in place; returned)."""
    _, h, w = chw.shape
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        area = h * w * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if 0 < eh < h and 0 < ew < w:
            top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            chw[:, top:top + eh, left:left + ew] = 0.0
            return chw
    return chw
