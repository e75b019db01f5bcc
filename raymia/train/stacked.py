"""Many models of one architecture trained as one stacked model.

A job's models (shadow models, SELENA's submodels) share an architecture and
a training config. Trained one after another, each small model's step is
mostly Python and kernel-launch overhead; stacked, one step trains them all:
each layer's parameters are stacked along a new first dimension and the
layer runs as one batched operation on every model's own batch (a linear
layer as one batched matrix product, a convolution as one grouped
convolution, activations and pooling on all at once), and one optimizer
updates the stacked parameters.
Adam, SGD with momentum and weight decay act elementwise, so each model
follows its own trajectory, as it would alone:

- its own initialisation (built under its own seed, as the one-at-a-time loop does),
- its own batch order (its own generator, the loop's `IndexBatches`),
- its own loss, the mean over its own batch (the stacked loss is their sum,
  so each model's gradient is its own),
- its own held-out data and early stop: a defense that `stacks` has hooks
  that only act at epoch ends (`epoch_end`, `finish`, `report`); each model's
  hooks see that model alone, and a model whose hook stops it is frozen (its
  parameters are put back after every later step) while the others go on.

The results equal the one-at-a-time loop's up to floating-point rounding: a
batched matrix product sums in another order than a single one (tests: the
weights after an epoch agree to 1e-5, relative).

What does not stack falls back to the one-at-a-time loop (`why_not`): a
model that is not an `nn.Sequential` of the layers below (e.g. a ResNet),
one with buffers (BatchNorm's running statistics fall back) or dropout (its
draws would differ from the loop's), and defenses whose hooks change
batches, losses or the optimizer (DP-SGD, AdvReg, MixupMMD, SELENA's
distillation), and on a CPU a model with convolutions (measured slower
stacked there). Models of different training-set sizes are stacked in groups
of one size. Layers that stack: Flatten, Linear, Conv2d, the pooling layers
and the elementwise activations (STACKED_LAYERS, ELEMENTWISE).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raymia.config import TrainConfig
from raymia.train.loop import (IndexBatches, TrainingDiverged, TrainLog, make_optimizer,
                               make_schedule)

#: layers applied to every element alone: they run on stacked tensors as they are
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU,
               nn.Softplus, nn.Identity)
#: layers that act on (batch, channels, H, W): run on (k * batch, ...)
POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
STACKED_LAYERS = (nn.Flatten, nn.Linear, nn.Conv2d, *POOLING, *ELEMENTWISE)


def why_not(model: nn.Module, defense, device: torch.device | None = None) -> str | None:
    """None when models like `model` trained with `defense` on `device` are
    stacked; else why not. Convolutional models stack on GPUs only: on a CPU
    a grouped convolution is slower than one per model (benchmarks/stacking.py)."""
    if not getattr(defense, "stacks", False):
        return f"the {defense.name} defense does not stack"
    if not isinstance(model, nn.Sequential):
        return f"{type(model).__name__} is not an nn.Sequential of stackable layers"
    for layer in model:
        if not isinstance(layer, STACKED_LAYERS):
            return f"{type(layer).__name__} layers do not stack"
        if isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) != (1, -1):
            return "a Flatten other than Flatten(1, -1) does not stack"
        if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
            return "a Conv2d with a padding mode other than zeros does not stack"
    if any(True for _ in model.buffers()):
        return "the model has buffers (BatchNorm running statistics)"
    if device is not None and device.type == "cpu" and any(isinstance(m, nn.Conv2d)
                                                          for m in model):
        return "convolutions stack on GPUs only (on a CPU, grouped ones are slower)"
    return None


class Stacked(nn.Module):
    """k models of one nn.Sequential architecture as one module: its forward
    takes (k, B, ...) inputs, model i's batch at [i], and gives (k, B, C)."""

    def __init__(self, models: list[nn.Sequential]):
        super().__init__()
        self.k, self.layers = len(models), list(models[0])
        self.weights = nn.ParameterList()
        self.slots: list[tuple[str, ...]] = []  # per layer: its parameters' names
        for position, layer in enumerate(self.layers):
            names = tuple(name for name, _ in layer.named_parameters())
            for name in names:
                w = torch.stack([m[position].get_parameter(name).detach() for m in models])
                if isinstance(layer, nn.Linear) and name == "weight":
                    w = w.transpose(1, 2)  # (k, in, out): bmm's layout, no copy per step
                self.weights.append(nn.Parameter(w.contiguous()))
            self.slots.append(names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = iter(self.weights)
        for layer, names in zip(self.layers, self.slots):
            p = {name: next(params) for name in names}
            x = self._apply(layer, p, x)
        return x

    def _apply(self, layer, p, x):
        k = self.k
        if isinstance(layer, nn.Flatten):
            return x.flatten(2)
        if isinstance(layer, nn.Linear):  # (k, B, in) @ (k, in, out) + (k, 1, out)
            if "bias" in p:
                return torch.baddbmm(p["bias"].unsqueeze(1), x, p["weight"])
            return torch.bmm(x, p["weight"])
        if isinstance(layer, nn.Conv2d):  # the k models as k groups of one convolution
            b = x.shape[1]
            grouped = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])  # (B, k * C, H, W)
            out = F.conv2d(grouped, p["weight"].flatten(0, 1), p["bias"].flatten()
                           if "bias" in p else None, layer.stride, layer.padding,
                           layer.dilation, layer.groups * k)
            return out.view(b, k, -1, *out.shape[2:]).transpose(0, 1)  # (k, B, out, H', W')
        if isinstance(layer, POOLING):
            return layer(x.flatten(0, 1)).unflatten(0, (k, -1))
        return layer(x)  # elementwise

    @torch.no_grad()
    def copy_into(self, model: nn.Sequential, i: int) -> nn.Sequential:
        """`model` holding stacked model i's parameters."""
        params = iter(self.weights)
        for position, names in enumerate(self.slots):
            for name in names:
                value = next(params)[i]
                if isinstance(self.layers[position], nn.Linear) and name == "weight":
                    value = value.T
                model[position].get_parameter(name).copy_(value)
        return model


