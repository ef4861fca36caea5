"""Fine-tuning strategies as framework-neutral plans.

A strategy names *what* is trained and at which learning-rate multiplier, per
canonical stage (see ``architectures/``). Each backend translates a
:class:`Plan` into its own mechanism (Gluon ``grad_req='null'``/``lr_mult``,
MindSpore ``requires_grad``/parameter groups); the runner never does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from architectures import BACKBONE_STAGES, STAGES
from bench.core.errors import ConfigError

# MindCV's custom-dataset guide: deep layers x1.05/1.1/1.15, classifier x1.2.
MINDCV_LAYERWISE = {"stem": 1.0, "stage1": 1.0, "stage2": 1.05, "stage3": 1.1,
                    "stage4": 1.15, "head": 1.2}

STRATEGY_HELP = {
    "full": "all parameters trained at one lr",
    "linear-probe": "only the new head trained; backbone weights and BN statistics frozen",
    "freeze-N": "the first N of (stem, stage1..stage4) frozen incl. BN statistics; rest trained",
    "head-lr-xK": "full fine-tune, head lr multiplied by K (d2l: 10, MindCV: 1.2)",
    "layerwise": "full fine-tune, lr rising with depth (MindCV x1/1/1.05/1.1/1.15, head x1.2)",
    "layerwise-D": "full fine-tune, timm-style layer decay: stage k of 6 gets D**(5-k)",
    "scratch": "random init of everything, own lr, same budget",
    "A+B": "both: frozen stages of either, lr multipliers multiplied (e.g. freeze-1+layerwise)",
}


@dataclass(frozen=True)
class Plan:
    """What a strategy means, in canonical stages."""

    strategy: str
    frozen: tuple[str, ...] = ()          # no gradient, no update, BN statistics fixed
    lr_mult: dict[str, float] = field(default_factory=lambda: {s: 1.0 for s in STAGES})
    pretrained: bool = True               # False: start from random init (scratch)
    # BatchNorm running statistics fixed (eval-mode normalisation) in *every* stage, while
    # gamma/beta still train: Keras' advice for fine-tuning EfficientNets on small batches.
    bn_stats_frozen: bool = False

    def is_frozen(self, stage: str) -> bool:
        return stage in self.frozen

    def bn_frozen(self, stage: str) -> bool:
        return self.bn_stats_frozen or self.is_frozen(stage)

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "frozen": list(self.frozen),
                "lr_mult": dict(self.lr_mult), "pretrained": self.pretrained,
                "bn_stats_frozen": self.bn_stats_frozen}


def _mults(**over: float) -> dict[str, float]:
    m = {s: 1.0 for s in STAGES}
    m.update(over)
    return m


def make_plan(strategy: str, bn_stats_frozen: bool = False) -> Plan:
    """Parse a strategy name into a Plan; ConfigError lists the valid forms."""
    plan = _parse(strategy)
    return replace(plan, bn_stats_frozen=True) if bn_stats_frozen else plan


def _parse(strategy: str) -> Plan:
    if "+" in strategy:  # composition: what either freezes, the product of their multipliers
        parts = [_parse(p) for p in strategy.split("+")]
        if any(not p.pretrained for p in parts):
            raise ConfigError(f"{strategy!r}: scratch does not compose with other strategies")
        frozen = tuple(s for s in STAGES if any(p.is_frozen(s) for p in parts))
        mults = {s: 1.0 for s in STAGES}
        for p in parts:
            mults = {s: mults[s] * p.lr_mult[s] for s in STAGES}
        return Plan(strategy, frozen=frozen, lr_mult=mults)
    if strategy == "full":
        return Plan(strategy)
    if strategy == "scratch":
        return Plan(strategy, pretrained=False)
    if strategy == "linear-probe":
        return Plan(strategy, frozen=BACKBONE_STAGES)
    if strategy == "layerwise":
        return Plan(strategy, lr_mult=dict(MINDCV_LAYERWISE))
    if m := re.fullmatch(r"freeze-(\d+)", strategy):
        n = int(m.group(1))
        if not 1 <= n <= len(BACKBONE_STAGES):
            raise ConfigError(f"{strategy!r}: N must be 1..{len(BACKBONE_STAGES)}")
        return Plan(strategy, frozen=BACKBONE_STAGES[:n])
    if m := re.fullmatch(r"head-lr-x(\d+(?:\.\d+)?)", strategy):
        return Plan(strategy, lr_mult=_mults(head=float(m.group(1))))
    if m := re.fullmatch(r"layerwise-(0?\.\d+|1(?:\.0*)?)", strategy):
        d = float(m.group(1))
        depth = len(STAGES) - 1
        return Plan(strategy, lr_mult={s: d ** (depth - i) for i, s in enumerate(STAGES)})
    raise ConfigError(
        f"unknown strategy {strategy!r}; valid: "
        + "; ".join(f"{k} ({v})" for k, v in STRATEGY_HELP.items())
    )


# The matrix `--strategy all` runs (MindCV Aircraft-table order).
ALL_STRATEGIES = ("linear-probe", "freeze-2", "full", "head-lr-x10", "layerwise", "scratch")
