"""Calibration as a defense (the Trust paper's question): temperature scaling
(T fitted on held-out data, or fixed) and a last-layer Laplace approximation
(prior precision tuned on held-out data; probit or Monte-Carlo predictive),
applied after training to the same model (cached across the sweep).

    python -m raymia.sweep sweeps/calibration.py
"""
from ray import tune

from raymia import (DataConfig, Experiment, Laplace, ModelConfig, NoOutput, ShadowConfig,
                    SplitConfig, Sweep, Temperature, TrainConfig)

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")

sweep = Sweep(
    name="calibration",
    base=Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=150, n_validation=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=8),
        attacks=METRIC_ATTACKS + ("nn", "lira"),
    ),
    space={
        "output": tune.grid_search([
            NoOutput(), Temperature(), Temperature(temperature=0.5),
            Temperature(temperature=2.0), Laplace(method="probit"), Laplace(method="mc"),
        ]),
    },
    seeds=(0, 1),
)
