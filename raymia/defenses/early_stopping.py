"""Early stopping: keep the epoch with the lowest loss on held-out validation
data, stop after `patience` epochs without improvement.

The validation data is the defender's own held-out split, disjoint from the
attack's evaluation non-members (choosing the epoch on those non-members, as
some published code does, leaks evaluation labels into the defense)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from raymia.config import TrainConfig, check
from raymia.defenses.base import Defense
from raymia.registry import DEFENSES
from raymia.train.hooks import Hook
from raymia.train.loop import predict_logits


@DEFENSES.register
@dataclass(frozen=True)
class EarlyStopping(Defense):
    name = "early_stopping"
    stats: ClassVar[dict[str, type]] = {"best_epoch": int}
    needs_holdout = True
    stacks = True  # its hook acts at epoch ends: each stacked model stops on its own
    patience: int = 10

    def __post_init__(self):
        check(self.patience >= 1, "patience", f"must be >= 1, got {self.patience}")

    def hooks(self, context, cfg: TrainConfig) -> list:
        return [EarlyStoppingHook(self.patience, context)]


class EarlyStoppingHook(Hook):
    def __init__(self, patience: int, context):
        self.patience, self.ctx = patience, context
        self.best_loss, self.best_epoch, self.best_state = float("inf"), -1, None

    def validation_loss(self, model) -> float:
        logits = torch.from_numpy(predict_logits(model, self.ctx.x, self.ctx.holdout_idx))
        labels = self.ctx.y[torch.as_tensor(self.ctx.holdout_idx)].cpu()
        return float(F.cross_entropy(logits, labels))

    def epoch_end(self, epoch, model):
        loss = self.validation_loss(model)
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            self.best_state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def finish(self, model):
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return model

    def report(self) -> dict:
        return {"best_epoch": self.best_epoch + 1}  # counted from 1, like epochs_run
