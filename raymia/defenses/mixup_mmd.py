"""Mixup + MMD (Li, Li, Ribeiro, CODASPY 2021).

Mixup: each batch is replaced by lambda * x + (1 - lambda) * x[perm] with soft
targets mixed the same way, lambda ~ Beta(mixup_alpha, mixup_alpha).
MMD: while the train/validation accuracy gap exceeds `gap_threshold`
(checked after every epoch), the loss adds `mmd_weight` times the squared
maximum mean discrepancy between the softmax outputs on the (clean) training
batch and on a class-matched batch of validation data (held out, disjoint
from every evaluation set), with a sum of Gaussian kernels of bandwidths
`BANDWIDTHS`. The validation outputs are constants (no gradient flows through
them, as in the paper's code): the model moves its training outputs towards
them and never trains on the validation data that gates the term.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from raymia.config import TrainConfig, check
from raymia.defenses.base import Defense
from raymia.registry import DEFENSES
from raymia.train.hooks import Hook
from raymia.train.loop import predict_logits

BANDWIDTHS = (0.01, 0.1, 1.0)


@DEFENSES.register
@dataclass(frozen=True)
class MixupMMD(Defense):
    name = "mixup_mmd"
    stats: ClassVar[dict[str, type]] = {"mmd_epochs": int}
    needs_holdout = True
    revision = 2  # the validation outputs are constants (no gradient through them)
    mixup_alpha: float = 1.0
    mmd_weight: float = 1.0
    gap_threshold: float = 0.05

    def __post_init__(self):
        check(self.mixup_alpha > 0, "mixup_alpha", f"must be > 0, got {self.mixup_alpha}")
        check(self.mmd_weight >= 0, "mmd_weight", f"must be >= 0, got {self.mmd_weight}")
        check(0 <= self.gap_threshold <= 1, "gap_threshold",
              f"must be in [0, 1], got {self.gap_threshold}")

    def hooks(self, context, cfg: TrainConfig) -> list:
        return [MixupMMDHook(self, context)]


def mmd2(a: torch.Tensor, b: torch.Tensor, bandwidths=BANDWIDTHS) -> torch.Tensor:
    """Biased squared MMD between samples a (n, d) and b (m, d), Gaussian kernels."""
    def k(u, v):
        d2 = torch.cdist(u, v).pow(2)
        return sum(torch.exp(-d2 / (2 * s * s)) for s in bandwidths)
    return k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()


class MixupMMDHook(Hook):
    def __init__(self, cfg: MixupMMD, context):
        self.cfg, self.ctx = cfg, context
        self.rng = np.random.default_rng(context.seed)
        self.generator = torch.Generator().manual_seed(context.seed)
        holdout = np.asarray(context.holdout_idx)
        labels = context.y[torch.as_tensor(holdout)].cpu().numpy() if len(holdout) else holdout
        self.val_by_class = {c: holdout[labels == c] for c in np.unique(labels)}
        self.mmd_active = False
        self.mmd_epochs = 0
        self.lam = None

    def batch(self, x, target):
        self.clean_x, self.clean_y = x, target
        self.lam = float(self.rng.beta(self.cfg.mixup_alpha, self.cfg.mixup_alpha))
        perm = torch.randperm(len(x), generator=self.generator).to(x.device)
        onehot = F.one_hot(target, self.ctx.n_classes).float()
        mixed_x = self.lam * x + (1 - self.lam) * x[perm]
        mixed_target = self.lam * onehot + (1 - self.lam) * onehot[perm]
        return mixed_x, mixed_target

    def matched_validation(self) -> np.ndarray:
        """For each clean training example, a validation example of its class (if any)."""
        out = [self.rng.choice(self.val_by_class[c]) for c in self.clean_y.tolist()
               if c in self.val_by_class]
        return np.array(out, dtype=np.int64)

    def loss(self, model, logits, target, loss):
        if not self.mmd_active or self.cfg.mmd_weight == 0:
            return loss
        val = torch.as_tensor(self.matched_validation(), device=self.ctx.x.device)
        if len(val) < 2:
            return loss
        p_train = F.softmax(model(self.clean_x), 1)
        with torch.no_grad():  # a fixed target: the model must not train on the validation data
            p_val = F.softmax(model(self.ctx.x[val]), 1)
        return loss + self.cfg.mmd_weight * mmd2(p_train, p_val)

    def epoch_end(self, epoch, model):
        def acc(idx):
            return float((predict_logits(model, self.ctx.x, idx).argmax(1)
                          == self.ctx.y[torch.as_tensor(idx)].cpu().numpy()).mean())
        gap = acc(self.ctx.train_idx) - acc(self.ctx.holdout_idx)
        self.mmd_active = self.cfg.mmd_weight > 0 and gap > self.cfg.gap_threshold
        self.mmd_epochs += self.mmd_active
        return False

    def report(self) -> dict:
        return {"mmd_epochs": self.mmd_epochs}
