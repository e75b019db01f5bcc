"""Hooks: how defenses compose into the one training loop instead of copying it.

Each method's default leaves training unchanged; a defense overrides the
steps it changes. The loop calls every hook, in order, at each step.
"""
from __future__ import annotations

import torch
from torch import nn


class Hook:
    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer, n_train: int):
        """Before the first epoch; may wrap or replace model and optimizer."""
        return model, optimizer

    def batch(self, x: torch.Tensor, target: torch.Tensor):
        """Transform a batch: x (B, ...), target (B,) class ids or (B, C) probabilities."""
        return x, target

    def loss(self, model: nn.Module, logits: torch.Tensor, target: torch.Tensor,
             loss: torch.Tensor) -> torch.Tensor:
        """Add to or replace the batch loss."""
        return loss

    def epoch_end(self, epoch: int, model: nn.Module) -> bool:
        """After each epoch; return True to stop training."""
        return False

    def finish(self, model: nn.Module) -> nn.Module:
        """After training; may return another model (e.g. a chosen checkpoint)."""
        return model
