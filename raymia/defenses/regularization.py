"""L2 regularization and label smoothing: defenses that are training knobs.

Both are studied as membership-inference defenses (e.g. by the Trust paper);
each replaces the matching TrainConfig value, so `defense.weight_decay` or
`defense.smoothing` is what a sweep varies."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from raymia.config import TrainConfig, check
from raymia.defenses.base import Defense
from raymia.registry import DEFENSES


@DEFENSES.register
@dataclass(frozen=True)
class L2(Defense):
    """Weight decay `weight_decay` (L2 penalty through the optimizer)."""

    name = "l2"
    stacks = True
    weight_decay: float = 5e-4

    def __post_init__(self):
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return dataclasses.replace(cfg, weight_decay=self.weight_decay)


@DEFENSES.register
@dataclass(frozen=True)
class LabelSmoothing(Defense):
    """Cross-entropy against labels smoothed by `smoothing` (Szegedy et al. 2016)."""

    name = "label_smoothing"
    stacks = True
    smoothing: float = 0.1

    def __post_init__(self):
        check(0 <= self.smoothing < 1, "smoothing", f"must be in [0, 1), got {self.smoothing}")

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return dataclasses.replace(cfg, label_smoothing=self.smoothing)
