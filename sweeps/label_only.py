"""Label-only attacks: the model releases its predicted label and nothing else,
and the attacks that need only labels still work: correctness (the gap
attack), the augmentation attack (identity, flip and 1-pixel shifts) and the
decision-boundary distance (HopSkipJump-style, queries fanned out as jobs),
beside the same model releasing full scores.

    python -m raymia.sweep sweeps/label_only.py
"""
from ray import tune

from raymia import (DataConfig, Experiment, LabelOnly, ModelConfig, NoOutput, QueryConfig,
                    ShadowConfig, SplitConfig, Sweep, TrainConfig)

sweep = Sweep(
    name="label_only",
    base=Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=8),
        attacks=("correctness", "augmentation", "boundary"),
        queries=QueryConfig(augmentations=("hflip", "shift"), boundary_queries=1000,
                            boundary_models=2, boundary_chunk=100),
    ),
    space={"output": tune.grid_search([NoOutput(), LabelOnly()])},
    seeds=(0, 1),
)
