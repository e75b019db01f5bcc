"""Adversarial regularization (Nasr, Shokri, Houmansadr, CCS 2018).

A min-max game (the paper's Algorithm 1): an inference model
h(softmax(f(x)), onehot(y)) -> P(member) learns to tell the classifier's
training members from the defender's reference set (held-out data, disjoint
from every evaluation set), and the classifier minimizes
    CE(f(x), y) + alpha * (mean h(f(x), y) - 0.5)
on its training batch, the privacy term of the SELENA code's implementation.
After `warmup_epochs` of plain training, the inference model is first
pre-trained for `pretrain_epochs` passes over the members (each batch of
members, in a fresh random order, against as many random reference examples);
then every classifier step follows `attack_steps` steps of the inference
model, each on its own random batch of members and an equally large random
batch of the reference set (not on the classifier's current batch).

Presets from the SELENA code (alpha, warm-up epochs, inference steps per
classifier step, inference model learning rate):
  purchase: 3, 1, 13, 1e-4     texas: 2, 1, 25, 1e-3     cifar: 6, 4, 1, 1e-4
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from raymia.config import TrainConfig, check
from raymia.defenses.base import Defense
from raymia.registry import DEFENSES
from raymia.train.hooks import Hook

PRESETS = {
    "purchase": dict(alpha=3.0, warmup_epochs=1, attack_steps=13, attack_lr=1e-4),
    "texas": dict(alpha=2.0, warmup_epochs=1, attack_steps=25, attack_lr=1e-3),
    "cifar": dict(alpha=6.0, warmup_epochs=4, attack_steps=1, attack_lr=1e-4),
}


@DEFENSES.register
@dataclass(frozen=True)
class AdvReg(Defense):
    name = "adv_reg"
    needs_holdout = True
    alpha: float = 3.0
    warmup_epochs: int = 1
    attack_steps: int = 13
    attack_lr: float = 1e-4
    pretrain_epochs: int = 5

    def __post_init__(self):
        check(self.alpha >= 0, "alpha", f"must be >= 0, got {self.alpha}")
        check(self.warmup_epochs >= 0, "warmup_epochs", f"must be >= 0, got {self.warmup_epochs}")
        check(self.attack_steps >= 1, "attack_steps", f"must be >= 1, got {self.attack_steps}")
        check(self.attack_lr > 0, "attack_lr", f"must be > 0, got {self.attack_lr}")
        check(self.pretrain_epochs >= 0, "pretrain_epochs",
              f"must be >= 0, got {self.pretrain_epochs}")

    @classmethod
    def preset(cls, name: str, **changes) -> "AdvReg":
        """The SELENA code's settings for `purchase`, `texas` or `cifar`."""
        return cls(**{**PRESETS[name], **changes})

    def hooks(self, context, cfg: TrainConfig) -> list:
        return [AdvRegHook(self, context, cfg.batch_size)]


class InferenceModel(nn.Module):
    """h(p, y): a branch on the prediction vector, one on the one-hot label, joined."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.pred = nn.Sequential(nn.Linear(n_classes, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU())
        self.label = nn.Sequential(nn.Linear(n_classes, 64), nn.ReLU())
        self.joint = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, probs: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """(B, C), (B, C) -> (B,) logit of P(member)."""
        return self.joint(torch.cat([self.pred(probs), self.label(onehot)], 1))[:, 0]


class AdvRegHook(Hook):
    def __init__(self, cfg: AdvReg, context, batch_size: int):
        self.cfg, self.ctx, self.batch_size, self.epoch = cfg, context, batch_size, 0
        device = context.x.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(context.seed)
            self.attack = InferenceModel(context.n_classes).to(device)
        self.attack_opt = torch.optim.Adam(self.attack.parameters(), lr=cfg.attack_lr)
        self.generator = torch.Generator().manual_seed(context.seed)
        self.members = torch.as_tensor(context.train_idx, dtype=torch.long)
        self.reference = torch.as_tensor(context.holdout_idx, dtype=torch.long)
        self.pretrained = False
        self.attack_losses: list[float] = []

    def _features(self, model, rows):
        rows = rows.to(self.ctx.x.device)
        onehot = F.one_hot(self.ctx.y[rows], self.ctx.n_classes).float()
        return F.softmax(model(self.ctx.x[rows]), 1), onehot

    def draw_reference(self, size: int) -> torch.Tensor:
        """`size` reference rows drawn at random (with replacement: the set may be small)."""
        return self.reference[torch.randint(len(self.reference), (size,),
                                            generator=self.generator)]

    def draw_members(self) -> torch.Tensor:
        """A fresh random batch of distinct members, as large as the classifier's batches."""
        return self.members[torch.randperm(len(self.members),
                                           generator=self.generator)[:self.batch_size]]

    def attack_step(self, model, members: torch.Tensor, reference: torch.Tensor) -> float:
        """One step of the inference model: rows `members` (label 1) against rows
        `reference` (non-members, label 0), on the classifier's outputs in eval mode."""
        with torch.no_grad():
            was_training = model.training
            model.eval()
            p_in, y_in = self._features(model, members)
            p_out, y_out = self._features(model, reference)
            model.train(was_training)
        scores = self.attack(torch.cat([p_in, p_out]), torch.cat([y_in, y_out]))
        labels = torch.cat([torch.ones(len(p_in)), torch.zeros(len(p_out))]).to(scores.device)
        loss = F.binary_cross_entropy_with_logits(scores, labels)
        self.attack_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.attack_opt.step()
        self.attack_losses.append(float(loss.detach()))
        return self.attack_losses[-1]

    def pretrain(self, model) -> None:
        """`pretrain_epochs` passes over the members in batches, each against as many
        random reference rows (the inference model starts the game trained)."""
        for _ in range(self.cfg.pretrain_epochs):
            order = self.members[torch.randperm(len(self.members), generator=self.generator)]
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                self.attack_step(model, rows, self.draw_reference(len(rows)))

    def loss(self, model, logits, target, loss):
        if self.epoch < self.cfg.warmup_epochs or self.cfg.alpha == 0:
            return loss
        if not self.pretrained:  # the warm-up just ended: before the first private step
            self.pretrained = True
            self.pretrain(model)
        for _ in range(self.cfg.attack_steps):
            members = self.draw_members()
            self.attack_step(model, members, self.draw_reference(len(members)))
        onehot = F.one_hot(target, self.ctx.n_classes).float()
        membership = torch.sigmoid(self.attack(F.softmax(logits, 1), onehot))
        return loss + self.cfg.alpha * (membership.mean() - 0.5)

    def epoch_end(self, epoch, model):
        self.epoch = epoch + 1
        return False
