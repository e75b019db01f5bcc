"""Adversarial regularization (Nasr, Shokri, Houmansadr, CCS 2018).

A min-max game: an inference model h(softmax(f(x)), onehot(y)) -> P(member)
learns to tell the classifier's training batch from the defender's
reference set (held-out data, disjoint from every evaluation set), and the
classifier minimizes   CE(f(x), y) + alpha * (mean h(f(x), y) - 0.5)
on its training batch, the privacy term of the SELENA code's implementation.
After `warmup_epochs` of plain training, every classifier step follows
`attack_steps` steps of the inference model.

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

    def __post_init__(self):
        check(self.alpha >= 0, "alpha", f"must be >= 0, got {self.alpha}")
        check(self.warmup_epochs >= 0, "warmup_epochs", f"must be >= 0, got {self.warmup_epochs}")
        check(self.attack_steps >= 1, "attack_steps", f"must be >= 1, got {self.attack_steps}")
        check(self.attack_lr > 0, "attack_lr", f"must be > 0, got {self.attack_lr}")

    @classmethod
    def preset(cls, name: str, **changes) -> "AdvReg":
        """The SELENA code's settings for `purchase`, `texas` or `cifar`."""
        return cls(**{**PRESETS[name], **changes})

    def hooks(self, context, cfg: TrainConfig) -> list:
        return [AdvRegHook(self, context)]


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
    def __init__(self, cfg: AdvReg, context):
        self.cfg, self.ctx, self.epoch = cfg, context, 0
        device = context.x.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(context.seed)
            self.attack = InferenceModel(context.n_classes).to(device)
        self.attack_opt = torch.optim.Adam(self.attack.parameters(), lr=cfg.attack_lr)
        self.generator = torch.Generator().manual_seed(context.seed)
        self.reference = torch.as_tensor(context.holdout_idx, dtype=torch.long)
        self.attack_losses: list[float] = []

    def batch(self, x, target):
        self.batch_x, self.batch_y = x, target
        return x, target

    def _features(self, model, x, y):
        onehot = F.one_hot(y, self.ctx.n_classes).float()
        return F.softmax(model(x), 1), onehot

    def attack_step(self, model) -> float:
        """One step of the inference model: the current training batch (members)
        against an equally large batch of the reference set (non-members)."""
        pick = torch.randint(len(self.reference), (len(self.batch_y),), generator=self.generator)
        ref = self.reference[pick].to(self.ctx.x.device)
        with torch.no_grad():
            was_training = model.training
            model.eval()
            p_in, y_in = self._features(model, self.batch_x, self.batch_y)
            p_out, y_out = self._features(model, self.ctx.x[ref], self.ctx.y[ref])
            model.train(was_training)
        scores = self.attack(torch.cat([p_in, p_out]), torch.cat([y_in, y_out]))
        labels = torch.cat([torch.ones(len(p_in)), torch.zeros(len(p_out))]).to(scores.device)
        loss = F.binary_cross_entropy_with_logits(scores, labels)
        self.attack_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.attack_opt.step()
        self.attack_losses.append(float(loss.detach()))
        return self.attack_losses[-1]

    def loss(self, model, logits, target, loss):
        if self.epoch < self.cfg.warmup_epochs or self.cfg.alpha == 0:
            return loss
        for _ in range(self.cfg.attack_steps):
            self.attack_step(model)
        onehot = F.one_hot(self.batch_y, self.ctx.n_classes).float()
        membership = torch.sigmoid(self.attack(F.softmax(logits, 1), onehot))
        return loss + self.cfg.alpha * (membership.mean() - 0.5)

    def epoch_end(self, epoch, model):
        self.epoch = epoch + 1
        return False
