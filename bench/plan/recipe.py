"""What each element of a training recipe means, defined once; each backend translates it once.

A recipe element is part of the protocol, like a strategy's :class:`~bench.plan.strategies.Plan`:

* **learning-rate schedule** (:class:`LrSchedule`), one value per optimizer step, computed by
  :meth:`LrSchedule.lr_at` and nothing else. Step ``t`` counts from 0 at the first update.

  - linear warm-up over the first ``W`` steps: ``lr * (f + (1 - f) * t / W)`` (MindCV's
    ``create_scheduler`` with ``warmup_factor`` ``f``, per step: ``linear_refined_lr``);
  - then ``constant``: ``lr``; ``step``: ``lr * gamma ** k``, ``k`` the number of milestones
    (epochs from the start of training) at or before the step's epoch (PyTorch's
    ``MultiStepLR``); ``cosine``: ``min_lr + (lr - min_lr) * (1 + cos(pi * s / S)) / 2``,
    ``s = t - W`` of ``S = T - W`` steps (MindCV's ``cosine_decay_refined_lr`` with
    ``decay_epochs = epochs - warmup_epochs``);
  - a stage's lr multiplier scales the scheduled value (MindCV's "setting learning rates for
    specific layers" multiplies the scheduled list).
* **momentum** in PyTorch's form, the lr outside the buffer: ``a = m * a + g'``, ``w -= lr * a``
  (``g' = g + wd * w``); **Nesterov**: ``w -= lr * (g' + m * a)``. MindSpore's ``Momentum`` and
  MXNet's ``nag`` are this form; Gluon's ``sgd`` keeps ``lr`` inside the buffer
  (``v = m * v - lr * g'``), the same update only while the lr is constant.
* **label smoothing** ``eps``: the target is ``(1 - eps) * onehot + eps / K`` over the ``K``
  classes (PyTorch, MindSpore's ``cross_entropy``/MindCV 0.3, GluonCV's ``smooth``), not
  ``eps / (K - 1)`` off the true class (older MindSpore model-zoo losses).
* **weight-decay filter**: ``all`` decays every trained tensor; ``no-bias-bn`` (MindCV's
  ``filter_bias_and_bn``, timm's ``param_groups_weight_decay``) none of the one-dimensional ones,
  the biases and BatchNorm scales and shifts, decided from tensor shapes (:func:`decays`),
  never from names.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

SCHEDULES = ("constant", "step", "cosine")
DECAY_FILTERS = ("all", "no-bias-bn")
# The recipe's elements as RunConfig fields, with the defaults that mean "as before they existed"
# (a default is left out of the config hash, so earlier records keep theirs).
OPTIM_ELEMENTS = {"schedule": "constant", "lr_warmup_epochs": 0, "lr_warmup_steps": 0, "lr_warmup_factor": 0.0,
                  "milestones": [], "lr_gamma": 0.1, "min_lr": 0.0, "nesterov": False, "label_smoothing": 0.0,
                  "decay_filter": "all"}
AUGMENT_ELEMENTS = {"color_jitter": 0.0, "rand_augment": None, "re_prob": 0.0, "crop_pct": None}
ELEMENTS = OPTIM_ELEMENTS | AUGMENT_ELEMENTS


def recipe_label(config: dict) -> str:
    """A recipe in a few words, for tables: ``constant`` where every element is at its default."""
    c = {k: config.get(k, v) for k, v in ELEMENTS.items()}
    parts = []
    warm = (f"{c['lr_warmup_epochs']}-epoch warm-up" if c["lr_warmup_epochs"]
            else f"{c['lr_warmup_steps']}-step warm-up" if c["lr_warmup_steps"] else "")
    if c["schedule"] != "constant" or warm:
        schedule = (f"step at {','.join(map(str, c['milestones']))} x{c['lr_gamma']:g}" if c["schedule"] == "step"
                    else c["schedule"])
        parts.append(f"{schedule} after {warm}" if warm else schedule)
    parts += (["nesterov"] if c["nesterov"] else []) + ([f"smoothing {c['label_smoothing']:g}"]
                                                         if c["label_smoothing"] else [])
    parts += ["no decay on bias/BN"] if c["decay_filter"] != "all" else []
    parts += [f"jitter {c['color_jitter']:g}"] if c["color_jitter"] else []
    parts += [c["rand_augment"]] if c["rand_augment"] else []
    parts += [f"erasing {c['re_prob']:g}"] if c["re_prob"] else []
    parts += [f"crop_pct {c['crop_pct']:g}"] if c["crop_pct"] is not None else []
    return ", ".join(parts) or "constant"


def decays(decay_filter: str, shape: tuple[int, ...]) -> bool:
    """Whether a trained tensor of ``shape`` gets weight decay under ``decay_filter``."""
    return decay_filter == "all" or len(shape) > 1


@dataclass(frozen=True)
class LrSchedule:
    """The base learning rate of every optimizer step of one run (units: absolute lr, steps)."""

    lr: float
    total_steps: int
    schedule: str = "constant"
    warmup_steps: int = 0
    warmup_factor: float = 0.0
    milestones: tuple[int, ...] = ()          # in steps from the start of training
    gamma: float = 0.1
    min_lr: float = 0.0

    @classmethod
    def of(cls, config, steps_per_epoch: int) -> "LrSchedule":
        """The schedule a :class:`~bench.plan.config.RunConfig` names, for a loader of
        ``steps_per_epoch`` steps."""
        warmup = config.lr_warmup_steps or config.lr_warmup_epochs * steps_per_epoch
        return cls(lr=config.lr, total_steps=config.epochs * steps_per_epoch, schedule=config.schedule,
                   warmup_steps=warmup, warmup_factor=config.lr_warmup_factor,
                   milestones=tuple(m * steps_per_epoch for m in config.milestones),
                   gamma=config.lr_gamma, min_lr=config.min_lr)

    @property
    def is_constant(self) -> bool:
        return self.schedule == "constant" and self.warmup_steps == 0

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            f = self.warmup_factor
            return self.lr * (f + (1.0 - f) * step / self.warmup_steps)
        if self.schedule == "step":
            return self.lr * self.gamma ** bisect_right(self.milestones, step)
        if self.schedule == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            s = min(step - self.warmup_steps, span)
            return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * s / span)) / 2.0
        return self.lr

    def factor_at(self, step: int) -> float:
        """``lr_at(step) / lr``: what a framework's multiplicative scheduler (LambdaLR) takes."""
        return self.lr_at(step) / self.lr

    def values(self) -> list[float]:
        """Every step's lr, as MindSpore and MindCV hand a schedule to an optimizer."""
        return [self.lr_at(t) for t in range(self.total_steps)]

    def probe_steps(self) -> list[int]:
        """A few steps worth reading back from a framework: the first, the end of warm-up, the middle,
        the last."""
        picks = {0, max(self.warmup_steps - 1, 0), self.warmup_steps, self.total_steps // 2, self.total_steps - 1}
        return sorted(t for t in picks if 0 <= t < self.total_steps)

    def to_json(self) -> dict:
        return {"schedule": self.schedule, "lr": self.lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "warmup_factor": self.warmup_factor,
                "milestones": list(self.milestones), "gamma": self.gamma, "min_lr": self.min_lr}


def smoothed_targets(labels, num_classes: int, eps: float):
    """The protocol's soft targets (NumPy): ``(1 - eps) * onehot + eps / K``."""
    import numpy as np
    out = np.full((len(labels), num_classes), eps / num_classes)
    out[np.arange(len(labels)), np.asarray(labels)] += 1.0 - eps
    return out
