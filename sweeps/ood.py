"""False positives on out-of-distribution non-members (the Trust paper's
question): every attack, with its threshold fitted on in-distribution shadow
data, evaluated with the audit non-members replaced by permuted-pixel,
scaled (x255) and natural-photo versions and by uniform noise; precision,
recall, FPR and MMPS per set (`eval_set` column). The label-only attacks
(augmentation, decision-boundary distance) face the same sets.

    python -m raymia.sweep sweeps/ood.py
"""
from ray import tune

from raymia import (L2, DataConfig, Experiment, ModelConfig, NoDefense, QueryConfig,
                    ShadowConfig, SplitConfig, Sweep, TrainConfig)

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")

sweep = Sweep(
    name="ood",
    base=Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=16, models_per_job=4),
        attacks=METRIC_ATTACKS + ("nn", "top3", "lira", "augmentation", "boundary"),
        queries=QueryConfig(eval_sets=("permuted", "scaled", "natural", "noise")),
    ),
    space={"defense": tune.grid_search([NoDefense(), L2(weight_decay=1e-2)])},
    seeds=(0, 1),
)
