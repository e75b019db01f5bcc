"""The one training loop. Defenses change it only through hooks and the config."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from raymia.config import TrainConfig
from raymia.train.hooks import Hook


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainLog:
    epochs_run: int
    final_loss: float
    stats: dict = field(default_factory=dict)  # what the hooks report


def make_optimizer(cfg: TrainConfig, params, fused: bool | None = None) -> torch.optim.Optimizer:
    """`fused`: torch's one-pass kernel (the same update, rounded differently)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, fused=fused)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def make_schedule(cfg: TrainConfig, optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: constant, cosine to 0, or step (x0.1 at 50% and 75% of epochs)."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "step":
        milestones = [cfg.epochs // 2, (3 * cfg.epochs) // 4]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)


class IndexBatches:
    """Shuffled batches of sample ids, each yielded as `(rows,)` like a DataLoader
    over `dataset` would, without its per-example overhead: the loop's default
    loader. Hooks that need a real DataLoader (Opacus) build one from
    `dataset`, `batch_size` and `generator`."""

    def __init__(self, train_idx: np.ndarray, batch_size: int, generator: torch.Generator):
        self.ids = torch.as_tensor(train_idx, dtype=torch.long)
        self.dataset = TensorDataset(self.ids)
        self.batch_size, self.generator = batch_size, generator

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def __iter__(self):
        order = self.ids[torch.randperm(len(self.ids), generator=self.generator)]
        for start in range(0, len(order), self.batch_size):
            yield (order[start:start + self.batch_size],)


def train_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_idx: np.ndarray,
                cfg: TrainConfig, hooks: list[Hook], generator: torch.Generator):
    """Train `model` on rows `train_idx` of (x, y); returns (model, TrainLog).

    x: (n, ...) float32 and y: (n,) int64, already on the model's device.
    `generator` (CPU) draws the batch order; the caller seeds init and dropout.
    """
    for hook in hooks:
        model = hook.prepare(model)
    optimizer = make_optimizer(cfg, model.parameters())
    loader = IndexBatches(train_idx, cfg.batch_size, generator)
    for hook in hooks:
        model, optimizer, loader = hook.setup(model, optimizer, loader)
    schedule = make_schedule(cfg, optimizer)
    loss = torch.tensor(float("nan"))
    epoch = -1
    for epoch in range(cfg.epochs):
        model.train()
        for (rows,) in loader:
            if len(rows) == 0:  # Poisson sampling can draw an empty batch: nothing to learn
                continue
            rows = rows.to(x.device)
            xb, target = x[rows], y[rows]
            for hook in hooks:
                xb, target = hook.batch(xb, target)
            logits = model(xb)
            loss = F.cross_entropy(logits, target, label_smoothing=cfg.label_smoothing)
            for hook in hooks:
                loss = hook.loss(model, logits, target, loss)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"training loss became {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        if any([hook.epoch_end(epoch, model) for hook in hooks]):
            break
    for hook in hooks:
        model = hook.finish(model)
    stats = {k: v for hook in hooks for k, v in hook.report().items()}
    return model, TrainLog(epochs_run=epoch + 1, final_loss=float(loss.detach()), stats=stats)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, rows: np.ndarray,
                   batch_size: int = 1024) -> np.ndarray:
    """Logits of `model` on x[rows]: (len(rows), n_classes) float32 numpy."""
    model.eval()
    idx = torch.as_tensor(rows, dtype=torch.long, device=x.device)
    out = [model(x[idx[s:s + batch_size]]).float().cpu() for s in range(0, len(idx), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def predict_inputs(model: nn.Module, inputs: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Logits of `model` on `inputs` (n, ...): (n, n_classes) float32 numpy."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(inputs[s:s + batch_size].to(device)).float().cpu()
           for s in range(0, len(inputs), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
