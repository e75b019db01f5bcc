"""What every defense config offers the training job."""
from __future__ import annotations

from typing import ClassVar

from raymia.config import TrainConfig


class Defense:
    """Base of the defense configs (frozen dataclasses registered by `name`).

    A defense changes training in two ways only: `training` adjusts the loop's
    config (weight decay, label smoothing, ...), and `hooks` returns hooks the
    loop calls (raymia.train.hooks)."""

    name: ClassVar[str]
    #: whether the attacker's `like_target` shadow models train with it too
    applies_to_shadows: ClassVar[bool] = True

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return cfg

    def hooks(self, data, cfg: TrainConfig) -> list:
        return []
