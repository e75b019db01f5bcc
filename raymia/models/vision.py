"""torchvision architectures: the CIFAR ResNet-18 and any classifier by name."""
from __future__ import annotations

from torch import nn


def cifar_resnet18(input_shape, n_classes: int, **_) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem: 3x3 stride-1 conv, no max-pool."""
    import torchvision

    model = torchvision.models.resnet18(num_classes=n_classes)
    model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def torchvision_classifiers() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def torchvision_model(arch: str, input_shape, n_classes: int) -> nn.Module:
    """Untrained torchvision classifier `arch` (weights are never downloaded)."""
    import torchvision

    return torchvision.models.get_model(arch, weights=None, num_classes=n_classes)
