"""Label smoothing from 0 to 0.5 on the embedded digits: calibration (ECE)
and membership leakage side by side.

    python -m raymia.sweep sweeps/label_smoothing.py
"""
from ray import tune

from raymia import (DataConfig, Experiment, LabelSmoothing, ModelConfig, ShadowConfig,
                    SplitConfig, Sweep, TrainConfig)

sweep = Sweep(
    name="label_smoothing",
    base=Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        defense=LabelSmoothing(smoothing=0.0),
        shadows=ShadowConfig(n_models=8),
    ),
    space={"defense.smoothing": tune.grid_search([0.0, 0.05, 0.1, 0.2, 0.3, 0.5])},
    seeds=(0, 1),
)
