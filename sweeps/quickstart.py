"""Quickstart: how much an overfit MLP on the embedded digits leaks, and what
L2 and label smoothing buy. Minutes on a laptop.

    python -m raymia.sweep sweeps/quickstart.py
"""
from ray import tune

from raymia import (L2, DataConfig, Experiment, LabelSmoothing, ModelConfig, NoDefense,
                    ShadowConfig, SplitConfig, Sweep, TrainConfig)

sweep = Sweep(
    name="quickstart",
    base=Experiment(
        data=DataConfig(name="digits"),
        # few members and a wide MLP trained long: the undefended model overfits and leaks
        split=SplitConfig(n_members=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=8),
    ),
    space={
        "defense": tune.grid_search([
            NoDefense(),
            L2(weight_decay=1e-3), L2(weight_decay=1e-2),
            LabelSmoothing(smoothing=0.1), LabelSmoothing(smoothing=0.3),
        ]),
    },
    seeds=(0, 1),
)
