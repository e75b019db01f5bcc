import pytest
import torch

from raymia import ConfigError, ModelConfig
from raymia.models import MODELS, build_model


@pytest.mark.parametrize("name, shape", [
    ("mlp", (1, 8, 8)), ("purchase_mlp", (600,)), ("texas_mlp", (6169,)),
    ("small_cnn", (1, 8, 8)), ("small_cnn", (3, 32, 32)), ("cifar_resnet18", (3, 32, 32)),
    ("torchvision.mobilenet_v3_small", (3, 32, 32)),
])
def test_models_map_inputs_to_class_logits(name, shape):
    model = build_model(ModelConfig(name=name), shape, 7).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, *shape)).shape == (2, 7)


def test_purchase_mlp_has_the_selena_layers():
    model = build_model(ModelConfig(name="purchase_mlp"), (600,), 100)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (600, 1024), (1024, 512), (512, 256), (256, 128), (128, 100)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in model) == 4


def test_cifar_resnet_has_the_small_image_stem():
    model = build_model(ModelConfig(name="cifar_resnet18"), (3, 32, 32), 10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_mlp_widths_and_activation():
    model = build_model(ModelConfig(widths=(5, 4), activation="tanh"), (3,), 2)
    assert [m.out_features for m in model if isinstance(m, torch.nn.Linear)] == [5, 4, 2]


def test_unknown_model_lists_the_registry():
    with pytest.raises(ConfigError, match="valid: " + ", ".join(sorted(MODELS))):
        ModelConfig(name="vgg_typo")
