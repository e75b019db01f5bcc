"""Output defenses against the attacks that read scores, on one trained model:
MemGuard at several distortion budgets, top-k and rounding. The target and
shadow models train once per seed (the model cache shares them: an output
defense does not change training); the attacker's shadow models release
through the same defense.

    python -m raymia.sweep sweeps/memguard.py
"""
from ray import tune

from raymia import (DataConfig, Experiment, MemGuard, ModelConfig, NoOutput, Rounding,
                    ShadowConfig, SplitConfig, Sweep, TopK, TrainConfig)

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")

sweep = Sweep(
    name="memguard",
    base=Experiment(
        data=DataConfig(name="digits"),
        # MemGuard's defender trains its classifier on the members against the validation split
        split=SplitConfig(n_members=150, n_validation=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=8),
        attacks=METRIC_ATTACKS + ("nn", "top3"),
    ),
    space={
        "output": tune.grid_search([
            NoOutput(), MemGuard(epsilon=0.1), MemGuard(epsilon=0.5), MemGuard(epsilon=1.0),
            MemGuard(epsilon=float("inf")), TopK(k=1), TopK(k=3), Rounding(decimals=1),
        ]),
    },
    seeds=(0, 1),
)
