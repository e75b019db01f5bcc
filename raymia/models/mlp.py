"""Fully connected classifiers."""
from __future__ import annotations

import math

from torch import nn

from raymia import registry

ACTIVATIONS = registry.ACTIVATIONS
ACTIVATIONS.register("relu", nn.ReLU)
ACTIVATIONS.register("tanh", nn.Tanh)


def mlp(input_shape, n_classes: int, widths=(256, 256), activation: str = "relu") -> nn.Module:
    """Flatten -> [Linear -> activation] per width -> Linear(n_classes)."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for width in widths:
        layers += [nn.Linear(fan_in, width), ACTIVATIONS[activation]()]
        fan_in = width
    layers.append(nn.Linear(fan_in, n_classes))
    return nn.Sequential(*layers)


def purchase_mlp(input_shape, n_classes: int, **_) -> nn.Module:
    """input -> 1024 -> 512 -> 256 -> 128 -> classes with Tanh (the SELENA code's Purchase/Texas model)."""
    return mlp(input_shape, n_classes, widths=(1024, 512, 256, 128), activation="tanh")
