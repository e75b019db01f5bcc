"""A sweep file brings its own attack and defense: one decorator each. Their run
on every node of a multi-node cluster (shipped by value) is part of
tests/test_cluster.py, whose sweep file carries them."""
import textwrap

from raymia import registry
from raymia.extensions import foreign
from raymia.sweep import load_sweep

#: the README's "Extending raymia" example: an attack and a defense of a sweep file's own
EXTENSION = '''
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from ray import tune

from raymia import Experiment, ModelConfig, Resources, ShadowConfig, SplitConfig, Sweep, TrainConfig
from raymia.attacks import AttackOutput, register_attack
from raymia.attacks.thresholds import best_threshold
from raymia.defenses.base import Defense
from raymia.registry import DEFENSES
from raymia.signals import true_log_prob
from raymia.train.hooks import Hook


@register_attack("calibrated_loss")
def calibrated_loss(inputs, cfg):
    """Watson et al. (2022): the loss, calibrated by its mean over OUT shadow models."""
    n = len(inputs.labels)
    shadow = true_log_prob(inputs.shadow_logits, inputs.universe_labels)  # (m, u)
    out = ~inputs.keep
    mean_out = (shadow * out).sum(0) / np.maximum(out.sum(0), 1)         # (u,)
    target = true_log_prob(inputs.target_logits, inputs.labels) - mean_out[:n]
    threshold = best_threshold((shadow - mean_out).ravel(), inputs.keep.ravel())
    return [AttackOutput("calibrated_loss", "mean_out", target, threshold)]


@DEFENSES.register
@dataclass(frozen=True)
class InputNoise(Defense):
    """Gaussian noise on every training batch's inputs."""

    name = "input_noise"
    stats: ClassVar[dict[str, type]] = {"noisy_batches": int}
    sigma: float = 0.1

    def hooks(self, context, cfg):
        return [NoisyBatches(self.sigma, context.seed)]


class NoisyBatches(Hook):
    def __init__(self, sigma, seed):
        self.sigma, self.gen, self.count = sigma, torch.Generator().manual_seed(seed), 0

    def batch(self, x, target):
        self.count += 1
        noise = torch.randn(x.shape, generator=self.gen).to(x.device)
        return x + self.sigma * noise, target

    def report(self):
        return {"noisy_batches": self.count}

'''

SWEEP = EXTENSION + '''
sweep = Sweep(
    name="{name}",
    base=Experiment(split=SplitConfig(n_members=60), model=ModelConfig(widths=(64,)),
                    train=TrainConfig(epochs=5, batch_size=16, lr=3e-3),
                    shadows=ShadowConfig(n_models=2, models_per_job=2),
                    defense=InputNoise(), attacks=("loss", "calibrated_loss")),
    space={"defense.sigma": tune.grid_search([0.05, 0.5])},
    resources=Resources(trial_cpus=1, cpus_per_job=1, parallel_jobs=1),
)
'''


def write(root, name):
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(SWEEP.replace("{name}", name)))
    return path


def test_a_sweep_file_registers_its_own_attack_and_defense(tmp_path, restored_registries):
    sweep = load_sweep(str(write(tmp_path, "own")))
    ext = foreign()
    assert sorted(ext.names()) == ["attack calibrated_loss", "defense input_noise"]
    assert registry.ATTACKS["calibrated_loss"].labels_only is False
    assert sweep.base.defense.name == "input_noise"
    cls = registry.DEFENSES["input_noise"]
    assert "calibrated_loss" in cls.__raymia_source__  # the cache hashes the file's text
    from raymia.results import SCHEMAS

    assert {"defense.sigma", "noisy_batches"} <= set(SCHEMAS["trials"].names)


def test_what_is_shipped_to_the_workers_is_what_raymia_did_not_register(tmp_path,
                                                                        restored_registries):
    assert not foreign()  # the built-ins (torch's activation classes among them) stay home
    load_sweep(str(write(tmp_path, "own")))
    shipped = foreign()
    assert sorted(shipped.names()) == ["attack calibrated_loss", "defense input_noise"]
    assert shipped.modules == ("raymia_sweep_own",)
