"""DP-SGD's privacy-utility trade-off: epsilon from 0.5 to infinity (the same
training without DP), two seeds, on the embedded digits.

    python -m raymia.sweep sweeps/dp_tradeoff.py

On Purchase100, change the data and model lines:
    data=DataConfig(name="purchase100", root="/data/purchase"),
    model=ModelConfig(name="purchase_mlp"), split=SplitConfig(n_members=10_000),
"""
import math

from ray import tune

from raymia import (DPSGD, DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig, Sweep,
                    TrainConfig)

sweep = Sweep(
    name="dp_tradeoff",
    base=Experiment(
        data=DataConfig(name="digits"),
        # DP needs more members than the quickstart to learn at small epsilon
        split=SplitConfig(n_members=300),
        model=ModelConfig(name="mlp", widths=(256, 256)),
        train=TrainConfig(optimizer="adam", lr=1e-2, epochs=30, batch_size=64),
        shadows=ShadowConfig(n_models=8),
    ),
    space={
        "defense": tune.grid_search([DPSGD(epsilon=e, max_grad_norm=1.0)
                                     for e in (0.5, 1, 2, 4, 8, 16, math.inf)]),
    },
    seeds=(0, 1),
)
