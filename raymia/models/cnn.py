"""A small CNN for small images (digits 8x8, CIFAR 32x32)."""
from __future__ import annotations

from torch import nn


def small_cnn(input_shape, n_classes: int, **_) -> nn.Module:
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 64, H/2, W/2)
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(),  # (B, 512)
        nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, n_classes),
    )
