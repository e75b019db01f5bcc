"""Mixup + MMD against the undefended model and early stopping, on the
embedded digits. Both defenses use the validation split (disjoint from every
evaluation set) as their held-out data.

    python -m raymia.sweep sweeps/mixup_mmd.py
"""
from ray import tune

from raymia import (DataConfig, EarlyStopping, Experiment, MixupMMD, ModelConfig, NoDefense,
                    ShadowConfig, SplitConfig, Sweep, TrainConfig)

sweep = Sweep(
    name="mixup_mmd",
    base=Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=150, n_validation=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=8),
    ),
    space={
        "defense": tune.grid_search([
            NoDefense(),
            MixupMMD(mixup_alpha=1.0, mmd_weight=0.0),  # mixup alone
            MixupMMD(mixup_alpha=1.0, mmd_weight=1.0),
            MixupMMD(mixup_alpha=1.0, mmd_weight=5.0),
            EarlyStopping(patience=10),
        ]),
    },
    seeds=(0, 1),
)
