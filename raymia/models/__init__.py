"""Model registry: name -> builder(input_shape, n_classes, widths, activation).

Names: the entries of MODELS, or `torchvision.<arch>` for any torchvision
classification architecture (e.g. `torchvision.resnet50`), built untrained.
"""
from __future__ import annotations

from torch import nn

from raymia import registry
from raymia.config import ModelConfig
from raymia.models.cnn import small_cnn
from raymia.models.mlp import ACTIVATIONS, mlp, purchase_mlp
from raymia.models.vision import cifar_resnet18, torchvision_classifiers, torchvision_model

MODELS = registry.MODELS
for _name, _builder in {"mlp": mlp, "purchase_mlp": purchase_mlp, "texas_mlp": purchase_mlp,
                        "small_cnn": small_cnn, "cifar_resnet18": cifar_resnet18}.items():
    MODELS.register(_name, _builder)
TORCHVISION = "torchvision."


def _torchvision_name(name: str) -> str | None:
    """None for `torchvision.<arch>` with a known arch, else why not."""
    if not name.startswith(TORCHVISION):
        return (f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}, "
                f"or {TORCHVISION}<arch>")
    arch = name[len(TORCHVISION):]
    return None if arch in torchvision_classifiers() else \
        f"unknown torchvision classifier {arch!r}"


MODELS.accept = _torchvision_name


def check_model_name(name: str) -> None:
    MODELS.check(name, "name")


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    if cfg.name.startswith(TORCHVISION):
        return torchvision_model(cfg.name[len(TORCHVISION):], input_shape, n_classes)
    return MODELS[cfg.name](input_shape, n_classes, widths=cfg.widths, activation=cfg.activation)


__all__ = ["ACTIVATIONS", "MODELS", "build_model", "check_model_name"]
