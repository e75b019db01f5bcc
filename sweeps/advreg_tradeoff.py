"""Adversarial regularization's trade-off: the privacy weight alpha from 0
(plain training against the same reference set) to 6, on the embedded digits.
The defender's reference set is the validation split, disjoint from every
evaluation set.

    python -m raymia.sweep sweeps/advreg_tradeoff.py

For Purchase100 / Texas100 / CIFAR, start from the SELENA code's settings:
AdvReg.preset("purchase"), AdvReg.preset("texas"), AdvReg.preset("cifar").
"""
from ray import tune

from raymia import (AdvReg, DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig, Sweep,
                    TrainConfig)

sweep = Sweep(
    name="advreg_tradeoff",
    base=Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=150, n_validation=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=60, batch_size=32),
        shadows=ShadowConfig(n_models=8),
    ),
    space={
        "defense": tune.grid_search([AdvReg(alpha=a, warmup_epochs=3, attack_steps=2,
                                            attack_lr=1e-3) for a in (0.0, 1.0, 3.0, 6.0)]),
    },
    seeds=(0, 1),
)
