"""A sweep file brings its own attack and defense: one decorator each, run in
trials on every node of a multi-node cluster (shipped by value)."""
import textwrap

import numpy as np
import pytest

from raymia import extensions, registry
from raymia.results import read_results
from raymia.sweep import load_sweep_file, main

#: the README's "Extending raymia" example, as a sweep file
SWEEP = '''
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


@pytest.fixture
def restored_registries():
    """The sweep file's entries leave with the test."""
    saved = {kind: dict(reg) for kind, reg in extensions.REGISTRIES.items()}
    yield
    for kind, reg in extensions.REGISTRIES.items():
        reg.clear()
        reg.update(saved[kind])


def write(root, name):
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(SWEEP.replace("{name}", name)))
    return path


def test_a_sweep_file_registers_its_own_attack_and_defense(tmp_path, restored_registries):
    sweep, ext = load_sweep_file(str(write(tmp_path, "own")))
    assert sorted(ext.names()) == ["attack calibrated_loss", "defense input_noise"]
    assert registry.ATTACKS["calibrated_loss"].labels_only is False
    assert sweep.base.defense.name == "input_noise"
    cls = registry.DEFENSES["input_noise"]
    assert "calibrated_loss" in cls.__raymia_source__  # the cache hashes the file's text
    from raymia.results import SCHEMAS

    assert {"defense.sigma", "noisy_batches"} <= set(SCHEMAS["trials"].names)


@pytest.mark.ray
def test_a_sweep_files_attack_and_defense_run_on_every_node(tmp_path, restored_registries):
    """Head with no CPUs, two workers: every trial and job runs on a node that
    never loaded the sweep file."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    head = cluster.head_node.node_id[:8]
    try:
        out = tmp_path / "out"
        assert main([str(write(tmp_path, "own")), "--results", str(out),
                     "--address", cluster.address]) == 0
    finally:
        ray.shutdown()
        cluster.shutdown()
    tables = read_results(out)
    trials, attacks = tables["trials"], tables["attacks"]
    assert (trials.status == "ok").all() and len(trials) == 2
    assert sorted(trials["defense.sigma"]) == [0.05, 0.5]
    assert (trials.noisy_batches == 5 * 4).all()  # 60 members in batches of 16, 5 epochs
    assert not trials.node.str.endswith(head).any()  # never where the file was loaded
    assert not trials.job_nodes.str.contains(head).any()
    own = attacks[attacks.attack == "calibrated_loss"]
    assert len(own) == 2 and np.isfinite(own.auc).all()