def groups(train_indices) -> list[list[int]]:
    """Model positions grouped by training-set size (each group stacks)."""
    by_size: dict[int, list[int]] = {}
    for i, idx in enumerate(train_indices):
        by_size.setdefault(len(idx), []).append(i)
    return list(by_size.values())


def train_stacked(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor,
                  train_indices: list[np.ndarray], cfg: TrainConfig, hooks: list[list],
                  generators: list[torch.Generator]) -> list[tuple[nn.Module, TrainLog]]:
    """Train `models` (one architecture that stacks, freshly built, on x's
    device) on their rows `train_indices` of (x, y), all of one size, as one;
    `hooks[i]`: model i's epoch-end hooks; `generators[i]`: its batch order.
    Returns each model with its TrainLog, as train_model would."""
    k = len(models)
    assert len({len(idx) for idx in train_indices}) == 1, "stack models of one size"
    stack = Stacked(models)
    # fused: one pass over the stacked tensors, too large for the cache, instead of
    # the several passes of the per-tensor update
    optimizer = make_optimizer(cfg, stack.parameters(), fused=True)
    schedule = make_schedule(cfg, optimizer)
    loaders = [IndexBatches(idx, cfg.batch_size, g) for idx, g in zip(train_indices, generators)]
    stopped = np.zeros(k, bool)
    frozen: dict[int, list[torch.Tensor]] = {}
    epochs_run = np.zeros(k, int)
    losses = torch.full((k,), float("nan"))
    for epoch in range(cfg.epochs):
        for batches in zip(*loaders):
            rows = torch.stack([b[0] for b in batches]).to(x.device)  # (k, B)
            logits = stack(x[rows])  # (k, B, C)
            per_example = F.cross_entropy(logits.flatten(0, 1), y[rows].flatten(),
                                          label_smoothing=cfg.label_smoothing, reduction="none")
            losses = per_example.view(k, -1).mean(1)  # each model's own batch mean
            if not torch.isfinite(losses).all():
                bad = int(torch.nonzero(~torch.isfinite(losses))[0])
                raise TrainingDiverged(f"training loss became {losses[bad].item()} at epoch "
                                       f"{epoch} (stacked model {bad})")
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            _refreeze(stack, frozen)
        schedule.step()
        epochs_run[~stopped] = epoch + 1
        for i in np.flatnonzero(~stopped):
            if any([hook.epoch_end(epoch, stack.copy_into(models[i], i)) for hook in hooks[i]]):
                stopped[i] = True
                frozen[i] = [w[i].detach().clone() for w in stack.weights]
        if stopped.all():
            break
    out = []
    for i, model in enumerate(models):
        model = stack.copy_into(model, i)
        for hook in hooks[i]:
            model = hook.finish(model)
        stats = {key: v for hook in hooks[i] for key, v in hook.report().items()}
        out.append((model, TrainLog(int(epochs_run[i]), float(losses[i].detach()), stats)))
    return out


@torch.no_grad()
def _refreeze(stack: Stacked, frozen: dict[int, list[torch.Tensor]]) -> None:
    """Put the stopped models' parameters back (the optimizer moved them)."""
    for i, values in frozen.items():
        for w, value in zip(stack.weights, values):
            w[i].copy_(value)
