"""Hooks: how defenses compose into the one training loop instead of copying it.

Each method's default leaves training unchanged; a defense overrides the
steps it changes. The loop calls every hook, in order, at each step:

    model = prepare(model)                          before the optimizer exists
    model, optimizer, loader = setup(...)           may wrap all three (e.g. Opacus)
    per batch:  x, target = batch(x, target)        target: (B,) ids or (B, C) probabilities
                loss = loss(model, logits, target, loss)
    per epoch:  stop = epoch_end(epoch, model)
    model = finish(model)                           e.g. restore a chosen checkpoint
    stats = report()                                numbers for the trials table
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(eq=False)
class HookContext:
    """What a defense may use to build its hooks for one model's training."""

    x: torch.Tensor  # (n, ...) the whole dataset, on the training device
    y: torch.Tensor  # (n,)
    n_classes: int
    train_idx: np.ndarray  # sample ids this model trains on
    holdout_idx: np.ndarray  # the defender's held-out sample ids (may be empty)
    seed: int  # for the hook's own random draws


class Hook:
    def prepare(self, model: nn.Module) -> nn.Module:
        return model

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader):
        return model, optimizer, loader

    def batch(self, x: torch.Tensor, target: torch.Tensor):
        return x, target

    def loss(self, model: nn.Module, logits: torch.Tensor, target: torch.Tensor,
             loss: torch.Tensor) -> torch.Tensor:
        return loss

    def epoch_end(self, epoch: int, model: nn.Module) -> bool:
        return False

    def finish(self, model: nn.Module) -> nn.Module:
        return model

    def report(self) -> dict:
        return {}
