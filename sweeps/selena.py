"""SELENA (Split-AI + self-distillation) against the undefended model, on the
embedded digits: K submodels each leaving out every member L times, trained in
parallel as training jobs, then distilled into the released model. Every
trial also faces the paper's adaptive attacker (it knows half of the members
and trains its own Split-AI; for the undefended model with SELENA's default
K = 25, L = 10).

    python -m raymia.sweep sweeps/selena.py

On Purchase100 as in the paper: data=DataConfig(name="purchase100", root=...),
model=ModelConfig(name="purchase_mlp"), split=SplitConfig(n_members=10_000,
n_validation=5_000), defense Selena(K=25, L=10).
"""
from ray import tune

from raymia import (DataConfig, Experiment, ModelConfig, NoDefense, Selena, ShadowConfig,
                    SplitConfig, Sweep, TrainConfig)

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")

sweep = Sweep(
    name="selena",
    base=Experiment(
        data=DataConfig(name="digits"),
        # the validation split chooses the distilled model's epoch; the attacker's
        # held-out data of the same size are its own non-members
        split=SplitConfig(n_members=300, n_validation=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=60, batch_size=32),
        shadows=ShadowConfig(n_models=8),
        attacks=METRIC_ATTACKS + ("nn", "selena_adaptive"),
    ),
    space={
        "defense": tune.grid_search([NoDefense(), Selena(K=10, L=3), Selena(K=10, L=5),
                                     Selena(K=25, L=10)]),
    },
    seeds=(0, 1),
)
